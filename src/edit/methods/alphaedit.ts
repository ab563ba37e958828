/**
 * AlphaEdit (spec §4.3): MEMIT's targets and insertion loop with the null-space-projected solve
 * X = (P (K Kᵀ + Cpast) + λ I)⁻¹ (P K), Δ = R Xᵀ, and Cpast += K Kᵀ after the batch (starting at 0,
 * ODD-14; in-loop keys reused, ODD-31). The fast exact solver (dual/primal incremental Cholesky,
 * §7.2–7.4) is the default; `solver: "dense"` runs the reference d_in × d_in LU (the oracle).
 */
import { insertionLoop, type LayerSolve } from "../insertion.js";
import { checkNullSpaceOptions, defaultNullSpaceOptions, describeCut, NullSpaceProjector, nullSpaceOptionsOf, type NullSpaceOptions } from "../projector.js";
import { AlphaEditSolver, accumulatePastCov, denseAlphaEditSolve, type AlphaEditStep } from "../solve.js";
import type { EditRequest } from "../request.js";
import { checkFamilyParams, computeTargets, familyOutcome, targetParams, type MemitFamilyParams, familyDefaults } from "./memitFamily.js";
import { since, type BatchOutcome, type EditContext, type EditMethod } from "./method.js";
import { resolveParams } from "./params.js";

/**
 * The null-space choice (`NullSpaceOptions`, projector.ts) is part of the parameters:
 * `nullspaceThreshold` τ (absolute rule: eigenvalues of C0 with |λ| < τ span the null space),
 * `nullspaceRule` ("absolute", the reference, or "gap": cut in a spectral gap near τ, stable under
 * rounding), the gap rule's `nullspaceGapWindow` / `nullspaceGapMinRatio` / `nullspaceGapFloor`,
 * and `nullspacePrecision` (eigh in "float32", the reference, or "float64").
 */
export interface AlphaEditParams extends MemitFamilyParams, NullSpaceOptions {
  /** λ (L2): ridge constant of the solve. */
  l2: number;
  /** "fast": exact incremental solve; "dense": the reference dense LU (oracle, O(d_in³)). */
  solver: "fast" | "dense";
}

/** gpt2-xl preset (spec §6.2). */
export const alphaEditDefaults: AlphaEditParams = {
  ...familyDefaults,
  editLayers: [...familyDefaults.editLayers],
  l2: 1,
  ...defaultNullSpaceOptions, // absolute τ = 2e-2, float32 eigh (spec §3.6)
  solver: "fast",
};

/**
 * Per-layer projectors and solver state (fast: incremental factors; dense: Cpast + dense P).
 * Solves are staged during a batch and committed only when the whole batch succeeded.
 */
export class NullSpaceSolve implements LayerSolve {
  private readonly projectors = new Map<number, NullSpaceProjector>();
  private readonly solvers = new Map<number, AlphaEditSolver>();
  private readonly pastCov = new Map<number, Float32Array>(); // dense mode: (F, F)
  private readonly dense = new Map<number, Float32Array>(); // dense mode: P (F, F)
  private staged: { layer: number; step: AlphaEditStep | null; keys: Float32Array; n: number }[] = [];

  private readonly nullspace: NullSpaceOptions;

  /** `nullspace`: how the projectors cut the spectrum of C0 (copied). */
  constructor(private readonly ctx: EditContext, private readonly l2: number, nullspace: NullSpaceOptions, private readonly mode: "fast" | "dense") {
    this.nullspace = nullSpaceOptionsOf(nullspace);
  }

  projector(layer: number): NullSpaceProjector {
    let p = this.projectors.get(layer);
    if (!p) {
      p = NullSpaceProjector.fromSecondMoment(this.ctx.secondMoment(layer), this.ctx.model.arch.dFF, { ...this.nullspace, keepNullBasis: true });
      this.projectors.set(layer, p);
      this.ctx.log(`layer ${layer}: ${describeCut(p.rank, p.dIn, p.cut, p.options)}`);
    }
    return p;
  }

  private solverFor(layer: number): AlphaEditSolver {
    let s = this.solvers.get(layer);
    if (!s) {
      s = new AlphaEditSolver(this.projector(layer), { l2: this.l2 });
      this.solvers.set(layer, s);
    }
    return s;
  }

  solve(_i: number, layer: number, keys: Float32Array, _residual: Float32Array, n: number): Float32Array {
    const F = this.ctx.model.arch.dFF;
    if (this.mode === "dense") {
      let pd = this.dense.get(layer);
      if (!pd) {
        pd = this.projector(layer).toDense();
        this.dense.set(layer, pd);
        this.pastCov.set(layer, new Float32Array(F * F));
      }
      this.staged.push({ layer, step: null, keys, n });
      return denseAlphaEditSolve({ projector: pd, pastCov: this.pastCov.get(layer)!, keys, dIn: F, n, l2: this.l2 });
    }
    const step = this.solverFor(layer).solve(keys, n);
    this.staged.push({ layer, step, keys, n });
    return step.X;
  }

  /** Cpast += K Kᵀ for every staged layer (after a successful batch). */
  commit(): void {
    const F = this.ctx.model.arch.dFF;
    for (const s of this.staged) {
      if (s.step) this.solvers.get(s.layer)!.commit(s.step);
      else accumulatePastCov(this.pastCov.get(s.layer)!, s.keys, F, s.n);
    }
    this.staged = [];
  }

  discard(): void {
    this.staged = [];
  }

  /** Replay: add recorded keys exactly as a committed batch would have. */
  replayKeys(layer: number, keys: Float32Array, n: number): void {
    this.solve(0, layer, keys, new Float32Array(0), n);
  }
}

export class AlphaEdit implements EditMethod {
  readonly name = "alphaedit" as const;
  readonly params: AlphaEditParams;
  private core: NullSpaceSolve | null = null;

  constructor(overrides: Record<string, unknown>, numLayers: number) {
    this.params = resolveParams("alphaedit", alphaEditDefaults, overrides);
    checkFamilyParams("alphaedit", this.params, numLayers);
    checkNullSpaceOptions("alphaedit", this.params);
  }

  private coreFor(ctx: EditContext): NullSpaceSolve {
    return (this.core ??= new NullSpaceSolve(ctx, this.params.l2, this.params, this.params.solver));
  }

  applyBatch(ctx: EditContext, requests: readonly EditRequest[]): BatchOutcome {
    const t0 = performance.now();
    const core = this.coreFor(ctx);
    for (const l of this.params.editLayers) core.projector(l);
    const tp = performance.now();
    const { z, results } = computeTargets(ctx, requests, targetParams(this.params, null));
    const tTarget = since(tp);
    let ins;
    try {
      ins = insertionLoop(ctx.model, requests, ctx.templates.memit, this.params.editLayers, this.params.targetLayer, z, core);
    } catch (e) {
      core.discard();
      throw e;
    }
    core.commit();
    return familyOutcome(requests, results, ins, t0, tTarget);
  }

  replay(ctx: EditContext, outcome: BatchOutcome): void {
    const core = this.coreFor(ctx);
    for (const u of outcome.updates) core.replayKeys(u.layer, u.keys!, u.n);
    core.commit();
  }
}
