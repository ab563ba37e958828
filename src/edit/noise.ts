/**
 * DeltaEdit's superimposed-noise monitor and influence projector P_δ (spec §4.4 c–e, §7.6,
 * ODD-4/5/6/7/9).
 *
 *   noise   n = ΔW_acc κ (d),  ν = ‖n‖                       (what past edits add to this key)
 *   request counter c: +1 at compute_z entry (`beginRequest`), counts requests, not batches
 *   first sample:       μ ← ν, σ² ← 0
 *   trigger iff         c > warmupRequests  ∧  σ² ≠ 0  ∧  |ν − μ| > varMultiplier · √σ²   (old μ, σ²)
 *   not triggered:      μ ← α μ + (1−α) ν,  then  σ² ← α σ² + (1−α)(ν − μ_new)²
 *   triggered:          statistics unchanged; δ is projected by P_δ after every Adam step
 *   P_δ = I − U_J U_Jᵀ, (U, S) = top-q eigenpairs of G = ΔW_acc ΔW_accᵀ + n nᵀ (d, d),
 *         q = ⌊d·space⌋, J = { j : S_j > eigenvalueThreshold }, capped at ⌊d(1−space)⌋ (ODD-6:
 *         unreachable for space < 0.5, so the effective cap is q).
 *
 * Variant "paper" (the paper as written, §4.4 "Paper-as-written variant"); everything else above holds:
 *   trigger iff         c > warmupRequests  ∧  σ² ≠ 0  ∧  ν > μ + varMultiplier · √σ²        (one-sided)
 *   P_δ = I − U_J U_Jᵀ, U = left singular vectors of ΔW_acc alone (no noise column), exactly:
 *         J = { j : s_j > 1e-6 · s_1 }, at most ⌊3d/4⌋ of them (the smallest dropped first)
 *         (`buildPaperProjector`).
 *
 * Dimension legend: d = hidden width (rows of ΔW_acc), dIn = input width (d_ff), N = keys in
 * a batch, q = randomized-SVD rank, |J| = rank of U_J.
 */
import * as ops from "../kernels/ops.js";
import { DeltaEditError } from "../errors.js";
import type { Rng } from "../util/rng.js";
import { checkDim, checkF32 } from "./_linalg.js";
import { randomizedTopSvd } from "./randomizedSvd.js";

/**
 * Which DeltaEdit: "official" = the official code (two-sided trigger, directions of [n | ΔW_acc] with
 * S_j > eigenvalueThreshold, at most q = ⌊d·space⌋); "paper" = the paper as written (one-sided
 * trigger, non-zero directions of ΔW_acc, at most ⌊3d/4⌋). Spec §4.4.
 */
export type DeltaEditVariant = "official" | "paper";
/** Every variant, the default first. */
export const DELTAEDIT_VARIANTS: readonly DeltaEditVariant[] = Object.freeze(["official", "paper"]);
/** Variant "paper": keep left singular vectors of ΔW_acc with s_j > PAPER_RELATIVE_SINGULAR_THRESHOLD · s_1. */
export const PAPER_RELATIVE_SINGULAR_THRESHOLD = 1e-6;
/** Variant "paper": remove at most ⌊d · PAPER_RANK_CAP_FRACTION⌋ directions (the paper: keep ≥ 1/4 of the space). */
export const PAPER_RANK_CAP_FRACTION = 0.75;

