/**
 * The per-layer AlphaEdit / DeltaEdit solve (spec §4.3, §4.4 step 2, §7.1–7.4, ODD-13/14).
 *
 * Reference (the oracle, float32 LU on a non-symmetric dIn × dIn system):
 *     X = (P (K Kᵀ + Cpast) + λ I)⁻¹ (P K),      Δ = R Xᵀ.
 * Fast and exact (equal in exact arithmetic, §7.2): X is the unique solution of the SPD system
 * (P M P + λ I) X = P K with M = K_all K_allᵀ = Cpast + K Kᵀ. Two incremental forms:
 *   - dual (§7.3): keep H = P K_all (dIn, T) and the Cholesky factor L of Hᵀ H + λ I_T (T, T),
 *     extended per batch by a forward substitution and an N × N Cholesky of the Schur
 *     complement; X = H (HᵀH + λI)⁻¹ E. Cost per batch O(dIn·T·N + T²·N + dIn·b·N).
 *   - primal (§7.4): keep the Cholesky factor of U0ᵀ Cpast U0 + λ I_r (r, r), rank-N update
 *     with G = U0ᵀ K, then X = U0 (factor⁻¹ G). Cost per batch O(dIn·r·N + r²·N).
 * Rule for formulation "auto": dual while T (keys incl. this batch) ≤ r, primal from the first
 * batch that would make T > r — then the primal r × r factor is no larger than the dual T × T one
 * and the per-batch cost (≈ dIn·T·N + T²N vs dIn·r·N + r²N) is no larger either. The switch needs
 * U0 (NullSpaceProjector.nullBasis); without it the solver stays dual. Once primal, it stays primal.
 *
 * State changes only in `commit(step)`: `solve(keys)` computes X and a pending step without
 * touching the solver, so an edit that fails midway leaves the solver exactly as it was.
 *
 * Dimension legend: dIn = input width (d_ff), N = keys in the batch, T = keys committed,
 * r = rank of the projector.
 */
import * as ops from "../kernels/ops.js";
import { DeltaEditError } from "../errors.js";
import { addDiagonal, checkDim, checkF32, checkPositive, identity, symmetrize, transpose } from "./_linalg.js";
import type { NullSpaceProjector } from "./projector.js";

export { memitSolve, MemitSolver } from "./solveMemit.js";

// ───────────────────────────── reference (oracle) ─────────────────────────────

/**
 * The reference AlphaEdit/DeltaEdit solve, float32, general LU (ops.solve):
 * `X = (P (K Kᵀ + Cpast) + λ I)⁻¹ (P K)` → X (dIn, N). O(dIn³). Used as the test oracle.
 */
export function denseAlphaEditSolve(a: {
  projector: Float32Array; // (dIn, dIn) dense P
  pastCov: Float32Array; // (dIn, dIn) Cpast = Σ over earlier batches of K Kᵀ
  keys: Float32Array; // (dIn, N)
  dIn: number;
  n: number; // N
  l2: number; // λ
}): Float32Array {
  const fn = "denseAlphaEditSolve";
  const { dIn, n } = a;
  checkDim(dIn, "dIn", fn, 1);
  checkDim(n, "n", fn, 1);
  checkF32(a.projector, dIn * dIn, "projector", fn, `(dIn, dIn) = (${dIn}, ${dIn})`);
  checkF32(a.pastCov, dIn * dIn, "pastCov", fn, `(dIn, dIn) = (${dIn}, ${dIn})`);
  checkF32(a.keys, dIn * n, "keys", fn, `(dIn, N) = (${dIn}, ${n})`);
  checkPositive(a.l2, "l2", fn);
  const m = Float32Array.from(a.pastCov); // (dIn, dIn) M = Cpast + K Kᵀ
  ops.syrk(a.keys, m, { n: dIn, k: n, beta: 1 });
  const sys = new Float32Array(dIn * dIn); // (dIn, dIn) P M + λ I
  ops.gemm(a.projector, m, sys, { m: dIn, n: dIn, k: dIn });
  addDiagonal(sys, dIn, a.l2);
  const rhs = new Float32Array(dIn * n); // (dIn, N) P K
  ops.gemm(a.projector, a.keys, rhs, { m: dIn, n, k: dIn });
  return ops.solve(sys, rhs, dIn, n); // (dIn, N)
}

