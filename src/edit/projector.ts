/**
 * AlphaEdit null-space projector P (spec §3.6, §7.7, ODD-30).
 *
 * From the preserved-key second moment `C0 = K0 K0ᵀ / n` (dIn, dIn) of a layer:
 *   1. symmetric eigendecomposition `C0 = U diag(λ) Uᵀ` (`ops.eigh`; equal to the reference's
 *      SVD of the PSD matrix, thresholding |λ|, ODD-30), in float32 (default) or float64;
 *   2. J = the null space, by `nullspaceRule` (s_i = |λ_i|, the singular values):
 *      - "absolute" (the reference): `J = { i : s_i < τ }`, τ = `nullspaceThreshold` = 2e-2;
 *      - "gap": J = the k smallest s_i for the cut k that lands in the widest relative spectral
 *        gap near τ (see `selectNullSpaceCut`), falling back to "absolute" when there is none;
 *   3. `P = U_J U_Jᵀ`, rank r = |J|.
 * Only one basis is stored for applying P, whichever is smaller (§7.7):
 *   - "nullspace":  U0 = U_J (dIn, r),         P X = U0 (U0ᵀ X)       when r ≤ dIn/2;
 *   - "complement": U1 = U_{∖J} (dIn, dIn−r),  P X = X − U1 (U1ᵀ X)   otherwise.
 * The primal AlphaEdit solve (solve.ts, §7.4) needs U0 itself; ask for it with
 * `keepNullBasis: true` when the complement is stored.
 *
 * Why a gap rule: the absolute cut is only as stable as the eigen-gap at τ. An eigenvalue within
 * eigh's rounding (≈ a few ulps of λ_max: ~1e-3 for λ_max ≈ 3e3 in float32) of τ can fall on either
 * side, and the eigenvectors next to the cut rotate by ≈ rounding / gap (Davis–Kahan), so P
 * depends on the BLAS thread count and kernel when the spectrum is dense at τ. A cut inside a
 * relative gap λ_{k+1}/λ_k ≥ `nullspaceGapMinRatio` is immune to that. float64 eigh shrinks the
 * rounding itself by ~1e9 (the cut is then as stable as the float32 C0 it is computed from).
 *
 * Dimension legend: dIn = input width of the edited matrix (d_ff), r = rank of P,
 * b = columns of the stored basis, n = columns of a block P is applied to.
 */
import * as ops from "../kernels/ops.js";
import { DeltaEditError } from "../errors.js";
import { checkDim, checkF32, checkPositive, gatherColumns } from "./_linalg.js";

/** How the null space J is chosen from the eigenvalues of C0. */
export type NullSpaceRule = "absolute" | "gap";
/** Arithmetic of the eigendecomposition of C0 (the projector's basis is stored in float32 either way). */
export type NullSpacePrecision = "float32" | "float64";

export const NULLSPACE_RULES: readonly NullSpaceRule[] = Object.freeze(["absolute", "gap"]);
export const NULLSPACE_PRECISIONS: readonly NullSpacePrecision[] = Object.freeze(["float32", "float64"]);

/**
 * How the null space is chosen — the part of the projector's parameters that the editing methods
 * (AlphaEdit, DeltaEdit) carry under the same names.
 */