/** DeltaEdit's noise constants (hard-coded in the reference except `varMultiplier` and `space`). */
export interface NoiseParams {
  /** "official" (default): the official code's trigger and projector; "paper": the paper's (see DeltaEditVariant). */
  variant: DeltaEditVariant;
  /** A trigger is possible only while the request counter c > warmupRequests (reference: 20). */
  warmupRequests: number;
  /** α of the exponential moving mean and variance of ν (reference: 0.9). */
  emaDecay: number;
  /** Preset `var`: trigger when |ν − μ| > varMultiplier·√σ² (variant "paper": ν − μ >; gpt2-xl 3, Llama3-8B 1.5). */
  varMultiplier: number;
  /** Preset `space`: q = ⌊d·space⌋ eigenpairs, rank cap ⌊d(1−space)⌋ (reference: 0.25; unused by variant "paper"). */
  space: number;
  /** Keep eigen-directions of G with eigenvalue S_j > eigenvalueThreshold (reference: 0.1). */
  eigenvalueThreshold: number;
  /** Power iterations of the randomized SVD, mode "reference" (reference: 2). */
  powerIterations: number;
  /** "reference": seeded randomized top-q SVD (Appendix B); "exact": top-q eigenpairs via ops.eigh (§7.6). */
  mode: "reference" | "exact";
}

/** Defaults: the reference constants and the gpt2-xl preset's `var` and `space`. */
export const defaultNoiseParams: Readonly<NoiseParams> = Object.freeze({
  variant: "official",
  warmupRequests: 20,
  emaDecay: 0.9,
  varMultiplier: 3,
  space: 0.25,
  eigenvalueThreshold: 0.1,
  powerIterations: 2,
  mode: "reference",
});

export function resolveNoiseParams(opts: Partial<NoiseParams> = {}): NoiseParams {
  const fn = "NoiseParams";
  for (const key of Object.keys(opts)) {
    if (!(key in defaultNoiseParams)) {
      const known = Object.keys(defaultNoiseParams);
      const near = known.find((k) => k.toLowerCase() === key.toLowerCase() || k.toLowerCase().startsWith(key.toLowerCase().slice(0, 4)));
      throw new DeltaEditError("E_CONFIG", `${fn}: unknown option "${key}"${near ? ` (did you mean "${near}"?)` : ""}; known: ${known.join(", ")}`);
    }
  }
  const p: NoiseParams = { ...defaultNoiseParams, ...opts };
  checkDim(p.warmupRequests, "warmupRequests", fn);
  checkDim(p.powerIterations, "powerIterations", fn);
  const bad = (name: string, v: number, cond: boolean): void => {
    if (!cond) throw new DeltaEditError("E_CONFIG", `${fn}: ${name} out of range, got ${String(v)}`);
  };
  bad("emaDecay (0 ≤ α ≤ 1)", p.emaDecay, p.emaDecay >= 0 && p.emaDecay <= 1);
  bad("varMultiplier (> 0)", p.varMultiplier, p.varMultiplier > 0 && Number.isFinite(p.varMultiplier));
  bad("space (0 < space < 1)", p.space, p.space > 0 && p.space < 1);
  bad("eigenvalueThreshold (≥ 0)", p.eigenvalueThreshold, p.eigenvalueThreshold >= 0);
  if (!DELTAEDIT_VARIANTS.includes(p.variant)) throw new DeltaEditError("E_CONFIG", `${fn}: variant must be ${DELTAEDIT_VARIANTS.map((v) => `"${v}"`).join(" or ")}, got ${JSON.stringify(p.variant)}`);
  if (p.mode !== "reference" && p.mode !== "exact") throw new DeltaEditError("E_CONFIG", `${fn}: mode must be "reference" or "exact", got "${String(p.mode)}"`);
  return p;
}

// ───────────────────────────── noise statistics ─────────────────────────────

/** Persistent monitor state. `variance` is the EMA variance σ² (the reference calls it "std", ODD-4). */
export interface NoiseState {
  requestCount: number; // c
  mu: number | null; // μ
  variance: number | null; // σ²
}

/** Handle for one compute_z call; obtained from `beginRequest`, consumed by at most one `observe`. */
export interface NoiseRequest {
  readonly requestCount: number; // c of this request
}

export interface NoiseObservation {
  requestCount: number; // c
  nu: number; // ν
  triggered: boolean;
  /** μ and σ² that the trigger test used (after the first-sample initialisation). */
  testedMu: number;
  testedVariance: number;
  /** μ and σ² after this observation (unchanged when triggered). */
  mu: number;
  variance: number;
}

