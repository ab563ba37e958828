/**
 * Edit requests: `{prompt (with "{}" for the subject), subject, targetNew, targetTrue?}`.
 * Accepted inputs: CounterFact / MultiCounterFact records (`requested_rewrite`), EasyEdit / KnowEdit
 * flattened records and ZsRE records (the subject filled into the prompt: recordFormats.ts), and a simple
 * JSONL form `{"prompt": "...{}...", "subject": "...", "target_new": "..." | {"str": "..."},
 * "target_true"?: ..., "case_id"?: ...}`. A malformed record is rejected with a message naming
 * the record (case_id or index) and the field; the others go on (spec §3.1, evaluation §1.2).
 */
import fs from "node:fs";
import { DeltaEditError } from "../errors.js";
import { simpleRequestFields } from "./recordFormats.js";
import { checkFieldLength, checkFileSize, REQUEST_LIMITS } from "./requestLimits.js";

/** An edit request: insert `targetNew` as the object of `prompt` (with "{}" for the subject) about `subject`. */
export interface EditRequest {
  caseId: string; // case_id as given, or the record's index
  index: number; // position in the input stream
  prompt: string; // exactly one "{}"
  subject: string;
  targetNew: string; // as given (no leading space added here)
  targetTrue: string | null;
  relationId: string | null;
}

/** A request or record not used: its position, case id, the field at fault and why. */
export interface Rejection {
  caseId: string;
  index: number;
  field: string;
  message: string;
}

/** Parsed requests and the rejected ones. */
export interface ParsedRequests {
  requests: EditRequest[];
  rejected: Rejection[];
}

function targetString(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { str?: unknown }).str === "string") return (v as { str: string }).str;
  return null;
}

/** Longest case id accepted (characters). */
const MAX_CASE_ID_CHARS = 256;

/**
 * A record's case id: a non-empty string (≤ 256 characters) or a safe integer, as given; absent →
 * the record's index. Anything else (an object, a float, null, a boolean) is rejected by index.
 */
function caseIdOf(v: unknown, index: number): string {
  if (v === undefined) return String(index);
  if (typeof v === "number" && Number.isSafeInteger(v)) return String(v);
  if (typeof v === "string" && v.length > 0 && v.length <= MAX_CASE_ID_CHARS && v.trim() === v) return v;
  const shown = typeof v === "string" ? JSON.stringify(v.slice(0, 40)) + (v.length > 40 ? "…" : "") : v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : JSON.stringify(v);
  throw new DeltaEditError("E_REQUEST", `request #${index}: field "case_id" must be a non-empty string (≤ ${MAX_CASE_ID_CHARS} characters, no surrounding spaces) or an integer, got ${shown}`, {
    context: { index, caseId: String(index), field: "case_id" },
  });
}

/** Validate one record (CounterFact or simple form). Throws E_REQUEST naming the record and field. */
export function parseRequest(rec: unknown, index: number): EditRequest {
  if (!rec || typeof rec !== "object" || Array.isArray(rec)) throw new DeltaEditError("E_REQUEST", `request #${index}: not a JSON object`, { context: { index, field: "(record)" } });
  const r = rec as Record<string, unknown>;
  const caseId = caseIdOf(r["case_id"], index);
  const where = `request #${index} (case_id ${caseId})`;
  const fail = (field: string, msg: string): never => {
    throw new DeltaEditError("E_REQUEST", `${where}: field "${field}" ${msg}`, { context: { index, caseId, field } });
  };
  // EasyEdit / KnowEdit / ZsRE records (subject filled into the prompt) become the simple form (recordFormats.ts)
  const flat = simpleRequestFields(r);
  if (flat !== null && "message" in flat) {
    throw new DeltaEditError("E_REQUEST", `${where}: ${flat.message}`, { context: { index, caseId, field: flat.field } });
  }
  const src = (flat ?? (r["requested_rewrite"] && typeof r["requested_rewrite"] === "object" ? r["requested_rewrite"] : r)) as Record<string, unknown>;
  for (const field of ["prompt", "subject"]) if (typeof src[field] === "string") checkFieldLength(where, field, src[field] as string, { index, caseId });
  for (const field of ["target_new", "target_true"]) {
    const t = targetString(src[field]);
    if (t !== null) checkFieldLength(where, field, t, { index, caseId });
  }
  const prompt = src["prompt"];
  if (typeof prompt !== "string") return fail("prompt", "is missing or not a string");
  const slots = prompt.split("{}").length - 1;
  if (slots === 0) fail("prompt", `has no "{}" subject slot: ${JSON.stringify(prompt)}`);
  if (slots > 1) fail("prompt", `has ${slots} "{}" slots, expected exactly one: ${JSON.stringify(prompt)}`);
  const subject = src["subject"];
  if (typeof subject !== "string" || subject.trim().length === 0) fail("subject", "is missing or empty");
  const targetNew = targetString(src["target_new"]);
  if (targetNew === null || targetNew.trim().length === 0) fail("target_new", "is missing or empty");
  const tt = src["target_true"] === undefined ? null : targetString(src["target_true"]);
  const rel = src["relation_id"];
  return { caseId, index, prompt, subject: subject as string, targetNew: targetNew!, targetTrue: tt, relationId: typeof rel === "string" ? rel : null };
}

