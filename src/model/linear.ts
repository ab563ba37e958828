/**
 * A linear map y = x·Wᵀ + b over rows, whatever the storage orientation of W.
 *
 * "out_in": W stored (out, in) — torch Linear (Llama, GPT-J, lm_head).
 * "in_out": W stored (in, out) — GPT-2's Conv1D.
 * The orientation is a property of the weight, fixed by the architecture at load time.
 */
import * as ops from "../kernels/ops.js";

/**
 * Rows at or below which a product with a large "out_in" weight (≥ SKINNY_MIN_ELEMENTS) streams W
 * once through the skinny kernels instead of BLAS (which packs all of W per call): the vocabulary
 * projection at the scored positions of a target-search step, generation's next-token logits.
 */
export const SKINNY_MAX_ROWS = 32;
export const SKINNY_MIN_ELEMENTS = 1 << 22;

/**
 * Rows at or below which a product of the "rows of W as vectors" form — the forward of an "in_out"
 * weight (GPT-2's Conv1D: y = x·W) and dx = dy·W of an "out_in" weight — of at least
 * SKINNY_NN_MIN_ELEMENTS runs on `skinnyGemmNN`: the linear layers of a target-search step (~35
 * rows). Measured against BLAS on the same inputs (cold weights, 2 threads, 35 / 42 rows):
 * 1.0–1.4× faster (docs/kernels.md). The other form (dot products with W's rows) stays on BLAS,
 * whose packed kernels were faster there.
 */
export const SKINNY_NN_MAX_ROWS = 64;
export const SKINNY_NN_MIN_ELEMENTS = 1 << 18;

function skinny(lin: LinearRef, rows: number): boolean {
  return lin.layout === "out_in" && rows <= SKINNY_MAX_ROWS && lin.inF * lin.outF >= SKINNY_MIN_ELEMENTS;
}

function skinnyNN(lin: LinearRef, rows: number): boolean {
  return rows <= SKINNY_NN_MAX_ROWS && lin.inF * lin.outF >= SKINNY_NN_MIN_ELEMENTS;
}

/** Storage layout of a linear weight: "out_in" (PyTorch Linear) or "in_out" (GPT-2 Conv1D). */
export type Layout = "out_in" | "in_out";

export interface LinearRef {
  W: Float32Array; // (out, in) or (in, out) per layout
  b: Float32Array | null; // (out)
  inF: number;
  outF: number;
  layout: Layout;
}

/** y (rows, out) = x (rows, in) · Wᵀ + b. `accumulate` adds into y instead of overwriting. */
export function linearForward(lin: LinearRef, x: Float32Array, y: Float32Array, rows: number, accumulate = false): void {
  if (rows === 0) return;
  const { W, b, inF, outF, layout } = lin;
  if (skinny(lin, rows) && !b && !accumulate) {
    ops.skinnyGemmNT(x.subarray(0, rows * inF), W, y.subarray(0, rows * outF), rows, outF, inF, { accumulate: false });
    return;
  }
  if (b && !accumulate) {
    for (let r = 0; r < rows; r++) y.set(b, r * outF);
  }
  if (layout === "in_out" && skinnyNN(lin, rows)) {
    ops.skinnyGemmNN(x.subarray(0, rows * inF), W, y.subarray(0, rows * outF), rows, inF, outF, { accumulate: b !== null || accumulate });
    return;
  }
  ops.gemm(x, W, y, { m: rows, n: outF, k: inF, transB: layout === "out_in", beta: b || accumulate ? 1 : 0 });
}

/**
 * Backward of y = x·Wᵀ + b.
 * dx (rows, in) = dy · W (overwritten, or added when `accumulateDx`; null to skip);
 * dW += dyᵀ·x in W's own layout; db += Σ_rows dy (either may be null to skip).
 */
export function linearBackward(
  lin: LinearRef,
  x: Float32Array,
  dy: Float32Array,
  dx: Float32Array | null,
  dW: Float32Array | null,
  db: Float32Array | null,
  rows: number,
  accumulateDx = false,
): void {
  if (rows === 0) return;
  const { W, inF, outF, layout } = lin;
  if (dx && layout === "out_in" && (skinny(lin, rows) || skinnyNN(lin, rows))) ops.skinnyGemmNN(dy.subarray(0, rows * outF), W, dx.subarray(0, rows * inF), rows, outF, inF, { accumulate: accumulateDx });
  else if (dx) ops.gemm(dy, W, dx, { m: rows, n: inF, k: outF, transB: layout === "in_out", beta: accumulateDx ? 1 : 0 });
  if (dW) {
    if (layout === "out_in") ops.gemm(dy, x, dW, { m: outF, n: inF, k: rows, transA: true, beta: 1 });
    else ops.gemm(x, dy, dW, { m: inF, n: outF, k: rows, transA: true, beta: 1 });
  }
  if (db) {
    for (let r = 0; r < rows; r++) {
      const o = r * outF;
      for (let j = 0; j < outF; j++) db[j]! += dy[o + j]!;
    }
  }
}