export class NoiseMonitor {
  readonly params: Readonly<NoiseParams>;
  private c: number;
  private mu: number | null;
  private variance: number | null;
  private open: { requestCount: number } | null = null; // the current, not yet observed request

  constructor(params: Partial<NoiseParams> = {}, state: NoiseState = { requestCount: 0, mu: null, variance: null }) {
    this.params = Object.freeze(resolveNoiseParams(params));
    checkDim(state.requestCount, "state.requestCount", "NoiseMonitor");
    if ((state.mu === null) !== (state.variance === null)) {
      throw new DeltaEditError("E_SESSION", "NoiseMonitor: state.mu and state.variance must be both null or both numbers");
    }
    this.c = state.requestCount;
    this.mu = state.mu;
    this.variance = state.variance;
  }

  get state(): NoiseState {
    return { requestCount: this.c, mu: this.mu, variance: this.variance };
  }

  /** Step a of modified compute_z: c ← c + 1 on entry. Call once per request, whether or not ΔW_acc exists. */
  beginRequest(): NoiseRequest {
    this.c += 1;
    const req = { requestCount: this.c };
    this.open = req;
    return req;
  }

  /**
   * Steps c.2–c.5 for the current request with noise norm ν ≥ 0 (call only when ΔW_acc exists).
   * Throws E_ARG for a request other than the latest `beginRequest`, or one observed already.
   */
  observe(request: NoiseRequest, nu: number): NoiseObservation {
    if (request !== this.open) {
      throw new DeltaEditError("E_ARG", `NoiseMonitor.observe: request ${request.requestCount} is not the open request (current c = ${this.c}); call beginRequest() once per compute_z and observe() at most once`);
    }
    if (!(nu >= 0) || !Number.isFinite(nu)) throw new DeltaEditError("E_ARG", `NoiseMonitor.observe: nu must be a finite number ≥ 0, got ${String(nu)}`);
    this.open = null;
    const { warmupRequests, emaDecay: alpha, varMultiplier } = this.params;
    let first = false;
    if (this.mu === null || this.variance === null) {
      this.mu = nu; // c.2: first sample
      this.variance = 0;
      first = true;
    }
    const testedMu = this.mu;
    const testedVariance = this.variance;
    // official: two-sided |ν − μ| (ODD-4, fires on unusually small noise too); paper: one-sided ν − μ
    const deviation = this.params.variant === "paper" ? nu - testedMu : Math.abs(nu - testedMu);
    const triggered = this.c > warmupRequests && testedVariance !== 0 && deviation > varMultiplier * Math.sqrt(testedVariance);
    // c.5. On the first sample the update is an identity in exact arithmetic (μ = ν, σ² = 0);
    // it is skipped so that σ² stays exactly 0 (α·ν + (1−α)·ν can differ from ν by one ulp).
    if (!triggered && !first) {
      const muNew = alpha * testedMu + (1 - alpha) * nu;
      this.variance = alpha * testedVariance + (1 - alpha) * (nu - muNew) * (nu - muNew);
      this.mu = muNew;
    }
    return { requestCount: this.c, nu, triggered, testedMu, testedVariance, mu: this.mu, variance: this.variance };
  }

  /** JSON-able params + state. */
  serialize(): { params: NoiseParams; state: NoiseState } {
    return { params: { ...this.params }, state: this.state };
  }

  static deserialize(s: { params: NoiseParams; state: NoiseState }): NoiseMonitor {
    return new NoiseMonitor(s.params, s.state);
  }
}

// ───────────────────────────── noise vector and Gram ─────────────────────────────

