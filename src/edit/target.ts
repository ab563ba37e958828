/**
 * The target-vector optimisation (spec §3.7 `compute_z`, §3.8 ROME `compute_v`, Appendix A).
 *
 * Find δ (C) such that injecting it at the subject's last token of every prompt, at the output of
 * block `layer`, makes the model predict the new target; z = t0 + δ.
 *   rows 0..R−1: fill(template_i, prompt) with the subject filled in, then target[0..T−2] (as ids);
 *   row R: "{} is a" (the KL prompt).
 *   J = NLL + KL + WD:
 *     NLL = mean over rewriting rows of the row's mean −log p(o_j) at positions len_i − T + j;
 *     KL  = klFactor · KL(p ‖ p0) of the next-token distribution at the KL row's subject position
 *           (p0 from the first forward, δ = 0) (ODD-2);
 *     WD  = weightDecay · ‖δ‖ / ‖t0‖²  (a norm over a squared norm, ODD-1; gradient 0 at δ = 0).
 * Loop it = 0..S−1: forward; stop if J < lossStop; stop if avgProb > earlyStopAvgProb (DeltaEdit
 * only); stop at it = S−1; Adam step on δ; DeltaEdit's projection hook δ ← P_δ δ (ODD-9: Adam's
 * moments are not projected); norm clamp ‖δ‖ ≤ clampNormFactor·‖t0‖. So at most S−1 Adam steps
 * (ODD-3). z is built from the δ of the last completed forward.
 *
 * Prefix caching (exact, §7.8): blocks 0..layer run once. In the blocks above, the positions before
 * each row's subject do not depend on δ either (causal attention): they run once too, into a KV
 * cache, and each step reruns blocks layer+1..N−1 only at the positions from the subject's last
 * token on (2–6 of the ~20 tokens of a templated row), attending over the cache. Only the target
 * positions and the KL position are projected onto the vocabulary. On that path the projection is
 * fused with the losses (`ops.softmaxHead`): logits, NLL, KL and dLoss/d(final normed rows) in one
 * pass over the head weight (the reference formulation reads it twice: logits, then dlogits·W).
 */
import { DeltaEditError } from "../errors.js";
import type { KVCacheLayer } from "../model/arch/architecture.js";
import { makeBatch, type Batch, type Position } from "../model/batch.js";
import { backward, forward, ForwardWorkspace } from "../model/forward.js";
import * as ops from "../kernels/ops.js";
import { distributions, klLoss, logSoftmax, nllLoss } from "../model/loss.js";
import type { LanguageModel } from "../model/model.js";
import { targetTokenIds, type EditRequest } from "./request.js";
import { fillTemplate, locateSubject } from "./subject.js";

export interface TargetParams {
  /** Block whose output receives δ (MEMIT family: the z-layer l_z; ROME: the edited layer). */
  layer: number;
  /** Last block used for the loss; must be the model's last block (the reference's valid presets). */
  lossLayer: number;
  numGradSteps: number; // S (v_num_grad_steps)
  lr: number; // Adam learning rate (v_lr)
  weightDecay: number; // v_weight_decay (ODD-1 form)
  klFactor: number; // kl_factor
  clampNormFactor: number; // clamp_norm_factor
  lossStop: number; // stop when J < this (5e-2)
  earlyStopAvgProb: number | null; // DeltaEdit: stop when avgProb > this (0.98); null = off
  /** "block": t0 = block output (MEMIT family); "value": t0 = MLP output (ROME). */
  t0Source: "block" | "value";
  /** Use prefix caching (exact). false = rerun every block each step (the reference formulation). */
  prefixCache: boolean;
}

/** What the first forward (δ = 0) reveals, for DeltaEdit's noise monitor. */
export interface FirstForward {
  t0: Float32Array; // (C)
  kappa: Float32Array; // (F) key at block `layer`, row 0, subject position (ODD-8)
}

/** Decides, right after the first forward, whether δ is projected after each Adam step. */
export type ProjectionHook = (first: FirstForward) => ((delta: Float32Array) => Float32Array) | null;

export interface TargetResult {
  z: Float32Array; // (C) t0 + δ
  t0: Float32Array; // (C)
  delta: Float32Array; // (C)
  kappa: Float32Array; // (F)
  steps: number; // Adam steps taken
  forwards: number;
  stopReason: "loss" | "avgprob" | "max_steps";
  losses: { nll: number; kl: number; wd: number; total: number; avgProb: number }[];
  projected: boolean;
  warnings: string[];
}

