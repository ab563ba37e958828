/**
 * What MEMIT, AlphaEdit, DeltaEdit, PRUNE and RECT share: the edited layers and the target-vector
 * optimisation parameters, and the batch's targets Z (spec §3.7 for every request, in order,
 * with the model as it was before the batch).
 */
import { DeltaEditError } from "../../errors.js";
import type { InsertionResult } from "../insertion.js";
import type { EditRequest } from "../request.js";
import { computeTarget, type ProjectionHook, type TargetParams, type TargetResult } from "../target.js";
import { since, type BatchOutcome, type EditContext, type RequestReport } from "./method.js";

export interface MemitFamilyParams {
  /** Distinct edited layers, ascending (the reference's duplicated last entry is not used, ODD-12). */
  editLayers: number[];
  /** z-layer l_z where target vectors are defined (normally max(editLayers)). */
  targetLayer: number;
  /** Loss layer: the model's last block. */
  lossLayer: number;
  numGradSteps: number; // v_num_grad_steps
  lr: number; // v_lr
  weightDecay: number; // v_weight_decay
  klFactor: number; // kl_factor
  clampNormFactor: number; // clamp_norm_factor
  /** Exact prefix caching in the target optimisation (false: the reference's full rerun). */
  prefixCache: boolean;
}

/** The gpt2-xl values of the shared parameters (spec §6.1–6.3), the default of every MEMIT-family method. */
export const familyDefaults: Readonly<MemitFamilyParams> = Object.freeze({
  editLayers: [13, 14, 15, 16, 17],
  targetLayer: 17,
  lossLayer: 47,
  numGradSteps: 20,
  lr: 0.5,
  weightDecay: 0.5,
  klFactor: 0.0625,
  clampNormFactor: 0.75,
  prefixCache: true,
});

/**
 * The layers must make an edit possible: δ is injected at the z-layer's output at the subject's last
 * token and reaches the target positions only through the attention of later blocks, so the z-layer
 * (and every edited layer, which lies at or below it) must come strictly before the last block.
 */
export function checkFamilyParams(method: string, p: MemitFamilyParams, numLayers: number): void {
  const L = p.editLayers;
  const last = numLayers - 1;
  const bad = (field: string, msg: string): never => {
    throw new DeltaEditError("E_CONFIG", `${method}: ${field} ${msg}`, { context: { field } });
  };
  if (numLayers < 2) bad("editLayers", `cannot be chosen for a ${numLayers}-block model: the z-layer must precede a later block`);
  if (!Array.isArray(L) || L.length === 0) bad("editLayers", "is empty");
  for (let i = 0; i < L.length; i++) {
    if (!Number.isInteger(L[i]) || L[i]! < 0 || L[i]! >= numLayers) bad("editLayers", `entry ${L[i]} outside [0, ${last}]`);
    if (i > 0 && L[i]! <= L[i - 1]!) bad("editLayers", `must be distinct and ascending, got [${L.join(",")}]`);
  }
  if (!L.includes(p.targetLayer)) bad("targetLayer", `${p.targetLayer} must be one of editLayers [${L.join(",")}]`);
  if (p.targetLayer >= last) bad("targetLayer", `${p.targetLayer} is the model's last block: a shift injected there at the subject's last token reaches no target logit (its gradient is exactly zero); use a block ≤ ${last - 1}`);
  if (Math.max(...L) > p.targetLayer) bad("editLayers", `[${L.join(",")}] has a layer above the z-layer (targetLayer ${p.targetLayer}), whose update cannot move the z-layer's output`);
  if (p.lossLayer !== last) bad("lossLayer", `${p.lossLayer} must be the model's last block ${last}${p.lossLayer >= numLayers ? " (it does not exist; cf. ODD-10)" : ""}`);
}

export function targetParams(p: MemitFamilyParams, earlyStopAvgProb: number | null): TargetParams {
  return {
    layer: p.targetLayer,
    lossLayer: p.lossLayer,
    numGradSteps: p.numGradSteps,
    lr: p.lr,
    weightDecay: p.weightDecay,
    klFactor: p.klFactor,
    clampNormFactor: p.clampNormFactor,
    lossStop: 5e-2,
    earlyStopAvgProb,
    t0Source: "block",
    prefixCache: p.prefixCache,
  };
}

/** Z (C, N) for the batch; each request optimised independently with the pre-batch model. */
export function computeTargets(
  ctx: EditContext,
  requests: readonly EditRequest[],
  tp: TargetParams,
  hookFor?: (req: EditRequest) => ProjectionHook,
): { z: Float32Array; results: TargetResult[] } {
  const C = ctx.model.arch.hidden;
  const N = requests.length;
  const z = new Float32Array(C * N);
  const templates = ctx.templates.memit.flat();
  const results: TargetResult[] = [];
  requests.forEach((r, j) => {
    const res = computeTarget(ctx.model, r, templates, tp, hookFor?.(r));
    for (let c = 0; c < C; c++) z[c * N + j] = res.z[c]!;
    results.push(res);
  });
  return { z, results };
}

export function requestReport(r: EditRequest, t: TargetResult): RequestReport {
  const last = t.losses[t.losses.length - 1]!;
  let dn = 0;
  let tn = 0;
  for (let i = 0; i < t.delta.length; i++) {
    dn += t.delta[i]! * t.delta[i]!;
    tn += t.t0[i]! * t.t0[i]!;
  }
  return { caseId: r.caseId, index: r.index, steps: t.steps, stopReason: t.stopReason, finalLoss: last.total, finalAvgProb: last.avgProb, deltaNorm: Math.sqrt(dn), t0Norm: Math.sqrt(tn), warnings: t.warnings };
}

/**
 * The batch outcome of a MEMIT-family method: the insertion loop's updates and layer statistics,
 * one report per request, and the timings (`t0` = start of applyBatch, `extraApply` = seconds spent
 * applying after the loop, e.g. RECT's mask; `extraTimings` = method-specific phases, e.g. DeltaEdit's
 * projection).
 */
export function familyOutcome(
  requests: readonly EditRequest[],
  results: readonly TargetResult[],
  ins: InsertionResult,
  t0: number,
  tTarget: number,
  extra: { extraApply?: number; extraTimings?: Record<string, number>; reports?: RequestReport[]; replayData?: Record<string, unknown> } = {},
): BatchOutcome {
  return {
    updates: ins.updates,
    requests: extra.reports ?? requests.map((r, j) => requestReport(r, results[j]!)),
    layerStats: ins.layerStats,
    timings: { target: tTarget, keys: ins.keysSeconds, solve: ins.solveSeconds, apply: ins.applySeconds + (extra.extraApply ?? 0), total: since(t0), ...extra.extraTimings },
    replayData: extra.replayData ?? {},
  };
}
