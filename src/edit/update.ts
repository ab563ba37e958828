/**
 * Low-rank updates of an edited matrix. Every locate-then-edit update here is Δ = R·Xᵀ with
 * R (C, N) the influence vectors (what the update writes into the residual stream) and
 * X (F, N) the activation vectors (which keys trigger it), in out × in orientation (spec §3.10).
 * GPT-2 stores the down projection (F, C) and receives Δᵀ = X·Rᵀ; Llama stores (C, F) and receives Δ.
 */
import * as ops from "../kernels/ops.js";
import type { EditTarget } from "../model/arch/architecture.js";
import type { LanguageModel } from "../model/model.js";
import type { LayerUpdate } from "./methods/method.js";

/** W ← W + sign · R Xᵀ (in W's storage layout). */
export function applyLowRank(target: EditTarget, influence: Float32Array, activation: Float32Array, n: number, sign: 1 | -1 = 1): void {
  const C = target.dOut;
  const F = target.dIn;
  if (target.layout === "out_in") ops.gemm(influence, activation, target.W, { m: C, n: F, k: n, transB: true, alpha: sign, beta: 1 });
  else ops.gemm(activation, influence, target.W, { m: F, n: C, k: n, transB: true, alpha: sign, beta: 1 });
}

/** Dense Δ = R Xᵀ (C, F), out × in. */
export function denseDelta(influence: Float32Array, activation: Float32Array, C: number, F: number, n: number): Float32Array {
  const d = new Float32Array(C * F);
  ops.gemm(influence, activation, d, { m: C, n: F, k: n, transB: true });
  return d;
}

/** Add a dense out × in update (C, F) to a stored weight. */
export function applyDense(target: EditTarget, delta: Float32Array, sign: 1 | -1 = 1): void {
  const C = target.dOut;
  const F = target.dIn;
  const W = target.W;
  if (target.layout === "out_in") {
    for (let i = 0; i < C * F; i++) W[i]! += sign * delta[i]!;
  } else {
    for (let c = 0; c < C; c++) for (let f = 0; f < F; f++) W[f * C + c]! += sign * delta[c * F + f]!;
  }
}

/** The stored weight as an out × in (C, F) copy. */
export function weightOutIn(target: EditTarget): Float32Array {
  const C = target.dOut;
  const F = target.dIn;
  if (target.layout === "out_in") return target.W.slice();
  const out = new Float32Array(C * F);
  for (let f = 0; f < F; f++) for (let c = 0; c < C; c++) out[c * F + f] = target.W[f * C + c]!;
  return out;
}

export function frobenius(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
}

/** Apply (sign +1) or remove (−1) one recorded update: dense, or low-rank R·Xᵀ, plus a bias delta. */
export function applyLayerUpdate(model: LanguageModel, u: LayerUpdate, sign: 1 | -1 = 1): void {
  const target = model.arch.editTarget(u.layer);
  if (u.dense) applyDense(target, u.dense, sign);
  else if (u.influence && u.activation) applyLowRank(target, u.influence, u.activation, u.n, sign);
  if (u.biasName && u.biasDelta) {
    const b = model.params.get(u.biasName);
    for (let i = 0; i < b.length; i++) b[i]! += sign * u.biasDelta[i]!;
  }
}
