/**
 * Second-moment statistics of the keys (spec §3.6, ODD-15/24/25): for each requested layer l,
 *   C0_l = Σ_docs Σ_real positions k kᵀ / count      (F, F), uncentered,
 * with k the input of block l's MLP down projection, computed with the UNEDITED model.
 *
 * Dimension legend: F = d_ff (key width), P = real tokens in a sub-batch, B rows, T padded width.
 *
 * Procedure (the reference's, §6.6): the sample is the first `samples` documents of the corpus
 * (or the reference's seeded shuffle, `shuffleSeed`, Appendix C). Each document is tokenized with
 * the model's default special tokens (Llama: BOS first, and the BOS position counts, ODD-25) and
 * truncated to `maxTokens` (default: the model's maximum positions). Documents are taken in groups
 * of `groupSize` (100) in sample order; a group is sorted by length, longest first, and cut into
 * right-padded sub-batches whose padded width × rows ≤ `tokenBudget` (default 3·maxTokens; a
 * single longer row runs alone). One forward per sub-batch stops after the highest requested
 * layer and taps the keys of every real position; each layer adds `Σ += KᵀK` with a float32 syrk
 * (ODD-24: float32 accumulation, as the reference) and `count += P`.
 *
 * Cache and resumption: with a `cacheDir`, each layer's UNNORMALIZED sum lives in its own file
 * (see secondMoment.ts), named by the hash of a typed StatsKey. A run writes checkpoints every
 * `checkpointEvery` documents, always at a group boundary, and a later run continues each layer
 * from its file's `docsDone`, so an interrupted-and-resumed run (even after `kill -9`: the writes
 * are atomic) is bit-identical to an uninterrupted one with the same batching parameters.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import { DeltaEditError } from "../errors.js";
import * as ops from "../kernels/ops.js";
import { makeBatch, realPositions } from "../model/batch.js";
import { forward } from "../model/forward.js";
import type { LanguageModel } from "../model/model.js";
import { sampleIndices, type CorpusSource } from "./corpus.js";
import {
  defaultStatsCacheDir,
  isComplete,
  readStatsFile,
  STATS_VERSION,
  statsCachePath,
  writeStatsFile,
  type SecondMoment,
  type StatsKey,
} from "./secondMoment.js";

export {
  defaultStatsCacheDir,
  isComplete,
  mergeStats,
  readStatsFile,
  secondMomentMatrix,
  STATS_VERSION,
  statsCacheKey,
  statsCachePath,
  writeStatsFile,
  type SecondMoment,
  type StatsKey,
  type StatsProvenance,
} from "./secondMoment.js";

export interface StatsParams {
  /** Layers whose statistics to compute (default: every layer; F² floats each). */
  layers?: number[];
  /** Documents in the sample (default 100 000, §6.6; fewer if the corpus is smaller). */
  samples?: number;
  /** Truncation length per document in tokens (default: the model's maximum positions). */
  maxTokens?: number;
  /** Upper bound on padded width × rows of a sub-batch (default 3·maxTokens). */
  tokenBudget?: number;
  /** Documents per length-sorted group (default 100, the reference's batch). */
  groupSize?: number;
  /** null (default): first `samples` documents; a number: the reference's `random.Random(seed)` sample (1 in the reference). */
  shuffleSeed?: number | null;
  /** Cache directory (default `defaultStatsCacheDir()`); null disables the cache and checkpoints. */
  cacheDir?: string | null;
  /** Write a checkpoint after at least this many documents (default 1000; 0 = only at the end). */
  checkpointEvery?: number;
}

export interface StatsProgress {
  docsDone: number; // documents accumulated (of the whole sample, resumed ones included)
  docsTotal: number;
  tokens: number; // tokens processed in this run
  elapsedS: number; // seconds in this run
  docsPerS: number;
  tokensPerS: number;
  etaS: number; // estimated seconds left
}

