/**
 * Representation shift (issue #13): how far an edit stream moves the hidden states of prompts it
 * was never asked to change.
 *
 * For a fixed set of P unrelated prompts (e.g. the control facts' prompts), read the residual stream
 * at the output of block L (the last edited layer), at each prompt's last token, from the unedited
 * model (h_before) and from the edited model (h_after). Then
 *   spread        = √( mean_p ‖h_before,p − mean_q h_before,q‖² )    RMS distance of the pre-edit states to their mean
 *   meanShift     = mean_p ‖h_after,p − h_before,p‖                   mean distance moved
 *   relativeShift = meanShift / spread                                the shift statistic
 *   centroidShift = ‖mean_p h_after,p − mean_p h_before,p‖ / spread   the part that moves every state alike
 * and, for the picture, a PCA with 2 components fitted on the pre-edit states only (mean-centred;
 * components = the top-2 eigenvectors of their covariance, each signed so its largest-magnitude
 * entry is positive), with both sets projected on it.
 *
 * Dimension legend: P prompts, C hidden.
 */
import { DeltaEditError } from "../../errors.js";
import * as ops from "../../kernels/ops.js";
import { makeBatch } from "../../model/batch.js";
import { forward } from "../../model/forward.js";
import type { LanguageModel } from "../../model/model.js";
import { contextIds, requireTokenizer } from "../metrics/score.js";

/** Rows per forward pass when reading hidden states. */
const READ_CHUNK = 32;

/** Block-`layer` outputs (the residual stream after block `layer`) at the last token of each prompt: (P, C). */
export function lastTokenStates(model: LanguageModel, prompts: readonly string[], layer: number): Float32Array {
  const tok = requireTokenizer(model, "lastTokenStates");
  const C = model.arch.hidden;
  if (!Number.isInteger(layer) || layer < 0 || layer >= model.arch.numLayers) throw new DeltaEditError("E_ARG", `lastTokenStates: layer ${layer} outside [0, ${model.arch.numLayers})`);
  const out = new Float32Array(prompts.length * C); // (P, C)
  const pad = tok.padTokenId;
  for (let s = 0; s < prompts.length; s += READ_CHUNK) {
    const part = prompts.slice(s, s + READ_CHUNK).map((p, i) => {
      const ids = contextIds(tok, p).slice(0, model.config.maxPositions);
      if (ids.length === 0) throw new DeltaEditError("E_ARG", `lastTokenStates: prompt ${s + i} gives no tokens`);
      return ids;
    });
    const batch = makeBatch(part, pad, model.config.vocabSize);
    const at = part.map((ids, row) => ({ row, pos: ids.length - 1 }));
    const r = forward(model, batch, { stopAfterLayer: layer, logits: "none", taps: { layers: [layer], at, block: true } });
    out.set(r.taps.block.get(layer)!, s * C); // (chunk, C)
  }
  return out;
}

/** A 2-component PCA of row vectors. */
export interface Pca2 {
  mean: Float64Array; // (C)
  components: Float64Array; // (2, C), unit rows
  /** Variance along each component (eigenvalues of the covariance, population normalisation). */
  variance: [number, number];
  /** Total variance (trace of the covariance) = spread². */
  totalVariance: number;
}

