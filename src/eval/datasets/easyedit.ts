/**
 * EasyEdit's flattened CounterFact and KnowEdit's records (recordFormats.ts "easyedit"), loaded as
 * CounterFact-style evaluation records:
 *
 *   { case_id?, prompt ("The mother tongue of Danielle Darrieux is": the subject FILLED IN), subject,
 *     target_new, ground_truth (string, or a list of aliases: the first is used), rephrase_prompt?
 *     (string or list), locality_prompt?, locality_ground_truth?, portability? {…}, locality? {…} }
 *
 * Mapping: the prompt becomes a template by replacing the subject's one occurrence with "{}" (zero or
 * several occurrences: rejected, field "subject"); target_true = ground_truth (required: the
 * CounterFact metrics compare target_new with it); paraphrase prompts = rephrase_prompt.
 * `locality_prompt` is EasyEdit's copy of one CounterFact neighborhood prompt: when its
 * `locality_ground_truth` is the record's ground truth (as CounterFact builds it) it is scored as the
 * neighborhood (p(true) vs p(new)); otherwise as a locality item of group "neighborhood" (token
 * accuracy of locality_ground_truth). KnowEdit's dictionaries become portability / locality items.
 * What a record does not have is absent from its results (a one-prompt neighborhood is a mean over one
 * prompt; no generation prompts → no fluency), never a zero.
 */
import { DeltaEditError } from "../../errors.js";
import { firstString, simpleRequestFields } from "../../edit/recordFormats.js";
import { parseRequest } from "../../edit/request.js";
import { knowEditOf } from "./knowedit.js";
import { RecordError, stringList, type DatasetKind, type EvalRecord, type KnowEditItem } from "./record.js";

function caseIdOf(v: unknown, index: number): number {
  if (v === undefined) return index;
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  if (typeof v === "string" && /^-?\d+$/.test(v)) return Number(v);
  throw new RecordError("case_id", `field "case_id" must be an integer, got ${JSON.stringify(v)}`);
}

/** A string or a list of strings as a list (absent → []). */
function promptList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return [v];
  return stringList(v, field, true);
}

/** Convert one EasyEdit / KnowEdit flattened record (throws RecordError naming the field). */
export function easyeditRecord(raw: unknown, index: number, kind: DatasetKind): EvalRecord {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new RecordError("(record)", "not a JSON object");
  const r = raw as Record<string, unknown>;
  const caseId = caseIdOf(r["case_id"], index);
  const flat = simpleRequestFields(r);
  if (flat === null) throw new RecordError("prompt", `field "prompt" must hold the subject written out (an EasyEdit / KnowEdit record)`);
  if ("message" in flat) throw new RecordError(flat.field, flat.message);
  const targetTrue = firstString(r["ground_truth"]);
  if (targetTrue === null || targetTrue.trim() === "") throw new RecordError("ground_truth", `field "ground_truth" is missing or empty (the CounterFact metrics compare target_new with it)`);
  let request;
  try {
    request = parseRequest({ ...flat, target_true: targetTrue, case_id: caseId }, index);
  } catch (e) {
    if (!(e instanceof DeltaEditError)) throw e;
    throw new RecordError(String(e.context["field"] ?? "(record)"), e.message.replace(/^request #\d+ \(case_id [^)]*\): /, ""));
  }
  const locPrompts = promptList(r["locality_prompt"], "locality_prompt");
  const locAnswers = locPrompts.length === 0 ? [] : promptList(r["locality_ground_truth"], "locality_ground_truth");
  if (locPrompts.length > 0 && locAnswers.length !== locPrompts.length && !(locAnswers.length === 1)) {
    throw new RecordError("locality_ground_truth", `field "locality_ground_truth" has ${locAnswers.length} answers for ${locPrompts.length} locality prompts`);
  }
  const neighborhood: string[] = [];
  const extraLocality: KnowEditItem[] = [];
  locPrompts.forEach((p, i) => {
    const a = locAnswers.length === 1 ? locAnswers[0]! : locAnswers[i]!;
    if (a.trim() === "") throw new RecordError("locality_ground_truth", `field "locality_ground_truth" is empty`);
    if (a === targetTrue) neighborhood.push(p);
    else extraLocality.push({ group: "neighborhood", prompt: p, answer: a });
  });
  const ke = knowEditOf(r);
  const knowEdit = ke || extraLocality.length > 0 ? { portability: ke?.portability ?? [], locality: [...extraLocality, ...(ke?.locality ?? [])] } : undefined;
  return {
    kind,
    caseId,
    index,
    request,
    requestedRewrite: { prompt: request.prompt, subject: request.subject, relation_id: request.relationId, target_new: { str: request.targetNew, id: null }, target_true: { str: targetTrue, id: null } },
    paraphrasePrompts: promptList(r["rephrase_prompt"], "rephrase_prompt"),
    neighborhoodPrompts: neighborhood,
    neighborhoodItems: [],
    zsreNeighborhood: null,
    attributePrompts: [],
    generationPrompts: [],
    ...(knowEdit ? { knowEdit } : {}),
  };
}
