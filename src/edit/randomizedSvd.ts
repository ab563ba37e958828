/**
 * Seeded randomized top-q SVD (spec Appendix B; PyTorch ≥ 2.4 `svd_lowrank` formulation), used
 * by DeltaEdit's influence projector P_δ in mode "reference" (§4.4 d, ODD-7).
 *
 *   Ω (n, q) ~ N(0, 1) drawn from the caller's Rng, row-major order (Ω[0,0], Ω[0,1], …);
 *   Y = A Ω;  Q = orth(Y);
 *   repeat niter times:  Y = Aᵀ Q;  Q = orth(Y);  Y = A Q;  Q = orth(Y);
 *   B = Qᵀ A (q, n);  B = U_B Σ V_Bᵀ (thin SVD, ops.svd);  U = Q U_B.
 * `orth` is classical Gram–Schmidt with re-orthogonalisation ("twice is enough", CGS2) over
 * BLAS matrix–vector products; a column that vanishes exactly is replaced by the next canonical
 * basis vector, so Q always has orthonormal columns (as a Householder QR's Q does). The QR's
 * sign convention does not matter downstream: U_J U_Jᵀ does not depend on it.
 *
 * Storage: bases are kept transposed, one basis vector per row ("…T" names), so that every
 * vector operation is on a contiguous row.
 * Dimension legend: m, n = rows, columns of A (m ≥ n), q = target rank (≤ n).
 */
import * as ops from "../kernels/ops.js";
import { DeltaEditError } from "../errors.js";
import type { Rng } from "../util/rng.js";
import { checkDim, checkF32 } from "./_linalg.js";

export interface RandomizedSvdResult {
  u: Float32Array; // (m, q) left singular vectors, orthonormal columns
  s: Float32Array; // (q) singular values, descending
  vt: Float32Array; // (q, n)
}

/** Randomized top-q SVD of a (m, n), m ≥ n ≥ q, with `niter` power iterations. Draws n·q normals from `rng`. */
export function randomizedTopSvd(a: Float32Array, m: number, n: number, q: number, niter: number, rng: Rng): RandomizedSvdResult {
  const fn = "randomizedTopSvd";
  checkDim(m, "m", fn, 1);
  checkDim(n, "n", fn, 1);
  checkDim(q, "q", fn, 1);
  checkDim(niter, "niter", fn);
  checkF32(a, m * n, "a", fn, `(m, n) = (${m}, ${n})`);
  if (m < n) throw new DeltaEditError("E_ARG", `${fn}: expected m ≥ n, got m=${m}, n=${n} (pass Aᵀ and swap U and V)`);
  if (q > n) throw new DeltaEditError("E_ARG", `${fn}: q=${q} exceeds min(m, n)=${n}`);
  const omega = new Float32Array(n * q); // (n, q) Gaussian test matrix
  for (let i = 0; i < n * q; i++) omega[i] = rng.normal();
  let qT = new Float32Array(q * m); // (q, m) Yᵀ = (A Ω)ᵀ = Ωᵀ Aᵀ
  ops.gemm(omega, a, qT, { m: q, n: m, k: n, transA: true, transB: true });
  orthonormalizeRows(qT, q, m);
  for (let it = 0; it < niter; it++) {
    const pT = new Float32Array(q * n); // (q, n) (Aᵀ Q)ᵀ = Qᵀ A
    ops.gemm(qT, a, pT, { m: q, n, k: m });
    orthonormalizeRows(pT, q, n);
    qT = new Float32Array(q * m); // (q, m) (A P)ᵀ = Pᵀ Aᵀ
    ops.gemm(pT, a, qT, { m: q, n: m, k: n, transB: true });
    orthonormalizeRows(qT, q, m);
  }
  const b = new Float32Array(q * n); // (q, n) B = Qᵀ A
  ops.gemm(qT, a, b, { m: q, n, k: m });
  const { u: uB, s, vt } = ops.svd(b, q, n); // uB (q, q), s (q), vt (q, n)
  const u = new Float32Array(m * q); // (m, q) U = Q U_B
  ops.gemm(qT, uB, u, { m, n: q, k: q, transA: true });
  return { u, s, vt };
}

/**
 * In place: the rows of x (rows, len) become orthonormal, spanning (for full-rank input) the
 * same nested subspaces, by CGS2. rows ≤ len.
 */
export function orthonormalizeRows(x: Float32Array, rows: number, len: number): void {
  if (rows > len) throw new DeltaEditError("E_ARG", `orthonormalizeRows: rows=${rows} exceeds len=${len}`);
  const coeff = new Float32Array(rows); // (j) Q_{<j} v
  let nextCanonical = 0; // next e_k to try as a replacement for a vanished row
  for (let j = 0; j < rows; j++) {
    const v = x.subarray(j * len, (j + 1) * len); // (len) row j
    const prev = x.subarray(0, j * len); // (j, len) rows already orthonormal
    let ok = projectOut(v, prev, coeff, j, len);
    while (!ok) {
      if (nextCanonical >= len) throw new DeltaEditError("E_NATIVE", "orthonormalizeRows: could not complete an orthonormal basis");
      v.fill(0);
      v[nextCanonical++] = 1;
      ok = projectOut(v, prev, coeff, j, len);
    }
  }
}

/** v ← normalized (I − Qᵀ Q) v, re-orthogonalising until the norm stops collapsing. False if v vanished. */
function projectOut(v: Float32Array, prevT: Float32Array, coeff: Float32Array, j: number, len: number): boolean {
  let before = norm(v);
  if (!(before > 0) || !Number.isFinite(before)) return false;
  if (j > 0) {
    const c = coeff.subarray(0, j); // (j)
    for (let pass = 0; pass < 4; pass++) {
      ops.gemm(prevT, v, c, { m: j, n: 1, k: len }); // c = Q_{<j} v
      ops.gemm(prevT, c, v, { m: len, n: 1, k: j, transA: true, alpha: -1, beta: 1 }); // v −= Q_{<j}ᵀ c
      const after = norm(v);
      if (!(after > 0)) return false;
      const settled = pass >= 1 && after > 0.5 * before;
      before = after;
      if (settled) break;
    }
  }
  const inv = 1 / before;
  for (let i = 0; i < len; i++) v[i] = v[i]! * inv;
  return true;
}

function norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}
