/**
 * Streaming reader for a file holding one top-level JSON array of objects/arrays, for files too
 * large for one string (`attribute_snippets.json` is 926 MB, above V8's maximum string length).
 * Elements are cut out by a byte scanner (strings, escapes, nesting) and parsed one at a time.
 */
import fs from "node:fs";
import { DeltaEditError } from "../../errors.js";

const CHUNK = 4 << 20; // bytes per read

export function forEachJsonArrayElement(file: string, onElement: (value: unknown, index: number) => void): number {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `cannot read ${file}: ${(e as Error).message}`, { context: { file } });
  }
  let depth = 0; // 0 before '[', 1 between elements, ≥2 inside an element
  let inStr = false;
  let esc = false;
  let ended = false;
  let parts: Buffer[] = [];
  let count = 0;
  let offset = 0;
  const bad = (what: string, at: number): never => {
    throw new DeltaEditError("E_REQUEST", `${file}: ${what} at byte ${at}`, { context: { file } });
  };
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK);
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      let start = depth >= 2 ? 0 : -1;
      for (let i = 0; i < n; i++) {
        const c = buf[i]!;
        if (inStr) {
          if (esc) esc = false;
          else if (c === 0x5c) esc = true;
          else if (c === 0x22) inStr = false;
          continue;
        }
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
        if (ended) bad("unexpected data after the closing ']'", offset + i);
        if (depth === 0) {
          if (c !== 0x5b) bad("expected a JSON array ('[')", offset + i);
          depth = 1;
        } else if (depth === 1) {
          if (c === 0x2c) continue; // ','
          if (c === 0x5d) {
            ended = true;
            continue;
          }
          if (c !== 0x7b && c !== 0x5b) bad("array elements must be objects or arrays", offset + i);
          depth = 2;
          start = i;
        } else {
          if (c === 0x22) inStr = true;
          else if (c === 0x7b || c === 0x5b) depth++;
          else if (c === 0x7d || c === 0x5d) {
            depth--;
            if (depth === 1) {
              parts.push(buf.subarray(start, i + 1));
              const text = Buffer.concat(parts).toString("utf8");
              parts = [];
              start = -1;
              let v: unknown;
              try {
                v = JSON.parse(text);
              } catch (e) {
                bad(`element ${count} is not valid JSON (${(e as Error).message})`, offset + i);
              }
              onElement(v, count++);
            }
          }
        }
      }
      if (depth >= 2 && start >= 0) parts.push(buf.subarray(start, n));
      offset += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  if (!ended) bad("truncated JSON array (no closing ']')", offset);
  return count;
}