/**
 * Parse a list of records; malformed ones are collected in `rejected`, never fatal. A case id seen
 * before is rejected (the first record with that id is kept): editing one case twice is a mistake.
 */
export function parseRequests(records: readonly unknown[]): ParsedRequests {
  const requests: EditRequest[] = [];
  const rejected: Rejection[] = [];
  const firstAt = new Map<string, number>();
  records.forEach((rec, i) => {
    try {
      const req = parseRequest(rec, i);
      const prev = firstAt.get(req.caseId);
      if (prev !== undefined) {
        throw new DeltaEditError("E_REQUEST", `request #${i} (case_id ${req.caseId}): field "case_id" duplicates record #${prev}'s; only the first is edited`, { context: { index: i, caseId: req.caseId, field: "case_id" } });
      }
      firstAt.set(req.caseId, i);
      requests.push(req);
    } catch (e) {
      if (!(e instanceof DeltaEditError)) throw e;
      rejected.push({ caseId: String((e.context["caseId"] as string | undefined) ?? i), index: i, field: String(e.context["field"] ?? "(record)"), message: e.message });
    }
  });
  return { requests, rejected };
}

/**
 * Read requests from a file: a JSON array (CounterFact / MultiCounterFact) or JSONL (one object
 * per line). A line that is not valid JSON is rejected by its line number; the rest go on.
 */
export function readRequestsFile(file: string): ParsedRequests {
  checkFileSize(file, REQUEST_LIMITS.maxEditsFileBytes, "edit requests");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `cannot read edit requests from ${file}: ${(e as Error).message}`);
  }
  const trimmed = text.trimStart();
  if (trimmed.startsWith("[")) {
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch (e) {
      throw new DeltaEditError("E_REQUEST", `${file}: not valid JSON (${(e as Error).message})`, { context: { file } });
    }
    if (!Array.isArray(arr)) throw new DeltaEditError("E_REQUEST", `${file}: expected a JSON array of edit records or JSONL`, { context: { file } });
    if (arr.length === 0) throw new DeltaEditError("E_REQUEST", `${file}: the JSON array holds no edit records`, { context: { file } });
    return parseRequests(arr as unknown[]);
  }
  const records: unknown[] = [];
  const bad: Rejection[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim().length === 0) return;
    try {
      records.push(JSON.parse(line));
    } catch (e) {
      bad.push({ caseId: `line ${i + 1}`, index: -1, field: "(json)", message: `${file}:${i + 1}: not valid JSON (${(e as Error).message})` });
    }
  });
  if (records.length === 0 && bad.length === 0) throw new DeltaEditError("E_REQUEST", `${file}: holds no edit records (empty file, or only blank lines)`, { context: { file } });
  const parsed = parseRequests(records);
  return { requests: parsed.requests, rejected: [...bad, ...parsed.rejected] };
}

/** The reference's target normalisation: prepend a space when missing (ODD-33). */
export function spacedTarget(target: string): string {
  return target.startsWith(" ") ? target : " " + target;
}

/** Minimal tokenizer surface needed here (avoids importing the model layer's type into callers). */
export interface TargetTokenizer {
  /** Token ids of `text`. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  /** Text of `ids`. */
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string;
  readonly bosTokenId: number | null;
  /** The id of token string `t`. */
  tokenToId(t: string): number | undefined;
}

/**
 * Token ids of the target as the model should produce them after the prompt (spec §3.2): the
 * space-prefixed target tokenised with default special tokens, minus a leading BOS/UNK. One
 * addition for sentencepiece-style (Metaspace) tokenizers: " store" tokenises to a lone "▁" piece
 * followed by "▁st…", a piece that never occurs after a prompt ("the store" → "▁the ▁st…"); a
 * leading piece that decodes to whitespace only is dropped when more tokens follow. Byte-level BPE
 * tokenizers (GPT-2, Llama 3) never produce such a piece, so this changes nothing for them.
 */
export function targetTokenIds(tok: TargetTokenizer, target: string): number[] {
  let ids = tok.encode(spacedTarget(target));
  if (ids.length > 0 && (ids[0] === tok.bosTokenId || ids[0] === tok.tokenToId("<unk>"))) ids = ids.slice(1);
  if (ids.length > 1 && tok.decode([ids[0]!]).trim() === "" && tok.decode(ids).trim() === tok.decode(ids.slice(1)).trim()) ids = ids.slice(1);
  return ids;
}
