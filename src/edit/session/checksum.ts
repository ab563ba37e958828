/**
 * Checksums of a session's records: sha256 (hex) of the canonical JSON of a record without its
 * `sum` field. Canonical JSON = JSON.stringify with the keys of every object sorted, so the sum
 * does not depend on the key order a writer used; JSON's own number formatting round-trips every
 * finite double exactly, so parse → canonicalize reproduces the bytes that were summed.
 */
import crypto from "node:crypto";

/** Name of the checksum field of journal records and of the manifest. */
export const SUM_FIELD = "sum";

export function sha256Hex(data: string | Uint8Array): string {
  return crypto.createHash("sha256").update(data).digest("hex");
}

export function isSha256Hex(s: unknown): s is string {
  return typeof s === "string" && /^[0-9a-f]{64}$/.test(s);
}

/** JSON with sorted object keys (arrays keep their order; undefined fields are left out as in JSON.stringify). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, x: unknown) => {
    if (x === null || typeof x !== "object" || Array.isArray(x)) return x;
    const o = x as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
  });
}

/** sha256 of the canonical JSON of `record` without its `sum` field. */
export function recordSum(record: Record<string, unknown>): string {
  const { [SUM_FIELD]: _sum, ...body } = record;
  return sha256Hex(canonicalJson(body));
}

/** `record` with its `sum` field set (the field is last, after every other). */
export function sealed<T extends object>(record: T): T & { sum: string } {
  const { [SUM_FIELD]: _old, ...body } = record as Record<string, unknown>;
  return { ...(body as T), sum: recordSum(body) };
}
