/**
 * FT baselines (spec §4.5, ODD-19): constrained fine-tuning of the down projection of chosen layers.
 *
 * Trained parameters: the down-projection weight of every layer in `layers`, plus its bias where
 * the architecture has one (GPT-2, GPT-J: the reference's substring match selects both, ODD-19d).
 * W_start = those parameters at the start of THIS call (the L∞ box drifts across calls, ODD-19c).
 * Objectives (per row, then the mean over the rows of a chunk):
 *   "prompt_last" (FT-L, reference): −Σ_j mask_j log p(o_j | logits at the last prompt token) / Σ_j mask_j
 *       — every target token scored at the same position (ODD-19a); target ids tokenized with the
 *       default special tokens, so a BOS-adding tokenizer keeps BOS in the targets (ODD-19b).
 *   "target_new" (FT-M): teacher-forced mean next-token NLL over the target positions of
 *       tokenize(prompt + " target").
 * Optimiser: Adam (Appendix A, torch weight-decay semantics g += wd·θ), fresh state per call.
 * For numSteps epochs: per chunk of batchSize requests: loss; if loss ≥ lossThreshold: backward +
 * Adam step; then, if normConstraint = ε, clamp every trained parameter into [W_start − ε, W_start + ε].
 * After an epoch, stop when the mean chunk loss < lossThreshold. kl_factor and the power-law decay
 * have no effect in the reference (ODD-19e/f) and are not parameters here.
 * Recorded: per layer the applied update as `dense` (C, F) out × in and the bias delta when it changed;
 * the weights are set to W_start + record, so replaying the record reproduces them bit for bit.
 *
 * Dimension legend: C hidden width, F key width (d_ff), V vocabulary, P logit rows of a chunk.
 */
import { DeltaEditError } from "../../errors.js";
import { makeBatch, type Position } from "../../model/batch.js";
import { backward, forward } from "../../model/forward.js";
import { nllLoss } from "../../model/loss.js";
import type { LanguageModel } from "../../model/model.js";
import { spacedTarget, type EditRequest } from "../request.js";
import { applyDense, frobenius, weightOutIn } from "../update.js";
import { since, type BatchOutcome, type EditContext, type EditMethod, type LayerUpdate, type RequestReport } from "./method.js";
import { resolveParams } from "./params.js";

export interface FtParams {
  /** Layers whose down projection (and bias, where present) is trained. */
  layers: number[];
  /** Epochs over the batch (num_steps). */
  numSteps: number;
  /** Requests per optimiser step (batch_size). */
  batchSize: number;
  /** Adam learning rate. */
  lr: number;
  /** Adam weight decay (torch semantics: g += weightDecay·θ); 0 in every preset. */
  weightDecay: number;
  /** ε of the L∞ box around W_start; null = unconstrained. */
  normConstraint: number | null;
  /** "prompt_last" = FT-L (reference), "target_new" = FT-M (teacher forcing). */
  objective: "prompt_last" | "target_new";
  /** Skip a step when the chunk loss is below this, stop when the epoch mean is (1e-2). */
  lossThreshold: number;
}

/** gpt2-xl constrained preset (spec §6.5). */
export const ftDefaults: FtParams = {
  layers: [0],
  numSteps: 25,
  batchSize: 64,
  lr: 5e-4,
  weightDecay: 0,
  normConstraint: 5e-4,
  objective: "prompt_last",
  lossThreshold: 1e-2,
};

/** Adam constants (Appendix A). */
const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
const ADAM_EPS = 1e-8;

export function checkFtParams(p: FtParams, numLayers: number): void {
  if (p.layers.length === 0) throw new DeltaEditError("E_CONFIG", "ft: layers is empty");
  for (const l of p.layers) if (!Number.isInteger(l) || l < 0 || l >= numLayers) throw new DeltaEditError("E_CONFIG", `ft: layers entry ${l} outside [0, ${numLayers - 1}]`);
  if (new Set(p.layers).size !== p.layers.length) throw new DeltaEditError("E_CONFIG", `ft: layers must be distinct, got [${p.layers.join(",")}]`);
  if (!Number.isInteger(p.numSteps) || p.numSteps < 1) throw new DeltaEditError("E_CONFIG", `ft: numSteps must be a positive integer, got ${p.numSteps}`);
  if (!Number.isInteger(p.batchSize) || p.batchSize < 1) throw new DeltaEditError("E_CONFIG", `ft: batchSize must be a positive integer, got ${p.batchSize}`);
  if (p.normConstraint !== null && !(p.normConstraint > 0)) throw new DeltaEditError("E_CONFIG", `ft: normConstraint must be > 0 or null, got ${p.normConstraint}`);
  if (p.objective !== "prompt_last" && p.objective !== "target_new") throw new DeltaEditError("E_CONFIG", `ft: objective must be "prompt_last" or "target_new", got "${String(p.objective)}"`);
}

