/**
 * Superimposed noise, measured from recorded factors (evaluation spec §6.3–6.5), for every method
 * whose updates are low-rank (ROME, MEMIT, AlphaEdit, DeltaEdit; RECT approximately).
 *
 * Every update of an edited matrix is Δ_step = Σ_{j in step} α_j β_jᵀ with
 *   influence vector  α_j (C)  = a column of the recorded influence R,
 *   activation vector β_j (F)  = a column of the recorded activation X,
 *   key               k_j (F)  = a column of the recorded solver keys K.
 * The edited layer answers key k_i with W_0 k_i + Σ_j α_j (β_j·k_i). For edit i after n edits:
 *   signal              S_i = α_i (β_i·k_i)
 *   superimposed noise  N_i = Σ_{j≠i} α_j (β_j·k_i)                       (C)
 *   ‖N_i‖² = Σ_{j≠i} g_ji² h_jj  +  Σ_{j≠l; j,l≠i} g_ji g_li h_jl
 *            (activation energy)     (interference)
 *   projection on the edit's own direction ρ_i = α_i·N_i / ‖α_i‖, orthogonal drift ‖N_i‖² − ρ_i²
 * with g_ji = β_j·k_i (G = Beta Keysᵀ) and h_jl = α_j·α_l (H = Alpha Alphaᵀ).
 *
 * Variants (every result carries its labels): `final` sums over all j ≠ i up to n, `prefix` over
 * j < i (what DeltaEdit's monitor sees when edit i is made); `request`-level excludes only column i,
 * `step`-level excludes the whole step (batch) containing i (they coincide with one request per
 * step); `key` names which keys k_i are used (the recorded solver keys unless overridden).
 *
 * Dense updates (FT, PRUNE's restraint) have no factors: see noiseStepLevel.ts.
 *
 * Dimension legend: n requests (edits, global order), C output channels (hidden), F input
 * channels (MLP width), N columns of one step.
 */
import { DeltaEditError } from "../errors.js";
import * as ops from "../kernels/ops.js";
import type { LayerUpdate } from "../edit/methods/method.js";

/** Which update the noise is measured against: the final accumulated one, or each prefix. */
export type NoiseVariant = "final" | "prefix";
/** Noise per request or per target-optimisation step. */
export type NoiseLevel = "request" | "step";
/** Which keys k_i are scored: recorded solver keys, the monitor's bare-prompt key, or keys recomputed on the edited model. */
export type NoiseKey = "solver" | "bare-prompt" | "recomputed-on-final-model";
/** How the noise was computed: from the recorded factors, or step-level without decomposition. */
export type NoiseRoute = "factors" | "step-level, no decomposition";

/** Growable row store: rows of `width` float32 values. */
class Rows {
  data: Float32Array; // (capacity, width)
  count = 0;
  constructor(readonly width: number) {
    this.data = new Float32Array(width * 16);
  }
  /** Append the N columns of a row-major (width, N) matrix as N rows. */
  appendColumns(m: Float32Array, N: number): void {
    this.reserve(this.count + N);
    const w = this.width;
    for (let c = 0; c < N; c++) {
      const row = (this.count + c) * w;
      for (let r = 0; r < w; r++) this.data[row + r] = m[r * N + c]!;
    }
    this.count += N;
  }
  reserve(rows: number): void {
    if (rows * this.width <= this.data.length) return;
    let cap = this.data.length / this.width;
    while (cap < rows) cap *= 2;
    const next = new Float32Array(cap * this.width);
    next.set(this.data.subarray(0, this.count * this.width));
    this.data = next;
  }
  view(rows: number): Float32Array {
    return this.data.subarray(0, rows * this.width);
  }
}