export interface NullSpaceOptions {
  /**
   * τ: eigenvalue threshold on C0. Rule "absolute": eigenvectors with |λ| < τ span range(P).
   * Rule "gap": the centre of the search window (and the fallback threshold). Spec default 2e-2.
   */
  nullspaceThreshold: number;
  /**
   * "absolute" (default, the reference's rule): |λ| < τ. "gap": cut the spectrum in the largest
   * relative gap λ_{k+1}/λ_k whose interval overlaps [τ/W, τ·W] (W = `nullspaceGapWindow`), if that
   * gap is ≥ `nullspaceGapMinRatio`; otherwise the absolute rule (the log says so). Deterministic,
   * and stable under perturbations of C0 small against the gap (rounding, thread count, BLAS kernel).
   */
  nullspaceRule: NullSpaceRule;
  /** Gap rule: W ≥ 1, the search window [τ/W, τ·W] a cut's gap interval must overlap. Default 100. */
  nullspaceGapWindow: number;
  /**
   * Gap rule: the smallest ratio λ_{k+1}/max(λ_k, floor) that counts as a gap (> 1). Default 10: far
   * above eigh's relative rounding of eigenvalues above the floor, so the choice cannot flip by rounding.
   */
  nullspaceGapMinRatio: number;
  /**
   * Gap rule: eigenvalues with |λ| below `floor = nullspaceGapFloor · λ_max` count as zero (their
   * value is rounding noise: a float32 eigh moves eigenvalues by ≈ 4e-7·λ_max, measured on the fact
   * world). In (0, 1); default 1e-6.
   */
  nullspaceGapFloor: number;
  /**
   * "float32" (default, the reference's precision): eigh of C0 in float32. "float64": C0 is widened
   * exactly and decomposed in float64 (eigenvalue rounding ~1e-9 times smaller, so the cut and U_J no
   * longer depend on the BLAS thread count; 2× the memory of the float32 eigh, and slower).
   */
  nullspacePrecision: NullSpacePrecision;
}

/** Parameters of the null-space projector. */
export interface ProjectorParams extends NullSpaceOptions {
  /** Also keep U0 (dIn, r) when the complement U1 is the stored basis (needed by the primal solve). */
  keepNullBasis: boolean;
}

/** The reference's choice: absolute τ = 2e-2 on a float32 eigendecomposition (spec §3.6). */
export const defaultNullSpaceOptions: Readonly<NullSpaceOptions> = Object.freeze({
  nullspaceThreshold: 2e-2,
  nullspaceRule: "absolute",
  nullspaceGapWindow: 100,
  nullspaceGapMinRatio: 10,
  nullspaceGapFloor: 1e-6,
  nullspacePrecision: "float32",
});

export const defaultProjectorParams: Readonly<ProjectorParams> = Object.freeze({
  ...defaultNullSpaceOptions,
  keepNullBasis: false,
});

/**
 * Where the spectrum was cut, and why (serialized with the projector; logged by the methods).
 * Singular values s = |λ| in ascending order; the cut keeps the r smallest. "Ratios" use
 * μ = max(s, floor), floor = nullspaceGapFloor · λ_max.
 */
export interface NullSpaceCut {
  /** The rule asked for. */
  rule: NullSpaceRule;
  /** The rule that made the cut: "fallback" = rule "gap" found no qualifying gap and used |λ| < τ. */
  applied: "absolute" | "gap" | "fallback";
  /** A threshold reproducing the cut with |λ| < t: τ, or for "gap" the gap's geometric centre √(μ_r μ_{r+1}). */
  effectiveThreshold: number;
  /** s_r: the largest |λ| in J (null when r = 0). */
  lower: number | null;
  /** s_{r+1}: the smallest |λ| outside J (null when r = dIn). */
  upper: number | null;
  /** μ_{r+1} / μ_r: the relative eigen-gap at the cut (null when r = 0 or r = dIn). */
  ratio: number | null;
  /** Gap rule: the largest ratio among the cuts in the window (null for "absolute" or no cut in the window). */
  windowBestRatio: number | null;
  /** Gap rule: the second largest ratio in the window (null if fewer than two cuts); best/runner-up is the choice's margin. */
  windowRunnerUpRatio: number | null;
  /** floor = nullspaceGapFloor · λ_max. */
  floor: number;
}

/** Which eigenvectors the application basis holds. */
export type ProjectorBasisKind = "nullspace" | "complement";

/**
 * JSON-able part of a serialized projector. Version 2 added the null-space rule, its parameters and
 * the cut (`deserialize` still reads version 1, written before rules existed: rule "absolute", float32).
 */
export interface ProjectorMeta extends NullSpaceOptions {
  format: "deltaedit.nullspace-projector";
  version: 2;
  dIn: number;
  rank: number; // r
  basisKind: ProjectorBasisKind;
  hasNullBasis: boolean;
  cut: NullSpaceCut;
}