/** Cpast (dIn, dIn) += K Kᵀ in place (the dense key cache of the reference, §4.3 step 3). */
export function accumulatePastCov(pastCov: Float32Array, keys: Float32Array, dIn: number, n: number): void {
  const fn = "accumulatePastCov";
  checkF32(pastCov, dIn * dIn, "pastCov", fn, `(dIn, dIn) = (${dIn}, ${dIn})`);
  checkF32(keys, dIn * n, "keys", fn, `(dIn, N) = (${dIn}, ${n})`);
  if (n > 0) ops.syrk(keys, pastCov, { n: dIn, k: n, beta: 1 });
}

// ───────────────────────────── incremental exact solver ─────────────────────────────

export type SolveFormulation = "dual" | "primal";

export interface AlphaEditSolverParams {
  /** λ (`L2` in the presets): ridge constant of the AlphaEdit system, > 0. */
  l2: number;
  /** "auto" (rule in the file header), or force one formulation ("primal" needs U0). */
  formulation: "auto" | SolveFormulation;
}

/** The result of `AlphaEditSolver.solve`: X for the batch plus what `commit` needs. */
export class AlphaEditStep {
  /** (dIn, N) solution of this batch; the update is Δ = R Xᵀ. */
  readonly X: Float32Array;
  readonly n: number; // N
  readonly formulation: SolveFormulation;
  /** @internal */ readonly owner: AlphaEditSolver;
  /** @internal */ readonly baseGeneration: number;
  /** @internal dual: projected keys of this batch (N, dIn), W = L11⁻¹ B12 (T, N), L22 (N, N). */
  readonly dual: { projKeysT: Float32Array; w: Float32Array; l22: Float32Array } | null;
  /** @internal primal: the updated upper factor U = Lᵀ (r, r) including this batch. */
  readonly primalFactor: Float32Array | null;

  /** @internal */
  constructor(
    owner: AlphaEditSolver,
    baseGeneration: number,
    x: Float32Array,
    n: number,
    dual: AlphaEditStep["dual"],
    primalFactor: Float32Array | null,
  ) {
    this.owner = owner;
    this.baseGeneration = baseGeneration;
    this.X = x;
    this.n = n;
    this.formulation = dual !== null ? "dual" : "primal";
    this.dual = dual;
    this.primalFactor = primalFactor;
  }
}

/** JSON-able part of a serialized solver. */
export interface AlphaEditSolverMeta {
  format: "deltaedit.alphaedit-solver";
  version: 1;
  dIn: number;
  rank: number; // r of the projector it was built with (checked on resume)
  l2: number;
  formulationParam: "auto" | SolveFormulation;
  mode: SolveFormulation;
  keyCount: number; // T
  generation: number;
}

export interface SerializedAlphaEditSolver {
  meta: AlphaEditSolverMeta;
  arrays: {
    projKeysT?: Float32Array; // (T, dIn) Hᵀ, mode "dual"
    gramFactor?: Float32Array; // (T, T) L, lower, mode "dual"
    primalFactor?: Float32Array; // (r, r) U = Lᵀ, upper, mode "primal"
  };
}

/**
 * Exact incremental AlphaEdit/DeltaEdit solver for one layer (state: the keys ever committed).
 * Usage per batch: `const step = solver.solve(keys, N); … Δ = R step.Xᵀ …; solver.commit(step);`
 */
export class AlphaEditSolver {
  readonly dIn: number;
  readonly l2: number;
  readonly formulationParam: "auto" | SolveFormulation;
  private readonly projector: NullSpaceProjector;
  private mode: SolveFormulation = "dual";
  private keyCount = 0; // T
  private generation = 0; // bumped by every commit; a step must match it
  private projKeysT: Float32Array = new Float32Array(0); // (capacity, dIn), rows 0..T-1 = Hᵀ (mode "dual")
  private gramFactor: Float32Array = new Float32Array(0); // (T, T) lower L, L Lᵀ = HᵀH + λI (mode "dual")
  private primalFactor: Float32Array | null = null; // (r, r) upper U, UᵀU = U0ᵀ Cpast U0 + λI (mode "primal")

