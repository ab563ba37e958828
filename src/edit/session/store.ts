/**
 * The factor files of a session: one safetensors file per committed batch in DIR/factors/, named
 * by a plain file name recorded in the journal together with the sha256 of the file's bytes.
 *
 *   factors/NNNNNN.safetensors   u{i}.L{layer}.keys (F, N), .influence (C, N), .activation (F, N),
 *                                .dense (C, F) out × in, .biasDelta (len) — F32, as listed by UpdateMeta
 *
 * Written atomically (temp + fsync + rename, util/fsio) from an in-memory encoding whose sha256 goes
 * into the journal; read back only after the file's sha256 matches, its tensors have the recorded
 * shapes, and every value is finite. A non-finite update is refused before it is written.
 *
 * Also re-exports fsio's atomic writes (modules that import them from here predate util/fsio).
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { SafetensorsFile } from "../../model/safetensors.js";
import { writeFileAtomic } from "../../util/fsio.js";
import type { LayerUpdate } from "../methods/method.js";
import { sha256Hex } from "./checksum.js";
import { encodeSafetensors, type F32Tensor } from "./encode.js";

export { writeFileAtomic, writeJsonAtomic } from "../../util/fsio.js";

/** Subdirectory of a session holding the factor files. */
export const FACTORS_DIR = "factors";

/** The factor tensors a batch's update is stored as. */
export type TensorKind = "keys" | "influence" | "activation" | "dense" | "biasDelta";
const TENSOR_KINDS: readonly TensorKind[] = ["keys", "influence", "activation", "dense", "biasDelta"];

/** Shape of one update in the journal (its tensors live in the factors file). */
export interface UpdateMeta {
  layer: number;
  n: number;
  tensors: TensorKind[];
  biasName?: string;
}

/** A factor file name: plain (no directory part, no "..", not hidden), ending in .safetensors. */
export function isFactorsName(v: unknown): v is string {
  return typeof v === "string" && /^[A-Za-z0-9_][A-Za-z0-9_.-]*\.safetensors$/.test(v) && !v.includes("..") && v.length <= 128;
}

/** Null if `v` is a well-formed UpdateMeta[] for a model of `numLayers` blocks, else what is wrong. */
export function validateUpdateMetas(v: unknown, numLayers: number): string | null {
  if (!Array.isArray(v)) return `must be an array, got ${JSON.stringify(v) ?? String(v)}`;
  for (let i = 0; i < v.length; i++) {
    const u = v[i] as Record<string, unknown> | null;
    const at = `[${i}]`;
    if (u === null || typeof u !== "object" || Array.isArray(u)) return `${at} must be an object`;
    const layer = u["layer"];
    if (!Number.isInteger(layer) || (layer as number) < 0 || (layer as number) >= numLayers) return `${at}.layer must be a block index in [0, ${numLayers}), got ${JSON.stringify(layer)}`;
    if (!Number.isSafeInteger(u["n"]) || (u["n"] as number) < 0) return `${at}.n must be a non-negative integer, got ${JSON.stringify(u["n"])}`;
    const t = u["tensors"];
    if (!Array.isArray(t) || !t.every((k) => TENSOR_KINDS.includes(k as TensorKind)) || new Set(t).size !== t.length) return `${at}.tensors must list distinct kinds among ${TENSOR_KINDS.join(", ")}, got ${JSON.stringify(t)}`;
    const has = (k: TensorKind): boolean => t.includes(k);
    if (!has("dense") && !(has("keys") && has("influence") && has("activation"))) return `${at}.tensors must hold "dense" or keys, influence and activation, got ${JSON.stringify(t)}`;
    const bias = u["biasName"];
    if (bias !== undefined && (typeof bias !== "string" || bias.length === 0)) return `${at}.biasName must be a non-empty string`;
    if (has("biasDelta") !== (bias !== undefined)) return `${at}: biasDelta and biasName go together`;
  }
  return null;
}

function tensorName(i: number, layer: number, kind: TensorKind): string {
  return `u${i}.L${layer}.${kind}`;
}

function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return i;
  return -1;
}

/**
 * Write the factors of `updates` to `file` atomically; returns their metas and the file's sha256.
 * C hidden width, F key width. Throws E_SESSION (nothing written) if a factor is not finite.
 */
