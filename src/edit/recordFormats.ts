/**
 * The record formats the field's data comes in, recognised from their fields (no file-name rules):
 *
 *   "counterfact"  ROME/MEMIT CounterFact / MultiCounterFact: `requested_rewrite: {prompt ("{}"), subject,
 *                  target_new: {str}, target_true: {str}}`, paraphrase/neighborhood lists (spec §1.2)
 *   "simple"       our flat form: `prompt` with "{}", `subject`, `target_new`, `target_true?`
 *   "easyedit"     EasyEdit's flattened CounterFact and KnowEdit's records: `prompt` with the subject
 *                  FILLED IN (no "{}"; a prompt with neither "{}" nor the subject is a malformed simple record), `subject`, `target_new`, `ground_truth` (a string, or a list of
 *                  aliases), `rephrase_prompt`, `locality_prompt` + `locality_ground_truth`, and KnowEdit's
 *                  `portability` / `locality` dictionaries
 *   "zsre"         ZsRE as MEND / EasyEdit distribute it: `src` (subject filled in), `subject`, `answers`,
 *                  `alt`, `rephrase`, `loc`, `loc_ans` (spec §1.3)
 *
 * For an edit request, a filled-in prompt becomes a template by replacing the subject's one
 * occurrence with "{}" (a subject that does not occur, or occurs twice, is rejected: the slot is
 * ambiguous). ZsRE's edit target is `answers[0]`, as in MEMIT / AlphaEdit / DeltaEdit (EasyEdit edits
 * towards `alt`; spec §1.4).
 */

export type RecordFormat = "counterfact" | "simple" | "easyedit" | "zsre";

export const RECORD_FORMAT_NAMES: Readonly<Record<RecordFormat, string>> = Object.freeze({
  counterfact: "CounterFact / MultiCounterFact (requested_rewrite)",
  simple: "flat JSONL (prompt with {}, subject, target_new)",
  easyedit: "EasyEdit / KnowEdit flattened (prompt with the subject filled in, target_new, ground_truth)",
  zsre: "ZsRE (src, subject, answers, rephrase, loc, loc_ans)",
});

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** The format of one record, from its fields. */
export function detectRecordFormat(rec: unknown): RecordFormat {
  if (!isObject(rec)) return "simple";
  if (rec["requested_rewrite"] !== undefined) return "counterfact";
  if (rec["prompt"] === undefined && typeof rec["src"] === "string" && rec["answers"] !== undefined) return "zsre";
  const p = rec["prompt"];
  const s = rec["subject"];
  if (typeof p === "string" && !p.includes("{}") && typeof s === "string" && s.trim() !== "" && p.includes(s)) return "easyedit";
  return "simple";
}

/** The first string of a value that is a string or a (nested) list of aliases; null if none. */
export function firstString(v: unknown): string | null {
  for (let x = v, depth = 0; depth < 4; depth++) {
    if (typeof x === "string") return x;
    if (!Array.isArray(x) || x.length === 0) return null;
    x = x[0];
  }
  return null;
}

/** Number of non-overlapping occurrences of `needle` in `hay`. */
export function occurrences(hay: string, needle: string): number {
  if (needle.length === 0) return 0;
  let n = 0;
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** A field at fault and what is wrong with it. */
export interface FieldProblem {
  field: string;
  message: string;
}

/** `filled` with the subject's one occurrence replaced by "{}", or the problem (field `subject`). */
export function templateOf(filled: string, subject: string, promptField: string): { template: string } | FieldProblem {
  if (subject.trim().length === 0) return { field: "subject", message: `field "subject" is empty` };
  const n = occurrences(filled, subject);
  if (n === 0) return { field: "subject", message: `field "subject" ${JSON.stringify(subject)} does not occur in ${promptField} ${JSON.stringify(filled)}${promptField === "prompt" ? ` (a prompt needs a "{}" subject slot, or the subject written out as in EasyEdit's files)` : ""}` };
  if (n > 1) return { field: "subject", message: `field "subject" ${JSON.stringify(subject)} occurs ${n} times in ${promptField} ${JSON.stringify(filled)} (the subject slot is ambiguous)` };
  return { template: filled.replace(subject, "{}") };
}

/** The simple form of an edit request, as parseRequest reads it. */
export interface SimpleFields {
  prompt: string; // exactly one "{}"
  subject: string;
  target_new: string;
  target_true?: string;
  relation_id?: string;
}

/**
 * The simple-form fields `{prompt ("{}"), subject, target_new, target_true?}` of an "easyedit" or
 * "zsre" record (other formats: null, parse them as they are), or the problem naming the field.
 */
export function simpleRequestFields(rec: Record<string, unknown>): SimpleFields | FieldProblem | null {
  const format = detectRecordFormat(rec);
  if (format !== "easyedit" && format !== "zsre") return null;
  const promptField = format === "zsre" ? "src" : "prompt";
  const subject = rec["subject"];
  if (typeof subject !== "string") return { field: "subject", message: `field "subject" is missing or not a string` };
  const t = templateOf(rec[promptField] as string, subject, promptField);
  if ("field" in t) return t;
  const targetField = format === "zsre" ? "answers" : "target_new";
  const targetNew = firstString(rec[targetField]);
  if (targetNew === null) return { field: targetField, message: `field "${targetField}" is missing, or not a string or a non-empty list of strings` };
  const targetTrue = format === "zsre" ? null : firstString(rec["ground_truth"]);
  return { prompt: t.template, subject, target_new: targetNew, ...(targetTrue !== null ? { target_true: targetTrue } : {}), ...(typeof rec["relation_id"] === "string" ? { relation_id: rec["relation_id"] } : {}) };
}