  constructor(projector: NullSpaceProjector, params: Partial<AlphaEditSolverParams> & { l2: number }) {
    const fn = "AlphaEditSolver";
    for (const key of Object.keys(params)) {
      if (key !== "l2" && key !== "formulation") throw new DeltaEditError("E_CONFIG", `${fn}: unknown option "${key}" (known: l2, formulation)`);
    }
    checkPositive(params.l2, "l2", fn);
    const f = params.formulation ?? "auto";
    if (f !== "auto" && f !== "dual" && f !== "primal") throw new DeltaEditError("E_CONFIG", `${fn}: formulation must be "auto", "dual" or "primal", got "${String(f)}"`);
    if (f === "primal" && projector.nullBasis === null) {
      throw new DeltaEditError("E_ARG", `${fn}: formulation "primal" needs the projector's U0`, {
        hint: "build the projector with { keepNullBasis: true }",
      });
    }
    this.dIn = projector.dIn;
    this.l2 = params.l2;
    this.formulationParam = f;
    this.projector = projector;
    if (f === "primal") this.mode = "primal";
  }

  /** T: number of keys committed so far. */
  get pastKeyCount(): number {
    return this.keyCount;
  }

  /** The formulation the committed state is held in. */
  get currentFormulation(): SolveFormulation {
    return this.mode;
  }

  /** X (dIn, N) for a batch of keys (dIn, N), including them as the reference does. Does not change the solver. */
  solve(keys: Float32Array, n: number): AlphaEditStep {
    const fn = "AlphaEditSolver.solve";
    checkDim(n, "n", fn, 1);
    checkF32(keys, this.dIn * n, "keys", fn, `(dIn, N) = (${this.dIn}, ${n})`);
    const r = this.projector.rank;
    const toPrimal = this.mode === "primal" || (this.formulationParam === "auto" && this.keyCount + n > r && this.projector.nullBasis !== null);
    return toPrimal ? this.solvePrimal(keys, n) : this.solveDual(keys, n);
  }

  /** Appends the batch of `step` to the state. Throws E_ARG if the solver changed since `step` was computed. */
  commit(step: AlphaEditStep): void {
    if (step.owner !== this || step.baseGeneration !== this.generation) {
      throw new DeltaEditError("E_ARG", "AlphaEditSolver.commit: step was computed against a different solver state (stale or foreign step)", {
        hint: "call solve() again after any other commit",
      });
    }
    const dIn = this.dIn;
    const T = this.keyCount;
    const n = step.n;
    if (step.dual !== null) {
      // Hᵀ rows T..T+N-1 ← this batch's projected keys
      const need = (T + n) * dIn;
      if (this.projKeysT.length < need) {
        const grown = new Float32Array(Math.max(need, 2 * this.projKeysT.length)); // (capacity, dIn)
        grown.set(this.projKeysT.subarray(0, T * dIn));
        this.projKeysT = grown;
      }
      this.projKeysT.set(step.dual.projKeysT, T * dIn);
      // L_new = [[L11, 0], [Wᵀ, L22]]  ((T+N), (T+N))
      const tn = T + n;
      const lNew = new Float32Array(tn * tn);
      for (let i = 0; i < T; i++) lNew.set(this.gramFactor.subarray(i * T, i * T + i + 1), i * tn);
      for (let i = 0; i < n; i++) {
        const row = (T + i) * tn;
        for (let j = 0; j < T; j++) lNew[row + j] = step.dual.w[j * n + i]!;
        for (let j = 0; j <= i; j++) lNew[row + T + j] = step.dual.l22[i * n + j]!;
      }
      this.gramFactor = lNew;
    } else {
      this.primalFactor = step.primalFactor;
      if (this.mode === "dual") {
        this.mode = "primal";
        this.projKeysT = new Float32Array(0);
        this.gramFactor = new Float32Array(0);
      }
    }
    this.keyCount = T + n;
    this.generation += 1;
  }

  /** `solve` then `commit`; returns X (dIn, N). */
  solveAndAppend(keys: Float32Array, n: number): Float32Array {
    const step = this.solve(keys, n);
    this.commit(step);
    return step.X;
  }