/** Version 1 meta (before `nullspaceRule`): read by `deserialize`, never written. */
export interface ProjectorMetaV1 {
  format: "deltaedit.nullspace-projector";
  version: 1;
  dIn: number;
  rank: number;
  nullspaceThreshold: number;
  basisKind: ProjectorBasisKind;
  hasNullBasis: boolean;
}

/** Raw arrays + JSON meta (see docs/formats.md once the session store exists). */
export interface SerializedProjector {
  meta: ProjectorMeta | ProjectorMetaV1;
  arrays: {
    basis: Float32Array; // (dIn, b): U0 (b = r) or U1 (b = dIn − r)
    eigenvalues: Float32Array; // (dIn) eigenvalues of C0, ascending
    nullBasis?: Float32Array; // (dIn, r) U0, present iff meta.hasNullBasis and basisKind = "complement"
  };
}

export class NullSpaceProjector {
  readonly dIn: number;
  /** r = |J| = dim range(P). */
  readonly rank: number;
  /** The null-space options it was built with (τ = nullspaceThreshold, the rule and its parameters). */
  readonly options: Readonly<NullSpaceOptions>;
  /** Where the spectrum was cut: applied rule, effective threshold, eigen-gap at the cut. */
  readonly cut: Readonly<NullSpaceCut>;
  readonly basisKind: ProjectorBasisKind;
  /** (dIn) eigenvalues of C0, ascending (diagnostics; float32 also when computed in float64). */
  readonly eigenvalues: Float32Array;
  private readonly basis: Float32Array; // (dIn, b) U0 or U1, see basisKind
  private readonly u0: Float32Array | null; // (dIn, r) U0 when available

  private constructor(
    dIn: number,
    rank: number,
    options: NullSpaceOptions,
    cut: NullSpaceCut,
    kind: ProjectorBasisKind,
    basis: Float32Array,
    u0: Float32Array | null,
    eigenvalues: Float32Array,
  ) {
    this.dIn = dIn;
    this.rank = rank;
    this.options = Object.freeze({ ...options });
    this.cut = Object.freeze({ ...cut });
    this.basisKind = kind;
    this.basis = basis;
    this.u0 = u0;
    this.eigenvalues = eigenvalues;
  }

  /** τ as configured (the absolute rule's threshold; the gap rule's window centre and fallback). */
  get nullspaceThreshold(): number {
    return this.options.nullspaceThreshold;
  }

  /** A threshold t with J = { i : |λ_i| < t }: τ for the absolute rule (and its fallback), the gap's centre for the gap rule. */
  get effectiveThreshold(): number {
    return this.cut.effectiveThreshold;
  }

  /**
   * Builds P from the preserved-key second moment `preservedCov` = C0 (dIn, dIn), float32,
   * symmetric PSD. The input is not modified.
   */
  static fromSecondMoment(
    preservedCov: Float32Array, // (dIn, dIn)
    dIn: number,
    opts: Partial<ProjectorParams> = {},
  ): NullSpaceProjector {
    const fn = "NullSpaceProjector.fromSecondMoment";
    checkDim(dIn, "dIn", fn, 1);
    checkF32(preservedCov, dIn * dIn, "preservedCov", fn, `(dIn, dIn) = (${dIn}, ${dIn})`);
    const params = resolveParams(opts, fn);
    // values (dIn) ascending; vectors (dIn, dIn), column j ↔ values[j]
    const { values, vectors } = params.nullspacePrecision === "float64" ? eigh64(preservedCov, dIn) : ops.eigh(preservedCov, dIn);
    for (let i = 0; i < dIn; i++) {
      if (Number.isNaN(values[i]!)) throw new DeltaEditError("E_NATIVE", `${fn}: eigenvalue ${i} of preservedCov is NaN`);
    }
    const { rank, cut } = selectNullSpaceCut(values, params);
    const t = cut.effectiveThreshold;
    const nullIdx: number[] = []; // J, ascending λ order
    const rangeIdx: number[] = []; // complement of J
    for (let i = 0; i < dIn; i++) (Math.abs(values[i]!) < t ? nullIdx : rangeIdx).push(i);
    if (nullIdx.length !== rank) {
      throw new Error(`${fn}: bug: threshold ${t} selects ${nullIdx.length} eigenvalues, the cut has ${rank}`);
    }
    const r = rank;
    const kind: ProjectorBasisKind = r <= dIn / 2 ? "nullspace" : "complement";
    const basis = gatherColumns(vectors, dIn, dIn, kind === "nullspace" ? nullIdx : rangeIdx); // (dIn, b)
    const u0 = kind === "nullspace" ? basis : params.keepNullBasis ? gatherColumns(vectors, dIn, dIn, nullIdx) : null;
    return new NullSpaceProjector(dIn, r, nullSpaceOptionsOf(params), cut, kind, basis, u0, Float32Array.from(values));
  }