export function saveFactors(file: string, updates: readonly LayerUpdate[], C: number, F: number): { metas: UpdateMeta[]; sha256: string } {
  const tensors: F32Tensor[] = [];
  const metas: UpdateMeta[] = [];
  updates.forEach((u, i) => {
    const meta: UpdateMeta = { layer: u.layer, n: u.n, tensors: [] };
    const add = (kind: TensorKind, data: Float32Array | null | undefined, shape: number[]): void => {
      if (!data) return;
      const name = tensorName(i, u.layer, kind);
      if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new DeltaEditError("E_SHAPE", `${file}: factor ${name} has ${data.length} values, expected [${shape.join(", ")}]`);
      const bad = firstNonFinite(data);
      if (bad >= 0) throw new DeltaEditError("E_SESSION", `${file}: factor ${name} holds a non-finite value (${data[bad]} at ${bad}); the batch is not committed`, { context: { file, tensor: name } });
      tensors.push({ name, shape, data });
      meta.tensors.push(kind);
    };
    add("keys", u.keys, [F, u.n]);
    add("influence", u.influence, [C, u.n]);
    add("activation", u.activation, [F, u.n]);
    add("dense", u.dense, [C, F]);
    if (u.biasName && u.biasDelta) {
      add("biasDelta", u.biasDelta, [u.biasDelta.length]);
      meta.biasName = u.biasName;
    }
    metas.push(meta);
  });
  const bytes = encodeSafetensors(tensors, { format: "deltaedit-factors", version: "1" });
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, bytes);
  return { metas, sha256: sha256Hex(bytes) };
}

function factorError(file: string, what: string, tensor?: string): DeltaEditError {
  return new DeltaEditError("E_SESSION", `${file}: ${what}`, { hint: "the session directory was modified or damaged; restore it from a copy, or start a new session", context: tensor === undefined ? { file } : { file, tensor } });
}

/**
 * The updates recorded in `file` as listed by `metas`, after checking the file's sha256 against
 * `sha256`, each tensor's shape ((F, N), (C, N), (C, F) as in saveFactors) and that every value is finite.
 */
export function loadFactors(file: string, metas: readonly UpdateMeta[], sha256: string, C: number, F: number): LayerUpdate[] {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw factorError(file, "missing factors file (the session directory is incomplete)");
    throw new DeltaEditError("E_IO", `${file}: cannot read (${(e as Error).message})`, { cause: e, context: { file } });
  }
  const got = sha256Hex(bytes);
  if (got !== sha256) throw factorError(file, `sha256 ${got.slice(0, 12)}… does not match the journal's ${sha256.slice(0, 12)}… (the factors file was altered or swapped)`);
  let st: SafetensorsFile;
  try {
    st = SafetensorsFile.open(file);
  } catch (e) {
    throw factorError(file, `not a readable factors file (${(e as Error).message})`);
  }
  try {
    return metas.map((m, i) => {
      const get = (kind: TensorKind, shape: number[] | null): Float32Array | null => {
        if (!m.tensors.includes(kind)) return null;
        const name = tensorName(i, m.layer, kind);
        if (!st.has(name)) throw factorError(file, `no tensor "${name}" (listed by the journal)`, name);
        const info = st.info(name);
        const want = shape ?? [info.shape[0] ?? -1];
        if (info.dtype !== "F32" || info.shape.length !== want.length || info.shape.some((d, k) => d !== want[k])) throw factorError(file, `tensor "${name}" is ${info.dtype} [${info.shape.join(", ")}], expected F32 [${want.join(", ")}]`, name);
        const data = st.read(name);
        const bad = firstNonFinite(data);
        if (bad >= 0) throw factorError(file, `tensor "${name}" holds a non-finite value (${data[bad]} at ${bad})`, name);
        return data;
      };
      const u: LayerUpdate = { layer: m.layer, n: m.n, keys: get("keys", [F, m.n]), influence: get("influence", [C, m.n]), activation: get("activation", [F, m.n]), dense: get("dense", [C, F]) };
      if (m.biasName) {
        u.biasName = m.biasName;
        const b = get("biasDelta", null);
        if (b) u.biasDelta = b;
      }
      return u;
    });
  } finally {
    st.close();
  }
}