/** The factors of one edited layer, rows in global request order. */
export interface NoiseLayerFactors {
  layer: number;
  n: number; // requests recorded
  C: number;
  F: number;
  alpha: Float32Array; // (n, C) influence vectors α_j
  beta: Float32Array; // (n, F) activation vectors β_j
  keys: Float32Array; // (n, F) solver keys k_j
  step: Int32Array; // (n) 0-based step (batch) index of each request
  /** True when an applied update differed from α βᵀ (RECT's mask): the decomposition is approximate. */
  approximate: boolean;
  /** Steps whose update at this layer was dense only (PRUNE's restraint, FT): not in the factors. */
  denseSteps: number;
}

interface LayerStore {
  alpha: Rows;
  beta: Rows;
  keys: Rows;
  step: number[];
  approximate: boolean;
  denseSteps: number;
}

/**
 * Accumulates the influence/activation/key factors of a stream of LayerUpdates (one `addStep` per
 * edit step, i.e. per batch). `layers` restricts which layers are kept (memory: 2F + C floats per
 * request and layer; GPT2-XL, 3,000 requests: about 0.17 GB per layer).
 */
export class NoiseFactors {
  private readonly store = new Map<number, LayerStore>();
  private steps = 0;

  constructor(readonly C: number, readonly F: number, private readonly onlyLayers: readonly number[] | null = null) {}

  /** Number of steps added so far. */
  get stepCount(): number {
    return this.steps;
  }

  /** Record the updates of one edit step (all its layers). Dense-only updates are counted, not stored. */
  addStep(updates: readonly LayerUpdate[]): void {
    const { C, F } = this;
    for (const u of updates) {
      if (this.onlyLayers !== null && !this.onlyLayers.includes(u.layer)) continue;
      let s = this.store.get(u.layer);
      if (s === undefined) {
        s = { alpha: new Rows(C), beta: new Rows(F), keys: new Rows(F), step: [], approximate: false, denseSteps: 0 };
        this.store.set(u.layer, s);
      }
      if (u.influence === null || u.activation === null || u.keys === null) {
        if (u.dense !== null) s.denseSteps++;
        continue;
      }
      const N = u.n;
      ops.checkF32(u.influence, C * N, "NoiseFactors.addStep", `updates[layer ${u.layer}].influence`, "C*N");
      ops.checkF32(u.activation, F * N, "NoiseFactors.addStep", `updates[layer ${u.layer}].activation`, "F*N");
      ops.checkF32(u.keys, F * N, "NoiseFactors.addStep", `updates[layer ${u.layer}].keys`, "F*N");
      s.alpha.appendColumns(u.influence, N);
      s.beta.appendColumns(u.activation, N);
      s.keys.appendColumns(u.keys, N);
      for (let c = 0; c < N; c++) s.step.push(this.steps);
      if (u.dense !== null) s.approximate = true; // applied update ≠ R Xᵀ (RECT)
    }
    this.steps++;
  }

  /** Layers with recorded updates, ascending. */
  layers(): number[] {
    return [...this.store.keys()].sort((a, b) => a - b);
  }

  /** The headline layer L*: the last (highest) edited layer with factors. */
  headlineLayer(): number {
    const ls = this.layers().filter((l) => (this.store.get(l)?.alpha.count ?? 0) > 0);
    const last = ls[ls.length - 1];
    if (last === undefined) throw new DeltaEditError("E_ARG", "NoiseFactors.headlineLayer: no low-rank update was recorded");
    return last;
  }

  layer(layer: number): NoiseLayerFactors {
    const s = this.store.get(layer);
    if (s === undefined) throw new DeltaEditError("E_ARG", `NoiseFactors.layer: layer ${layer} has no recorded update (recorded: ${this.layers().join(", ") || "none"})`);
    const n = s.alpha.count;
    return {
      layer, n, C: this.C, F: this.F,
      alpha: s.alpha.view(n), beta: s.beta.view(n), keys: s.keys.view(n), step: Int32Array.from(s.step),
      approximate: s.approximate, denseSteps: s.denseSteps,
    };
  }
}