  /** Columns of the stored application basis (r for "nullspace", dIn − r for "complement"). */
  get basisColumns(): number {
    return this.basisKind === "nullspace" ? this.rank : this.dIn - this.rank;
  }

  /** U0 (dIn, r), an orthonormal basis of range(P), or null when not kept (see keepNullBasis). */
  get nullBasis(): Float32Array | null {
    return this.u0;
  }

  /** P X for a block X (dIn, cols); returns a new (dIn, cols) array. Cost O(dIn · b · cols). */
  apply(x: Float32Array, cols: number): Float32Array {
    const fn = "NullSpaceProjector.apply";
    checkDim(cols, "cols", fn);
    const dIn = this.dIn;
    checkF32(x, dIn * cols, "x", fn, `(dIn, cols) = (${dIn}, ${cols})`);
    const b = this.basisColumns;
    const out = this.basisKind === "nullspace" ? new Float32Array(dIn * cols) : Float32Array.from(x); // (dIn, cols)
    if (b === 0 || cols === 0) return out;
    const coeff = new Float32Array(b * cols); // (b, cols) = Uᵀ X
    ops.gemm(this.basis, x, coeff, { m: b, n: cols, k: dIn, transA: true });
    // "nullspace": out = U0 coeff;  "complement": out = X − U1 coeff
    ops.gemm(this.basis, coeff, out, { m: dIn, n: cols, k: b, alpha: this.basisKind === "nullspace" ? 1 : -1, beta: this.basisKind === "nullspace" ? 0 : 1 });
    return out;
  }

  /** The dense projector P (dIn, dIn) — for oracles and tests only (O(dIn²) memory). */
  toDense(): Float32Array {
    const dIn = this.dIn;
    const b = this.basisColumns;
    const outer = new Float32Array(dIn * dIn); // (dIn, dIn) = U Uᵀ
    if (b > 0) ops.syrk(this.basis, outer, { n: dIn, k: b });
    if (this.basisKind === "nullspace") return outer;
    for (let i = 0; i < dIn * dIn; i++) outer[i] = -outer[i]!;
    for (let i = 0; i < dIn; i++) outer[i * dIn + i]! += 1;
    return outer;
  }

  /** Raw arrays (copies) + JSON meta; `deserialize(serialize())` reproduces P bit for bit. */
  serialize(): SerializedProjector {
    const keepSeparateU0 = this.basisKind === "complement" && this.u0 !== null;
    const arrays: SerializedProjector["arrays"] = {
      basis: Float32Array.from(this.basis),
      eigenvalues: Float32Array.from(this.eigenvalues),
    };
    if (keepSeparateU0) arrays.nullBasis = Float32Array.from(this.u0!);
    return {
      meta: {
        format: "deltaedit.nullspace-projector",
        version: 2,
        dIn: this.dIn,
        rank: this.rank,
        ...this.options,
        basisKind: this.basisKind,
        hasNullBasis: this.u0 !== null,
        cut: { ...this.cut },
      },
      arrays,
    };
  }

