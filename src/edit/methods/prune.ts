/**
 * PRUNE (spec §4.6, ODD-20): plain sequential MEMIT edits (MEMIT's targets, insertion loop and
 * per-layer solve, reused), then a one-off restraint of the accumulated perturbation of every
 * edited matrix in `finish`.
 *
 *   W0 = the edited matrix before the first batch (snapshot, out × in (C, F))
 *   ΔW = W − W0 = U diag(s) Vᵀ  (full thin SVD, float32)
 *   F(s) = log_α(s) − log_α(σmax) + σmax  for s above σmax = σ_max(W0), F(s) = s otherwise
 *   variant "reference" (AlphaEdit repository): α = e, strict s > σmax, no rank truncation,
 *       W ← W + U diag(F(s)) Vᵀ  =  W0 + ΔW + F(ΔW)   (the repository's double counting, ODD-20)
 *   variant "replace" (official PRUNE / the paper): α = `base`, s ≥ σmax, r = numerical rank of ΔW,
 *       W ← W0 + U_r diag(F(s)_r) V_rᵀ
 * `finish` returns the applied change of each matrix as a dense LayerUpdate (C, F) out × in.
 * Numbers produced with PRUNE must name the variant (it is in `params.variant` and in the log).
 *
 * Dimension legend: C hidden width, F key width (d_ff), p = min(C, F).
 */
import * as ops from "../../kernels/ops.js";
import { DeltaEditError } from "../../errors.js";
import { insertionLoop } from "../insertion.js";
import type { EditRequest } from "../request.js";
import { applyDense, weightOutIn } from "../update.js";
import { memitDefaults, MemitLayerSolve, type MemitParams } from "./memit.js";
import { checkFamilyParams, computeTargets, familyOutcome, targetParams } from "./memitFamily.js";
import { since, type BatchOutcome, type EditContext, type EditMethod, type LayerUpdate } from "./method.js";
import { resolveParams } from "./params.js";

export interface PruneParams extends MemitParams {
  /** "reference": W0 + ΔW + F(ΔW), natural log, s > σmax; "replace": W0 + F(ΔW), base α, s ≥ σmax, rank r. */
  variant: "reference" | "replace";
  /** α of log_α in the "replace" variant (official PRUNE class default 1.2); "reference" uses e. */
  base: number;
}

/** MEMIT's gpt2-xl preset (spec §6.3) plus the PRUNE constants. */
export const pruneDefaults: PruneParams = { ...memitDefaults, variant: "reference", base: 1.2 };

/** Machine epsilon of float32: the numerical rank counts s > σ_max(ΔW) · max(C, F) · ε (torch.linalg.matrix_rank). */
const FLOAT32_EPSILON = 2 ** -23;

/** The restraint F(s) for one singular value, given σmax and the variant's rule. */
export function restrain(s: number, sigmaMax: number, variant: PruneParams["variant"], base: number): number {
  const above = variant === "reference" ? s > sigmaMax : s >= sigmaMax;
  if (!above) return s;
  const logBase = variant === "reference" ? 1 : Math.log(base);
  return Math.log(s) / logBase - Math.log(sigmaMax) / logBase + sigmaMax;
}

export class Prune implements EditMethod {
  readonly name = "prune" as const;
  readonly params: PruneParams;
  private layerSolve: MemitLayerSolve | null = null;
  /** W0 per edited layer (C, F) out × in, snapshotted before the first batch. */
  private readonly original = new Map<number, Float32Array>();

  constructor(overrides: Record<string, unknown>, numLayers: number) {
    this.params = resolveParams("prune", pruneDefaults, overrides);
    checkFamilyParams("prune", this.params, numLayers);
    if (this.params.variant !== "reference" && this.params.variant !== "replace") throw new DeltaEditError("E_CONFIG", `prune: variant must be "reference" or "replace", got "${String(this.params.variant)}"`);
    if (!(this.params.base > 1)) throw new DeltaEditError("E_CONFIG", `prune: base must be > 1, got ${this.params.base}`);
  }

  /** Take W0 if not yet taken (before the first batch touches the matrices). */
  private snapshot(ctx: EditContext): void {
    for (const l of this.params.editLayers) if (!this.original.has(l)) this.original.set(l, weightOutIn(ctx.model.arch.editTarget(l)));
  }

  applyBatch(ctx: EditContext, requests: readonly EditRequest[]): BatchOutcome {
    const t0 = performance.now();
    this.snapshot(ctx);
    const { z, results } = computeTargets(ctx, requests, targetParams(this.params, null));
    const tTarget = since(t0);
    this.layerSolve ??= new MemitLayerSolve(ctx, this.params.mom2UpdateWeight);
    const ins = insertionLoop(ctx.model, requests, ctx.templates.memit, this.params.editLayers, this.params.targetLayer, z, this.layerSolve);
    return familyOutcome(requests, results, ins, t0, tTarget);
  }

  /**
   * Replay is called BEFORE the session re-applies the outcome's factors (as applyBatch would
   * snapshot before applying): W0 is taken from the weights as they are now.
   */
  replay(ctx: EditContext): void {
    this.snapshot(ctx);
  }

  /** The one-off restraint; returns the applied change per edited layer (dense (C, F)). */
  finish(ctx: EditContext): LayerUpdate[] {
    const { variant, base } = this.params;
    const out: LayerUpdate[] = [];
    if (this.original.size === 0) return out;
    for (const layer of this.params.editLayers) {
      const w0 = this.original.get(layer)!; // (C, F)
      const target = ctx.model.arch.editTarget(layer);
      const C = target.dOut;
      const F = target.dIn;
      const p = Math.min(C, F);
      const w = weightOutIn(target); // (C, F)
      const dw = new Float32Array(C * F); // (C, F) ΔW = W − W0
      for (let i = 0; i < C * F; i++) dw[i] = w[i]! - w0[i]!;
      const sigmaMax = ops.svd(w0.slice(), C, F).s[0]!; // σ_max(W0)
      const { u, s, vt } = ops.svd(dw, C, F); // u (C, p), s (p) descending, vt (p, F)
      const rankTol = (s[0] ?? 0) * Math.max(C, F) * FLOAT32_EPSILON;
      const r = variant === "replace" ? s.filter((x) => x > rankTol).length : p;
      const fs = new Float32Array(p); // F(s) (p), zero beyond the rank r in "replace"
      let restrained = 0;
      for (let k = 0; k < r; k++) {
        fs[k] = restrain(s[k]!, sigmaMax, variant, base);
        if (fs[k] !== s[k]) restrained++;
      }
      const us = new Float32Array(C * p); // (C, p) U diag(F(s))
      for (let c = 0; c < C; c++) for (let k = 0; k < p; k++) us[c * p + k] = u[c * p + k]! * fs[k]!;
      const fdw = new Float32Array(C * F); // (C, F) U diag(F(s)) Vᵀ
      ops.gemm(us, vt, fdw, { m: C, n: F, k: p });
      // reference: W ← W + F(ΔW) (applied = F(ΔW)); replace: W ← W0 + F(ΔW) (applied = F(ΔW) − ΔW)
      const applied = fdw;
      if (variant === "replace") for (let i = 0; i < C * F; i++) applied[i] = fdw[i]! - dw[i]!;
      applyDense(target, applied);
      ctx.log(`prune (${variant}): layer ${layer}: σmax(W0) ${sigmaMax.toPrecision(4)}, ‖ΔW‖₂ ${(s[0] ?? 0).toPrecision(4)}, ${restrained} of ${r} singular values restrained`);
      out.push({ layer, n: 0, keys: null, influence: null, activation: null, dense: applied });
    }
    return out;
  }
}