export interface NoiseOptions {
  /** Score after this many requests (default: all recorded). */
  edits?: number;
  variant?: NoiseVariant; // default "final"
  level?: NoiseLevel; // default "request"
  /** Replace the solver keys by other keys (n, F) for k_i (the α, β of the updates are unchanged). */
  keys?: { keys: Float32Array; label: NoiseKey };
}

/** Per-edit noise of one layer after `edits` requests; every array is (edits), index i = request i. */
export interface NoiseMeasurement {
  layer: number;
  edits: number;
  variant: NoiseVariant;
  level: NoiseLevel;
  key: NoiseKey;
  route: NoiseRoute;
  approximate: boolean;
  norm: Float64Array; // ‖N_i‖
  normSquared: Float64Array; // ‖N_i‖²
  signal: Float64Array; // ‖S_i‖
  relative: Float64Array; // ‖N_i‖ / ‖S_i‖ (NaN where S_i = 0)
  projection: Float64Array; // ρ_i
  drift: Float64Array; // ‖N_i‖² − ρ_i²
  activationEnergy: Float64Array | null; // Σ_{j≠i} g_ji² h_jj (null on the dense route)
  interference: Float64Array | null; // Σ_{j≠l; j,l≠i} g_ji g_li h_jl
}

/** Whether request j contributes to N_i under a variant and level. */
export function contributes(j: number, i: number, step: Int32Array, variant: NoiseVariant, level: NoiseLevel): boolean {
  if (level === "request") return variant === "final" ? j !== i : j < i;
  return variant === "final" ? step[j] !== step[i] : step[j]! < step[i]!;
}

/**
 * Superimposed noise of every request i < edits at one layer, from the factors:
 * G = Beta Keysᵀ, H = Alpha Alphaᵀ (float32 BLAS), then M = H Gm in float64 with Gm the masked G;
 * ‖N_i‖² = Σ_j Gm[j,i] M[j,i], ρ_i ‖α_i‖ = M[i,i]. Cost O(n²(C + F) + n³); n = 3000 fits (n² floats).
 */
export function measureNoise(f: NoiseLayerFactors, opts: NoiseOptions = {}): NoiseMeasurement {
  const fn = "measureNoise";
  const n = opts.edits ?? f.n;
  if (!Number.isInteger(n) || n < 0 || n > f.n) throw ops.argError(fn, "opts.edits", `expected an integer in [0, ${f.n}] (requests recorded at layer ${f.layer}), got ${n}`);
  const variant = opts.variant ?? "final", level = opts.level ?? "request";
  const { C, F } = f;
  const alpha = f.alpha.subarray(0, n * C); // (n, C)
  const beta = f.beta.subarray(0, n * F); // (n, F)
  const keys = opts.keys === undefined ? f.keys.subarray(0, n * F) : ops.checkF32(opts.keys.keys, n * F, fn, "opts.keys.keys", "edits*F", true).subarray(0, n * F); // (n, F)
  const g32 = new Float32Array(n * n); // (n, n) G[j,i] = β_j·k_i
  const h32 = new Float32Array(n * n); // (n, n) H[j,l] = α_j·α_l
  if (n > 0) {
    ops.gemm(beta, keys, g32, { m: n, n, k: F, transB: true });
    ops.syrk(alpha, h32, { n, k: C });
  }
  const gm = new Float64Array(n * n); // (n, n) masked G
  const h = Float64Array.from(h32); // (n, n)
  for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) if (contributes(j, i, f.step, variant, level)) gm[j * n + i] = g32[j * n + i]!;
  const m = new Float64Array(n * n); // (n, n) M = H Gm, M[j,i] = Σ_l h_jl g_li
  if (n > 0) ops.gemm(h, gm, m, { m: n, n, k: n });
  const out = emptyMeasurement(f.layer, n, variant, level, opts.keys?.label ?? "solver", "factors", f.approximate, true);
  const act = out.activationEnergy!, inter = out.interference!;
  for (let i = 0; i < n; i++) {
    let sq = 0, a = 0;
    for (let j = 0; j < n; j++) {
      const g = gm[j * n + i]!;
      if (g === 0) continue;
      sq += g * m[j * n + i]!;
      a += g * g * h[j * n + j]!;
    }
    const alphaNorm = Math.sqrt(h[i * n + i]!);
    out.normSquared[i] = sq;
    out.norm[i] = Math.sqrt(Math.max(sq, 0));
    act[i] = a;
    inter[i] = sq - a;
    out.signal[i] = alphaNorm * Math.abs(g32[i * n + i]!);
    out.projection[i] = alphaNorm > 0 ? m[i * n + i]! / alphaNorm : 0;
  }
  finishDerived(out);
  return out;
}