  static deserialize(s: SerializedProjector): NullSpaceProjector {
    const fn = "NullSpaceProjector.deserialize";
    const m = s.meta;
    if (m.format !== "deltaedit.nullspace-projector" || (m.version !== 1 && m.version !== 2)) {
      throw new DeltaEditError("E_CHECKPOINT", `${fn}: unsupported projector format ${String(m.format)} v${String(m.version)}`);
    }
    checkDim(m.dIn, "meta.dIn", fn, 1);
    checkDim(m.rank, "meta.rank", fn);
    if (m.rank > m.dIn) throw new DeltaEditError("E_CHECKPOINT", `${fn}: meta.rank ${m.rank} exceeds meta.dIn ${m.dIn}`);
    const b = m.basisKind === "nullspace" ? m.rank : m.dIn - m.rank;
    checkF32(s.arrays.basis, m.dIn * b, "arrays.basis", fn, `(dIn, b) = (${m.dIn}, ${b})`);
    checkF32(s.arrays.eigenvalues, m.dIn, "arrays.eigenvalues", fn, `(dIn) = (${m.dIn})`);
    let options: NullSpaceOptions;
    try {
      // version 1 predates the rules: the absolute rule on a float32 eigh
      options = nullSpaceOptionsOf(resolveParams(m.version === 1 ? { nullspaceThreshold: m.nullspaceThreshold } : nullSpaceOptionsOf(m), fn));
    } catch (e) {
      throw new DeltaEditError("E_CHECKPOINT", `${fn}: invalid null-space options in meta: ${(e as Error).message}`);
    }
    const cut =
      m.version === 1
        ? cutDiagnostics(sortedMagnitudes(s.arrays.eigenvalues), m.rank, options, "absolute", options.nullspaceThreshold)
        : checkCut(m.cut, options.nullspaceRule, fn);
    const basis = Float32Array.from(s.arrays.basis);
    let u0: Float32Array | null = null;
    if (m.basisKind === "nullspace") u0 = basis;
    else if (m.hasNullBasis) {
      checkF32(s.arrays.nullBasis, m.dIn * m.rank, "arrays.nullBasis", fn, `(dIn, r) = (${m.dIn}, ${m.rank})`);
      u0 = Float32Array.from(s.arrays.nullBasis);
    }
    return new NullSpaceProjector(m.dIn, m.rank, options, cut, m.basisKind, basis, u0, Float32Array.from(s.arrays.eigenvalues));
  }
}

/**
 * The cut of the spectrum of C0: r = |J| (J = the r smallest |λ|) and its diagnostics.
 * `values` (dIn): the eigenvalues of C0, any order. Pure function of the values and the options.
 *
 * Rule "absolute": r = #{ i : |λ_i| < τ }.
 * Rule "gap": with s = |λ| ascending, floor = nullspaceGapFloor · max s, μ = max(s, floor),
 * the candidate cuts are 1 ≤ k < dIn whose gap interval [μ_k, μ_{k+1}] overlaps the window
 * [τ/W, τ·W]; the one with the largest ratio μ_{k+1}/μ_k is taken (exact ties: the one whose
 * geometric centre is nearest τ, then the smaller k) if that ratio is ≥ nullspaceGapMinRatio,
 * else the absolute rule ("fallback").
 */
export function selectNullSpaceCut(values: ArrayLike<number>, opts: NullSpaceOptions): { rank: number; cut: NullSpaceCut } {
  const n = values.length;
  const tau = opts.nullspaceThreshold;
  const s = sortedMagnitudes(values); // (n) |λ| ascending
  let absRank = 0;
  while (absRank < n && s[absRank]! < tau) absRank++;
  if (opts.nullspaceRule === "absolute") return { rank: absRank, cut: cutDiagnostics(s, absRank, opts, "absolute", tau) };
  const floor = floorOf(s, opts);
  const mu = (i: number): number => Math.max(s[i]!, floor);
  const lo = tau / opts.nullspaceGapWindow;
  const hi = tau * opts.nullspaceGapWindow;
  let best = -1; // k of the best cut
  let bestRatio = 0;
  let bestDist = Infinity; // |log(centre / τ)|
  let runnerUp = 0;
  if (floor > 0) {
    for (let k = 1; k < n; k++) {
      const a = mu(k - 1);
      const b = mu(k);
      if (a > hi || b < lo) continue;
      const ratio = b / a;
      const dist = Math.abs(0.5 * Math.log(a * b) - Math.log(tau));
      if (best < 0 || ratio > bestRatio || (ratio === bestRatio && dist < bestDist)) {
        if (best >= 0) runnerUp = Math.max(runnerUp, bestRatio);
        best = k;
        bestRatio = ratio;
        bestDist = dist;
      } else runnerUp = Math.max(runnerUp, ratio);
    }
  }
  const windowStats = { windowBestRatio: best >= 0 ? bestRatio : null, windowRunnerUpRatio: runnerUp > 0 ? runnerUp : null };
  if (best >= 0 && bestRatio >= opts.nullspaceGapMinRatio) {
    const t = Math.sqrt(mu(best - 1) * mu(best));
    return { rank: best, cut: { ...cutDiagnostics(s, best, opts, "gap", t), ...windowStats } };
  }
  return { rank: absRank, cut: { ...cutDiagnostics(s, absRank, opts, "fallback", tau), ...windowStats } };
}

