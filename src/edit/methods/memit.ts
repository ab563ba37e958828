/**
 * MEMIT (spec §4.2): targets Z at the z-layer, then the insertion loop with the float64 solve
 * X = (λ_m C0 + K Kᵀ)⁻¹ K per layer (Woodbury with a cached Cholesky of λ_m C0: exact, §7.5).
 * No state across batches beyond the weights (C0 from the unedited model never changes).
 */
import { insertionLoop, type LayerSolve } from "../insertion.js";
import { MemitSolver } from "../solveMemit.js";
import type { EditRequest } from "../request.js";
import { checkFamilyParams, computeTargets, familyOutcome, targetParams, type MemitFamilyParams, familyDefaults } from "./memitFamily.js";
import { since, type BatchOutcome, type EditContext, type EditMethod } from "./method.js";
import { resolveParams } from "./params.js";

export interface MemitParams extends MemitFamilyParams {
  /** λ_m: weight of the preserved second moment (mom2_update_weight). */
  mom2UpdateWeight: number;
}

/** gpt2-xl preset (spec §6.3); layer choices are replaced per model by the presets. */
export const memitDefaults: MemitParams = {
  ...familyDefaults,
  editLayers: [...familyDefaults.editLayers],
  mom2UpdateWeight: 20000,
};

/** The MEMIT per-layer solve, shared with PRUNE and RECT. */
export class MemitLayerSolve implements LayerSolve {
  private readonly solvers = new Map<number, MemitSolver>();
  constructor(private readonly ctx: EditContext, private readonly lambdaM: number) {}

  solve(_i: number, layer: number, keys: Float32Array, _residual: Float32Array, n: number): Float32Array {
    let s = this.solvers.get(layer);
    if (!s) {
      s = MemitSolver.fromSecondMoment(this.ctx.secondMoment(layer), this.ctx.model.arch.dFF, this.lambdaM);
      this.solvers.set(layer, s);
    }
    return Float32Array.from(s.solve(keys, n)); // float64 → float32 before adding (ODD-24)
  }
}

export class Memit implements EditMethod {
  readonly name = "memit" as const;
  readonly params: MemitParams;
  private layerSolve: MemitLayerSolve | null = null;

  constructor(overrides: Record<string, unknown>, numLayers: number) {
    this.params = resolveParams("memit", memitDefaults, overrides);
    checkFamilyParams("memit", this.params, numLayers);
  }

  applyBatch(ctx: EditContext, requests: readonly EditRequest[]): BatchOutcome {
    const t0 = performance.now();
    const { z, results } = computeTargets(ctx, requests, targetParams(this.params, null));
    const tTarget = since(t0);
    this.layerSolve ??= new MemitLayerSolve(ctx, this.params.mom2UpdateWeight);
    const ins = insertionLoop(ctx.model, requests, ctx.templates.memit, this.params.editLayers, this.params.targetLayer, z, this.layerSolve);
    return familyOutcome(requests, results, ins, t0, tTarget);
  }

  replay(): void {
    // MEMIT keeps no state beyond the weights; the session re-applies the recorded factors.
  }
}
