/**
 * Full-parameter training of a LanguageModel on a token stream: the trainer behind
 * `deltaedit world train`.
 *
 * Dimension legend: B windows per micro-batch, T input tokens per window, P = B·T logit rows,
 * V vocabulary.
 *
 * One optimizer step:
 *   for each of `gradAccum` micro-batches:
 *     B windows of T + 1 tokens (`windows.ts`) → inputs (B, T), targets (B, T) shifted by one
 *     forward(logits "all", forBackward) → logits (P, V)
 *     loss = Σ_rows −log p(target) · 1/(P·gradAccum)      (mean next-token NLL of the step)
 *     backward(params "all", into grads)                    (accumulates)
 *   clip the global gradient norm to `clipNorm`; AdamW with the scheduled lr (`adamw.ts`), skipping
 *   the MLPs of the first `frozenMlpBlocks` blocks (their gradients are zeroed before clipping).
 * Every `evalEvery` steps: held-out loss / perplexity and the caller's `probe` (e.g. fact accuracy).
 * Every `checkpointEvery` steps (and when stopped): a checkpoint (`trainstate.ts`); `resume`
 * continues from it with bit-identical results for the same thread count.
 *
 * Tied models: `backward` adds both the head-side and the input-side gradient into the token
 * embedding, so the tied matrix is trained as one parameter.
 */
import { DeltaEditError } from "../errors.js";
import * as ops from "../kernels/ops.js";
import { ADAMW_DEFAULTS, AdamW, clipGradNorm, lrAt } from "./adamw.js";
import { makeBatch } from "./batch.js";
import { backward, forward } from "./forward.js";
import type { LanguageModel } from "./model.js";
import type { ParamStore } from "./params.js";
import { loadTrainState, readTrainStateJson, saveTrainState } from "./trainstate.js";
import { evalWindows, WindowSampler } from "./windows.js";

export interface TrainParams {
  /** Windows (rows) per micro-batch, B. */
  batchSize: number;
  /** Input tokens per window, T (≤ the model's max positions). */
  seqLen: number;
  /** Micro-batches whose gradients are summed per optimizer step (tokens per step = B·T·gradAccum). */
  gradAccum: number;
  /** Total optimizer steps. */
  steps: number;
  /** Peak learning rate. */
  lr: number;
  /** Linear warm-up steps. */
  warmupSteps: number;
  /** Cosine decay floor, as a fraction of the peak learning rate. */
  minLrRatio: number;
  /** AdamW first-moment decay. */
  beta1: number;
  /** AdamW second-moment decay. */
  beta2: number;
  /** AdamW denominator floor. */
  eps: number;
  /** Decoupled weight decay on block matrices (see adamw.ts `isDecayed`). */
  weightDecay: number;
  /** Maximum global L2 norm of the gradient (clipped above). */
  clipNorm: number;
  /** Evaluate every this many steps (0: only at the end). */
  evalEvery: number;
  /** Held-out windows used for the periodic evaluation loss (the final one too). */
  evalWindows: number;
  /** Checkpoint every this many steps (0: only when stopped or finished). Needs `checkpointDir`. */
  checkpointEvery: number;
  /** Progress line every this many steps. */
  logEvery: number;
  /** Seed of the data order (window grid offsets and permutations). */
  seed: number;
  /**
   * The MLPs of blocks 0 … n−1 keep their initial weights (no gradient step, no weight decay):
   * a world design lever that leaves fact storage to later blocks (docs/world.md, probe L). 0: none.
   */
  frozenMlpBlocks: number;
}

