/**
 * ROME (spec §4.1, §3.8; ODD-22/23/34): one rank-one update of the down projection of a single
 * layer per request.
 *
 *   k̄ = flat mean over the 21 ROME templates of the key at the subject's last token (F)
 *   u = C0⁻¹ k̄ (mom2Adjustment) or k̄, then u ← u/‖u‖                    activation (F)
 *   z = t0 + δ from the target optimisation with δ injected at the MLP output of `layer`
 *       (t0 = the down-projection output, no 0.98 stop, no projection)         (C)
 *   k_b, v_b = down-projection input / output at the bare prompt's subject-last token
 *   Λ = (z − v_b) / (k_b · u)                                                influence (C)
 *   Δ = Λ uᵀ (C, F), applied at once.
 * ODD-22: u uses the template-averaged key, the denominator and residual the bare-prompt key/value.
 * ODD-34: the reference edits only the first request of a chunk; here every request of a batch is
 * edited in turn (each on the model left by the previous one), one LayerUpdate per request.
 * C0⁻¹ is a dense float32 inverse (ODD-24), computed once and kept by the method instance.
 *
 * Dimension legend: C hidden width, F key width (d_ff).
 */
import * as ops from "../../kernels/ops.js";
import { DeltaEditError } from "../../errors.js";
import { makeBatch } from "../../model/batch.js";
import { forward } from "../../model/forward.js";
import type { LanguageModel } from "../../model/model.js";
import { rollback } from "../insertion.js";
import { computeKeys } from "../keys.js";
import type { EditRequest } from "../request.js";
import { locateSubject } from "../subject.js";
import { computeTarget, type TargetParams } from "../target.js";
import { applyLowRank } from "../update.js";
import { requestReport } from "./memitFamily.js";
import { since, type BatchOutcome, type EditContext, type EditMethod, type LayerUpdate } from "./method.js";
import { resolveParams } from "./params.js";

export interface RomeParams {
  /** The single edited layer l (its down projection is W; δ is injected at its MLP output). */
  layer: number;
  /** Loss layer: the model's last block. */
  lossLayer: number;
  numGradSteps: number; // v_num_grad_steps
  lr: number; // v_lr
  weightDecay: number; // v_weight_decay (ODD-1 form)
  klFactor: number; // kl_factor
  /** clamp_norm_factor: ‖δ‖ ≤ clampNormFactor · ‖t0‖ (ROME: 4). */
  clampNormFactor: number;
  /** mom2_adjustment: u = C0⁻¹ k̄ (true) or k̄ (false; the Llama3 preset, ODD-22). */
  mom2Adjustment: boolean;
  /** Exact prefix caching in the target optimisation (false: the reference's full rerun). */
  prefixCache: boolean;
}

/** gpt2-xl preset (spec §6.4). */
export const romeDefaults: RomeParams = {
  layer: 17,
  lossLayer: 47,
  numGradSteps: 20,
  lr: 0.5,
  weightDecay: 0.5,
  klFactor: 0.0625,
  clampNormFactor: 4,
  mom2Adjustment: true,
  prefixCache: true,
};

/** Stop the value optimisation when J falls below this (spec §3.7 step 2). */
const ROME_LOSS_STOP = 5e-2;

export function checkRomeParams(p: RomeParams, numLayers: number): void {
  if (!Number.isInteger(p.layer) || p.layer < 0 || p.layer >= numLayers) throw new DeltaEditError("E_CONFIG", `rome: layer ${p.layer} outside [0, ${numLayers - 1}]`, { context: { field: "layer" } });
  if (p.layer >= numLayers - 1) {
    throw new DeltaEditError("E_CONFIG", `rome: layer ${p.layer} is the model's last block: its MLP output at the subject's last token reaches no target logit (the gradient is exactly zero); use a block ≤ ${numLayers - 2}`, { context: { field: "layer" } });
  }
  if (p.lossLayer !== numLayers - 1) throw new DeltaEditError("E_CONFIG", `rome: lossLayer ${p.lossLayer} must be the model's last block ${numLayers - 1}${p.lossLayer >= numLayers ? " (it does not exist; cf. ODD-10)" : ""}`);
  if (!(p.clampNormFactor > 0)) throw new DeltaEditError("E_CONFIG", `rome: clampNormFactor must be > 0, got ${p.clampNormFactor}`);
}

/** Down-projection input k_b (F) and output v_b (C, bias included) at the bare prompt's subject-last token. */
export function bareKeyValue(model: LanguageModel, req: EditRequest, layer: number): { key: Float32Array; value: Float32Array } {
  const tok = model.tokenizer;
  if (!tok) throw new DeltaEditError("E_TOKENIZER", "rome: the bare-prompt key needs the model's tokenizer");
  const loc = locateSubject(tok, req.prompt, req.subject, `request ${req.caseId}`);
  const batch = makeBatch([loc.ids], tok.padTokenId, model.config.vocabSize);
  const at = [{ row: 0, pos: loc.subjectLast }];
  const res = forward(model, batch, { stopAfterLayer: layer, taps: { layers: [layer], at, key: true, value: true }, logits: "none" });
  return { key: res.taps.key.get(layer)!, value: res.taps.value.get(layer)! };
}