interface Prepared {
  ids: number[][];
  lookup: Position[]; // subject-last position per row (δ injected there)
  logitPositions: Position[];
  nllTerms: { row: number; target: number; weight: number }[];
  klRow: number; // index into logitPositions
  rewritingRows: number;
  T: number;
  warnings: string[];
}

function prepare(model: LanguageModel, req: EditRequest, templates: readonly string[]): Prepared {
  const tok = model.tokenizer;
  if (!tok) throw new DeltaEditError("E_TOKENIZER", "target optimisation needs the model's tokenizer");
  const target = targetTokenIds(tok, req.targetNew);
  if (target.length === 0) throw new DeltaEditError("E_REQUEST", `request ${req.caseId}: field "target_new" tokenizes to no tokens`, { context: { field: "target_new" } });
  const T = target.length;
  const warnings: string[] = [];
  const ids: number[][] = [];
  const lookup: Position[] = [];
  // rewriting rows: fill(template, prompt) with the subject, then the T−1 leading target tokens appended as
  // ids (equal to the reference's decode-and-retokenise route whenever its assumption holds, §3.7)
  const strings = templates.map((c) => fillTemplate(c, req.prompt));
  strings.push("{} is a");
  strings.forEach((s, row) => {
    const loc = locateSubject(tok, s, req.subject, `request ${req.caseId}`);
    if (loc.warning) warnings.push(loc.warning);
    ids.push(row < templates.length ? [...loc.ids, ...target.slice(0, T - 1)] : loc.ids);
    lookup.push({ row, pos: loc.subjectLast });
  });
  const R = templates.length;
  const logitPositions: Position[] = [];
  const nllTerms: { row: number; target: number; weight: number }[] = [];
  for (let i = 0; i < R; i++) {
    const len = ids[i]!.length;
    for (let j = 0; j < T; j++) {
      const pos = len - T + j;
      if (pos < 0) throw new DeltaEditError("E_REQUEST", `request ${req.caseId}: prompt row ${i} is shorter than the target`, { context: { field: "target_new" } });
      nllTerms.push({ row: logitPositions.length, target: target[j]!, weight: 1 / (T * R) });
      logitPositions.push({ row: i, pos });
    }
  }
  const klRow = logitPositions.length;
  logitPositions.push(lookup[R]!);
  return { ids, lookup, logitPositions, nllTerms, klRow, rewritingRows: R, T, warnings };
}

/**
 * How much work one target search does, from the same tokenization as `computeTarget` (the bench
 * counts FLOPs with it). Rows i = 0..B−1 (the templated rows, then the KL row) have len_i tokens
 * and δ enters at q_i (the subject's last token). Per step, the full rerun runs every block over
 * all len_i positions; the prefix-cached path reruns blocks layer+1..N−1 over the suffixes
 * q_i..len_i−1 only, after running the prefixes 0..q_i−1 of those blocks once. Both project the
 * P scored positions (T per templated row, plus the KL position) onto the vocabulary. "padded"
 * counts are what the batched kernels process (rows right-padded to the longest).
 */
export interface TargetWork {
  rows: number; // B
  lengths: number[]; // (B) len_i
  lookup: number[]; // (B) q_i
  scored: number; // P
  fullTokens: number; // Σ len_i
  paddedFullTokens: number; // B · max len_i
  suffixTokens: number; // Σ (len_i − q_i)
  paddedSuffixTokens: number; // B · max (len_i − q_i)
  prefixTokens: number; // Σ q_i
  paddedPrefixTokens: number; // B · max q_i
}

export function targetWork(model: LanguageModel, req: EditRequest, templates: readonly string[]): TargetWork {
  const pr = prepare(model, req, templates);
  const lengths = pr.ids.map((r) => r.length);
  const lookup = pr.lookup.map((p) => p.pos);
  const suffix = lengths.map((l, i) => l - lookup[i]!);
  const B = lengths.length;
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  return {
    rows: B,
    lengths,
    lookup,
    scored: pr.logitPositions.length,
    fullTokens: sum(lengths),
    paddedFullTokens: B * Math.max(...lengths),
    suffixTokens: sum(suffix),
    paddedSuffixTokens: B * Math.max(...suffix),
    prefixTokens: sum(lookup),
    paddedPrefixTokens: B * Math.max(...lookup),
  };
}

