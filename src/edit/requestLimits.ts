/**
 * Size limits of edit requests, checked before any work so that one oversized request is rejected by
 * its case id and the stream goes on (a 2-million-character prompt once hung the tokenizer, and a
 * prompt longer than the model's context aborted a whole run deep inside the rotary tables).
 *
 * | limit | default | why |
 * |---|---|---|
 * | `maxFieldChars` | 4 096 | characters of `prompt`, `subject`, `target_new`, `target_true` each: real requests are one sentence |
 * | `maxEditsFileBytes` | 1 GiB | an edits file is read whole; MultiCounterFact is ~50 MB |
 * | token rows | the model's `maxPositions` | every row the target search runs (context template + prompt + target) must fit |
 */
import fs from "node:fs";
import { DeltaEditError } from "../errors.js";
import type { EditRequest, TargetTokenizer } from "./request.js";
import { targetTokenIds } from "./request.js";
import type { TextTokenizer } from "../model/tokenizer.js";
import { fillTemplate, locateSubject } from "./subject.js";

export const REQUEST_LIMITS = Object.freeze({
  /** Characters of each text field of a request. */
  maxFieldChars: 4096,
  /** Bytes of an edits file (JSON array or JSONL). */
  maxEditsFileBytes: 1024 * 1024 * 1024,
});

/** Reject an oversized text field (E_REQUEST naming the request and field). */
export function checkFieldLength(where: string, field: string, value: string, context: Record<string, unknown>): void {
  if (value.length > REQUEST_LIMITS.maxFieldChars) {
    throw new DeltaEditError("E_REQUEST", `${where}: field "${field}" has ${value.length} characters, more than the limit of ${REQUEST_LIMITS.maxFieldChars}`, { context: { ...context, field } });
  }
}

/** Refuse a file larger than `maxBytes` before reading it (E_LIMIT naming the file). */
export function checkFileSize(file: string, maxBytes: number, what: string): void {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `cannot read ${what} from ${file}: ${(e as Error).message}`, { context: { file } });
  }
  if (size > maxBytes) throw new DeltaEditError("E_LIMIT", `${file}: ${what} of ${size} bytes exceeds the limit of ${maxBytes} bytes`, { context: { file } });
}

/**
 * The longest token row the target search and key computation run for this request: every context
 * template filled with the prompt and subject, then the target's leading tokens; and "{} is a".
 * Throws E_REQUEST naming the request when it exceeds `maxPositions`.
 */
export function checkRequestFits(tok: TextTokenizer & TargetTokenizer, req: EditRequest, templates: readonly string[], maxPositions: number): void {
  const T = targetTokenIds(tok, req.targetNew).length;
  let longest = 0;
  for (const c of ["{}", ...templates]) {
    const loc = locateSubject(tok, fillTemplate(c, req.prompt), req.subject, `request ${req.caseId}`);
    longest = Math.max(longest, loc.ids.length + Math.max(0, T - 1));
  }
  if (longest > maxPositions) {
    throw new DeltaEditError("E_REQUEST", `request ${req.caseId}: its longest prompt row (context template + prompt + target) has ${longest} tokens, more than the model's ${maxPositions} positions`, {
      context: { field: "prompt" },
    });
  }
}
