/**
 * The facts a causal trace runs on: (prompt with the subject filled in, subject, object)
 * (evaluation spec §10), read from a file and tokenized.
 *
 * Accepted records (a JSON array, or JSONL with one object per line):
 *   - CounterFact / MultiCounterFact records (§1.2): the fact is `requested_rewrite.prompt`,
 *     `.subject` and `.target_true.str` (the true object, which the model should know);
 *     parsed by the CounterFact loader (`counterfactRecord`), so its field checks apply;
 *   - the simple form `{"prompt", "subject", "object"}` (`"target"` or `"target_true"` are
 *     accepted for the object, as a string or `{str}`), where the prompt holds "{}" or the
 *     subject itself (its first occurrence becomes the slot).
 * A bad record (subject not in the prompt, empty object, …) is rejected by its index and field;
 * the others go on.
 *
 * Token positions: for a template A + "{}" + B, the subject's tokens are [s0, s1) in
 * tokenize(A + s + B) with s1 = |tokenize(A + s)| (the edit code's subject-last rule,
 * `locateSubject`) and s0 = the common prefix of tokenize(trimEnd(A)) and the prompt's tokens
 * (a space before the subject belongs to its first token in byte-level and sentencepiece BPE).
 * The object's first token is the first of `targetTokenIds(object)` (leading space added).
 */
import fs from "node:fs";
import { DeltaEditError } from "../../errors.js";
import { targetTokenIds, type Rejection } from "../../edit/request.js";
import { locateSubject } from "../../edit/subject.js";
import type { TextTokenizer } from "../../model/tokenizer.js";
import { counterfactRecord } from "../datasets/counterfact.js";
import { parseJsonl } from "../datasets/jsonl.js";
import { RecordError } from "../datasets/record.js";

export interface TraceFact {
  index: number; // position among the file's records (0-based)
  caseId: string; // case_id when given, else the index
  prompt: string; // template with exactly one "{}"
  subject: string;
  object: string; // the answer the model should give (CounterFact: target_true)
}

export interface LoadedFacts {
  file: string;
  facts: TraceFact[];
  rejected: Rejection[];
}

/** A fact ready to run: token ids of the filled prompt, the subject's token range, the object's first token. */
export interface TokenizedFact {
  fact: TraceFact;
  text: string; // A + subject + B
  ids: number[]; // (T)
  tokens: string[]; // (T) each token decoded on its own (for reports)
  subjectStart: number; // s0: first subject token
  subjectEnd: number; // s1: one past the last subject token
  objectId: number; // first token of " " + object
  warning: string | null;
}

function str(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { str?: unknown }).str === "string") return (v as { str: string }).str;
  return null;
}

/** One record → a fact (throws RecordError naming the field). */
export function traceFactFromRecord(raw: unknown, index: number): TraceFact {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new RecordError("(record)", "not a JSON object");
  const r = raw as Record<string, unknown>;
  if (r["requested_rewrite"] !== undefined) {
    // only requested_rewrite matters here: the evaluation prompt lists may be absent
    const rec = counterfactRecord({ paraphrase_prompts: [], neighborhood_prompts: [], ...r }, index, "mcf");
    const object = rec.requestedRewrite.target_true.str;
    if (object.trim().length === 0) throw new RecordError("requested_rewrite.target_true", `field "requested_rewrite.target_true" is empty`);
    return { index, caseId: String(rec.caseId), prompt: rec.requestedRewrite.prompt, subject: rec.requestedRewrite.subject, object };
  }
  const prompt = r["prompt"];
  if (typeof prompt !== "string" || prompt.trim().length === 0) throw new RecordError("prompt", `field "prompt" is missing or empty`);
  const subject = r["subject"];
  if (typeof subject !== "string" || subject.trim().length === 0) throw new RecordError("subject", `field "subject" is missing or empty`);
  const objField = ["object", "target", "target_true"].find((k) => r[k] !== undefined);
  const object = objField === undefined ? null : str(r[objField]);
  if (object === null || object.trim().length === 0) throw new RecordError(objField ?? "object", `field "${objField ?? "object"}" is missing or empty`);
  const slots = prompt.split("{}").length - 1;
  let template: string;
  if (slots === 1) template = prompt;
  else if (slots > 1) throw new RecordError("prompt", `field "prompt" has ${slots} "{}" slots, expected one: ${JSON.stringify(prompt)}`);
  else {
    const at = prompt.indexOf(subject);
    if (at < 0) throw new RecordError("subject", `the subject ${JSON.stringify(subject)} does not occur in the prompt ${JSON.stringify(prompt)} (and the prompt has no "{}" slot)`);
    template = prompt.slice(0, at) + "{}" + prompt.slice(at + subject.length);
  }
  const cid = r["case_id"];
  return { index, caseId: cid === undefined ? String(index) : String(cid), prompt: template, subject, object };
}