export const TRAIN_DEFAULTS: Readonly<TrainParams> = Object.freeze({
  batchSize: 8,
  seqLen: 128,
  gradAccum: 1,
  steps: 1000,
  lr: 2e-3,
  warmupSteps: 100,
  minLrRatio: 0.1,
  beta1: ADAMW_DEFAULTS.beta1,
  beta2: ADAMW_DEFAULTS.beta2,
  eps: ADAMW_DEFAULTS.eps,
  weightDecay: ADAMW_DEFAULTS.weightDecay,
  clipNorm: 1.0,
  evalEvery: 200,
  evalWindows: 64,
  checkpointEvery: 100,
  logEvery: 10,
  seed: 0,
  frozenMlpBlocks: 0,
});

const PARAM_KEYS = Object.keys(TRAIN_DEFAULTS) as (keyof TrainParams)[];

export interface TrainData {
  train: Int32Array; // token stream (documents joined with the end-of-text token)
  heldOut: Int32Array; // held-out token stream
  /** Document start offsets in `train`: windows then start at documents (windows.ts "documents" layout). */
  trainDocStarts?: Int32Array;
  /** Document start offsets in `heldOut` (evaluation windows start at documents too). */
  heldOutDocStarts?: Int32Array;
}

export interface EvalRecord {
  step: number;
  heldOutLoss: number; // mean next-token NLL (nats) over the evaluation windows
  perplexity: number; // exp(heldOutLoss)
  probe: Record<string, number>;
}

export interface StepInfo {
  step: number; // optimizer steps completed
  loss: number; // mean next-token NLL of this step's tokens (before the update)
  gradNorm: number; // before clipping
  lr: number;
}

export interface TrainHooks {
  /** Progress sink (one line per call, no newline). */
  log?: (msg: string) => void;
  /** Extra evaluation run with each held-out evaluation (e.g. fact accuracy); numbers only. */
  probe?: (model: LanguageModel, step: number) => Record<string, number>;
  /** Called after every optimizer step; return true to checkpoint and stop. */
  shouldStop?: (step: number) => boolean;
  /** Called after every optimizer step. */
  onStep?: (info: StepInfo) => void;
  /** Directory for checkpoints (none written without it). */
  checkpointDir?: string;
  /** Continue from the checkpoint in `checkpointDir` if there is one. */
  resume?: boolean;
}

export interface TrainResult {
  step: number; // optimizer steps completed
  stopped: boolean; // true when `shouldStop` ended the run early
  resumedFrom: number | null; // the checkpoint step a resumed run started from
  lastLoss: number; // training loss of the last step (NaN if none ran)
  history: EvalRecord[]; // every evaluation, across resumes
  trainSeconds: number; // wall time spent in this run and the runs it resumed
  tokensPerStep: number;
}

/** Validate and complete a partial parameter record (unknown keys are errors). */
export function resolveTrainParams(p: Partial<TrainParams>): TrainParams {
  for (const k of Object.keys(p)) {
    if (!PARAM_KEYS.includes(k as keyof TrainParams)) {
      const near = PARAM_KEYS.find((a) => a.toLowerCase() === k.toLowerCase());
      throw new DeltaEditError("E_ARG", `train: unknown parameter "${k}"${near ? ` (did you mean "${near}"?)` : ""}`, { context: { key: k } });
    }
  }
  const r: TrainParams = { ...TRAIN_DEFAULTS, ...p };
  const posInt = ["batchSize", "seqLen", "gradAccum", "steps", "evalWindows", "logEvery"] as const;
  for (const k of posInt) if (!Number.isInteger(r[k]) || r[k] < 1) throw new DeltaEditError("E_ARG", `train: "${k}" must be a positive integer, got ${r[k]}`);
  for (const k of ["warmupSteps", "evalEvery", "checkpointEvery", "seed", "frozenMlpBlocks"] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 0) throw new DeltaEditError("E_ARG", `train: "${k}" must be a non-negative integer, got ${r[k]}`);
  }
  for (const k of ["lr", "eps", "clipNorm"] as const) if (!(r[k] > 0)) throw new DeltaEditError("E_ARG", `train: "${k}" must be > 0, got ${r[k]}`);
  for (const k of ["beta1", "beta2"] as const) if (!(r[k] >= 0 && r[k] < 1)) throw new DeltaEditError("E_ARG", `train: "${k}" must be in [0, 1), got ${r[k]}`);
  if (!(r.minLrRatio >= 0 && r.minLrRatio <= 1)) throw new DeltaEditError("E_ARG", `train: "minLrRatio" must be in [0, 1], got ${r.minLrRatio}`);
  if (!(r.weightDecay >= 0)) throw new DeltaEditError("E_ARG", `train: "weightDecay" must be ≥ 0, got ${r.weightDecay}`);
  return r;
}

