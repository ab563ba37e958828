/**
 * CounterFact (`counterfact.json`) and MultiCounterFact (`multi_counterfact.json`) loaders
 * (evaluation spec §1.2). Both files are one JSON array of records:
 *
 *   { case_id, pararel_idx, requested_rewrite: { prompt ("{}" once), subject, relation_id,
 *     target_true: {str, id}, target_new: {str, id} }, paraphrase_prompts: string[],
 *     neighborhood_prompts: string[], attribute_prompts: string[], generation_prompts: string[] }
 *
 * A malformed record is rejected by index, case id and field (e.g.
 * `requested_rewrite.subject`, `paraphrase_prompts[1]`); the others load. `case_id` is an
 * opaque key: not assumed contiguous nor equal to the array position; a duplicate is rejected.
 */
import fs from "node:fs";
import { DeltaEditError } from "../../errors.js";
import { detectRecordFormat } from "../../edit/recordFormats.js";
import { parseRequest } from "../../edit/request.js";
import { easyeditRecord } from "./easyedit.js";
import { RecordError, rejection, stringList, targetRef, type DatasetKind, type EvalRecord, type LoadedDataset, type Rejection } from "./record.js";

export interface CounterfactLoadOptions {
  /** Keep only the first `size` valid records (file order). */
  size?: number;
}

/** Read and parse a JSON file, with errors that name the file. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `cannot read ${file}: ${(e as Error).message}`, { context: { file } });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DeltaEditError("E_REQUEST", `${file}: not valid JSON (${(e as Error).message})`, { context: { file } });
  }
}

/**
 * Convert one CounterFact-style record (throws RecordError naming the field). Also accepts the
 * flat JSONL form (`prompt`, `subject`, `target_new`, … at the top level: see jsonl.ts) and EasyEdit /
 * KnowEdit flattened records (the subject written into the prompt: see easyedit.ts).
 */
export function counterfactRecord(raw: unknown, index: number, kind: DatasetKind): EvalRecord {
  if (detectRecordFormat(raw) === "easyedit") return easyeditRecord(raw, index, kind); // EasyEdit / KnowEdit flattened (easyedit.ts)
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new RecordError("(record)", "not a JSON object");
  const r = raw as Record<string, unknown>;
  const nested = r["requested_rewrite"] !== undefined;
  const rw = (nested ? r["requested_rewrite"] : r) as Record<string, unknown>;
  if (!rw || typeof rw !== "object" || Array.isArray(rw)) throw new RecordError("requested_rewrite", `field "requested_rewrite" is not an object`);
  const pre = nested ? "requested_rewrite." : "";
  const cid = r["case_id"];
  let caseId: number;
  if (cid === undefined) caseId = index;
  else if (typeof cid === "number" && Number.isSafeInteger(cid)) caseId = cid;
  else if (typeof cid === "string" && /^-?\d+$/.test(cid)) caseId = Number(cid);
  else throw new RecordError("case_id", `field "case_id" must be an integer, got ${JSON.stringify(cid)}`);
  let request;
  try {
    request = parseRequest({ ...rw, case_id: caseId }, index);
  } catch (e) {
    if (!(e instanceof DeltaEditError)) throw e;
    const field = String(e.context["field"] ?? "(record)");
    throw new RecordError(pre + field, e.message.replace(/^request #\d+ \(case_id [^)]*\): /, "").replace(`"${field}"`, `"${pre + field}"`));
  }
  const targetNew = targetRef(rw["target_new"], pre + "target_new");
  if (rw["target_true"] === undefined) throw new RecordError(pre + "target_true", `field "${pre}target_true" is missing`);
  const targetTrue = targetRef(rw["target_true"], pre + "target_true");
  const rel = rw["relation_id"];
  if (rel !== undefined && rel !== null && typeof rel !== "string") throw new RecordError(pre + "relation_id", `field "${pre}relation_id" is not a string`);
  const relationId = typeof rel === "string" ? rel : null;
  return {
    kind,
    caseId,
    index,
    request,
    requestedRewrite: { prompt: request.prompt, subject: request.subject, relation_id: relationId, target_new: targetNew, target_true: targetTrue },
    paraphrasePrompts: stringList(r["paraphrase_prompts"], "paraphrase_prompts", nested),
    neighborhoodPrompts: stringList(r["neighborhood_prompts"], "neighborhood_prompts", nested),
    neighborhoodItems: [],
    zsreNeighborhood: null,
    attributePrompts: stringList(r["attribute_prompts"], "attribute_prompts", false),
    generationPrompts: stringList(r["generation_prompts"], "generation_prompts", false),
  };
}

/** Convert a list of raw records; bad ones (and duplicate case ids) go to `rejected`. */
export function counterfactRecords(raws: readonly unknown[], kind: DatasetKind, opts: CounterfactLoadOptions = {}): { records: EvalRecord[]; rejected: Rejection[] } {
  const records: EvalRecord[] = [];
  const rejected: Rejection[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < raws.length; i++) {
    if (opts.size !== undefined && records.length >= opts.size) break;
    const raw = raws[i];
    const cid = raw && typeof raw === "object" ? (raw as { case_id?: unknown }).case_id : undefined;
    const caseLabel = typeof cid === "string" || typeof cid === "number" ? String(cid).slice(0, 64) : String(i);
    try {
      const rec = counterfactRecord(raw, i, kind);
      if (seen.has(rec.caseId)) throw new RecordError("case_id", `duplicate case_id ${rec.caseId}`);
      seen.add(rec.caseId);
      records.push(rec);
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
      rejected.push(rejection(i, caseLabel, e.field, e.message));
    }
  }
  return { records, rejected };
}

/** Load `counterfact.json` ("cf") or `multi_counterfact.json` ("mcf"). */
export function loadCounterfact(file: string, kind: "cf" | "mcf" = "mcf", opts: CounterfactLoadOptions = {}): LoadedDataset {
  const data = readJsonFile(file);
  if (!Array.isArray(data)) throw new DeltaEditError("E_REQUEST", `${file}: expected a JSON array of CounterFact records, got ${data === null ? "null" : typeof data}`, { context: { file } });
  const { records, rejected } = counterfactRecords(data, kind, opts);
  return { kind, file, records, rejected };
}