/** n = ΔW_acc κ (d) and ν = ‖n‖ for deltaWAcc (d, dIn) out × in and the bare-prompt key κ (dIn). */
export function noiseVector(deltaWAcc: Float32Array, key: Float32Array, d: number, dIn: number): { noise: Float32Array; nu: number } {
  const fn = "noiseVector";
  checkDim(d, "d", fn, 1);
  checkDim(dIn, "dIn", fn, 1);
  checkF32(deltaWAcc, d * dIn, "deltaWAcc", fn, `(d, dIn) = (${d}, ${dIn})`);
  checkF32(key, dIn, "key", fn, `(dIn) = (${dIn})`);
  const noise = new Float32Array(d); // (d)
  ops.gemm(deltaWAcc, key, noise, { m: d, n: 1, k: dIn });
  let s = 0;
  for (let i = 0; i < d; i++) s += noise[i]! * noise[i]!;
  return { noise, nu: Math.sqrt(s) };
}

/**
 * Dense Gram maintenance (§7.6): for ΔW_new = ΔW_old + R Xᵀ returns
 * Gw_new = Gw + (ΔW_old X) Rᵀ + R (ΔW_old X)ᵀ + R (XᵀX) Rᵀ = ΔW_new ΔW_newᵀ (d, d), exactly symmetric.
 * `deltaWOld` null means ΔW_acc absent (first batch, Gw must then be zero). O(d·dIn·N + d²N).
 */
export function updateGram(
  gram: Float32Array, // (d, d) Gw = ΔW_old ΔW_oldᵀ
  deltaWOld: Float32Array | null, // (d, dIn)
  residual: Float32Array, // (d, N) R
  x: Float32Array, // (dIn, N) X
  d: number,
  dIn: number,
  n: number,
): Float32Array {
  const fn = "updateGram";
  checkDim(d, "d", fn, 1);
  checkDim(dIn, "dIn", fn, 1);
  checkDim(n, "n", fn, 1);
  checkF32(gram, d * d, "gram", fn, `(d, d) = (${d}, ${d})`);
  if (deltaWOld !== null) checkF32(deltaWOld, d * dIn, "deltaWOld", fn, `(d, dIn) = (${d}, ${dIn})`);
  checkF32(residual, d * n, "residual", fn, `(d, N) = (${d}, ${n})`);
  checkF32(x, dIn * n, "x", fn, `(dIn, N) = (${dIn}, ${n})`);
  const xtx = new Float32Array(n * n); // (N, N) XᵀX
  ops.syrk(x, xtx, { n, k: dIn, trans: true });
  const c = new Float32Array(d * n); // (d, N) C = ΔW_old X + ½ R XᵀX, so C Rᵀ + R Cᵀ is the whole increment
  if (deltaWOld !== null) ops.gemm(deltaWOld, x, c, { m: d, n, k: dIn });
  ops.gemm(residual, xtx, c, { m: d, n, k: n, alpha: 0.5, beta: deltaWOld !== null ? 1 : 0 });
  const t = new Float32Array(d * d); // (d, d) C Rᵀ
  ops.gemm(c, residual, t, { m: d, n: d, k: n, transB: true });
  const out = new Float32Array(d * d); // (d, d)
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) out[i * d + j] = gram[i * d + j]! + (t[i * d + j]! + t[j * d + i]!);
  }
  return out;
}

// ───────────────────────────── influence projector P_δ ─────────────────────────────

export class InfluenceProjector {
  readonly d: number;
  readonly mode: "reference" | "exact"; // "paper" is always "exact"
  readonly q: number; // ⌊d·space⌋ ("paper": d, every eigenpair)
  readonly cap: number; // ⌊d(1−space)⌋ ("paper": ⌊3d/4⌋)
  /** (q) top eigenvalues S of G, descending (diagnostics; "paper": s_j² of ΔW_acc). */
  readonly topEigenvalues: Float32Array;
  /** (|J|, d) rows = the directions U_J removed from δ. */
  readonly basisT: Float32Array;
  readonly rank: number; // |J| after the cap
  readonly variant: DeltaEditVariant;

  /** @internal use buildInfluenceProjector / buildPaperProjector */
  constructor(d: number, mode: "reference" | "exact", q: number, cap: number, topEigenvalues: Float32Array, basisT: Float32Array, rank: number, variant: DeltaEditVariant = "official") {
    this.d = d;
    this.mode = mode;
    this.q = q;
    this.cap = cap;
    this.topEigenvalues = topEigenvalues;
    this.basisT = basisT;
    this.rank = rank;
    this.variant = variant;
  }