/**
 * Next-token loss on logits (P, V) with targets (P): returns Σ_rows −log p(target) and writes
 * dlogits (P, V) = weight · (softmax − onehot(target)). Equals `nllLoss` with every row weighted
 * `weight`, with the softmax done natively (the JS exp loop is the slow part of nllLoss at V·P ≈ 10⁷).
 */
export function nextTokenLoss(logits: Float32Array, targets: Int32Array, V: number, weight: number, dlogits: Float32Array | null): number {
  const P = targets.length;
  const p = dlogits ?? new Float32Array(P * V); // (P, V) softmax, then the gradient in place
  ops.softmaxForward(logits, p, P, V);
  let sum = 0;
  for (let r = 0; r < P; r++) {
    const t = targets[r]!;
    sum -= Math.log(Math.max(p[r * V + t]!, 1e-38));
  }
  if (dlogits !== null) {
    for (let i = 0; i < p.length; i++) p[i]! *= weight;
    for (let r = 0; r < P; r++) p[r * V + targets[r]!]! -= weight;
  }
  return sum;
}

/** Inputs (B windows of T) and flattened targets (B·T) of a list of windows of T + 1 tokens. */
function split(windows: readonly Int32Array[], T: number): { inputs: number[][]; targets: Int32Array } {
  const targets = new Int32Array(windows.length * T);
  const inputs = windows.map((w, b) => {
    targets.set(w.subarray(1, T + 1), b * T);
    return Array.from(w.subarray(0, T));
  });
  return { inputs, targets };
}

/**
 * The trainer's gradient computation for one micro-batch: forward over windows (T + 1 tokens
 * each) with logits at every position, loss Σ −log p(target) · weight, and backward into `grads`
 * (accumulated, every parameter). Returns the unweighted NLL sum. `dlogits` (B·T, V) is scratch.
 */
export function accumulateGradients(model: LanguageModel, windows: readonly Int32Array[], T: number, weight: number, grads: ParamStore, dlogits?: Float32Array): number {
  const V = model.config.vocabSize;
  const { inputs, targets } = split(windows, T);
  const res = forward(model, makeBatch(inputs, 0, V), { logits: "all", forBackward: true });
  const g = dlogits ?? new Float32Array(targets.length * V);
  const nll = nextTokenLoss(res.logits!, targets, V, weight, g);
  backward(model, res.saved!, g, { params: "all", into: grads });
  return nll;
}

/** Mean next-token NLL (nats per token) of `model` over windows (T + 1 tokens each), B at a time. */
export function evaluateLoss(model: LanguageModel, windows: readonly Int32Array[], T: number, B: number): number {
  if (windows.length === 0) return NaN;
  const V = model.config.vocabSize;
  let sum = 0;
  let n = 0;
  for (let i = 0; i < windows.length; i += B) {
    const { inputs, targets } = split(windows.slice(i, i + B), T);
    const res = forward(model, makeBatch(inputs, 0, V), { logits: "all" });
    sum += nextTokenLoss(res.logits!, targets, V, 0, null);
    n += targets.length;
  }
  return sum / n;
}

function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

/** Names of the MLP parameters of blocks 0 … n−1 (GPT-2 `h.l.mlp.*`, Llama `model.layers.l.mlp.*`). */
export function frozenMlpParams(params: ParamStore, n: number): Set<string> {
  return new Set(params.specs.filter((s) => s.layer !== null && s.layer < n && s.name.includes(".mlp.")).map((s) => s.name));
}