/** One request's rows: token ids and its scored (position, target) pairs. */
interface FtRow {
  ids: number[];
  /** (position in the row, target id): the logits at `pos` score `target`. */
  terms: { pos: number; target: number }[];
}

/** Builds the scored rows of one request for the objective (spec §4.5 steps 3–4 / FT-M). */
export function ftRow(model: LanguageModel, req: EditRequest, objective: FtParams["objective"]): FtRow {
  const tok = model.tokenizer;
  if (!tok) throw new DeltaEditError("E_TOKENIZER", "ft: needs the model's tokenizer");
  const prompt = req.prompt.replace("{}", () => req.subject);
  const target = spacedTarget(req.targetNew);
  if (objective === "prompt_last") {
    const ids = tok.encode(prompt);
    const targets = tok.encode(target); // default special tokens: BOS kept (ODD-19b)
    if (targets.length === 0) throw new DeltaEditError("E_REQUEST", `request ${req.caseId}: field "target_new" tokenizes to no tokens`, { context: { field: "target_new" } });
    return { ids, terms: targets.map((t) => ({ pos: ids.length - 1, target: t })) };
  }
  const promptIds = tok.encode(prompt);
  const ids = tok.encode(prompt + target);
  const terms: FtRow["terms"] = [];
  for (let p = promptIds.length - 1; p < ids.length - 1; p++) terms.push({ pos: p, target: ids[p + 1]! });
  if (terms.length === 0) throw new DeltaEditError("E_REQUEST", `request ${req.caseId}: field "target_new" adds no tokens to the prompt`, { context: { field: "target_new" } });
  return { ids, terms };
}

/** A trained parameter: live buffer, its snapshot, Adam moments. */
interface Trained {
  name: string;
  data: Float32Array; // live
  start: Float32Array; // W_start
  m: Float32Array; // Adam first moment
  v: Float32Array; // Adam second moment
}

export class FineTune implements EditMethod {
  readonly name = "ft" as const;
  readonly params: FtParams;

  constructor(overrides: Record<string, unknown>, numLayers: number) {
    // normConstraint is nullable with a numeric default, which resolveParams' coercion rejects: take
    // null ("null"/"none" from the CLI) out before resolving.
    const raw = overrides["normConstraint"];
    const unconstrained = raw === null || raw === "null" || raw === "none";
    const rest = { ...overrides };
    if (unconstrained) delete rest["normConstraint"];
    this.params = resolveParams("ft", ftDefaults, rest);
    if (unconstrained) this.params.normConstraint = null;
    checkFtParams(this.params, numLayers);
  }