  /** P_δ v = v − U_J (U_Jᵀ v) for v (d); new array, O(d·|J|). */
  apply(delta: Float32Array): Float32Array {
    checkF32(delta, this.d, "delta", "InfluenceProjector.apply", `(d) = (${this.d})`);
    const out = Float32Array.from(delta); // (d)
    if (this.rank === 0) return out;
    const coeff = new Float32Array(this.rank); // (|J|) U_Jᵀ v
    ops.gemm(this.basisT, delta, coeff, { m: this.rank, n: 1, k: this.d });
    ops.gemm(this.basisT, coeff, out, { m: this.d, n: 1, k: this.rank, transA: true, alpha: -1, beta: 1 });
    return out;
  }
}

/**
 * Builds P_δ from the maintained Gram Gw = ΔW_acc ΔW_accᵀ (d, d) and the noise n (d):
 * G = Gw + n nᵀ, top-q eigenpairs ("reference": randomized, seeded by `rng`; "exact": ops.eigh),
 * J = { j : S_j > eigenvalueThreshold }, then the ODD-6 cap. Does not modify its inputs.
 */
export function buildInfluenceProjector(a: {
  gram: Float32Array; // (d, d) Gw
  noise: Float32Array; // (d) n
  d: number;
  params?: Partial<NoiseParams>;
  rng?: Rng; // required for mode "reference"
}): InfluenceProjector {
  const fn = "buildInfluenceProjector";
  const { d } = a;
  checkDim(d, "d", fn, 1);
  checkF32(a.gram, d * d, "gram", fn, `(d, d) = (${d}, ${d})`);
  checkF32(a.noise, d, "noise", fn, `(d) = (${d})`);
  const p = resolveNoiseParams(a.params);
  const q = Math.floor(d * p.space);
  const cap = Math.floor(d * (1 - p.space));
  if (q === 0) return new InfluenceProjector(d, p.mode, 0, cap, new Float32Array(0), new Float32Array(0), 0);
  const g = Float32Array.from(a.gram); // (d, d) G = Gw + n nᵀ
  for (let i = 0; i < d; i++) {
    const ni = a.noise[i]!;
    for (let j = 0; j < d; j++) g[i * d + j]! += ni * a.noise[j]!;
  }
  let uT: Float32Array; // (q, d) rows = top-q eigenvectors
  const s = new Float32Array(q); // (q) descending
  if (p.mode === "reference") {
    if (a.rng === undefined) throw new DeltaEditError("E_ARG", `${fn}: mode "reference" needs an rng (seeded randomized SVD)`);
    const r = randomizedTopSvd(g, d, d, q, p.powerIterations, a.rng); // u (d, q)
    s.set(r.s.subarray(0, q));
    uT = new Float32Array(q * d);
    for (let i = 0; i < d; i++) for (let j = 0; j < q; j++) uT[j * d + i] = r.u[i * q + j]!;
  } else {
    const { values, vectors } = ops.eigh(g, d); // ascending; column j ↔ values[j]
    uT = new Float32Array(q * d);
    for (let j = 0; j < q; j++) {
      const col = d - 1 - j;
      s[j] = values[col]!;
      for (let i = 0; i < d; i++) uT[j * d + i] = vectors[i * d + col]!;
    }
  }
  // J = { j : S_j > threshold }; ODD-6: if |J| < cap use U_J, otherwise the first cap columns.
  const jSet: number[] = [];
  for (let j = 0; j < q; j++) if (s[j]! > p.eigenvalueThreshold) jSet.push(j);
  const keep = jSet.length < cap ? jSet : Array.from({ length: cap }, (_, i) => i);
  const basisT = new Float32Array(keep.length * d); // (|J|, d)
  keep.forEach((j, row) => basisT.set(uT.subarray(j * d, (j + 1) * d), row * d));
  return new InfluenceProjector(d, p.mode, q, cap, s, basisT, keep.length);
}

