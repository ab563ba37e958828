/**
 * Reading JSON from a model directory within the limits of `limits.ts`: the file must be a regular
 * file of at most LIMITS.maxJsonFileBytes, and its nesting depth is measured by a non-recursive
 * scan of the raw bytes BEFORE JSON.parse, so nothing recursive (JSON.stringify in an error
 * message, a library walking a nested config) ever sees a document deeper than LIMITS.maxJsonDepth.
 *
 * `brief(v)` renders any parsed value for an error message in bounded length.
 */
import fs from "node:fs";
import { DeltaEditError, type ErrorCode } from "../errors.js";
import { LIMITS, limitError } from "./limits.js";

const OPEN_BRACKET = 0x5b; // [
const CLOSE_BRACKET = 0x5d; // ]
const OPEN_BRACE = 0x7b; // {
const CLOSE_BRACE = 0x7d; // }
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * Nesting depth of JSON text (1 for `[]` or `{}`, 0 for a scalar), scanning bytes; stops early and
 * returns { depth: > max, offset } at the first byte that goes deeper than `max`. Bytes of
 * multi-byte UTF-8 sequences are ≥ 0x80 and never match the ASCII delimiters.
 */
export function jsonDepth(bytes: Uint8Array, max: number = Number.MAX_SAFE_INTEGER): { depth: number; offset: number } {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > max) return { depth: deepest, offset: i };
      }
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) depth--;
  }
  return { depth: deepest, offset: -1 };
}

/** Throws E_LIMIT naming `source` when `bytes` nest deeper than LIMITS.maxJsonDepth. */
export function checkJsonDepth(bytes: Uint8Array, source: string): void {
  const d = jsonDepth(bytes, LIMITS.maxJsonDepth);
  if (d.depth > LIMITS.maxJsonDepth) {
    throw limitError(source, `JSON nesting depth (at byte ${d.offset})`, `${d.depth}+`, "maxJsonDepth", { file: source });
  }
}

/** Parses JSON bytes after the depth check; a syntax error is `code` naming `source`. */
export function parseBoundedJson(bytes: Uint8Array, source: string, code: ErrorCode): unknown {
  checkJsonDepth(bytes, source);
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch (e) {
    throw new DeltaEditError(code, `${source}: not valid JSON (${(e as Error).message})`, { cause: e, context: { file: source } });
  }
}

/**
 * Reads `file` (a regular file of at most LIMITS.maxJsonFileBytes) and parses it with
 * `parseBoundedJson`. Returns null when it does not exist; other read failures are `code`.
 */
export function readBoundedJson(file: string, code: ErrorCode): { value: unknown } | null {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new DeltaEditError(code, `${file}: cannot read (${(e as Error).message})`, { cause: e, context: { file } });
  }
  let bytes: Buffer;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new DeltaEditError(code, `${file}: not a regular file`, { context: { file } });
    if (st.size > LIMITS.maxJsonFileBytes) throw limitError(file, "file size in bytes", st.size, "maxJsonFileBytes", { file });
    bytes = Buffer.alloc(st.size);
    let got = 0;
    while (got < st.size) {
      const n = fs.readSync(fd, bytes, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    bytes = bytes.subarray(0, got);
  } catch (e) {
    if (e instanceof DeltaEditError) throw e;
    throw new DeltaEditError(code, `${file}: cannot read (${(e as Error).message})`, { cause: e, context: { file } });
  } finally {
    fs.closeSync(fd);
  }
  return { value: parseBoundedJson(bytes, file, code) };
}

const BRIEF_ITEMS = 8;

/**
 * A JSON rendering of `v` for error messages, cut to `max` characters; arrays and objects show
 * their first few items only. `v` must come from a depth-checked document (JSON.stringify recurses).
 */
export function brief(v: unknown, max = 80): string {
  let s: string;
  try {
    s =
      JSON.stringify(v, (_k, x: unknown) => {
        if (Array.isArray(x) && x.length > BRIEF_ITEMS) return [...x.slice(0, BRIEF_ITEMS), `… ${x.length} items`];
        if (typeof x === "string" && x.length > max) return `${x.slice(0, max)}…`;
        return x;
      }) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
