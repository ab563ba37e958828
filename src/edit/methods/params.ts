/**
 * Hyperparameter handling shared by every method: merge overrides onto a method's defaults,
 * rejecting unknown or misspelled keys with a suggestion, and coercing `--set key=value` strings.
 */
import { DeltaEditError } from "../../errors.js";
import { editDistance } from "../../model/params.js";

/** `nullable`: numeric keys that also accept null (e.g. an optional constraint that null switches off). */
export function resolveParams<P extends object>(method: string, defaults: P, overrides: Record<string, unknown>, nullable: readonly string[] = []): P {
  const out = { ...defaults } as Record<string, unknown>;
  for (const [k, v] of Object.entries(overrides)) {
    if (!(k in out)) {
      const known = Object.keys(out);
      const best = known.map((x) => [x, editDistance(k.toLowerCase(), x.toLowerCase())] as const).sort((a, b) => a[1] - b[1])[0];
      throw new DeltaEditError("E_CONFIG", `${method}: unknown hyperparameter "${k}"`, { hint: best && best[1] <= 4 ? `did you mean "${best[0]}"? known: ${known.join(", ")}` : `known: ${known.join(", ")}` });
    }
    const d = out[k];
    out[k] = (v === null || v === "null" || v === "none") && nullable.includes(k) ? null : coerce(method, k, d, v);
  }
  return out as P;
}

function coerce(method: string, key: string, like: unknown, v: unknown): unknown {
  const bad = (): never => {
    throw new DeltaEditError("E_CONFIG", `${method}: hyperparameter "${key}" expects ${Array.isArray(like) ? "a list of integers" : like === null ? "a number or null" : typeof like}, got ${JSON.stringify(v)}`);
  };
  if (typeof v !== "string") {
    if (like === null || typeof v === typeof like || (Array.isArray(like) && Array.isArray(v))) return v;
    return bad();
  }
  if (Array.isArray(like)) {
    const parts = v.split(",").map((s) => Number(s.trim()));
    if (parts.some((x) => !Number.isInteger(x))) bad();
    return parts;
  }
  if (typeof like === "number" || like === null) {
    if (like === null && (v === "null" || v === "none")) return null;
    const n = Number(v);
    if (!Number.isFinite(n)) bad();
    return n;
  }
  if (typeof like === "boolean") {
    if (v === "true" || v === "1") return true;
    if (v === "false" || v === "0") return false;
    return bad();
  }
  return v;
}