  // ── dual form, §7.3 ──
  private solveDual(keys: Float32Array, n: number): AlphaEditStep {
    const dIn = this.dIn;
    const T = this.keyCount;
    const hNew = this.projector.apply(keys, n); // (dIn, N) H_new = P K
    const b22 = new Float32Array(n * n); // (N, N) Kᵀ P K + λI = H_newᵀ H_new + λI
    ops.syrk(hNew, b22, { n, k: dIn, trans: true });
    addDiagonal(b22, n, this.l2);
    let w: Float32Array = new Float32Array(0); // (T, N) W = L21ᵀ = L11⁻¹ B12
    const hOldT = this.projKeysT.subarray(0, T * dIn); // (T, dIn) H_oldᵀ
    if (T > 0) {
      const b12 = new Float32Array(T * n); // (T, N) B12 = H_oldᵀ H_new (= K_oldᵀ P K)
      ops.gemm(hOldT, hNew, b12, { m: T, n, k: dIn });
      w = ops.triangularSolve(this.gramFactor, b12, T, n, { lower: true });
      ops.gemm(w, w, b22, { m: n, n, k: T, transA: true, alpha: -1, beta: 1 }); // Schur complement B22 − Wᵀ W
    }
    symmetrize(b22, n);
    const l22 = ops.cholesky(b22, n); // (N, N)
    const z2 = ops.choleskySolve(l22, identity(n), n, n); // (N, N) (L22 L22ᵀ)⁻¹
    const x = new Float32Array(dIn * n); // (dIn, N) X = H_old Z1 + H_new Z2
    ops.gemm(hNew, z2, x, { m: dIn, n, k: n });
    if (T > 0) {
      const wz2 = new Float32Array(T * n); // (T, N) W Z2
      ops.gemm(w, z2, wz2, { m: T, n, k: n });
      const negZ1 = ops.triangularSolve(this.gramFactor, wz2, T, n, { lower: true, transpose: true }); // (T, N) −Z1 = L11⁻ᵀ W Z2
      ops.gemm(hOldT, negZ1, x, { m: dIn, n, k: T, transA: true, alpha: -1, beta: 1 });
    }
    return new AlphaEditStep(this, this.generation, x, n, { projKeysT: transpose(hNew, dIn, n), w, l22 }, null);
  }

  // ── primal form, §7.4 ──
  private solvePrimal(keys: Float32Array, n: number): AlphaEditStep {
    const dIn = this.dIn;
    const r = this.projector.rank;
    const u0 = this.projector.nullBasis;
    if (u0 === null) throw new DeltaEditError("E_ARG", "AlphaEditSolver.solve: the primal form needs the projector's U0 (keepNullBasis)");
    const x = new Float32Array(dIn * n); // (dIn, N)
    if (r === 0) return new AlphaEditStep(this, this.generation, x, n, null, new Float32Array(0)); // P = 0 ⇒ X = 0
    const g = new Float32Array(r * n); // (r, N) G = U0ᵀ K
    ops.gemm(u0, keys, g, { m: r, n, k: dIn, transA: true });
    let upper: Float32Array; // (r, r) U with UᵀU = U0ᵀ (Cpast + K Kᵀ) U0 + λI
    if (this.primalFactor !== null || this.keyCount === 0) {
      // committed factor, or √λ·I when nothing is committed yet (Cpast = 0, ODD-14)
      upper = this.primalFactor !== null ? Float32Array.from(this.primalFactor) : scaledIdentity(r, Math.sqrt(this.l2));
      for (let j = 0; j < n; j++) choleskyRankOneUpdateUpper(upper, r, g, n, j);
    } else {
      // Entering the primal form: B = (U0ᵀ H)(U0ᵀ H)ᵀ + G Gᵀ + λI, since U0ᵀ K_old = U0ᵀ P K_old = U0ᵀ H.
      const T = this.keyCount;
      const b = new Float32Array(r * r); // (r, r)
      if (T > 0) {
        const ft = new Float32Array(T * r); // (T, r) Hᵀ U0
        ops.gemm(this.projKeysT.subarray(0, T * dIn), u0, ft, { m: T, n: r, k: dIn });
        ops.syrk(ft, b, { n: r, k: T, trans: true });
      }
      ops.syrk(g, b, { n: r, k: n, beta: 1 });
      addDiagonal(b, r, this.l2);
      symmetrize(b, r);
      upper = transpose(ops.cholesky(b, r), r, r);
    }
    // Y = (UᵀU)⁻¹ G: Uᵀ Z = G, then U Y = Z
    const z = ops.triangularSolve(upper, g, r, n, { lower: false, transpose: true }); // (r, N)
    const y = ops.triangularSolve(upper, z, r, n, { lower: false }); // (r, N)
    ops.gemm(u0, y, x, { m: dIn, n, k: r }); // X = U0 Y
    return new AlphaEditStep(this, this.generation, x, n, null, upper);
  }

