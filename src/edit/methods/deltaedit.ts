/**
 * DeltaEdit (spec §4.4): AlphaEdit's update rule plus a superimposed-noise monitor and a
 * conditional projection of the target optimisation.
 *
 * State across batches: the AlphaEdit projectors and solver state (shared `NullSpaceSolve`),
 * ΔW_acc (C, F) = the sum of every update applied to the z-layer matrix, the noise statistics
 * (μ, σ²) and the request counter c (NoiseMonitor).
 * Per request, right after the first forward of the target optimisation (δ = 0), before any
 * stopping test: c ← c + 1; if ΔW_acc exists, n = ΔW_acc κ (κ = the z-layer key at the bare
 * template's subject position, ODD-8), ν = ‖n‖; trigger iff c > warmupRequests, σ² ≠ 0 and
 * |ν − μ| > varMultiplier·√σ² (two-sided, ODD-4); when triggered, δ is projected after every Adam step
 * onto the orthogonal complement of the top eigen-directions (eigenvalue > 0.1, at most q = ⌊C·space⌋)
 * of G = ΔW_acc ΔW_accᵀ + n nᵀ (ODD-6/7/9), and the statistics are not updated; otherwise μ, σ² take
 * an EMA step. Every request of a batch sees the same (pre-batch) ΔW_acc (ODD-5).
 *
 * `variant: "paper"` is the paper as written (§4.4): the trigger is one-sided, ν > μ + varMultiplier·√σ²,
 * and P_δ removes the left singular vectors of ΔW_acc alone with s_j > 1e-6·s_1, at most ⌊3d/4⌋ of them
 * (exact float64 eigendecomposition, `buildPaperProjector`; `space`, `eigenvalueThreshold`,
 * `powerIterations` and `projectorMode` are then unused). Everything else is the same. The default
 * `variant: "official"` is the official code's behaviour described above.
 */
import { DeltaEditError } from "../../errors.js";
import * as ops from "../../kernels/ops.js";
import { insertionLoop } from "../insertion.js";
import { buildInfluenceProjector, buildPaperProjector, DELTAEDIT_VARIANTS, NoiseMonitor, noiseVector, type DeltaEditVariant, type InfluenceProjector, type NoiseParams } from "../noise.js";
import type { EditRequest } from "../request.js";
import type { ProjectionHook } from "../target.js";
import { checkNullSpaceOptions } from "../projector.js";
import { alphaEditDefaults, NullSpaceSolve, type AlphaEditParams } from "./alphaedit.js";
import { checkFamilyParams, computeTargets, familyOutcome, requestReport, targetParams } from "./memitFamily.js";
import { since, type BatchOutcome, type EditContext, type EditMethod, type RequestReport } from "./method.js";
import { resolveParams } from "./params.js";

/**
 * AlphaEdit's parameters (λ; the null-space choice τ — the reference hard-codes 0.02, ODD-11: read from
 * here — `nullspaceRule` and its parameters, `nullspacePrecision`; the solver) plus the noise monitor's.
 */
export interface DeltaEditParams extends AlphaEditParams {
  /**
   * "official" (default): the official code — two-sided trigger |ν − μ| > var·√σ², directions of
   * [n | ΔW_acc] with eigenvalue > eigenvalueThreshold, at most q = ⌊C·space⌋. "paper": the paper as
   * written — one-sided ν > μ + var·√σ², directions of ΔW_acc with s_j > 1e-6·s_1, at most ⌊3C/4⌋.
   */
  variant: DeltaEditVariant;
  /** Stop the target optimisation when the mean target probability exceeds this (ODD-3). */
  earlyStopAvgProb: number;
  /** Preset `var`: trigger multiplier of √σ². */
  varMultiplier: number;
  /** Preset `space`: q = ⌊C·space⌋ directions at most. */
  space: number;
  /** Requests before a trigger is possible (c > warmupRequests). */
  warmupRequests: number;
  /** α of the EMA of ν. */
  emaDecay: number;
  /** Keep directions of G with eigenvalue > this. */
  eigenvalueThreshold: number;
  /** Power iterations of the randomized SVD ("reference" mode). */
  powerIterations: number;
  /** "reference": seeded randomized top-q SVD (appendix B); "exact": top-q eigenpairs. */
  projectorMode: "reference" | "exact";
}

/** gpt2-xl preset (spec §6.1). */
export const deltaEditDefaults: DeltaEditParams = {
  ...alphaEditDefaults,
  editLayers: [...alphaEditDefaults.editLayers],
  variant: "official",
  earlyStopAvgProb: 0.98,
  varMultiplier: 3,
  space: 0.25,
  warmupRequests: 20,
  emaDecay: 0.9,
  eigenvalueThreshold: 0.1,
  powerIterations: 2,
  projectorMode: "reference",
};

export class DeltaEdit implements EditMethod {
  readonly name = "deltaedit" as const;
  readonly params: DeltaEditParams;
  monitor: NoiseMonitor;
  private core: NullSpaceSolve | null = null;
  /** ΔW_acc (C, F) out × in, null until the first batch has been applied. */
  deltaWAcc: Float32Array | null = null;

