/**
 * RECT (spec §4.7, ODD-21): MEMIT per batch, then each edited matrix receives only the entries of
 * its update Δ (C, F) with the largest relative change.
 *
 *   ρ = |Δ / (W + ε)| elementwise (float32), W = the stored weight before this batch's update of
 *       that matrix (already edited by earlier batches); ε = 1e-8 is added to the SIGNED weight
 *   θ = the k-th smallest ρ, k = ⌊(1 − keepFraction) · numel⌋ (1-based order statistic)
 *   W[ρ ≥ θ] += Δ[ρ ≥ θ]   (ties at θ kept; about keepFraction of the entries)
 * The ratio is elementwise, so it is computed on the out × in views (GPT-2's transposed storage
 * pairs the same entries); the recorded `dense` update is (C, F) out × in.
 *
 * `sparsifyInLoop: false` (reference, ODD-21): MEMIT's loop applies the UNMASKED updates (later
 * layers' keys and residuals see them); afterwards each matrix is restored to its pre-batch value
 * and the masked update is added. `true`: the masked update is applied inside the loop through
 * `LayerSolve.applied`, so later layers see what is actually applied.
 *
 * Dimension legend: C hidden width, F key width (d_ff), N requests in the batch.
 */
import { DeltaEditError } from "../../errors.js";
import type { LanguageModel } from "../../model/model.js";
import { insertionLoop, type LayerSolve } from "../insertion.js";
import type { EditRequest } from "../request.js";
import { applyDense, denseDelta, frobenius, weightOutIn } from "../update.js";
import { memitDefaults, MemitLayerSolve, type MemitParams } from "./memit.js";
import { checkFamilyParams, computeTargets, familyOutcome, targetParams } from "./memitFamily.js";
import { since, type BatchOutcome, type EditContext, type EditMethod } from "./method.js";
import { resolveParams } from "./params.js";

export interface RectParams extends MemitParams {
  /** Fraction of the update's entries kept, by relative change (0.4: AlphaEdit tables; 0.2: the RECT paper). */
  keepFraction: number;
  /** ε added to the signed weight in the relative change. */
  relativeEpsilon: number;
  /** false: sparsify after MEMIT's loop (reference, ODD-21); true: inside the loop. */
  sparsifyInLoop: boolean;
}

/** MEMIT's gpt2-xl preset (spec §6.3) plus the RECT constants of the AlphaEdit repository. */
export const rectDefaults: RectParams = { ...memitDefaults, keepFraction: 0.4, relativeEpsilon: 1e-8, sparsifyInLoop: false };

/**
 * The masked update (C, F): Δ where |Δ/(W + ε)| ≥ θ, else 0. `delta` and `weight` are (C, F) out × in.
 * Float32 arithmetic throughout, like the reference.
 */
export function relativeChangeMask(delta: Float32Array, weight: Float32Array, keepFraction: number, eps: number): Float32Array {
  const n = delta.length;
  if (weight.length !== n) throw new DeltaEditError("E_SHAPE", `rect: update has ${n} entries, the weight ${weight.length}`);
  const rho = new Float32Array(n); // (C, F) relative change
  for (let i = 0; i < n; i++) rho[i] = Math.abs(Math.fround(delta[i]! / Math.fround(weight[i]! + eps)));
  const k = Math.floor((1 - keepFraction) * n); // 1-based order statistic
  const out = new Float32Array(n); // (C, F)
  if (k < 1) {
    out.set(delta);
    return out;
  }
  const theta = rho.slice().sort()[k - 1]!; // θ
  for (let i = 0; i < n; i++) if (rho[i]! >= theta) out[i] = delta[i]!;
  return out;
}

/** MEMIT's solve, with the masked update applied inside the loop (sparsifyInLoop). */
class MaskedMemitSolve implements LayerSolve {
  constructor(private readonly model: LanguageModel, private readonly inner: MemitLayerSolve, private readonly keepFraction: number, private readonly eps: number) {}

  solve(i: number, layer: number, keys: Float32Array, residual: Float32Array, n: number): Float32Array {
    return this.inner.solve(i, layer, keys, residual, n);
  }

  applied(layer: number, residual: Float32Array, activation: Float32Array, n: number): Float32Array {
    const target = this.model.arch.editTarget(layer);
    const delta = denseDelta(residual, activation, target.dOut, target.dIn, n); // (C, F)
    return relativeChangeMask(delta, weightOutIn(target), this.keepFraction, this.eps);
  }
}

export class Rect implements EditMethod {
  readonly name = "rect" as const;
  readonly params: RectParams;
  private layerSolve: MemitLayerSolve | null = null;

  constructor(overrides: Record<string, unknown>, numLayers: number) {
    this.params = resolveParams("rect", rectDefaults, overrides);
    checkFamilyParams("rect", this.params, numLayers);
    const f = this.params.keepFraction;
    if (!(f > 0 && f <= 1)) throw new DeltaEditError("E_CONFIG", `rect: keepFraction must be in (0, 1], got ${f}`);
  }

  applyBatch(ctx: EditContext, requests: readonly EditRequest[]): BatchOutcome {
    const t0 = performance.now();
    const { model } = ctx;
    const p = this.params;
    const { z, results } = computeTargets(ctx, requests, targetParams(p, null));
    const tTarget = since(t0);
    this.layerSolve ??= new MemitLayerSolve(ctx, p.mom2UpdateWeight);
    // reference: remember each matrix as stored before the batch (restore-and-re-add after the loop)
    const before = p.sparsifyInLoop ? null : p.editLayers.map((l) => model.arch.editTarget(l).W.slice()); // storage layout
    const solver: LayerSolve = p.sparsifyInLoop ? new MaskedMemitSolve(model, this.layerSolve, p.keepFraction, p.relativeEpsilon) : this.layerSolve;
    const ins = insertionLoop(model, requests, ctx.templates.memit, p.editLayers, p.targetLayer, z, solver);
    const ta = performance.now();
    if (before) {
      ins.updates.forEach((u, i) => {
        const target = model.arch.editTarget(u.layer);
        target.W.set(before[i]!); // W before this batch
        const delta = denseDelta(u.influence!, u.activation!, target.dOut, target.dIn, u.n); // (C, F)
        u.dense = relativeChangeMask(delta, weightOutIn(target), p.keepFraction, p.relativeEpsilon);
        applyDense(target, u.dense);
        ins.layerStats[i]!.deltaNorm = frobenius(u.dense);
      });
    }
    return familyOutcome(requests, results, ins, t0, tTarget, { extraApply: since(ta) });
  }

  replay(): void {
    // RECT keeps no state beyond the weights; the session re-applies the recorded dense updates.
  }
}
