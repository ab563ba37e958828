/**
 * ZsRE loader (`zsre_mend_eval.json`, evaluation spec §1.3–1.4). Raw record:
 *
 *   { subject, src, pred, rephrase, alt, answers: string[], loc ("nq question: …"), loc_ans, cond }
 *
 * Transformation of raw record i (file position):
 * - case_id = i; prompt = src with the subject replaced by "{}"; target_new = answers[0] (the TRUE
 *   answer: ZsRE editing inserts the correct answer); target_true = "<|endoftext|>" (placeholder);
 *   paraphrase_prompts = [rephrase]; `alt` and `pred` are not used.
 * - Neighborhood: b = ids(" " + loc_ans); one item per j: prompt = loc + "?" + decode(b[0..j)),
 *   target = decode(b[j]).
 *   Clean default (Q7): b without special tokens (`targetTokenIds`, as every other target).
 *   `neighborhoodSpecialTokens: true` reproduces the references (tokenizer default special
 *   tokens: for Llama-3 b[0] is BOS, an always-wrong item and a literal BOS string in later prompts).
 *
 * Edge cases (Q15): a subject that does not occur verbatim in `src`, or occurs more than once, is
 * rejected with its case id (field "subject"); the rest load.
 */
import { DeltaEditError } from "../../errors.js";
import { parseRequest, targetTokenIds, type TargetTokenizer } from "../../edit/request.js";
import { readJsonFile } from "./counterfact.js";
import { knowEditOf } from "./knowedit.js";
import { RecordError, rejection, type EvalRecord, type LoadedDataset, type Rejection, type ZsreNeighborhoodItem } from "./record.js";

/** The placeholder the references store as target_true for ZsRE (no metric reads it). */
export const ZSRE_TARGET_TRUE = "<|endoftext|>";

export interface ZsreLoadOptions {
  /** Needed to build the per-token neighborhood items. */
  tokenizer: TargetTokenizer;
  /** Reference behaviour: tokenise " " + loc_ans WITH default special tokens (Q7). Default false. */
  neighborhoodSpecialTokens?: boolean;
  /** Keep only the first `size` raw records (truncation happens before rejection, as in §1.4). */
  size?: number;
}

function str(r: Record<string, unknown>, field: string): string {
  const v = r[field];
  if (typeof v !== "string") throw new RecordError(field, `field "${field}" is ${v === undefined ? "missing" : "not a string"}`);
  return v;
}

function occurrences(hay: string, needle: string): number {
  if (needle.length === 0) return 0;
  let n = 0;
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** `decode(ids)`, "" for no ids (the tokenizer library refuses an empty list). */
export function decodeIds(tok: TargetTokenizer, ids: readonly number[]): string {
  return ids.length === 0 ? "" : tok.decode(ids);
}

/** The neighborhood items of §1.4 for question `loc + "?"` and answer `locAns`. */
export function zsreNeighborhood(tok: TargetTokenizer, loc: string, locAns: string, specialTokens = false): { question: string; answerIds: number[]; items: ZsreNeighborhoodItem[] } {
  const question = loc + "?";
  const b = specialTokens ? tok.encode(" " + locAns) : targetTokenIds(tok, locAns);
  const items = b.map((id, j) => ({ prompt: question + decodeIds(tok, b.slice(0, j)), target: tok.decode([id]), targetId: id }));
  return { question, answerIds: b, items };
}

/** Convert raw record `i` (throws RecordError naming the field). */
export function zsreRecord(raw: unknown, index: number, opts: ZsreLoadOptions): EvalRecord {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new RecordError("(record)", "not a JSON object");
  const r = raw as Record<string, unknown>;
  const subject = str(r, "subject");
  const src = str(r, "src");
  const rephrase = str(r, "rephrase");
  const answers = r["answers"];
  if (!Array.isArray(answers) || answers.length === 0 || typeof answers[0] !== "string") throw new RecordError("answers", `field "answers" must be a non-empty list of strings`);
  const loc = str(r, "loc");
  const locAns = str(r, "loc_ans");
  if (subject.trim().length === 0) throw new RecordError("subject", `field "subject" is empty`);
  const n = occurrences(src, subject);
  if (n === 0) throw new RecordError("subject", `subject ${JSON.stringify(subject)} does not occur in src ${JSON.stringify(src)}`);
  if (n > 1) throw new RecordError("subject", `subject ${JSON.stringify(subject)} occurs ${n} times in src ${JSON.stringify(src)} (exactly one expected)`);
  const prompt = src.replace(subject, "{}");
  const targetNew = answers[0] as string;
  let request;
  try {
    request = parseRequest({ case_id: index, prompt, subject, target_new: targetNew, target_true: ZSRE_TARGET_TRUE }, index);
  } catch (e) {
    if (!(e instanceof DeltaEditError)) throw e;
    const field = String(e.context["field"] ?? "(record)");
    throw new RecordError(field === "target_new" ? "answers" : field === "prompt" ? "src" : field, e.message.replace(/^request #\d+ \(case_id [^)]*\): /, ""));
  }
  if (targetNew.trim().length === 0) throw new RecordError("answers", `field "answers[0]" is empty`);
  const ke = knowEditOf(r); // KnowEdit portability / locality dictionaries, where present
  const nb = zsreNeighborhood(opts.tokenizer, loc, locAns, opts.neighborhoodSpecialTokens ?? false);
  if (nb.items.length === 0) throw new RecordError("loc_ans", `field "loc_ans" tokenises to nothing`);
  return {
    kind: "zsre",
    caseId: index,
    index,
    request,
    requestedRewrite: { prompt, subject, relation_id: null, target_new: { str: targetNew, id: null }, target_true: { str: ZSRE_TARGET_TRUE, id: null } },
    paraphrasePrompts: [rephrase],
    neighborhoodPrompts: nb.items.map((it) => it.prompt),
    neighborhoodItems: nb.items,
    zsreNeighborhood: { question: nb.question, answerIds: nb.answerIds },
    attributePrompts: [],
    generationPrompts: [],
    ...(ke ? { knowEdit: ke } : {}),
  };
}

/** Convert raw ZsRE records; bad ones go to `rejected` by index / case id / field. */
export function zsreRecords(raws: readonly unknown[], opts: ZsreLoadOptions, indexOffset = 0): { records: EvalRecord[]; rejected: Rejection[] } {
  const records: EvalRecord[] = [];
  const rejected: Rejection[] = [];
  const n = opts.size === undefined ? raws.length : Math.min(raws.length, opts.size);
  for (let i = 0; i < n; i++) {
    const index = i + indexOffset;
    try {
      records.push(zsreRecord(raws[i], index, opts));
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
      rejected.push(rejection(index, String(index), e.field, e.message));
    }
  }
  return { records, rejected };
}

/** Load `zsre_mend_eval.json`. */
export function loadZsre(file: string, opts: ZsreLoadOptions): LoadedDataset {
  const data = readJsonFile(file);
  if (!Array.isArray(data)) throw new DeltaEditError("E_REQUEST", `${file}: expected a JSON array of ZsRE records, got ${data === null ? "null" : typeof data}`, { context: { file } });
  const { records, rejected } = zsreRecords(data, opts);
  return { kind: "zsre", file, records, rejected };
}
