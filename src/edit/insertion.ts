/**
 * The MEMIT-family multi-layer insertion loop (spec §3.9), shared by MEMIT, AlphaEdit, DeltaEdit,
 * PRUNE and RECT. Given targets Z (C, N) at the z-layer, for each edited layer l_i in ascending order:
 *   K = keys at l_i with the current model; Cur = bare-prompt block outputs at l_z;
 *   R = (Z − Cur) / (m − i); X = method solve(K, R); W_{l_i} += R Xᵀ immediately.
 * If anything throws midway, the updates already applied are subtracted again (no half-applied edit).
 */
import { DeltaEditError } from "../errors.js";
import type { LanguageModel } from "../model/model.js";
import { InsertionInputs } from "./keys.js";
import type { LayerUpdate } from "./methods/method.js";
import type { EditRequest } from "./request.js";
import { applyDense, applyLayerUpdate, applyLowRank, frobenius } from "./update.js";

export interface LayerSolve {
  /** X (F, N) for layer l from keys K (F, N) and spread residual R (C, N). */
  solve(i: number, layer: number, keys: Float32Array, residual: Float32Array, n: number): Float32Array;
  /** Optional: a non-low-rank applied update (C, F) (RECT); default applies R·Xᵀ. */
  applied?(layer: number, residual: Float32Array, activation: Float32Array, n: number): Float32Array | null;
}

export interface InsertionResult {
  updates: LayerUpdate[];
  layerStats: { layer: number; deltaNorm: number; residualNorm: number }[];
  keysSeconds: number;
  solveSeconds: number;
  applySeconds: number;
}

export function insertionLoop(
  model: LanguageModel,
  requests: readonly EditRequest[],
  templates: readonly (readonly string[])[],
  editLayers: readonly number[],
  targetLayer: number,
  z: Float32Array, // (C, N)
  solver: LayerSolve,
): InsertionResult {
  const C = model.arch.hidden;
  const F = model.arch.dFF;
  const N = requests.length;
  const m = editLayers.length;
  const updates: LayerUpdate[] = [];
  const layerStats: InsertionResult["layerStats"] = [];
  let keysSeconds = 0;
  let solveSeconds = 0;
  let applySeconds = 0;
  try {
    let t = performance.now();
    const inputs = new InsertionInputs(model, requests, templates, Math.min(...editLayers));
    keysSeconds += (performance.now() - t) / 1000;
    editLayers.forEach((layer, i) => {
      t = performance.now();
      const { keys, cur } = inputs.at(layer, targetLayer); // keys (F, N) with the current model; cur (C, N)
      keysSeconds += (performance.now() - t) / 1000;
      const residual = new Float32Array(C * N); // (C, N)
      for (let k = 0; k < C * N; k++) residual[k] = (z[k]! - cur[k]!) / (m - i);
      t = performance.now();
      const x = solver.solve(i, layer, keys, residual, N); // (F, N)
      solveSeconds += (performance.now() - t) / 1000;
      for (let k = 0; k < x.length; k++) if (!Number.isFinite(x[k]!)) throw new DeltaEditError("E_NATIVE", `layer ${layer}: the solve produced a non-finite value`);
      t = performance.now();
      const target = model.arch.editTarget(layer);
      const dense = solver.applied ? solver.applied(layer, residual, x, N) : null;
      if (dense) applyDense(target, dense);
      else applyLowRank(target, residual, x, N);
      applySeconds += (performance.now() - t) / 1000;
      updates.push({ layer, n: N, keys, influence: residual, activation: x, dense });
      layerStats.push({ layer, deltaNorm: dense ? frobenius(dense) : lowRankNorm(residual, x, C, F, N), residualNorm: frobenius(residual) });
    });
  } catch (e) {
    rollback(model, updates);
    throw e;
  }
  return { updates, layerStats, keysSeconds, solveSeconds, applySeconds };
}

/** Undo applied updates in reverse order. */
export function rollback(model: LanguageModel, updates: readonly LayerUpdate[]): void {
  for (const u of [...updates].reverse()) applyLayerUpdate(model, u, -1);
}

/** ‖R Xᵀ‖_F = sqrt(trace((RᵀR)(XᵀX))) without forming the product. */
export function lowRankNorm(r: Float32Array, x: Float32Array, C: number, F: number, n: number): number {
  const rr = new Float64Array(n * n);
  const xx = new Float64Array(n * n);
  for (let a = 0; a < n; a++)
    for (let b = 0; b < n; b++) {
      let s1 = 0;
      let s2 = 0;
      for (let c = 0; c < C; c++) s1 += r[c * n + a]! * r[c * n + b]!;
      for (let f = 0; f < F; f++) s2 += x[f * n + a]! * x[f * n + b]!;
      rr[a * n + b] = s1;
      xx[a * n + b] = s2;
    }
  let t = 0;
  for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) t += rr[a * n + b]! * xx[b * n + a]!;
  return Math.sqrt(Math.max(0, t));
}