/** Columns of ΔW_acc converted to float64 per syrk call in `buildPaperProjector` (bounds the float64 copy to d × 512). */
const PAPER_GRAM_BLOCK = 512;

/**
 * Variant "paper" (§4.4, "Paper-as-written variant"): P_δ = I − U_J U_Jᵀ with U the left singular
 * vectors of ΔW_acc (d, dIn) alone (no noise column), J = { j : s_j > 1e-6·s_1 }, at most ⌊3d/4⌋ of
 * them, the smallest dropped first. Exact, no randomness.
 *
 * How: G = ΔW_acc ΔW_accᵀ (d, d) is accumulated in float64 from the float32 ΔW_acc (column blocks
 * of PAPER_GRAM_BLOCK through ops.syrk) and decomposed by ops.eigh in float64; its eigenvalues are
 * λ_j = s_j². The threshold is applied to λ: keep λ_j > (1e-6)²·λ_1 = 1e-12·λ_1. That relative 1e-12
 * is below float32's resolution (≈ 6e-8), hence float64 throughout: a float64 eigh resolves λ to
 * about ε64·λ_1 (times a modest factor of d), so s_j is resolved to ~1e-8·s_1, well below the cut.
 * What is cut is ΔW_acc as stored: its own float32 rounding leaves singular values of order
 * ε32·s_1 in directions that are zero in exact arithmetic; they fall under the cut while they stay
 * below 1e-6·s_1, and they are the first dropped by the cap. ΔW_acc = 0 gives rank 0 (P_δ = I).
 * Does not modify its input. Cost O(d²·dIn + d³) float64 per call (once per batch).
 */
export function buildPaperProjector(deltaWAcc: Float32Array, d: number, dIn: number): InfluenceProjector {
  const fn = "buildPaperProjector";
  checkDim(d, "d", fn, 1);
  checkDim(dIn, "dIn", fn, 1);
  checkF32(deltaWAcc, d * dIn, "deltaWAcc", fn, `(d, dIn) = (${d}, ${dIn})`);
  const cap = Math.floor(d * PAPER_RANK_CAP_FRACTION);
  const g = new Float64Array(d * d); // (d, d) G = ΔW_acc ΔW_accᵀ, float64
  const kb = Math.min(dIn, PAPER_GRAM_BLOCK);
  const block = new Float64Array(d * kb); // (d, kb) columns j0..j0+k of ΔW_acc
  for (let j0 = 0; j0 < dIn; j0 += kb) {
    const k = Math.min(kb, dIn - j0);
    for (let i = 0; i < d; i++) for (let j = 0; j < k; j++) block[i * k + j] = deltaWAcc[i * dIn + j0 + j]!;
    ops.syrk(block.subarray(0, d * k), g, { n: d, k, beta: j0 === 0 ? 0 : 1 });
  }
  const { values, vectors } = ops.eigh(g, d); // ascending; column j ↔ values[j]
  const lambda = new Float32Array(d); // (d) λ = s², descending
  for (let j = 0; j < d; j++) lambda[j] = values[d - 1 - j]!;
  const top = values[d - 1]!; // λ_1 = s_1²
  const cut = PAPER_RELATIVE_SINGULAR_THRESHOLD * PAPER_RELATIVE_SINGULAR_THRESHOLD * top;
  let rank = 0; // |J|: λ descending, so J is a prefix
  while (rank < d && top > 0 && values[d - 1 - rank]! > cut) rank++;
  rank = Math.min(rank, cap); // drop the smallest first
  const basisT = new Float32Array(rank * d); // (|J|, d) rows = U_J, largest s first
  for (let r = 0; r < rank; r++) {
    const col = d - 1 - r;
    for (let i = 0; i < d; i++) basisT[r * d + i] = vectors[i * d + col]!;
  }
  return new InfluenceProjector(d, "exact", d, cap, lambda, basisT, rank, "paper");
}