/** Train `model` in place. Synchronous; progress and evaluations go through `hooks`. */
export function train(model: LanguageModel, data: TrainData, params: Partial<TrainParams> = {}, hooks: TrainHooks = {}): TrainResult {
  const hp = resolveTrainParams(params);
  const { batchSize: B, seqLen: T, gradAccum } = hp;
  const V = model.config.vocabSize;
  if (T > model.config.maxPositions) throw new DeltaEditError("E_ARG", `train: seqLen ${T} exceeds the model's max positions ${model.config.maxPositions}`);
  for (const [what, s] of [["train", data.train], ["heldOut", data.heldOut]] as const) {
    for (let i = 0; i < s.length; i++) {
      const id = s[i]!;
      if (id < 0 || id >= V) throw new DeltaEditError("E_ARG", `train: ${what} token ${i} has id ${id}, outside the vocabulary [0, ${V})`);
    }
  }
  if (hp.frozenMlpBlocks > model.config.numLayers) throw new DeltaEditError("E_ARG", `train: "frozenMlpBlocks" is ${hp.frozenMlpBlocks}, more than the model's ${model.config.numLayers} blocks`);
  const log = hooks.log ?? (() => {});
  const ckptDir = hooks.checkpointDir;
  const params_ = model.params;
  const frozen = frozenMlpParams(params_, hp.frozenMlpBlocks);

  const docs = data.trainDocStarts ? { docStarts: data.trainDocStarts } : {};
  let opt: AdamW;
  let sampler: WindowSampler;
  let history: EvalRecord[] = [];
  let priorSeconds = 0;
  let resumedFrom: number | null = null;
  if (hooks.resume && ckptDir !== undefined && readTrainStateJson(ckptDir) !== null) {
    const { opt: o, json } = loadTrainState(ckptDir, params_);
    opt = o;
    sampler = new WindowSampler({ stream: data.train, seqLen: T, seed: hp.seed, state: json.sampler, ...docs });
    history = (json.run["history"] as EvalRecord[] | undefined) ?? [];
    priorSeconds = Number(json.run["trainSeconds"] ?? 0);
    resumedFrom = json.step;
    log(`resumed from ${ckptDir} at step ${json.step} (epoch ${json.sampler.epoch}, item ${json.sampler.cursor} of its order)`);
  } else {
    opt = new AdamW(params_, { beta1: hp.beta1, beta2: hp.beta2, eps: hp.eps, weightDecay: hp.weightDecay });
    sampler = new WindowSampler({ stream: data.train, seqLen: T, seed: hp.seed, ...docs });
  }
  const evalSet = evalWindows(data.heldOut, T, hp.evalWindows, data.heldOutDocStarts);
  const tokensPerStep = B * T * gradAccum;
  log(`training ${params_.count().toLocaleString("en-US")} parameters: ${hp.steps} steps × ${tokensPerStep} tokens (B ${B}, T ${T}, accumulation ${gradAccum}); ` +
    `about ${sampler.windowsPerEpoch} windows per epoch (${(sampler.windowsPerEpoch / (B * gradAccum)).toFixed(0)} steps${data.trainDocStarts ? ", windows start at documents" : ""}); peak lr ${hp.lr}, ${ops.getThreads()} threads`);

  const grads = params_.zerosLike(); // (same shapes as the parameters)
  const dlogits = new Float32Array(B * T * V); // (P, V)
  const schedule = { lr: hp.lr, warmupSteps: hp.warmupSteps, totalSteps: hp.steps, minLrRatio: hp.minLrRatio };
  const runRecord = (secs: number): Record<string, unknown> => ({ params: hp, history, trainSeconds: secs });
  const t0 = performance.now();
  const elapsed = (): number => priorSeconds + (performance.now() - t0) / 1000;
  const checkpoint = (): void => {
    if (ckptDir === undefined) return;
    saveTrainState(ckptDir, params_, opt, sampler.state(), runRecord(elapsed()));
  };
  const evaluate = (): void => {
    const loss = evaluateLoss(model, evalSet, T, B);
    const probe = hooks.probe ? hooks.probe(model, opt.step) : {};
    const rec: EvalRecord = { step: opt.step, heldOutLoss: loss, perplexity: Math.exp(loss), probe };
    history.push(rec);
    const extra = Object.entries(probe).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join(", ");
    log(`eval @ step ${opt.step}: held-out loss ${loss.toFixed(4)}, perplexity ${rec.perplexity.toFixed(3)}${extra ? `; ${extra}` : ""}`);
  };

  let lastLoss = NaN;
  let stopped = false;
  let windowLoss = 0;
  let windowSteps = 0;
  const startStep = opt.step;
  const tWindow = { t: performance.now(), step: opt.step };
  while (opt.step < hp.steps) {
    for (const name of grads.names()) grads.get(name).fill(0);
    let lossSum = 0;
    for (let a = 0; a < gradAccum; a++) {
      const windows: Int32Array[] = [];
      for (let b = 0; b < B; b++) windows.push(sampler.next());
      lossSum += accumulateGradients(model, windows, T, 1 / (B * T * gradAccum), grads, dlogits);
    }
    const loss = lossSum / tokensPerStep;
    if (!Number.isFinite(loss)) throw new DeltaEditError("E_NATIVE", `train: loss is ${loss} at step ${opt.step + 1}`, { hint: "lower the learning rate" });
    const lr = lrAt(opt.step, schedule);
    for (const name of frozen) grads.get(name).fill(0); // not part of the clipped norm either
    const norm = clipGradNorm(grads, hp.clipNorm);
    opt.update(params_, grads, lr, frozen);
    lastLoss = loss;
    windowLoss += loss;
    windowSteps++;
    hooks.onStep?.({ step: opt.step, loss, gradNorm: norm, lr });

    if (opt.step % hp.logEvery === 0 || opt.step === hp.steps) {
      const now = performance.now();
      const secsPerStep = (now - tWindow.t) / 1000 / Math.max(1, opt.step - tWindow.step);
      const tokS = tokensPerStep / secsPerStep;
      const eta = (hp.steps - opt.step) * secsPerStep;
      const epoch = sampler.progress();
      log(`step ${opt.step}/${hp.steps} (${((100 * opt.step) / hp.steps).toFixed(1)}%) loss ${(windowLoss / windowSteps).toFixed(4)} lr ${lr.toExponential(2)} ` +
        `|g| ${norm.toFixed(3)} epoch ${epoch.toFixed(2)} ${tokS.toFixed(0)} tok/s elapsed ${fmtDuration(elapsed())} ETA ${fmtDuration(eta)}`);
      windowLoss = 0;
      windowSteps = 0;
      tWindow.t = now;
      tWindow.step = opt.step;
    }
    const final = opt.step === hp.steps;
    if ((hp.evalEvery > 0 && opt.step % hp.evalEvery === 0) || final) evaluate();
    if (hooks.shouldStop?.(opt.step) && !final) {
      stopped = true;
      checkpoint();
      log(`stopped at step ${opt.step}${ckptDir ? `; checkpoint in ${ckptDir}` : ""}`);
      break;
    }
    if ((hp.checkpointEvery > 0 && opt.step % hp.checkpointEvery === 0) || final) checkpoint();
  }
  if (opt.step === startStep && startStep >= hp.steps) log(`nothing to do: the checkpoint is already at step ${opt.step} of ${hp.steps}`);
  return { step: opt.step, stopped, resumedFrom, lastLoss, history, trainSeconds: elapsed(), tokensPerStep };
}