/** N_i vectors themselves (C) for chosen requests, N_i = Alphaᵀ g (for checks and plots). */
export function noiseVectors(f: NoiseLayerFactors, requests: readonly number[], opts: NoiseOptions = {}): Float32Array[] {
  const n = opts.edits ?? f.n;
  const variant = opts.variant ?? "final", level = opts.level ?? "request";
  const keys = opts.keys?.keys ?? f.keys;
  return requests.map((i) => {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw ops.argError("noiseVectors", "requests", `index ${i} outside [0, ${n})`);
    const out = new Float64Array(f.C); // (C)
    const ki = keys.subarray(i * f.F, (i + 1) * f.F); // (F)
    for (let j = 0; j < n; j++) {
      if (!contributes(j, i, f.step, variant, level)) continue;
      let g = 0;
      const bj = f.beta.subarray(j * f.F, (j + 1) * f.F);
      for (let t = 0; t < f.F; t++) g += bj[t]! * ki[t]!;
      const aj = f.alpha.subarray(j * f.C, (j + 1) * f.C);
      for (let c = 0; c < f.C; c++) out[c]! += g * aj[c]!;
    }
    return Float32Array.from(out);
  });
}

/** An all-zero measurement to be filled (shared with the dense route). */
export function emptyMeasurement(layer: number, n: number, variant: NoiseVariant, level: NoiseLevel, key: NoiseKey, route: NoiseRoute,
  approximate: boolean, decomposed: boolean): NoiseMeasurement {
  const z = (): Float64Array => new Float64Array(n);
  return {
    layer, edits: n, variant, level, key, route, approximate,
    norm: z(), normSquared: z(), signal: z(), relative: z(), projection: z(), drift: z(),
    activationEnergy: decomposed ? z() : null, interference: decomposed ? z() : null,
  };
}

/** Fill `relative` and `drift` from norm, signal and projection. */
export function finishDerived(m: NoiseMeasurement): void {
  for (let i = 0; i < m.edits; i++) {
    const s = m.signal[i]!;
    m.relative[i] = s > 0 ? m.norm[i]! / s : Number.NaN;
    m.drift[i] = m.normSquared[i]! - m.projection[i]! ** 2;
  }
}

/** Aggregates of one measurement: noise_E(n) and companions, with every label. */
export interface NoiseSummary {
  edits: number; // n
  layer: number;
  variant: NoiseVariant;
  level: NoiseLevel;
  key: NoiseKey;
  route: NoiseRoute;
  approximate: boolean;
  /** Human-readable label, e.g. "final, key=solver, request-level, factors, layer 17". */
  label: string;
  noiseE: number; // mean_i ‖N_i(n)‖
  median: number; // median_i ‖N_i(n)‖
  meanSquared: number; // mean_i ‖N_i‖² (= meanActivationEnergy + meanInterference)
  meanRelative: number | null; // mean of ‖N_i‖/‖S_i‖ over i with S_i ≠ 0
  meanProjection: number; // mean ρ_i
  negativeProjectionFraction: number; // share of i with ρ_i < 0 (noise against the desired change)
  meanDrift: number; // mean ‖N_i‖² − ρ_i²
  meanActivationEnergy: number | null;
  meanInterference: number | null;
}

