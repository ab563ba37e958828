/**
 * The content hash that pins a session to its model: sha256 over config.json and the full bytes of
 * every weight file (name, size, content), read in 8 MiB chunks. Unlike the model's sampled
 * fingerprint (ModelIdentity.hash, used as a cache key) it changes whenever any weight byte does.
 * Computed when a session is created (recorded in the manifest) and when it is reopened (compared).
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";

const CHUNK_BYTES = 8 * 1024 * 1024;
export const MODEL_HASH_KIND = "sha256-content-v1";

/** Content hash of the model directory `dir` with weight files `files` (relative names). */
export function modelContentHash(dir: string, files: readonly string[]): string {
  const h = crypto.createHash("sha256");
  h.update(`deltaedit-model-content-v1\0`);
  const read = (name: string, each: (chunk: Buffer) => void): number => {
    const file = path.join(dir, name);
    let fd: number;
    try {
      fd = fs.openSync(file, "r");
    } catch (e) {
      throw new DeltaEditError("E_NOT_FOUND", `${file}: cannot read the model file to hash it (${(e as Error).message})`, { cause: e, context: { file } });
    }
    const buf = Buffer.alloc(CHUNK_BYTES);
    let total = 0;
    try {
      for (;;) {
        const n = fs.readSync(fd, buf, 0, CHUNK_BYTES, total);
        if (n === 0) break;
        each(buf.subarray(0, n));
        total += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    return total;
  };
  for (const name of ["config.json", ...[...files].sort()]) {
    const inner = crypto.createHash("sha256");
    const size = read(name, (c) => inner.update(c));
    h.update(`\0file\0${name}\0${size}\0${inner.digest("hex")}`);
  }
  return h.digest("hex");
}