/** One line for logs: rank, applied rule, threshold, eigen-gap at the cut. */
export function describeCut(rank: number, dIn: number, cut: NullSpaceCut, opts: NullSpaceOptions): string {
  const g = (x: number | null): string => (x === null ? "–" : x.toPrecision(4));
  const gap = `eigen-gap at the cut ${g(cut.lower)} → ${g(cut.upper)} (×${g(cut.ratio)})`;
  const head = `null-space projector rank ${rank} of ${dIn}`;
  if (cut.applied === "absolute") return `${head} (absolute threshold ${opts.nullspaceThreshold}; ${gap}; eigh ${opts.nullspacePrecision})`;
  const window = `[${g(opts.nullspaceThreshold / opts.nullspaceGapWindow)}, ${g(opts.nullspaceThreshold * opts.nullspaceGapWindow)}]`;
  const margin = `runner-up gap ×${g(cut.windowRunnerUpRatio)}`;
  if (cut.applied === "gap") return `${head} (gap rule: effective threshold ${g(cut.effectiveThreshold)}; ${gap}; ${margin}; eigh ${opts.nullspacePrecision})`;
  return (
    `${head} (gap rule found no gap ≥ ×${opts.nullspaceGapMinRatio} in ${window} (largest ×${g(cut.windowBestRatio)}): ` +
    `fell back to the absolute threshold ${opts.nullspaceThreshold}; ${gap}; eigh ${opts.nullspacePrecision})`
  );
}

/**
 * Checks null-space options as a method's hyperparameters (E_CONFIG naming the parameter, prefixed
 * with `where`, e.g. "alphaedit"). The projector runs the same checks.
 */
export function checkNullSpaceOptions(where: string, p: NullSpaceOptions): void {
  const bad = (field: keyof NullSpaceOptions, msg: string, hint?: string): never => {
    throw new DeltaEditError("E_CONFIG", `${where}: ${field} ${msg}, got ${JSON.stringify(p[field])}`, { ...(hint ? { hint } : {}), context: { parameter: field, value: p[field] } });
  };
  const num = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
  if (!num(p.nullspaceThreshold) || p.nullspaceThreshold <= 0) bad("nullspaceThreshold", "must be a finite number > 0");
  if (!NULLSPACE_RULES.includes(p.nullspaceRule)) bad("nullspaceRule", `must be one of ${NULLSPACE_RULES.join(", ")}`, '"absolute" is the reference\'s |λ| < τ; "gap" cuts in a spectral gap near τ');
  if (!num(p.nullspaceGapWindow) || p.nullspaceGapWindow < 1) bad("nullspaceGapWindow", "must be a finite number ≥ 1 (the window is [τ/W, τ·W])");
  if (!num(p.nullspaceGapMinRatio) || p.nullspaceGapMinRatio <= 1) bad("nullspaceGapMinRatio", "must be a finite number > 1", "a gap must be much wider than eigh's rounding: 10 or more");
  if (!num(p.nullspaceGapFloor) || p.nullspaceGapFloor <= 0 || p.nullspaceGapFloor >= 1) bad("nullspaceGapFloor", "must be a number in (0, 1) (relative to λ_max)");
  if (!NULLSPACE_PRECISIONS.includes(p.nullspacePrecision)) bad("nullspacePrecision", `must be one of ${NULLSPACE_PRECISIONS.join(", ")}`);
}

