/**
 * Random problem generators and comparison helpers for the test/edit/ suites. Seeded (util/rng),
 * so every failure reproduces. Row-major matrices; shapes in comments.
 */
import { bareBlockOutputs } from "../../src/edit/keys.js";
import type { BatchOutcome } from "../../src/edit/methods/method.js";
import type { EditRequest } from "../../src/edit/request.js";
import { applyLowRank } from "../../src/edit/update.js";
import * as ops from "../../src/kernels/ops.js";
import type { LanguageModel } from "../../src/model/model.js";
import { Rng } from "../../src/util/rng.js";

/** (rows, cols) i.i.d. N(0, scale²). */
export function randn(rng: Rng, rows: number, cols: number, scale = 1): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) out[i] = scale * rng.normal();
  return out;
}

/** A random orthogonal (n, n) matrix (eigenvectors of a random symmetric matrix). */
export function randomOrthogonal(rng: Rng, n: number): Float32Array {
  const a = randn(rng, n, n);
  const s = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) s[i * n + j] = a[i * n + j]! + a[j * n + i]!;
  return ops.eigh(s, n).vectors as Float32Array;
}

/**
 * A "low-rank plus small" second moment C0 = Q diag(λ) Qᵀ (dIn, dIn): `dominant` eigenvalues in
 * [0.5, 2] (the preserved directions), the rest in [0, smallMax] (the null space for τ = 2e-2).
 * Returns C0, the orthogonal Q (columns = eigenvectors) and which columns are dominant.
 */
export function lowRankPlusSmall(rng: Rng, dIn: number, dominant: number, smallMax = 0.005): { c0: Float32Array; q: Float32Array; eig: Float64Array; dominantCols: number[] } {
  const q = randomOrthogonal(rng, dIn);
  const eig = new Float64Array(dIn);
  const dominantCols: number[] = [];
  for (let j = 0; j < dIn; j++) {
    if (j < dominant) {
      eig[j] = 0.5 + 1.5 * rng.uniform();
      dominantCols.push(j);
    } else eig[j] = smallMax * rng.uniform();
  }
  const c0 = symmetricFromEigen(q, eig, dIn);
  return { c0, q, eig, dominantCols };
}

/** Q diag(eig) Qᵀ (dIn, dIn) for an orthogonal Q (dIn, dIn), float64 accumulation, stored float32. */
export function symmetricFromEigen(q: Float32Array, eig: ArrayLike<number>, dIn: number): Float32Array {
  const c0 = new Float32Array(dIn * dIn);
  for (let i = 0; i < dIn; i++) {
    for (let j = i; j < dIn; j++) {
      let s = 0;
      for (let k = 0; k < dIn; k++) s += q[i * dIn + k]! * eig[k]! * q[j * dIn + k]!;
      c0[i * dIn + j] = s;
      c0[j * dIn + i] = s;
    }
  }
  return c0;
}

/** Column j of a (rows, cols). */
export function column(a: Float32Array, rows: number, cols: number, j: number): Float32Array {
  const out = new Float32Array(rows);
  for (let i = 0; i < rows; i++) out[i] = a[i * cols + j]!;
  return out;
}

/** ‖a − b‖_F / ‖b‖_F (float64 accumulation). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relErr: length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    num += d * d;
    den += b[i]! * b[i]!;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-300);
}

/** max |a_i − b_i|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** C (m, n) = A (m, k) B (k, n), float32 via ops.gemm. */
export function matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number, o: { transA?: boolean; transB?: boolean } = {}): Float32Array {
  const c = new Float32Array(m * n);
  ops.gemm(a, b, c, { m, n, k, ...o });
  return c;
}

/** True iff every element is bit-identical. */
export function bitIdentical(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/**
 * The target shift δ = z − t0 (C) a one-request MEMIT-family batch optimised at the z-layer `lz`:
 * z = R_{l_z} + (bare block output at l_z before W_{l_z}'s own update of this batch), read back from
 * the applied update by removing it for one forward. `t0` (C) is the block output before the batch.
 */
export function zLayerDelta(model: LanguageModel, out: BatchOutcome, r: EditRequest, lz: number, t0: Float32Array): Float32Array {
  const uz = out.updates.find((u) => u.layer === lz)!;
  const target = model.arch.editTarget(lz);
  const saved = target.W.slice();
  applyLowRank(target, uz.influence!, uz.activation!, uz.n, -1);
  const cur = bareBlockOutputs(model, [r], lz);
  target.W.set(saved);
  return new Float32Array(t0.length).map((_, c) => uz.influence![c]! + cur[c]! - t0[c]!);
}