/**
 * The context-prefix cache of the target search (§7.8): for row i with lookup index q_i, positions
 * 0..q_i−1 are δ-independent in every block. They are run once through blocks layer+1..N−1, left-
 * aligned so that every row's prefix ends at column S = max q_i (left pads masked), filling a KV
 * cache; each step then runs the suffixes q_i..len_i−1 (right-padded to Ts) with past length S.
 */
export interface SuffixPlan {
  batch: Batch; // (B, Ts), pastLength S
  startHidden: Float32Array; // (B·Ts, C) h^(layer) at the suffix positions, before injection
  kv: KVCacheLayer[]; // index = block; blocks layer+1..N−1, columns 0..S−1 filled
  at: Position[]; // the injection: column 0 of every row (its lookup position)
  logitPositions: Position[]; // in suffix coordinates
}

export function planSuffix(
  model: LanguageModel,
  pr: { ids: readonly (readonly number[])[]; lookup: readonly Position[]; logitPositions: readonly Position[] },
  hidden: Float32Array, // (B·T, C) h^(layer) of the right-padded batch of pr.ids
  T: number,
  layer: number,
  padId: number,
): SuffixPlan {
  const C = model.arch.hidden;
  const N = model.arch.numLayers;
  const B = pr.ids.length;
  const q = pr.lookup.map((p, i) => {
    if (p.row !== i) throw new DeltaEditError("E_ARG", `target search: lookup ${i} is in row ${p.row}`);
    if (!(p.pos >= 0 && p.pos < pr.ids[i]!.length)) throw new DeltaEditError("E_ARG", `target search: lookup ${p.pos} outside row ${i}`);
    return p.pos;
  });
  const len = pr.ids.map((r) => r.length);
  const S = Math.max(...q);
  const n = len.map((l, i) => l - q[i]!);
  const Ts = Math.max(...n);
  const width = model.config.numKvHeads * model.config.headSize;
  const kv: KVCacheLayer[] = [];
  for (let l = layer + 1; l < N; l++) kv[l] = { k: new Float32Array(B * (S + Ts) * width), v: new Float32Array(B * (S + Ts) * width), maxT: S + Ts };
  const prefixMask = new Uint8Array(B * S);
  if (S > 0) {
    // prefixes, left-aligned: row b's position p sits at column S − q_b + p
    const ids = new Int32Array(B * S).fill(padId);
    const positions = new Int32Array(B * S);
    const start = new Float32Array(B * S * C);
    for (let b = 0; b < B; b++) {
      const off = S - q[b]!;
      for (let p = 0; p < q[b]!; p++) {
        ids[b * S + off + p] = pr.ids[b]![p]!;
        positions[b * S + off + p] = p;
        prefixMask[b * S + off + p] = 1;
        start.set(hidden.subarray((b * T + p) * C, (b * T + p + 1) * C), (b * S + off + p) * C);
      }
    }
    const prefix: Batch = { ids, B, T: S, lengths: q, shape: { B, T: S, lengths: q, positions, keyMask: prefixMask, pastLength: 0 } };
    forward(model, prefix, { startLayer: layer + 1, startHidden: start, kvCache: kv, logits: "none" });
  }
  const ids = new Int32Array(B * Ts).fill(padId);
  const positions = new Int32Array(B * Ts);
  const keyMask = new Uint8Array(B * (S + Ts));
  const startHidden = new Float32Array(B * Ts * C);
  for (let b = 0; b < B; b++) {
    keyMask.set(prefixMask.subarray(b * S, (b + 1) * S), b * (S + Ts));
    for (let t = 0; t < Ts; t++) {
      const p = q[b]! + t;
      positions[b * Ts + t] = t < n[b]! ? p : q[b]!;
      if (t >= n[b]!) continue;
      ids[b * Ts + t] = pr.ids[b]![p]!;
      keyMask[b * (S + Ts) + S + t] = 1;
      startHidden.set(hidden.subarray((b * T + p) * C, (b * T + p + 1) * C), (b * Ts + t) * C);
    }
  }
  const batch: Batch = { ids, B, T: Ts, lengths: n, shape: { B, T: Ts, lengths: len, positions, keyMask, pastLength: S } };
  return {
    batch,
    startHidden,
    kv,
    at: q.map((_, row) => ({ row, pos: 0 })),
    logitPositions: pr.logitPositions.map(({ row, pos }) => {
      if (pos < q[row]!) throw new DeltaEditError("E_ARG", `target search: logit position ${pos} of row ${row} lies before its lookup ${q[row]}`);
      return { row, pos: pos - q[row]! };
    }),
  };
}