/** The null-space options out of a larger parameter object (method params, projector params, meta). */
export function nullSpaceOptionsOf(p: NullSpaceOptions): NullSpaceOptions {
  return {
    nullspaceThreshold: p.nullspaceThreshold,
    nullspaceRule: p.nullspaceRule,
    nullspaceGapWindow: p.nullspaceGapWindow,
    nullspaceGapMinRatio: p.nullspaceGapMinRatio,
    nullspaceGapFloor: p.nullspaceGapFloor,
    nullspacePrecision: p.nullspacePrecision,
  };
}

/** (n) |values| ascending, float64. */
function sortedMagnitudes(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values, Math.abs).sort();
}

function floorOf(s: Float64Array, opts: NullSpaceOptions): number {
  return s.length === 0 ? 0 : opts.nullspaceGapFloor * s[s.length - 1]!;
}

/** Diagnostics of the cut that keeps the `rank` smallest of s (|λ| ascending). */
function cutDiagnostics(s: Float64Array, rank: number, opts: NullSpaceOptions, applied: NullSpaceCut["applied"], threshold: number): NullSpaceCut {
  const n = s.length;
  const floor = floorOf(s, opts);
  const lower = rank > 0 ? s[rank - 1]! : null;
  const upper = rank < n ? s[rank]! : null;
  const ratio = lower !== null && upper !== null && floor > 0 ? Math.max(upper, floor) / Math.max(lower, floor) : null;
  return { rule: opts.nullspaceRule, applied, effectiveThreshold: threshold, lower, upper, ratio, windowBestRatio: null, windowRunnerUpRatio: null, floor };
}

function checkCut(c: unknown, rule: NullSpaceRule, fn: string): NullSpaceCut {
  const bad = (msg: string): never => {
    throw new DeltaEditError("E_CHECKPOINT", `${fn}: meta.cut ${msg}`);
  };
  if (typeof c !== "object" || c === null) return bad("is missing");
  const x = c as Record<string, unknown>;
  const numOrNull = (k: string): number | null => {
    const v = x[k];
    if (v === null) return null;
    if (typeof v !== "number" || !Number.isFinite(v)) bad(`.${k} must be a finite number or null`);
    return v as number;
  };
  if (x["rule"] !== rule) bad(`.rule ${JSON.stringify(x["rule"])} differs from meta.nullspaceRule ${JSON.stringify(rule)}`);
  const applied = x["applied"];
  if (applied !== "absolute" && applied !== "gap" && applied !== "fallback") bad(`.applied must be "absolute", "gap" or "fallback"`);
  const t = numOrNull("effectiveThreshold");
  if (t === null || t <= 0) bad(".effectiveThreshold must be > 0");
  const floor = numOrNull("floor");
  return {
    rule,
    applied: applied as NullSpaceCut["applied"],
    effectiveThreshold: t!,
    lower: numOrNull("lower"),
    upper: numOrNull("upper"),
    ratio: numOrNull("ratio"),
    windowBestRatio: numOrNull("windowBestRatio"),
    windowRunnerUpRatio: numOrNull("windowRunnerUpRatio"),
    floor: floor ?? 0,
  };
}

/** eigh of the float32 C0 (dIn, dIn) widened exactly to float64; vectors returned as float32. */
function eigh64(c0: Float32Array, dIn: number): { values: Float64Array; vectors: Float32Array } {
  const { values, vectors } = ops.eigh(Float64Array.from(c0), dIn); // values (dIn) ascending; vectors (dIn, dIn)
  return { values, vectors: Float32Array.from(vectors) };
}

function resolveParams(opts: Partial<ProjectorParams>, fn: string): ProjectorParams {
  for (const key of Object.keys(opts)) {
    if (!(key in defaultProjectorParams)) {
      throw new DeltaEditError("E_CONFIG", `${fn}: unknown option "${key}" (known: ${Object.keys(defaultProjectorParams).join(", ")})`);
    }
  }
  const p: ProjectorParams = { ...defaultProjectorParams, ...opts };
  checkPositive(p.nullspaceThreshold, "nullspaceThreshold", fn);
  checkNullSpaceOptions(fn, p);
  return p;
}
