/**
 * Autoregressive generation with a key/value cache: greedy, or seeded top-k sampling
 * (softmax at temperature 1 over the full vocabulary, keep the k most probable tokens,
 * renormalise, draw). Rows of a batch must have equal prompt lengths (rows of different
 * lengths are generated in separate groups, so each continues from the end of its own prompt).
 * There is no stop on EOS unless `stopAtEos` is set (the reference's template generator has none).
 */
import { DeltaEditError } from "../errors.js";
import type { Rng } from "../util/rng.js";
import type { BatchShape, BlockActs, KVCacheLayer } from "./arch/architecture.js";
import { linearForward } from "./linear.js";
import type { LanguageModel } from "./model.js";

/** Options of `generate`: token count, greedy or seeded top-k sampling, EOS handling. */
export interface GenerateOptions {
  maxNewTokens: number;
  /** Greedy when absent; otherwise top-k sampling with this k. */
  topK?: number;
  rng?: Rng; // required with topK
  stopAtEos?: boolean;
  /** Called after each step with (step, total) for progress reporting. */
  onStep?: (step: number, total: number) => void;
}

/** Returns, per prompt, the newly generated ids (prompt not included). */
export function generate(model: LanguageModel, prompts: readonly (readonly number[])[], opts: GenerateOptions): number[][] {
  if (opts.topK !== undefined && (!Number.isInteger(opts.topK) || opts.topK < 1)) throw new DeltaEditError("E_ARG", `generate: topK must be a positive integer, got ${opts.topK}`);
  if (opts.topK !== undefined && !opts.rng) throw new DeltaEditError("E_ARG", "generate: top-k sampling needs a seeded rng");
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) throw new DeltaEditError("E_ARG", `generate: maxNewTokens must be a non-negative integer, got ${opts.maxNewTokens}`);
  const out: number[][] = prompts.map(() => []);
  // group rows by prompt length, keeping the original order of rows within a group
  const groups = new Map<number, number[]>();
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new DeltaEditError("E_ARG", `generate: prompt ${i} is empty`);
    const g = groups.get(p.length) ?? [];
    g.push(i);
    groups.set(p.length, g);
  });
  for (const [, rows] of [...groups.entries()].sort((a, b) => a[0] - b[0])) {
    const res = generateEqualLength(model, rows.map((i) => prompts[i]!), opts);
    rows.forEach((i, j) => (out[i] = res[j]!));
  }
  return out;
}

function generateEqualLength(model: LanguageModel, prompts: readonly (readonly number[])[], opts: GenerateOptions): number[][] {
  const arch = model.arch;
  const C = arch.hidden;
  const V = arch.vocab;
  const B = prompts.length;
  const T0 = prompts[0]!.length;
  const maxT = T0 + opts.maxNewTokens;
  if (maxT > model.config.maxPositions) {
    throw new DeltaEditError("E_ARG", `generate: prompt (${T0}) + new tokens (${opts.maxNewTokens}) exceeds the model's maximum positions (${model.config.maxPositions})`);
  }
  const kvWidth = model.config.numKvHeads * model.config.headSize;
  const cache: KVCacheLayer[] = [];
  for (let l = 0; l < arch.numLayers; l++) cache.push({ k: new Float32Array(B * maxT * kvWidth), v: new Float32Array(B * maxT * kvWidth), maxT });
  const eos = model.tokenizer?.eosTokenId ?? model.config.eosTokenId;
  const done = new Array<boolean>(B).fill(false);
  const result: number[][] = prompts.map(() => []);
  let ids = new Int32Array(B * T0);
  prompts.forEach((p, b) => p.forEach((t, i) => (ids[b * T0 + i] = t)));
  let past = 0;
  let T = T0;
  const normed = new Float32Array(B * C);
  const stats = new Float32Array(2 * B);
  const last = new Float32Array(B * C);
  const logits = new Float32Array(B * V);
  for (let step = 0; step < opts.maxNewTokens; step++) {
    const positions = new Int32Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) positions[b * T + t] = past + t;
    const shape: BatchShape = { B, T, lengths: new Array<number>(B).fill(past + T), positions, keyMask: null, pastLength: past };
    let x = new Float32Array(B * T * C);
    arch.embed(ids, shape, x);
    const acts: BlockActs = arch.allocActs(B * T, shape);
    for (let l = 0; l < arch.numLayers; l++) {
      const y = new Float32Array(B * T * C);
      arch.blockForward(l, x, y, shape, acts, cache[l]!);
      x = y;
    }
    for (let b = 0; b < B; b++) last.set(x.subarray((b * T + T - 1) * C, (b * T + T) * C), b * C);
    arch.finalNormForward(last, normed, stats, B);
    linearForward(arch.lmHead(), normed, logits, B);
    const next = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const row = logits.subarray(b * V, (b + 1) * V);
      const tok = opts.topK === undefined ? argmax(row) : sampleTopK(row, opts.topK, opts.rng!);
      next[b] = tok;
      if (!done[b]) result[b]!.push(tok);
      if (opts.stopAtEos && eos !== null && tok === eos) done[b] = true;
    }
    opts.onStep?.(step + 1, opts.maxNewTokens);
    if (done.every(Boolean)) break;
    past += T;
    T = 1;
    ids = next;
  }
  return result;
}

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  let bv = -Infinity;
  for (let i = 0; i < row.length; i++) {
    if (row[i]! > bv) {
      bv = row[i]!;
      best = i;
    }
  }
  return best;
}

/** Top-k sampling at temperature 1; ties in the top-k broken by the lower id. */
export function sampleTopK(row: Float32Array, k: number, rng: Rng): number {
  const kk = Math.min(k, row.length);
  const idx: number[] = [];
  for (let i = 0; i < row.length; i++) {
    if (idx.length < kk) {
      idx.push(i);
      idx.sort((a, b) => row[b]! - row[a]! || a - b);
    } else if (row[i]! > row[idx[kk - 1]!]!) {
      idx[kk - 1] = i;
      idx.sort((a, b) => row[b]! - row[a]! || a - b);
    }
  }
  const m = row[idx[0]!]!;
  const w = idx.map((i) => Math.exp(row[i]! - m));
  return idx[rng.categorical(w)]!;
}