  applyBatch(ctx: EditContext, requests: readonly EditRequest[]): BatchOutcome {
    const t0 = performance.now();
    const { model } = ctx;
    const p = this.params;
    const V = model.arch.vocab;
    const pad = model.tokenizer?.padTokenId ?? 0;
    const targets = p.layers.map((l) => model.arch.editTarget(l));
    const weightsBefore = targets.map((t) => weightOutIn(t)); // (C, F) each
    const trained: Trained[] = [];
    for (const t of targets) {
      for (const name of t.biasName ? [t.name, t.biasName] : [t.name]) {
        const data = model.params.get(name);
        trained.push({ name, data, start: data.slice(), m: new Float32Array(data.length), v: new Float32Array(data.length) });
      }
    }
    const names = trained.map((x) => x.name);
    const rows = requests.map((r) => ftRow(model, r, p.objective));
    const rowLoss = new Float64Array(requests.length); // last evaluated loss of each request
    let steps = 0;
    let epochs = 0;
    let stopReason = "max_steps";
    let lastEpochLoss = NaN;
    try {
      for (let epoch = 0; epoch < p.numSteps; epoch++) {
        epochs++;
        let sum = 0;
        let chunks = 0;
        for (let s = 0; s < rows.length; s += p.batchSize) {
          const chunk = rows.slice(s, s + p.batchSize);
          const batch = makeBatch(chunk.map((r) => r.ids), pad, V);
          const at: Position[] = [];
          const terms: { row: number; target: number; weight: number }[] = [];
          const termRow: number[] = []; // request index of each term
          chunk.forEach((r, i) => {
            const w = 1 / (r.terms.length * chunk.length); // mean over the row's targets, then over rows
            for (const tm of r.terms) {
              terms.push({ row: at.length, target: tm.target, weight: w });
              termRow.push(s + i);
              at.push({ row: i, pos: tm.pos });
            }
          });
          const res = forward(model, batch, { logits: at, forBackward: true });
          const nll = nllLoss(res.logits!, at.length, V, terms);
          for (let i = 0; i < chunk.length; i++) rowLoss[s + i] = 0;
          nll.nll.forEach((l, k) => (rowLoss[termRow[k]!]! += l / rows[termRow[k]!]!.terms.length));
          sum += nll.loss;
          chunks++;
          if (nll.loss >= p.lossThreshold) {
            const grads = backward(model, res.saved!, nll.dlogits, { params: names }).grads!;
            steps++;
            this.adamStep(trained, grads, steps);
          }
          if (p.normConstraint !== null) this.clampBox(trained, p.normConstraint);
        }
        lastEpochLoss = sum / chunks;
        if (lastEpochLoss < p.lossThreshold) {
          stopReason = "loss";
          break;
        }
      }
    } catch (e) {
      for (const x of trained) x.data.set(x.start);
      throw e;
    }
    const tOpt = since(t0);
    const ta = performance.now();
    const updates: LayerUpdate[] = [];
    const layerStats: BatchOutcome["layerStats"] = [];
    // The applied update is made exactly the record: W ← W_start + fround(W_trained − W_start)
    // (differs from the trained weight by at most half an ulp), so replaying the record is bit-identical.
    targets.forEach((t, i) => {
      const after = weightOutIn(t); // (C, F)
      const before = weightsBefore[i]!;
      const dense = new Float32Array(after.length); // (C, F) out × in
      for (let k = 0; k < after.length; k++) dense[k] = after[k]! - before[k]!;
      t.W.set(trained.find((x) => x.name === t.name)!.start);
      applyDense(t, dense);
      const u: LayerUpdate = { layer: p.layers[i]!, n: requests.length, keys: null, influence: null, activation: null, dense };
      if (t.biasName) {
        const b = trained.find((x) => x.name === t.biasName)!;
        const delta = new Float32Array(b.data.length); // (C)
        let changed = false;
        for (let k = 0; k < delta.length; k++) {
          delta[k] = b.data[k]! - b.start[k]!;
          b.data[k] = b.start[k]! + delta[k]!;
          if (delta[k] !== 0) changed = true;
        }
        if (changed) {
          u.biasName = t.biasName;
          u.biasDelta = delta;
        }
      }
      updates.push(u);
      layerStats.push({ layer: u.layer, deltaNorm: frobenius(dense), residualNorm: lastEpochLoss }); // residualNorm: final mean loss
    });
    ctx.log(`ft: ${epochs} epochs, ${steps} Adam steps, final mean loss ${lastEpochLoss.toPrecision(4)} (${stopReason})`);
    const reports: RequestReport[] = requests.map((r, j) => ({
      caseId: r.caseId,
      index: r.index,
      steps,
      stopReason,
      finalLoss: rowLoss[j]!,
      finalAvgProb: Math.exp(-rowLoss[j]!),
      deltaNorm: 0,
      t0Norm: 0,
      warnings: [],
    }));
    return {
      updates,
      requests: reports,
      layerStats,
      timings: { target: 0, keys: 0, solve: tOpt, apply: since(ta), total: since(t0) },
      replayData: {},
    };
  }

  /** Adam (Appendix A) on every trained parameter, step t (1-based). */
  private adamStep(trained: Trained[], grads: { get(name: string): Float32Array }, t: number): void {
    const { lr, weightDecay } = this.params;
    const bc1 = 1 - Math.pow(ADAM_BETA1, t);
    const bc2s = Math.sqrt(1 - Math.pow(ADAM_BETA2, t));
    for (const x of trained) {
      const g = grads.get(x.name);
      const { data, m, v } = x;
      for (let i = 0; i < data.length; i++) {
        const gi = g[i]! + weightDecay * data[i]!;
        m[i] = m[i]! + (1 - ADAM_BETA1) * (gi - m[i]!);
        v[i] = ADAM_BETA2 * v[i]! + (1 - ADAM_BETA2) * gi * gi;
        data[i] = data[i]! - (lr / bc1) * (m[i]! / (Math.sqrt(v[i]!) / bc2s + ADAM_EPS));
      }
    }
  }

  /** W ← clamp(W, W_start − ε, W_start + ε) elementwise. */
  private clampBox(trained: Trained[], eps: number): void {
    for (const x of trained) {
      const { data, start } = x;
      for (let i = 0; i < data.length; i++) {
        const lo = start[i]! - eps;
        const hi = start[i]! + eps;
        if (data[i]! < lo) data[i] = lo;
        else if (data[i]! > hi) data[i] = hi;
      }
    }
  }

  replay(): void {
    // FT keeps no state across calls; the session re-applies the recorded dense updates and biases.
  }
}
