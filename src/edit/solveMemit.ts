/**
 * The MEMIT solve (spec §4.2, §7.5, ODD-24), float64 like the reference.
 *
 * Reference:  X = (λ_m C0 + K Kᵀ)⁻¹ K            (dIn, N), general LU in float64.
 * Woodbury:   X = A0⁻¹ K (I_N + Kᵀ A0⁻¹ K)⁻¹     with A0 = λ_m C0 factored once per layer
 *             (Cholesky), O(dIn² N) per batch. When λ_m C0 is not numerically positive definite the
 *             Woodbury form does not apply; the solver then falls back to the reference LU solve
 *             of the full system per batch ("direct", O(dIn³)).
 * The update is Δ = R Xᵀ, computed by the caller in float64 and cast to float32.
 * MEMIT-seq (A0 + K_all K_allᵀ) is not implemented here.
 *
 * Dimension legend: dIn = input width (d_ff), N = keys in the batch.
 */
import * as ops from "../kernels/ops.js";
import { DeltaEditError } from "../errors.js";
import { addDiagonal, checkDim, checkF32, checkPositive, symmetrize } from "./_linalg.js";

/** Reference MEMIT solve in float64: X (dIn, N) = (λ_m C0 + K Kᵀ)⁻¹ K. O(dIn³). */
export function memitSolve(a: {
  preservedCov: Float32Array; // (dIn, dIn) C0
  keys: Float32Array; // (dIn, N)
  dIn: number;
  n: number; // N
  lambdaM: number; // λ_m, mom2_update_weight
}): Float64Array {
  const fn = "memitSolve";
  const { dIn, n } = a;
  checkDim(dIn, "dIn", fn, 1);
  checkDim(n, "n", fn, 1);
  checkF32(a.preservedCov, dIn * dIn, "preservedCov", fn, `(dIn, dIn) = (${dIn}, ${dIn})`);
  checkF32(a.keys, dIn * n, "keys", fn, `(dIn, N) = (${dIn}, ${n})`);
  checkPositive(a.lambdaM, "lambdaM", fn);
  const k64 = Float64Array.from(a.keys); // (dIn, N)
  const sys = new Float64Array(dIn * dIn); // (dIn, dIn) λ_m C0 + K Kᵀ
  for (let i = 0; i < dIn * dIn; i++) sys[i] = a.lambdaM * a.preservedCov[i]!;
  ops.syrk(k64, sys, { n: dIn, k: n, beta: 1 });
  return ops.solve(sys, k64, dIn, n); // (dIn, N)
}

/** MEMIT solver with a cached factorization of A0 = λ_m C0 (float64, Woodbury form). */
export class MemitSolver {
  readonly dIn: number;
  readonly lambdaM: number;
  /** "cholesky" normally; "direct" when λ_m C0 was not numerically positive definite (then O(dIn³) per batch). */
  readonly factorization: "cholesky" | "direct";
  private readonly factor: Float64Array; // (dIn, dIn) lower Cholesky factor of A0, or A0 itself for "direct"

  private constructor(dIn: number, lambdaM: number, factorization: "cholesky" | "direct", factor: Float64Array) {
    this.dIn = dIn;
    this.lambdaM = lambdaM;
    this.factorization = factorization;
    this.factor = factor;
  }

  static fromSecondMoment(preservedCov: Float32Array, dIn: number, lambdaM: number): MemitSolver {
    const fn = "MemitSolver.fromSecondMoment";
    checkDim(dIn, "dIn", fn, 1);
    checkF32(preservedCov, dIn * dIn, "preservedCov", fn, `(dIn, dIn) = (${dIn}, ${dIn})`);
    checkPositive(lambdaM, "lambdaM", fn);
    const a0 = new Float64Array(dIn * dIn); // (dIn, dIn) λ_m C0
    for (let i = 0; i < dIn * dIn; i++) a0[i] = lambdaM * preservedCov[i]!;
    try {
      return new MemitSolver(dIn, lambdaM, "cholesky", ops.cholesky(a0, dIn));
    } catch (e) {
      if (e instanceof DeltaEditError && e.code === "E_NOT_PD") return new MemitSolver(dIn, lambdaM, "direct", a0);
      throw e;
    }
  }

  /** X (dIn, N) = (λ_m C0 + K Kᵀ)⁻¹ K for keys (dIn, N), float64. Does not change the solver. */
  solve(keys: Float32Array, n: number): Float64Array {
    const fn = "MemitSolver.solve";
    const dIn = this.dIn;
    checkDim(n, "n", fn, 1);
    checkF32(keys, dIn * n, "keys", fn, `(dIn, N) = (${dIn}, ${n})`);
    const k64 = Float64Array.from(keys); // (dIn, N)
    if (this.factorization === "direct") {
      const sys = Float64Array.from(this.factor); // (dIn, dIn) A0 + K Kᵀ
      ops.syrk(k64, sys, { n: dIn, k: n, beta: 1 });
      return ops.solve(sys, k64, dIn, n); // (dIn, N)
    }
    const y = ops.choleskySolve(this.factor, k64, dIn, n); // (dIn, N) A0⁻¹ K
    const s = new Float64Array(n * n); // (N, N) I + Kᵀ A0⁻¹ K
    ops.gemm(k64, y, s, { m: n, n, k: dIn, transA: true });
    addDiagonal(s, n, 1);
    symmetrize(s, n);
    // X = Y S⁻¹  ⇔  Xᵀ = S⁻¹ Yᵀ (S symmetric)
    const yT = new Float64Array(n * dIn); // (N, dIn)
    for (let i = 0; i < dIn; i++) for (let j = 0; j < n; j++) yT[j * dIn + i] = y[i * n + j]!;
    const xT = ops.solve(s, yT, n, dIn); // (N, dIn)
    const x = new Float64Array(dIn * n); // (dIn, N)
    for (let i = 0; i < dIn; i++) for (let j = 0; j < n; j++) x[i * n + j] = xT[j * dIn + i]!;
    return x;
  }
}
