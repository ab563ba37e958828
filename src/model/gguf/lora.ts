/**
 * A LoRA adapter as llama.cpp loads it (convert_lora_to_gguf.py's layout): a GGUF file with
 * general.type = "adapter", adapter.type = "lora", adapter.lora.alpha, and per adapted matrix W
 * (GGUF name "<W>") the tensors "<W>.lora_a" (r, in) and "<W>.lora_b" (out, r), row-major — GGUF
 * ne [in, r] and [r, out]. llama.cpp adds scale · (alpha / r) · B·A·x to W·x, where `scale` is the
 * per-request adapter scale (0 = off) and r is each tensor pair's own rank.
 *
 * The same base GGUF (writeModel.ts) must be loaded with it: the architecture name must match, and
 * every adapted tensor must exist there with shape (out, in).
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { createFileFromChunks } from "../../util/fsio.js";
import type { LanguageModel } from "../model.js";
import { f32, ggufChunks, str, type GgmlType, type GgufMetadata, type GgufTensor } from "./format.js";
import { encodeTensorData } from "./quantize.js";
import { checkGgufTarget, generalMetadata, ggufPlanOf } from "./writeModel.js";

/** One adapted matrix: its parameter name and the factors of its update ΔW = B·A (out × in). */
export interface LoraPair {
  param: string; // ParamStore name of W
  rank: number; // r
  a: Float32Array; // (r, in)
  b: Float32Array; // (out, r)
}

/** What `writeGgufLora` wrote. */
export interface GgufLoraWriteReport {
  file: string;
  architecture: string;
  alpha: number;
  tensors: string[]; // GGUF names of the adapted matrices
  bytes: number;
}

/**
 * Write the adapter `pairs` for `model`'s GGUF export to the new file `file`. `alpha` is written as
 * adapter.lora.alpha; llama.cpp scales pair i by alpha / rank_i, so a caller wanting exactly B·A
 * folds rank_i / alpha into B. `dtype` "f32" (default) or "f16".
 */
export function writeGgufLora(model: LanguageModel, pairs: readonly LoraPair[], file: string, o: { alpha: number; dtype?: "f32" | "f16"; name?: string }): GgufLoraWriteReport {
  const dtype = o.dtype ?? "f32";
  if (dtype !== "f32" && dtype !== "f16") throw new DeltaEditError("E_ARG", `export: a GGUF LoRA adapter is written as f32 or f16, got ${JSON.stringify(dtype)}`, { context: { field: "dtype" } });
  if (pairs.length === 0) throw new DeltaEditError("E_SESSION", "export: no update to write as a LoRA adapter");
  if (!(o.alpha > 0 && Number.isFinite(o.alpha))) throw new DeltaEditError("E_ARG", `export: LoRA alpha must be a positive number, got ${o.alpha}`);
  checkGgufTarget(file);
  const plan = ggufPlanOf(model);
  const byParam = new Map(plan.tensors.map((m) => [m.param, m]));
  const type: GgmlType = dtype === "f32" ? "F32" : "F16";
  const tensors: GgufTensor[] = [];
  const names: string[] = [];
  for (const p of pairs) {
    const m = byParam.get(p.param);
    if (!m || m.shape.length !== 2) throw new DeltaEditError("E_ARG", `export: parameter ${p.param} is not a matrix of the GGUF file`, { context: { tensor: p.param } });
    const [out, inn] = m.shape as [number, number];
    if (!(Number.isInteger(p.rank) && p.rank >= 1) || p.a.length !== p.rank * inn || p.b.length !== out * p.rank) {
      throw new DeltaEditError("E_SHAPE", `export: LoRA factors of ${m.name}: A has ${p.a.length} elements, B ${p.b.length}; expected A (${p.rank}, ${inn}) and B (${out}, ${p.rank})`, { context: { tensor: m.name } });
    }
    tensors.push(
      { name: `${m.name}.lora_a`, shape: [p.rank, inn], type, bytes: () => encodeTensorData(p.a, type) },
      { name: `${m.name}.lora_b`, shape: [out, p.rank], type, bytes: () => encodeTensorData(p.b, type) },
    );
    names.push(m.name);
  }
  const md: GgufMetadata = [
    ...generalMetadata(plan.name, "adapter", o.name ?? `${path.basename(path.resolve(model.dir ?? "model"))} edits`),
    ["adapter.type", str("lora")],
    ["adapter.lora.alpha", f32(o.alpha)],
  ];
  createFileFromChunks(file, ggufChunks(md, tensors));
  return { file, architecture: plan.name, alpha: o.alpha, tensors: names, bytes: fs.statSync(file).size };
}