export class Rome implements EditMethod {
  readonly name = "rome" as const;
  readonly params: RomeParams;
  /** C0⁻¹ (F, F) float32 of `layer`, built at the first edit when mom2Adjustment. */
  private c0Inverse: Float32Array | null = null;

  constructor(overrides: Record<string, unknown>, numLayers: number) {
    this.params = resolveParams("rome", romeDefaults, overrides);
    checkRomeParams(this.params, numLayers);
  }

  targetParams(): TargetParams {
    const p = this.params;
    return {
      layer: p.layer,
      lossLayer: p.lossLayer,
      numGradSteps: p.numGradSteps,
      lr: p.lr,
      weightDecay: p.weightDecay,
      klFactor: p.klFactor,
      clampNormFactor: p.clampNormFactor,
      lossStop: ROME_LOSS_STOP,
      earlyStopAvgProb: null,
      t0Source: "value",
      prefixCache: p.prefixCache,
    };
  }

  /** C0⁻¹ (F, F): dense float32 inverse by LU (spec §4.1 step 2, ODD-24). */
  private inverse(ctx: EditContext): Float32Array {
    if (this.c0Inverse) return this.c0Inverse;
    const F = ctx.model.arch.dFF;
    const c0 = ctx.secondMoment(this.params.layer); // (F, F)
    const eye = new Float32Array(F * F); // (F, F)
    for (let i = 0; i < F; i++) eye[i * F + i] = 1;
    this.c0Inverse = ops.solve(c0, eye, F, F);
    ctx.log(`rome: inverted the second moment of layer ${this.params.layer} (${F} × ${F}, float32)`);
    return this.c0Inverse;
  }

  /** u = C0⁻¹ k̄ or k̄, normalised (F). */
  private activation(ctx: EditContext, keyMean: Float32Array): Float32Array {
    const F = ctx.model.arch.dFF;
    let u = keyMean.slice(); // (F)
    if (this.params.mom2Adjustment) {
      u = new Float32Array(F);
      ops.gemm(this.inverse(ctx), keyMean, u, { m: F, n: 1, k: F });
    }
    let s = 0;
    for (let f = 0; f < F; f++) s += u[f]! * u[f]!;
    const n = Math.sqrt(s);
    if (!(n > 0) || !Number.isFinite(n)) throw new DeltaEditError("E_NATIVE", `rome: layer ${this.params.layer}: the activation vector u has norm ${n}`);
    for (let f = 0; f < F; f++) u[f]! /= n;
    return u;
  }

  applyBatch(ctx: EditContext, requests: readonly EditRequest[]): BatchOutcome {
    const t0 = performance.now();
    const { model } = ctx;
    const C = model.arch.hidden;
    const F = model.arch.dFF;
    const layer = this.params.layer;
    const tp = this.targetParams();
    if (requests.length > 1) ctx.log(`rome: ${requests.length} requests in the batch are edited one after another (ODD-34)`);
    const updates: LayerUpdate[] = [];
    const reports: BatchOutcome["requests"] = [];
    const layerStats: BatchOutcome["layerStats"] = [];
    const timings = { target: 0, keys: 0, solve: 0, apply: 0, total: 0 };
    try {
      for (const req of requests) {
        let t = performance.now();
        const keyMean = computeKeys(model, [req], layer, [ctx.templates.rome]); // (F, 1) flat mean (ODD-23)
        timings.keys += since(t);
        t = performance.now();
        const u = this.activation(ctx, keyMean); // (F)
        timings.solve += since(t);
        t = performance.now();
        const target = computeTarget(model, req, ctx.templates.rome, tp); // z (C)
        timings.target += since(t);
        t = performance.now();
        const bare = bareKeyValue(model, req, layer); // k_b (F), v_b (C)
        timings.keys += since(t);
        t = performance.now();
        let denom = 0;
        for (let f = 0; f < F; f++) denom += bare.key[f]! * u[f]!;
        if (!(Math.abs(denom) > 0) || !Number.isFinite(denom)) throw new DeltaEditError("E_NATIVE", `rome: request ${req.caseId}: k_b · u = ${denom}; the rank-one update is undefined`);
        const influence = new Float32Array(C); // Λ (C, 1)
        let rn = 0;
        for (let c = 0; c < C; c++) {
          const r = target.z[c]! - bare.value[c]!;
          rn += r * r;
          influence[c] = r / denom;
        }
        timings.solve += since(t);
        t = performance.now();
        applyLowRank(model.arch.editTarget(layer), influence, u, 1);
        timings.apply += since(t);
        updates.push({ layer, n: 1, keys: keyMean, influence, activation: u, dense: null });
        let ln = 0;
        for (let c = 0; c < C; c++) ln += influence[c]! * influence[c]!;
        layerStats.push({ layer, deltaNorm: Math.sqrt(ln), residualNorm: Math.sqrt(rn) }); // ‖Λ uᵀ‖ = ‖Λ‖ (‖u‖ = 1)
        const rep = requestReport(req, target);
        if (requests.length > 1) rep.warnings.push("rome: batch requests are edited one after another (ODD-34)");
        reports.push(rep);
      }
    } catch (e) {
      rollback(model, updates);
      throw e;
    }
    timings.total = since(t0);
    return { updates, requests: reports, layerStats, timings, replayData: {} };
  }

  replay(): void {
    // ROME keeps no state beyond the weights (C0⁻¹ is a cache); the session re-applies the factors.
  }
}
