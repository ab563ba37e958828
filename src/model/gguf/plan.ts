/**
 * How an architecture's parameters become the tensors of a llama.cpp GGUF file: the plan each
 * family declares (model/arch/<family>.ts, `ggufPlan`), and the two reorderings llama.cpp's
 * converter (convert_hf_to_gguf.py) applies on the way.
 *
 * - transpose: GPT-2's Conv1D weights are stored (in, out); llama.cpp wants every matrix as
 *   (out, in), like torch Linear.
 * - ropeRows: Hugging Face Llama rotates the two halves of each head (pairs (j, j + HS/2));
 *   llama.cpp's LLaMA rotary embedding rotates adjacent pairs (2i, 2i+1). The converter permutes the
 *   rows of W_q (and W_k) so both compute the same attention scores: within each head of HS rows,
 *   new row 2i + k is old row k·HS/2 + i (i < HS/2, k ∈ {0, 1}).
 */
import { DeltaEditError } from "../../errors.js";
import type { GgufMetadata } from "./format.js";

/** One GGUF tensor written from one parameter. */
export interface GgufTensorMap {
  param: string; // ParamStore name (Hugging Face)
  name: string; // GGUF tensor name, e.g. "blk.3.ffn_down.weight"
  shape: number[]; // row-major shape written, outermost first
  reorder: { kind: "none" } | { kind: "transpose" } | { kind: "ropeRows"; heads: number };
}

/** Everything a family contributes to a GGUF file. */
export interface GgufArchitecture {
  /** general.architecture ("llama", "gpt2"): also the prefix of the hyperparameter keys. */
  name: string;
  /** `<name>.block_count`, `<name>.context_length`, … in the converter's order. */
  hparams: GgufMetadata;
  tensors: GgufTensorMap[];
  /** Tensors computed from the config, not stored parameters (Llama 3's rope_freqs); always F32. */
  extra: { name: string; shape: number[]; data: Float32Array }[];
}

/** y (cols, rows) = xᵀ for x (rows, cols). */
export function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  if (x.length !== rows * cols) throw new DeltaEditError("E_SHAPE", `transpose: ${x.length} elements, expected ${rows}·${cols}`);
  const y = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[c * rows + r] = x[r * cols + c]!;
  return y;
}

/**
 * x (heads·HS, cols), rows of each head in rotate-half order → llama.cpp's adjacent-pair order
 * (works on weights, cols = C, and on biases, cols = 1).
 */
export function permuteRopeRows(x: Float32Array, heads: number, cols: number): Float32Array {
  const rows = x.length / cols;
  const HS = rows / heads;
  if (!Number.isInteger(rows) || !Number.isInteger(HS) || HS % 2 !== 0) {
    throw new DeltaEditError("E_SHAPE", `permuteRopeRows: ${x.length} elements do not split into ${heads} heads of an even size × ${cols} columns`);
  }
  const half = HS / 2;
  const y = new Float32Array(x.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let k = 0; k < 2; k++) {
        const from = (h * HS + k * half + i) * cols;
        y.set(x.subarray(from, from + cols), (h * HS + 2 * i + k) * cols);
      }
    }
  }
  return y;
}

/** The parameter data `x` (stored shape `stored`) laid out as the plan's tensor. */
export function planTensorData(m: GgufTensorMap, x: Float32Array, stored: readonly number[]): Float32Array {
  switch (m.reorder.kind) {
    case "none":
      return x;
    case "transpose":
      return transpose(x, stored[0]!, stored[1] ?? 1);
    case "ropeRows":
      return permuteRopeRows(x, m.reorder.heads, stored.length > 1 ? stored[1]! : 1);
  }
}