  // ── persistence ──
  /** Copies of the state + JSON meta. `deserialize(serialize(), projector)` continues bit-identically. */
  serialize(): SerializedAlphaEditSolver {
    const T = this.keyCount;
    const arrays: SerializedAlphaEditSolver["arrays"] = {};
    if (this.mode === "dual") {
      arrays.projKeysT = Float32Array.from(this.projKeysT.subarray(0, T * this.dIn));
      arrays.gramFactor = Float32Array.from(this.gramFactor);
    } else if (this.primalFactor !== null) {
      arrays.primalFactor = Float32Array.from(this.primalFactor);
    }
    return {
      meta: {
        format: "deltaedit.alphaedit-solver",
        version: 1,
        dIn: this.dIn,
        rank: this.projector.rank,
        l2: this.l2,
        formulationParam: this.formulationParam,
        mode: this.mode,
        keyCount: T,
        generation: this.generation,
      },
      arrays,
    };
  }

  static deserialize(s: SerializedAlphaEditSolver, projector: NullSpaceProjector): AlphaEditSolver {
    const fn = "AlphaEditSolver.deserialize";
    const m = s.meta;
    if (m.format !== "deltaedit.alphaedit-solver" || m.version !== 1) {
      throw new DeltaEditError("E_CHECKPOINT", `${fn}: unsupported solver format ${String(m.format)} v${String(m.version)}`);
    }
    if (m.dIn !== projector.dIn || m.rank !== projector.rank) {
      throw new DeltaEditError("E_CHECKPOINT", `${fn}: solver was saved for a projector with dIn=${m.dIn}, rank=${m.rank}; got dIn=${projector.dIn}, rank=${projector.rank}`);
    }
    const solver = new AlphaEditSolver(projector, { l2: m.l2, formulation: m.formulationParam });
    const T = m.keyCount;
    checkDim(T, "meta.keyCount", fn);
    solver.keyCount = T;
    solver.generation = m.generation;
    solver.mode = m.mode;
    if (m.mode === "dual") {
      checkF32(s.arrays.projKeysT, T * m.dIn, "arrays.projKeysT", fn, `(T, dIn) = (${T}, ${m.dIn})`);
      checkF32(s.arrays.gramFactor, T * T, "arrays.gramFactor", fn, `(T, T) = (${T}, ${T})`);
      solver.projKeysT = Float32Array.from(s.arrays.projKeysT);
      solver.gramFactor = Float32Array.from(s.arrays.gramFactor);
    } else if (s.arrays.primalFactor === undefined) {
      if (T > 0) throw new DeltaEditError("E_CHECKPOINT", `${fn}: mode "primal" with ${T} committed keys but no arrays.primalFactor`);
    } else {
      const r = projector.rank;
      checkF32(s.arrays.primalFactor, r * r, "arrays.primalFactor", fn, `(r, r) = (${r}, ${r})`);
      solver.primalFactor = Float32Array.from(s.arrays.primalFactor);
    }
    return solver;
  }
}

/** (n, n) v·I. */
function scaledIdentity(n: number, v: number): Float32Array {
  const out = new Float32Array(n * n); // (n, n)
  for (let i = 0; i < n; i++) out[i * n + i] = v;
  return out;
}

/**
 * In place: U (r, r) upper with UᵀU = A  →  UᵀU = A + g gᵀ, g = column `col` of G (r, nCols).
 * Classic rotation-based rank-1 Cholesky update, O(r²), arithmetic in float64, rows of U contiguous.
 */
function choleskyRankOneUpdateUpper(u: Float32Array, r: number, g: Float32Array, nCols: number, col: number): void {
  const x = new Float64Array(r); // (r)
  for (let i = 0; i < r; i++) x[i] = g[i * nCols + col]!;
  for (let k = 0; k < r; k++) {
    const ukk = u[k * r + k]!;
    const xk = x[k]!;
    const rad = Math.sqrt(ukk * ukk + xk * xk);
    const c = rad / ukk;
    const s = xk / ukk;
    u[k * r + k] = rad;
    const row = k * r;
    for (let i = k + 1; i < r; i++) {
      const uki = (u[row + i]! + s * x[i]!) / c;
      u[row + i] = uki;
      x[i] = c * x[i]! - s * uki;
    }
  }
}