/** Convert raw records; bad ones go to `rejected` with their index and field. */
export function traceFactsFromRecords(raws: readonly unknown[], file: string): { facts: TraceFact[]; rejected: Rejection[] } {
  const facts: TraceFact[] = [];
  const rejected: Rejection[] = [];
  raws.forEach((raw, i) => {
    try {
      facts.push(traceFactFromRecord(raw, i));
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
      const cid = raw && typeof raw === "object" ? (raw as { case_id?: unknown }).case_id : undefined;
      const caseId = cid === undefined ? String(i) : String(cid);
      rejected.push({ index: i, caseId, field: e.field, message: `${file}: fact #${i} (case_id ${caseId}): ${e.message}` });
    }
  });
  return { facts, rejected };
}

/** Read facts from a JSON array or a JSONL file. */
export function loadTraceFacts(file: string): LoadedFacts {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `cannot read facts from ${file}: ${(e as Error).message}`, { context: { file } });
  }
  let raws: unknown[];
  let bad: Rejection[] = [];
  if (text.trimStart().startsWith("[")) {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new DeltaEditError("E_REQUEST", `${file}: not valid JSON (${(e as Error).message})`, { context: { file } });
    }
    raws = data as unknown[];
  } else {
    const p = parseJsonl(text, file);
    raws = p.objects;
    bad = p.rejected;
  }
  const { facts, rejected } = traceFactsFromRecords(raws, file);
  return { file, facts, rejected: [...bad, ...rejected] };
}

/** Tokenize one fact; throws E_REQUEST naming the fact when its subject or object has no tokens. */
export function tokenizeFact(tok: TextTokenizer, fact: TraceFact): TokenizedFact {
  const what = `fact #${fact.index} (case_id ${fact.caseId})`;
  const loc = locateSubject(tok, fact.prompt, fact.subject, what);
  const ids = loc.ids;
  const subjectEnd = loc.subjectLast + 1;
  const before = tok.encode(fact.prompt.slice(0, fact.prompt.indexOf("{}")).trimEnd());
  let common = 0;
  while (common < before.length && common < ids.length && before[common] === ids[common]) common++;
  const subjectStart = Math.min(common, subjectEnd - 1);
  if (subjectStart < 0 || subjectEnd > ids.length) throw new DeltaEditError("E_REQUEST", `${what}: cannot locate the subject's tokens in ${JSON.stringify(loc.text)}`, { context: { index: fact.index, field: "subject" } });
  const obj = targetTokenIds(tok, fact.object);
  if (obj.length === 0) throw new DeltaEditError("E_REQUEST", `${what}: the object ${JSON.stringify(fact.object)} has no tokens`, { context: { index: fact.index, field: "object" } });
  return {
    fact,
    text: loc.text,
    ids,
    tokens: ids.map((id) => tok.decode([id])),
    subjectStart,
    subjectEnd,
    objectId: obj[0]!,
    warning: loc.warning,
  };
}
