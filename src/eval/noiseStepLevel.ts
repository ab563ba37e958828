/**
 * Superimposed noise without factors: the step-level route for dense updates (FT, RECT's masked
 * update, PRUNE's restraint; evaluation spec §6.4–6.5), labelled "step-level, no decomposition".
 *
 *   N_i(n) = (W_n − W_0) k_i − Δ_step(i) k_i          (final)
 *   N_i    = (W_before step(i) − W_0) k_i             (prefix, needs `trackTotal`)
 *
 * `Δ_step(i) k_i` is recorded at edit time (one gemm per step), so only the keys and one C-vector per
 * request are kept, plus ΔW_total when `trackTotal` (C × F floats). The signal is the step's own
 * response S_i = Δ_step(i) k_i; the projection is ρ_i = S_i·N_i / ‖S_i‖. No activation/interference
 * decomposition exists on this route.
 *
 * Dimension legend: n requests, C output channels, F input channels, N columns of one step.
 */
import { DeltaEditError } from "../errors.js";
import * as ops from "../kernels/ops.js";
import type { LayerUpdate } from "../edit/methods/method.js";
import { emptyMeasurement, finishDerived, type NoiseMeasurement, type NoiseVariant } from "./noise.js";

export interface StepNoiseOptions {
  /** Keep ΔW_total = Σ applied updates (C, F) here, enabling `prefix` and `final` without a supplied total. */
  trackTotal?: boolean;
}

/** Records, per request of one edited layer, its key and its own step's response Δ_step k_i. */
export class StepNoiseRecorder {
  private keyRows: Float32Array[] = []; // n × (F): k_i
  private stepResponse: Float32Array[] = []; // (C) each: Δ_step(i) k_i
  private priorResponse: Float32Array[] = []; // (C) each: ΔW_before k_i (trackTotal only)
  readonly total: Float32Array | null; // (C, F) ΔW_total out × in
  private steps = 0;

  constructor(readonly layer: number, readonly C: number, readonly F: number, opts: StepNoiseOptions = {}) {
    this.total = opts.trackTotal === true ? new Float32Array(C * F) : null;
  }

  /** Requests recorded. */
  get n(): number {
    return this.keyRows.length;
  }

  get stepCount(): number {
    return this.steps;
  }

  /**
   * Record one step's applied update at this layer: `u.dense` (C, F) when present, else R Xᵀ from its
   * factors. `keys` (F, N) default to `u.keys`; a step with N = 0 (PRUNE's final restraint) only
   * changes the total.
   */
  addStep(u: LayerUpdate, keys: Float32Array | null = u.keys, N: number = u.n): void {
    const fn = "StepNoiseRecorder.addStep", { C, F } = this;
    if (u.layer !== this.layer) throw ops.argError(fn, "u.layer", `expected layer ${this.layer}, got ${u.layer}`);
    const dense = u.dense !== null ? ops.checkF32(u.dense, C * F, fn, "u.dense", "C*F") : null;
    if (dense === null && (u.influence === null || u.activation === null)) {
      throw ops.argError(fn, "u", `layer ${u.layer}: neither a dense update nor influence/activation factors were recorded`);
    }
    if (N > 0 && keys === null) throw ops.argError(fn, "keys", `layer ${u.layer}: ${N} requests but no keys (FT records none: pass the subject keys (F, N))`);
    this.steps++;
    if (N > 0 && keys !== null) {
      ops.checkF32(keys, F * N, fn, "keys", "F*N");
      const resp = new Float32Array(C * N); // (C, N) Δ_step K
      if (dense !== null) ops.gemm(dense, keys, resp, { m: C, n: N, k: F });
      else {
        const n = u.n;
        const xk = new Float32Array(n * N); // (n, N) Xᵀ K
        ops.gemm(u.activation!, keys, xk, { m: n, n: N, k: F, transA: true });
        ops.gemm(u.influence!, xk, resp, { m: C, n: N, k: n });
      }
      const prior = this.total === null ? null : new Float32Array(C * N); // (C, N) ΔW_before K
      if (prior !== null) ops.gemm(this.total!, keys, prior, { m: C, n: N, k: F });
      for (let c = 0; c < N; c++) {
        const k = new Float32Array(F), s = new Float32Array(C);
        for (let t = 0; t < F; t++) k[t] = keys[t * N + c]!;
        for (let r = 0; r < C; r++) s[r] = resp[r * N + c]!;
        this.keyRows.push(k);
        this.stepResponse.push(s);
        if (prior !== null) {
          const p = new Float32Array(C);
          for (let r = 0; r < C; r++) p[r] = prior[r * N + c]!;
          this.priorResponse.push(p);
        }
      }
    }
    if (this.total !== null) {
      if (dense !== null) for (let e = 0; e < C * F; e++) this.total[e]! += dense[e]!;
      else ops.gemm(u.influence!, u.activation!, this.total, { m: C, n: F, k: u.n, transB: true, beta: 1 });
    }
  }

  /**
   * Step-level noise of the first `edits` requests. `final` needs `deltaTotal` = W − W_0 (C, F) at the
   * moment of measurement (default: the tracked total); `prefix` needs `trackTotal`.
   */
  measure(opts: { variant?: NoiseVariant; edits?: number; deltaTotal?: Float32Array } = {}): NoiseMeasurement {
    const fn = "StepNoiseRecorder.measure", { C, F } = this;
    const variant = opts.variant ?? "final";
    const n = opts.edits ?? this.n;
    if (!Number.isInteger(n) || n < 0 || n > this.n) throw ops.argError(fn, "opts.edits", `expected an integer in [0, ${this.n}], got ${n}`);
    const out = emptyMeasurement(this.layer, n, variant, "step", "solver", "step-level, no decomposition", false, false);
    let resp: Float32Array | null = null; // (n, C) rows (W − W0) k_i
    if (variant === "final") {
      const total = opts.deltaTotal ?? this.total;
      if (total === null) throw new DeltaEditError("E_ARG", `${fn}: variant "final" needs opts.deltaTotal (W − W0, (C, F)) or a recorder made with trackTotal`);
      ops.checkF32(total, C * F, fn, "opts.deltaTotal", "C*F");
      const keys = new Float32Array(n * F); // (n, F)
      for (let i = 0; i < n; i++) keys.set(this.keyRows[i]!, i * F);
      resp = new Float32Array(n * C);
      if (n > 0) ops.gemm(keys, total, resp, { m: n, n: C, k: F, transB: true });
    } else if (this.total === null) {
      throw new DeltaEditError("E_ARG", `${fn}: variant "prefix" needs a recorder made with trackTotal (ΔW before each step is recorded at edit time)`);
    }
    for (let i = 0; i < n; i++) {
      const s = this.stepResponse[i]!;
      let sq = 0, ss = 0, sn = 0;
      for (let c = 0; c < C; c++) {
        const nc = resp !== null ? resp[i * C + c]! - s[c]! : this.priorResponse[i]![c]!;
        sq += nc * nc;
        ss += s[c]! * s[c]!;
        sn += s[c]! * nc;
      }
      out.normSquared[i] = sq;
      out.norm[i] = Math.sqrt(sq);
      out.signal[i] = Math.sqrt(ss);
      out.projection[i] = ss > 0 ? sn / Math.sqrt(ss) : 0;
    }
    finishDerived(out);
    return out;
  }
}