/** PCA with 2 components fitted on `x` (P, C) (see the header for the sign convention). */
export function pca2(x: Float32Array | Float64Array, P: number, C: number): Pca2 {
  const fn = "pca2";
  if (!Number.isInteger(P) || P < 1 || !Number.isInteger(C) || C < 1 || x.length !== P * C) throw ops.argError(fn, "x", `expected (P, C) = (${P}, ${C}) values, got ${x.length}`);
  const mean = new Float64Array(C);
  for (let p = 0; p < P; p++) for (let c = 0; c < C; c++) mean[c]! += x[p * C + c]!;
  for (let c = 0; c < C; c++) mean[c]! /= P;
  const centred = new Float64Array(P * C); // (P, C)
  for (let p = 0; p < P; p++) for (let c = 0; c < C; c++) centred[p * C + c] = x[p * C + c]! - mean[c]!;
  const cov = new Float64Array(C * C); // (C, C) XᵀX / P
  ops.syrk(centred, cov, { n: C, k: P, trans: true, alpha: 1 / P });
  const { values, vectors } = ops.eigh(cov, C); // ascending; column j of vectors for values[j]
  const components = new Float64Array(2 * C);
  const variance: [number, number] = [0, 0];
  for (let k = 0; k < Math.min(2, C); k++) {
    const j = C - 1 - k;
    variance[k] = Math.max(0, values[j]!);
    let big = 0;
    for (let c = 0; c < C; c++) if (Math.abs(vectors[c * C + j]!) > Math.abs(big)) big = vectors[c * C + j]!;
    const sign = big < 0 ? -1 : 1;
    for (let c = 0; c < C; c++) components[k * C + c] = sign * vectors[c * C + j]!;
  }
  let trace = 0;
  for (let c = 0; c < C; c++) trace += cov[c * C + c]!;
  return { mean, components, variance, totalVariance: trace };
}

/** Coordinates of the rows of `x` (P, C) on the two components: (P, 2). */
export function projectPca(pca: Pca2, x: Float32Array | Float64Array, P: number): Float64Array {
  const C = pca.mean.length;
  if (x.length !== P * C) throw ops.argError("projectPca", "x", `expected (P, C) = (${P}, ${C}) values, got ${x.length}`);
  const out = new Float64Array(P * 2);
  for (let p = 0; p < P; p++) {
    for (let k = 0; k < 2; k++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += (x[p * C + c]! - pca.mean[c]!) * pca.components[k * C + c]!;
      out[p * 2 + k] = s;
    }
  }
  return out;
}

/** The shift statistic of `after` against `before` (both (P, C), row p = the same prompt). */
export interface ShiftStats {
  prompts: number; // P
  spread: number; // RMS distance of the pre-edit states to their mean
  meanShift: number; // mean_p ‖after_p − before_p‖
  relativeShift: number; // meanShift / spread (NaN when spread = 0)
  centroidShift: number; // ‖mean(after) − mean(before)‖ / spread
}

/** Mean distance moved by each row relative to the spread of `before` (see the header). */
export function shiftStats(before: Float32Array | Float64Array, after: Float32Array | Float64Array, P: number, C: number): ShiftStats {
  const fn = "shiftStats";
  if (before.length !== P * C) throw ops.argError(fn, "before", `expected (P, C) = (${P}, ${C}) values, got ${before.length}`);
  if (after.length !== P * C) throw ops.argError(fn, "after", `expected (P, C) = (${P}, ${C}) values, got ${after.length}`);
  if (P < 1) throw ops.argError(fn, "P", `need at least one prompt, got ${P}`);
  const mb = new Float64Array(C), ma = new Float64Array(C);
  for (let p = 0; p < P; p++) for (let c = 0; c < C; c++) {
    mb[c]! += before[p * C + c]! / P;
    ma[c]! += after[p * C + c]! / P;
  }
  let spreadSq = 0, moved = 0;
  for (let p = 0; p < P; p++) {
    let d2 = 0, s2 = 0;
    for (let c = 0; c < C; c++) {
      const b = before[p * C + c]!;
      d2 += (after[p * C + c]! - b) ** 2;
      s2 += (b - mb[c]!) ** 2;
    }
    moved += Math.sqrt(d2);
    spreadSq += s2;
  }
  const spread = Math.sqrt(spreadSq / P);
  let cs = 0;
  for (let c = 0; c < C; c++) cs += (ma[c]! - mb[c]!) ** 2;
  const meanShift = moved / P;
  return { prompts: P, spread, meanShift, relativeShift: spread > 0 ? meanShift / spread : Number.NaN, centroidShift: spread > 0 ? Math.sqrt(cs) / spread : Number.NaN };
}
