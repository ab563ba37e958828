/**
 * Scalar losses on output log-probabilities and their gradients w.r.t. the logits.
 * Logits are (P, V) rows at the positions a forward pass was asked for. The row-wise
 * log-softmax and softmax are computed natively once (`distributions`) and can be shared by
 * several losses on the same logits (NLL + KL in the target optimisation).
 */
import * as ops from "../kernels/ops.js";
import { DeltaEditError } from "../errors.js";

/** A loss value and its gradient w.r.t. the logits. */
export interface LossWithGrad {
  loss: number;
  dlogits: Float32Array; // (P, V), dLoss/dlogits
}

/** Row-wise log-softmax and softmax of logits (P, V). */
export interface Distributions {
  logp: Float32Array; // (P, V)
  p: Float32Array; // (P, V)
}

/** log-softmax of every row: (P, V). */
export function logSoftmax(logits: Float32Array, P: number, V: number): Float32Array {
  const out = new Float32Array(P * V);
  ops.logSoftmaxForward(logits, out, P, V);
  return out;
}

export function distributions(logits: Float32Array, P: number, V: number): Distributions {
  const logp = logSoftmax(logits, P, V);
  const p = new Float32Array(P * V);
  ops.softmaxForward(logits, p, P, V);
  return { logp, p };
}

/**
 * Weighted negative log-likelihood: L = Σ_i w_i · (−log p_{row_i}(target_i)).
 * With w_i = 1/(T·R) this is the mean over R rows of each row's mean NLL over its T targets.
 * Rows not listed get zero gradient. Also returns each term's NLL (for monitoring).
 */
export function nllLoss(logits: Float32Array, P: number, V: number, terms: readonly { row: number; target: number; weight: number }[], dlogits?: Float32Array, dist?: Distributions): LossWithGrad & { nll: number[] } {
  const { logp, p } = dist ?? distributions(logits, P, V);
  const g = dlogits ?? new Float32Array(P * V);
  let loss = 0;
  const nll: number[] = [];
  for (const t of terms) {
    if (t.row < 0 || t.row >= P) throw new DeltaEditError("E_ARG", `nllLoss: row ${t.row} outside [0, ${P})`);
    if (t.target < 0 || t.target >= V) throw new DeltaEditError("E_ARG", `nllLoss: target id ${t.target} outside [0, ${V})`);
    const o = t.row * V;
    const l = -logp[o + t.target]!;
    nll.push(l);
    loss += t.weight * l;
    // d(−log softmax_y)/dz = softmax − onehot(y)
    const w = t.weight;
    for (let v = 0; v < V; v++) g[o + v]! += w * p[o + v]!;
    g[o + t.target]! -= w;
  }
  return { loss, dlogits: g, nll };
}

/**
 * KL(p ‖ p0) at the given rows, times `weight`: Σ_v p(v)(log p(v) − log p0(v)), p = softmax(logits_row),
 * refLogProbs (R, V) fixed. Gradient: dKL/dz_j = p_j (log p_j − log p0_j − KL).
 */
export function klLoss(logits: Float32Array, P: number, V: number, rows: readonly number[], refLogProbs: Float32Array, weight: number, dlogits?: Float32Array, dist?: Distributions): LossWithGrad {
  if (refLogProbs.length !== rows.length * V) throw new DeltaEditError("E_ARG", `klLoss: refLogProbs has length ${refLogProbs.length}, expected ${rows.length}·${V}`);
  const { logp, p } = dist ?? distributions(logits, P, V);
  const g = dlogits ?? new Float32Array(P * V);
  let loss = 0;
  rows.forEach((row, i) => {
    const o = row * V;
    const r = i * V;
    let kl = 0;
    for (let v = 0; v < V; v++) kl += p[o + v]! * (logp[o + v]! - refLogProbs[r + v]!);
    loss += weight * kl;
    for (let v = 0; v < V; v++) g[o + v]! += weight * p[o + v]! * (logp[o + v]! - refLogProbs[r + v]! - kl);
  });
  return { loss, dlogits: g };
}