  constructor(overrides: Record<string, unknown>, numLayers: number) {
    this.params = resolveParams("deltaedit", deltaEditDefaults, overrides);
    checkFamilyParams("deltaedit", this.params, numLayers);
    checkNullSpaceOptions("deltaedit", this.params);
    if (!DELTAEDIT_VARIANTS.includes(this.params.variant)) {
      throw new DeltaEditError("E_CONFIG", `deltaedit: hyperparameter "variant" must be ${DELTAEDIT_VARIANTS.map((v) => `"${v}"`).join(" or ")}, got ${JSON.stringify(this.params.variant)}`, {
        hint: `"official" is the official code's behaviour (the default), "paper" the paper as written (spec §4.4); e.g. --set variant=paper`,
      });
    }
    this.monitor = new NoiseMonitor(this.noiseParams());
  }

  noiseParams(): NoiseParams {
    const p = this.params;
    return { variant: p.variant, warmupRequests: p.warmupRequests, emaDecay: p.emaDecay, varMultiplier: p.varMultiplier, space: p.space, eigenvalueThreshold: p.eigenvalueThreshold, powerIterations: p.powerIterations, mode: p.projectorMode };
  }

  private coreFor(ctx: EditContext): NullSpaceSolve {
    return (this.core ??= new NullSpaceSolve(ctx, this.params.l2, this.params, this.params.solver));
  }

  applyBatch(ctx: EditContext, requests: readonly EditRequest[]): BatchOutcome {
    const t0 = performance.now();
    const core = this.coreFor(ctx);
    for (const l of this.params.editLayers) core.projector(l);
    const C = ctx.model.arch.hidden;
    const F = ctx.model.arch.dFF;
    const monitorBefore = this.monitor.state;
    const noise: NonNullable<RequestReport["noise"]>[] = [];
    let gram: Float32Array | null = null; // (C, C) ΔW_acc ΔW_accᵀ, computed at the first trigger of the batch
    let paperProj: InfluenceProjector | null = null; // variant "paper": depends on ΔW_acc only, so once per batch
    let projectionSeconds = 0;
    const hookFor = (): ProjectionHook => (first) => {
      const req = this.monitor.beginRequest();
      if (!this.deltaWAcc) {
        noise.push({ requestCount: req.requestCount, nu: null, mu: null, variance: null, triggered: false, projectionRank: 0 });
        return null;
      }
      const { noise: n, nu } = noiseVector(this.deltaWAcc, first.kappa, C, F);
      const obs = this.monitor.observe(req, nu);
      let rank = 0;
      let project: ((d: Float32Array) => Float32Array) | null = null;
      if (obs.triggered) {
        const tp = performance.now();
        let proj: InfluenceProjector;
        if (this.params.variant === "paper") proj = paperProj ??= buildPaperProjector(this.deltaWAcc, C, F);
        else {
          if (!gram) {
            gram = new Float32Array(C * C);
            ops.syrk(this.deltaWAcc, gram, { n: C, k: F });
          }
          proj = buildInfluenceProjector({ gram, noise: n, d: C, params: this.noiseParams(), rng: ctx.rng });
        }
        rank = proj.rank;
        project = (d) => proj.apply(d);
        projectionSeconds += since(tp);
      }
      noise.push({ requestCount: obs.requestCount, nu, mu: obs.mu, variance: obs.variance, triggered: obs.triggered, projectionRank: rank });
      return project;
    };
    let ins;
    let results;
    let tTarget = 0;
    try {
      const tt = performance.now();
      const targets = computeTargets(ctx, requests, targetParams(this.params, this.params.earlyStopAvgProb), hookFor);
      tTarget = since(tt) - projectionSeconds;
      results = targets.results;
      ins = insertionLoop(ctx.model, requests, ctx.templates.memit, this.params.editLayers, this.params.targetLayer, targets.z, core);
    } catch (e) {
      core.discard();
      this.restoreMonitor(monitorBefore);
      throw e;
    }
    core.commit();
    const zUpdate = ins.updates.find((u) => u.layer === this.params.targetLayer)!;
    this.accumulate(zUpdate.influence!, zUpdate.activation!, zUpdate.n, C, F);
    const reports = requests.map((r, j) => ({ ...requestReport(r, results[j]!), noise: noise[j]! }));
    const replayData = { noise: noise.map((x) => ({ requestCount: x.requestCount, nu: x.nu })) };
    return familyOutcome(requests, results, ins, t0, tTarget, { reports, replayData, extraTimings: { projection: projectionSeconds } });
  }

  private restoreMonitor(s: { requestCount: number; mu: number | null; variance: number | null }): void {
    this.monitor = new NoiseMonitor(this.noiseParams(), s);
  }

  /** ΔW_acc += R Xᵀ (float32, out × in). */
  private accumulate(influence: Float32Array, activation: Float32Array, n: number, C: number, F: number): void {
    const first = this.deltaWAcc === null;
    this.deltaWAcc ??= new Float32Array(C * F);
    ops.gemm(influence, activation, this.deltaWAcc, { m: C, n: F, k: n, transB: true, beta: first ? 0 : 1 });
  }

  replay(ctx: EditContext, outcome: BatchOutcome): void {
    const core = this.coreFor(ctx);
    const noise = (outcome.replayData["noise"] ?? []) as { requestCount: number; nu: number | null }[];
    for (const x of noise) {
      const req = this.monitor.beginRequest();
      if (x.nu !== null) this.monitor.observe(req, x.nu);
    }
    for (const u of outcome.updates) core.replayKeys(u.layer, u.keys!, u.n);
    core.commit();
    const z = outcome.updates.find((u) => u.layer === this.params.targetLayer)!;
    this.accumulate(z.influence!, z.activation!, z.n, ctx.model.arch.hidden, ctx.model.arch.dFF);
  }
}