export interface StatsHooks {
  log?: (msg: string) => void;
  onProgress?: (p: StatsProgress) => void;
  /** Called after each checkpoint write with the documents done (tests use it to simulate a crash). */
  onCheckpoint?: (docsDone: number) => void;
}

export const STATS_DEFAULTS = { samples: 100_000, groupSize: 100, checkpointEvery: 1000 } as const;

interface Resolved {
  layers: number[];
  samples: number;
  maxTokens: number;
  tokenBudget: number;
  groupSize: number;
  shuffleSeed: number | null;
  cacheDir: string | null;
  checkpointEvery: number;
}

function posInt(v: number, name: string, min = 1): number {
  if (!Number.isSafeInteger(v) || v < min) throw new DeltaEditError("E_ARG", `computeStats: ${name} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

function resolve(model: LanguageModel, p: StatsParams): Resolved {
  const N = model.arch.numLayers;
  const layers = [...new Set(p.layers ?? Array.from({ length: N }, (_, i) => i))].sort((a, b) => a - b);
  if (layers.length === 0) throw new DeltaEditError("E_ARG", "computeStats: layers is empty");
  for (const l of layers) if (!Number.isInteger(l) || l < 0 || l >= N) throw new DeltaEditError("E_ARG", `computeStats: layer ${l} outside [0, ${N - 1}]`);
  const maxPos = model.config.maxPositions;
  const maxTokens = posInt(p.maxTokens ?? maxPos, "maxTokens");
  if (maxTokens > maxPos) throw new DeltaEditError("E_ARG", `computeStats: maxTokens ${maxTokens} exceeds the model's maximum positions ${maxPos}`);
  const seed = p.shuffleSeed ?? null;
  if (seed !== null) posInt(seed, "shuffleSeed", 0);
  return {
    layers,
    samples: posInt(p.samples ?? STATS_DEFAULTS.samples, "samples"),
    maxTokens,
    tokenBudget: posInt(p.tokenBudget ?? 3 * maxTokens, "tokenBudget"),
    groupSize: posInt(p.groupSize ?? STATS_DEFAULTS.groupSize, "groupSize"),
    shuffleSeed: seed,
    cacheDir: p.cacheDir === undefined ? defaultStatsCacheDir() : p.cacheDir,
    checkpointEvery: posInt(p.checkpointEvery ?? STATS_DEFAULTS.checkpointEvery, "checkpointEvery", 0),
  };
}

/**
 * The model's fingerprint: its checkpoint identity hash, or for an in-memory (random) model a
 * sha256 of its config and every parameter's bytes.
 */
export function modelFingerprint(model: LanguageModel): string {
  if (model.identity) return model.identity.hash;
  const h = createHash("sha256");
  h.update(JSON.stringify(model.config));
  for (const name of model.params.names()) {
    const d = model.params.get(name);
    h.update(`${name}\0`);
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return h.digest("hex");
}

function keyFor(modelHash: string, corpus: CorpusSource, r: Resolved, layer: number): StatsKey {
  return { modelHash, layer, corpusHash: corpus.hash, samples: r.samples, maxTokens: r.maxTokens, shuffleSeed: r.shuffleSeed, dtype: "float32", version: STATS_VERSION };
}

/** Reads the cache entry for `layer` if present and consistent; null when absent. */
function readEntry(file: string, model: LanguageModel, modelHash: string, layer: number, log: (m: string) => void): SecondMoment | null {
  if (!fs.existsSync(file)) return null;
  const m = readStatsFile(file);
  const F = model.arch.dFF;
  if (m.dIn !== F || m.provenance.layer !== layer || m.provenance.modelHash !== modelHash) {
    log(`stats: ignoring ${file}: it does not match layer ${layer} / F=${F} / this model`);
    return null;
  }
  return m;
}

/**
 * Completed statistics found in the cache for the given parameters (layers without a complete
 * entry are absent from the map).
 */
export function loadCachedStats(model: LanguageModel, corpus: CorpusSource, params: StatsParams = {}, log: (m: string) => void = () => {}): Map<number, SecondMoment> {
  const r = resolve(model, params);
  const out = new Map<number, SecondMoment>();
  if (r.cacheDir === null) return out;
  const modelHash = modelFingerprint(model);
  for (const l of r.layers) {
    const m = readEntry(statsCachePath(r.cacheDir, keyFor(modelHash, corpus, r, l)), model, modelHash, l, log);
    if (m && isComplete(m)) out.set(l, m);
  }
  return out;
}

/** Cache file of each layer for these parameters (null without a cache directory). */
export function statsCacheFiles(model: LanguageModel, corpus: CorpusSource, params: StatsParams = {}): Map<number, string> | null {
  const r = resolve(model, params);
  if (r.cacheDir === null) return null;
  const modelHash = modelFingerprint(model);
  return new Map(r.layers.map((l) => [l, statsCachePath(r.cacheDir!, keyFor(modelHash, corpus, r, l))]));
}

/** Sub-batches of one group: indices into `seqs`, longest first, padded width × rows ≤ budget. */
export function planSubBatches(lengths: readonly number[], tokenBudget: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const out: number[][] = [];
  let cur: number[] = [];
  let width = 0;
  for (const i of order) {
    if (cur.length > 0 && width * (cur.length + 1) > tokenBudget) {
      out.push(cur);
      cur = [];
    }
    if (cur.length === 0) width = lengths[i]!;
    cur.push(i);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * Computes (or loads from the cache, or resumes) the second moments of `params.layers` over the
 * corpus sample. Returns layer → SecondMoment (unnormalized sum + count).
 */
export async function computeStats(model: LanguageModel, corpus: CorpusSource, params: StatsParams = {}, hooks: StatsHooks = {}): Promise<Map<number, SecondMoment>> {
  const r = resolve(model, params);
  const log = hooks.log ?? (() => {});
  const tok = model.tokenizer;
  if (!tok) throw new DeltaEditError("E_TOKENIZER", `computeStats: model ${model.dir ?? "(in memory)"} has no tokenizer`);
  const F = model.arch.dFF;
  const modelHash = modelFingerprint(model);
  const indices = sampleIndices(corpus.size, r.samples, r.shuffleSeed); // (docsTotal) corpus document ids
  const docsTotal = indices.length;
  if (docsTotal === 0) throw new DeltaEditError("E_ARG", `computeStats: corpus ${corpus.description} has no documents`);
  if (docsTotal < r.samples) log(`stats: the corpus has ${corpus.size} documents, fewer than samples = ${r.samples}; using all of them`);

  // per-layer state: from the cache (complete or partial) or fresh
  const state = new Map<number, SecondMoment>();
  const files = new Map<number, string>();
  for (const l of r.layers) {
    let m: SecondMoment | null = null;
    if (r.cacheDir !== null) {
      const file = statsCachePath(r.cacheDir, keyFor(modelHash, corpus, r, l));
      files.set(l, file);
      m = readEntry(file, model, modelHash, l, log);
      if (m && m.provenance.docsTotal !== docsTotal) {
        log(`stats: ignoring ${file}: sample size ${m.provenance.docsTotal} ≠ ${docsTotal}`);
        m = null;
      }
      if (m && !isComplete(m)) {
        const p = m.provenance;
        log(`stats: layer ${l}: resuming from ${p.docsDone}/${docsTotal} documents (${file})`);
        if (p.tokenBudget !== r.tokenBudget || p.groupSize !== r.groupSize) {
          log(`stats: warning: the checkpoint used tokenBudget ${p.tokenBudget}, groupSize ${p.groupSize} (now ${r.tokenBudget}, ${r.groupSize}); the result equals an uninterrupted run only up to rounding`);
        }
      }
    }
    m ??= {
      sum: new Float32Array(F * F), // (F, F)
      count: 0,
      dIn: F,
      provenance: {
        source: "computed", modelHash, corpusHash: corpus.hash, corpus: corpus.description, layer: l, samples: r.samples, maxTokens: r.maxTokens,
        shuffleSeed: r.shuffleSeed, docsDone: 0, docsTotal, dtype: "float32", version: STATS_VERSION,
      },
    };
    m.provenance.tokenBudget = r.tokenBudget;
    m.provenance.groupSize = r.groupSize;
    state.set(l, m);
  }
  const pending = r.layers.filter((l) => !isComplete(state.get(l)!));
  if (pending.length === 0) {
    log(`stats: layers ${r.layers.join(",")} loaded from the cache`);
    return state;
  }
  if (pending.length < r.layers.length) log(`stats: layers ${r.layers.filter((l) => !pending.includes(l)).join(",")} loaded from the cache`);

  const save = (layers: readonly number[]): void => {
    for (const l of layers) writeStatsFile(files.get(l)!, state.get(l)!);
  };
  if (r.cacheDir !== null) fs.mkdirSync(r.cacheDir, { recursive: true });

  const stop = Math.max(...pending);
  const start = Math.min(...pending.map((l) => state.get(l)!.provenance.docsDone));
  // group ends: multiples of groupSize, plus each layer's resume point (so no layer double-counts)
  const cuts = new Set<number>(pending.map((l) => state.get(l)!.provenance.docsDone));
  const t0 = performance.now();
  let tokens = 0;
  let lastCkpt = start;
  let d0 = start;
  while (d0 < docsTotal) {
    let d1 = Math.min(docsTotal, (Math.floor(d0 / r.groupSize) + 1) * r.groupSize);
    for (const c of cuts) if (c > d0 && c < d1) d1 = c;
    const active = pending.filter((l) => state.get(l)!.provenance.docsDone <= d0);

    // tokenize the group: (G) sequences, truncated to maxTokens, empty ones dropped
    const seqs: number[][] = [];
    for (let d = d0; d < d1; d++) {
      const ids = tok.encode(corpus.document(indices[d]!)).slice(0, r.maxTokens);
      if (ids.length > 0) seqs.push(ids);
    }
    for (const rows of planSubBatches(seqs.map((s) => s.length), r.tokenBudget)) {
      const batch = makeBatch(rows.map((i) => seqs[i]!), 0, model.config.vocabSize); // (B, T) right-padded
      const at = realPositions(batch); // P positions
      const res = forward(model, batch, { stopAfterLayer: stop, taps: { layers: active, at, key: true }, logits: "none" });
      for (const l of active) {
        const keys = res.taps.key.get(l)!; // (P, F)
        const m = state.get(l)!;
        ops.syrk(keys, m.sum, { n: F, k: at.length, trans: true, alpha: 1, beta: 1 }); // Σ (F, F) += KᵀK
        m.count += at.length;
      }
      tokens += at.length;
    }
    for (const l of active) state.get(l)!.provenance.docsDone = d1;
    d0 = d1;
    await new Promise<void>((res) => setImmediate(res)); // let signals, timers and progress output through

    const elapsedS = (performance.now() - t0) / 1000;
    const docsRun = d1 - start;
    const docsPerS = elapsedS > 0 ? docsRun / elapsedS : 0;
    hooks.onProgress?.({ docsDone: d1, docsTotal, tokens, elapsedS, docsPerS, tokensPerS: elapsedS > 0 ? tokens / elapsedS : 0, etaS: docsPerS > 0 ? (docsTotal - d1) / docsPerS : 0 });
    if (r.cacheDir !== null && r.checkpointEvery > 0 && d1 < docsTotal && d1 - lastCkpt >= r.checkpointEvery) {
      save(active);
      lastCkpt = d1;
      hooks.onCheckpoint?.(d1);
    }
  }
  if (r.cacheDir !== null) {
    save(pending);
    log(`stats: wrote ${pending.map((l) => files.get(l)!).join(", ")}`);
  }
  return state;
}