export function noiseLabel(m: Pick<NoiseMeasurement, "variant" | "key" | "level" | "route" | "layer" | "approximate">): string {
  const how = m.route === "factors" ? `${m.level}-level, factors` : m.route; // the dense route is step-level by construction
  return `${m.variant}, key=${m.key}, ${how}, layer ${m.layer}${m.approximate ? ", approximate" : ""}`;
}

export function summarizeMeasurement(m: NoiseMeasurement): NoiseSummary {
  const n = m.edits;
  const mean = (a: Float64Array | null): number | null => {
    if (a === null) return null;
    let s = 0, c = 0;
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(a[i]!)) continue;
      s += a[i]!;
      c++;
    }
    return c > 0 ? s / c : n === 0 ? 0 : null;
  };
  const sorted = Float64Array.from(m.norm).sort();
  const median = n === 0 ? 0 : n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  let neg = 0;
  for (let i = 0; i < n; i++) if (m.projection[i]! < 0) neg++;
  return {
    edits: n, layer: m.layer, variant: m.variant, level: m.level, key: m.key, route: m.route, approximate: m.approximate,
    label: noiseLabel(m),
    noiseE: mean(m.norm) ?? 0,
    median,
    meanSquared: mean(m.normSquared) ?? 0,
    meanRelative: mean(m.relative),
    meanProjection: mean(m.projection) ?? 0,
    negativeProjectionFraction: n === 0 ? 0 : neg / n,
    meanDrift: mean(m.drift) ?? 0,
    meanActivationEnergy: mean(m.activationEnergy),
    meanInterference: mean(m.interference),
  };
}

/**
 * noise_E and companions at each checkpoint (number of requests), at the headline layer L*
 * (or `opts.layer`). Checkpoints beyond the recorded requests are an error.
 */
export function summarizeNoise(factors: NoiseFactors, checkpoints: readonly number[], opts: Omit<NoiseOptions, "edits"> & { layer?: number } = {}): NoiseSummary[] {
  const f = factors.layer(opts.layer ?? factors.headlineLayer());
  return checkpoints.map((edits) => summarizeMeasurement(measureNoise(f, { ...opts, edits })));
}

/** Model-level deviation D_i(n) = ‖h_{L*} − z*_i‖ (§6.6); the orchestrator supplies both vectors (C). */
export interface Deviation {
  deviation: number; // ‖h − z*‖
  targetNorm: number; // ‖z*‖
  relative: number; // ‖h − z*‖ / ‖z*‖ (NaN when z* = 0)
}

export function modelDeviation(zStar: Float32Array, h: Float32Array): Deviation {
  ops.checkF32(h, zStar.length, "modelDeviation", "h", "C (the length of zStar)");
  let d = 0, z = 0;
  for (let c = 0; c < zStar.length; c++) {
    d += (h[c]! - zStar[c]!) ** 2;
    z += zStar[c]! ** 2;
  }
  const deviation = Math.sqrt(d), targetNorm = Math.sqrt(z);
  return { deviation, targetNorm, relative: targetNorm > 0 ? deviation / targetNorm : Number.NaN };
}

/** Mean and median of D_i(n) over the requests scored, and the mean relative deviation. */
export function summarizeDeviation(ds: readonly Deviation[]): { edits: number; mean: number; median: number; meanRelative: number } {
  const v = ds.map((d) => d.deviation).sort((a, b) => a - b);
  const n = v.length;
  const rel = ds.map((d) => d.relative).filter(Number.isFinite);
  return {
    edits: n,
    mean: n === 0 ? 0 : v.reduce((a, b) => a + b, 0) / n,
    median: n === 0 ? 0 : n % 2 === 1 ? v[(n - 1) / 2]! : (v[n / 2 - 1]! + v[n / 2]!) / 2,
    meanRelative: rel.length === 0 ? Number.NaN : rel.reduce((a, b) => a + b, 0) / rel.length,
  };
}