/**
 * The fused head's inputs and outputs for one search (null where it does not apply: a head weight
 * stored (in, out) or with a bias, or a logit position with more than one NLL term).
 */
function fusedHead(model: LanguageModel, pr: Prepared, P: number): { W: Float32Array; terms: ops.SoftmaxHeadTerms; out: ops.SoftmaxHeadOut } | null {
  const head = model.arch.lmHead();
  if (head.layout !== "out_in" || head.b) return null;
  const V = model.arch.vocab;
  const C = model.arch.hidden;
  const target = new Int32Array(P).fill(-1);
  const nllWeight = new Float32Array(P);
  for (const t of pr.nllTerms) {
    if (target[t.row] !== -1 || t.row === pr.klRow) return null;
    target[t.row] = t.target;
    nllWeight[t.row] = t.weight;
  }
  return {
    W: head.W,
    terms: { target, nllWeight, klWeight: new Float32Array(P), refLogp: new Float32Array(P * V), klShift: new Float32Array(P) },
    out: { logits: new Float32Array(P * V), dh: new Float32Array(P * C), lse: new Float32Array(P), kl: new Float32Array(P) },
  };
}

function norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

export function computeTarget(model: LanguageModel, req: EditRequest, templates: readonly string[], p: TargetParams, hook?: ProjectionHook): TargetResult {
  const N = model.arch.numLayers;
  if (p.lossLayer !== N - 1) {
    throw new DeltaEditError("E_CONFIG", `lossLayer ${p.lossLayer} is not the model's last block (${N - 1})${p.lossLayer >= N ? ": it does not exist (cf. the reference's Llama3-8B DeltaEdit preset, ODD-10)" : "; only the last block is supported"}`);
  }
  if (!Number.isInteger(p.layer) || p.layer < 0 || p.layer >= N - 1) {
    throw new DeltaEditError("E_CONFIG", `target layer ${p.layer} outside [0, ${N - 2}]: δ must be injected before the last block to reach the target logits`);
  }
  const C = model.arch.hidden;
  const V = model.arch.vocab;
  const pr = prepare(model, req, templates);
  const batch = makeBatch(pr.ids, model.tokenizer!.padTokenId, V);
  const P = pr.logitPositions.length;

  // blocks 0..layer once: t0 and κ at row 0's subject position; h^(layer) for prefix caching
  const at0 = [pr.lookup[0]!];
  const pre = forward(model, batch, { stopAfterLayer: p.layer, keepHidden: [p.layer], taps: { layers: [p.layer], at: at0, key: true, block: p.t0Source === "block", value: p.t0Source === "value" }, logits: "none" });
  const t0 = (p.t0Source === "block" ? pre.taps.block : pre.taps.value).get(p.layer)!.slice();
  const kappa = pre.taps.key.get(p.layer)!.slice();
  const hidden = pre.hidden.get(p.layer)!;
  const t0n = norm(t0);
  const t0n2 = t0n * t0n;

  const delta = new Float32Array(C); // δ, starts at 0
  const m = new Float32Array(C); // Adam first moment
  const v = new Float32Array(C); // Adam second moment
  const b1 = 0.9;
  const b2 = 0.999;
  const eps = 1e-8;
  let project: ((d: Float32Array) => Float32Array) | null = null;
  let refLogp: Float32Array | null = null; // (1, V) p0 at the KL position
  const losses: TargetResult["losses"] = [];
  let steps = 0;
  let forwards = 0;
  let stopReason: TargetResult["stopReason"] = "max_steps";
  const plan = p.prefixCache ? planSuffix(model, pr, hidden, batch.T, p.layer, model.tokenizer!.padTokenId) : null;
  const inj = { layer: p.layer, vector: delta, at: plan ? plan.at : pr.lookup };
  const ws = new ForwardWorkspace(); // buffers reused by every step (same 7 rows)
  const fused = plan ? fusedHead(model, pr, P) : null;
  for (let it = 0; it < p.numGradSteps; it++) {
    const res = plan
      ? forward(model, plan.batch, { startLayer: p.layer + 1, startHidden: plan.startHidden, kvCache: plan.kv, injection: inj, logits: plan.logitPositions, forBackward: true, workspace: ws, skipHead: fused !== null })
      : forward(model, batch, { injection: inj, logits: pr.logitPositions, forBackward: true, workspace: ws });
    forwards++;
    let nll: { loss: number; nll: number[] };
    let kl: { loss: number; dlogits: Float32Array | null };
    if (fused) {
      // KL(p ‖ p0) is 0 at it = 0 (p = p0) with gradient 0: its term starts at it = 1, shifted by p0's log-sum-exp
      if (it === 1) fused.terms.klWeight[pr.klRow] = p.klFactor;
      ops.softmaxHead(res.saved!.finalNormed, fused.W, fused.terms, fused.out, P, V, C);
      const { logits, lse } = fused.out;
      const each = pr.nllTerms.map((t) => lse[t.row]! - logits[t.row * V + t.target]!);
      nll = { loss: pr.nllTerms.reduce((a, t, i) => a + t.weight * each[i]!, 0), nll: each };
      kl = { loss: it === 0 ? 0 : p.klFactor * fused.out.kl[pr.klRow]!, dlogits: null };
      if (it === 0) {
        fused.terms.refLogp!.set(logSoftmax(logits.subarray(pr.klRow * V, (pr.klRow + 1) * V), 1, V), pr.klRow * V);
        fused.terms.klShift[pr.klRow] = lse[pr.klRow]!;
        if (hook) project = hook({ t0, kappa });
      }
    } else {
      const logits = res.logits!;
      if (it === 0) {
        refLogp = logSoftmax(logits.subarray(pr.klRow * V, (pr.klRow + 1) * V), 1, V);
        if (hook) {
          project = hook({ t0, kappa });
        }
      }
      const dist = distributions(logits, P, V); // one native log-softmax / softmax shared by NLL and KL
      nll = nllLoss(logits, P, V, pr.nllTerms, undefined, dist);
      kl = klLoss(logits, P, V, [pr.klRow], refLogp!, p.klFactor, (nll as ReturnType<typeof nllLoss>).dlogits, dist);
    }
    const dn = norm(delta);
    const wd = (p.weightDecay * dn) / t0n2;
    const total = nll.loss + kl.loss + wd;
    // avgProb = mean over rewriting rows of exp(−row mean NLL)
    let avgProb = 0;
    for (let i = 0; i < pr.rewritingRows; i++) {
      let s = 0;
      for (let j = 0; j < pr.T; j++) s += nll.nll[i * pr.T + j]!;
      avgProb += Math.exp(-s / pr.T) / pr.rewritingRows;
    }
    losses.push({ nll: nll.loss, kl: kl.loss, wd, total, avgProb });
    if (total < p.lossStop) {
      stopReason = "loss";
      break;
    }
    if (p.earlyStopAvgProb !== null && avgProb > p.earlyStopAvgProb) {
      stopReason = "avgprob";
      break;
    }
    if (it === p.numGradSteps - 1) break;
    const g = backward(model, res.saved!, kl.dlogits, fused ? { injection: true, dFinalNormed: fused.out.dh } : { injection: true }).dInjection!;
    if (it === 0 && g.every((x) => x === 0)) {
      // structurally zero (no path from the injection to the loss), never a rounding accident: the loss is above lossStop
      throw new DeltaEditError("E_CONFIG", `request ${req.caseId}: the target search's gradient with respect to δ at layer ${p.layer} is identically zero (loss ${total.toPrecision(4)}), so no update can be found; the injection point does not reach the loss — choose an earlier layer`, { context: { field: "layer" } });
    }
    if (dn > 0) for (let i = 0; i < C; i++) g[i]! += (p.weightDecay * delta[i]!) / (dn * t0n2);
    // Adam (Appendix A): m ← m + (1−β1)(g − m); v ← β2 v + (1−β2) g²
    steps++;
    const bc1 = 1 - Math.pow(b1, steps);
    const bc2 = 1 - Math.pow(b2, steps);
    for (let i = 0; i < C; i++) {
      const gi = g[i]!;
      m[i] = m[i]! + (1 - b1) * (gi - m[i]!);
      v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
      delta[i] = delta[i]! - (p.lr / bc1) * (m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(bc2) + eps));
    }
    if (project) delta.set(project(delta));
    const tau = p.clampNormFactor * t0n;
    const nd = norm(delta);
    if (nd > tau) {
      const s = tau / nd;
      for (let i = 0; i < C; i++) delta[i]! *= s;
    }
  }
  const z = new Float32Array(C);
  for (let i = 0; i < C; i++) z[i] = t0[i]! + delta[i]!;
  return { z, t0, delta: delta.slice(), kappa, steps, forwards, stopReason, losses, projected: project !== null, warnings: pr.warnings };
}
