/**
 * Causal tracing (ROME, "Locating and Editing Factual Associations in GPT", §2.1; evaluation
 * spec §10): which hidden states carry a fact from the subject to the prediction.
 *
 * Per fact (prompt tokens (T), subject tokens [s0, s1), object's first token o):
 *   1. clean run: p_clean = p(o) at the last position; record every block output h^(l), every
 *      MLP output and every attention output at every position;
 *   2. corrupted run: add ε ~ N(0, ν² I) to the input embeddings at the subject positions, in S
 *      seeded samples (the rows of one batch); p_corrupt = mean over samples of p(o);
 *   3. corrupted runs with restoration: one state (position i, block l) set back to its clean
 *      value — the block output ("residual"), or that block's MLP / attention output, alone or in
 *      a window of W blocks l − ⌊W/2⌋ … l + ⌈W/2⌉ − 1 (clipped) — p_restored averaged over the
 *      same S noise samples.
 *   total effect TE = p_clean − p_corrupt; indirect effect IE = p_restored − p_corrupt.
 * Also: restoring the residual at ALL subject positions at block l ("subjectAll").
 *
 * Exact shortcuts (no approximation):
 *   - prefix reuse: a restoration whose first restored state is in block a reruns only blocks
 *     ≥ a, starting from the corrupted run's h^(a−1) (block a = 0: the corrupted embeddings);
 *   - batching: every restoration starting at the same block, times the S samples, is one batch;
 *   - positions before the subject are never touched by the noise (causal attention), so their
 *     clean and corrupted states are the same and their IE is 0: they are not run.
 *
 * Dimension legend: L blocks, C hidden, V vocabulary, T prompt tokens, S noise samples,
 * nS = s1 − s0 subject tokens, B batch rows.
 */
import { DeltaEditError } from "../../errors.js";
import { makeBatch, type Position } from "../../model/batch.js";
import { forward, type Patch, type PatchKind } from "../../model/forward.js";
import type { LanguageModel } from "../../model/model.js";
import { Rng } from "../../util/rng.js";
import type { TokenizedFact } from "./facts.js";

/** The traced quantities: residual (block output, single block), MLP / attention single and windowed. */
export type TraceVariant = "residual" | "mlp" | "attn" | "mlpWindow" | "attnWindow";

export const TRACE_VARIANTS: readonly TraceVariant[] = ["residual", "mlp", "attn", "mlpWindow", "attnWindow"];

export const VARIANT_LABELS: Record<TraceVariant, string> = {
  residual: "residual (block output)",
  mlp: "MLP, single block",
  attn: "attention, single block",
  mlpWindow: "MLP, windowed",
  attnWindow: "attention, windowed",
};

/** Noise level: a multiple of σ (the subject embeddings' std over the traced facts) or a fixed ν. */
export type NoiseLevel = { kind: "sigma"; multiplier: number } | { kind: "fixed"; nu: number };

export interface TraceOptions {
  /** S: noise samples per fact (ROME: 10). */
  samples: number;
  /** ν = 3σ by default (ROME). */
  noise: NoiseLevel;
  /** W: window of the windowed MLP / attention restorations (blocks). */
  window: number;
  /** Seed of the noise draws (one stream per fact, from the seed and the fact's index). */
  seed: number;
  /** Upper bound on B·T per forward pass (memory: one block's activations for this many tokens). */
  maxBatchTokens: number;
}

/** W ≈ ROME's 10 of 48 blocks at this depth: round(10·L/48), at least 3. */
export function defaultWindow(numLayers: number): number {
  return Math.max(3, Math.round((numLayers * 10) / 48));
}

export function traceDefaults(numLayers: number): TraceOptions {
  return { samples: 10, noise: { kind: "sigma", multiplier: 3 }, window: defaultWindow(numLayers), seed: 0, maxBatchTokens: 4096 };
}

/** Blocks restored by a window of W centred at block l: l − ⌊W/2⌋ … l + ⌈W/2⌉ − 1, clipped to [0, L−1]. */
export function windowBlocks(l: number, W: number, L: number): number[] {
  const lo = Math.max(0, l - Math.floor(W / 2));
  const hi = Math.min(L - 1, l + Math.ceil(W / 2) - 1);
  const out: number[] = [];
  for (let b = lo; b <= hi; b++) out.push(b);
  return out;
}

export function validateTraceOptions(o: TraceOptions): void {
  if (!Number.isInteger(o.samples) || o.samples < 1) throw new DeltaEditError("E_ARG", `trace: samples must be a positive integer, got ${o.samples}`);
  if (!Number.isInteger(o.window) || o.window < 1) throw new DeltaEditError("E_ARG", `trace: window must be a positive integer, got ${o.window}`);
  if (!Number.isInteger(o.maxBatchTokens) || o.maxBatchTokens < 1) throw new DeltaEditError("E_ARG", `trace: maxBatchTokens must be a positive integer, got ${o.maxBatchTokens}`);
  const v = o.noise.kind === "sigma" ? o.noise.multiplier : o.noise.nu;
  if (!(v >= 0) || !Number.isFinite(v)) throw new DeltaEditError("E_ARG", `trace: the noise level must be a finite number ≥ 0, got ${v}`);
}

/** The trace of one fact. `ie[variant][i][l]`: IE of restoring position i at block l (window centre l). */
export interface FactTrace {
  index: number;
  caseId: string;
  prompt: string; // filled
  subject: string;
  object: string;
  tokens: string[]; // (T)
  subjectRange: [number, number]; // [s0, s1)
  objectId: number;
  pClean: number;
  pCorrupt: number;
  te: number; // p_clean − p_corrupt
  ie: Record<TraceVariant, number[][]>; // (T, L) each; rows < s0 are 0 (see header)
  subjectAll: number[]; // (L) IE of restoring the residual at every subject position at block l
}

/** p(o) at one row of logits (V), in float64. */
export function probOf(logits: Float32Array, row: number, V: number, id: number): number {
  const o = row * V;
  let m = -Infinity;
  for (let j = 0; j < V; j++) m = Math.max(m, logits[o + j]!);
  let z = 0;
  for (let j = 0; j < V; j++) z += Math.exp(logits[o + j]! - m);
  return Math.exp(logits[o + id]! - m) / z;
}

function argmaxRow(logits: Float32Array, row: number, V: number): number {
  const o = row * V;
  let best = 0;
  for (let j = 1; j < V; j++) if (logits[o + j]! > logits[o + best]!) best = j;
  return best;
}

/** The token-embedding table (V, C): the parameter with role "embedding". */
function tokenEmbeddings(model: LanguageModel): Float32Array {
  const spec = model.params.specs.find((s) => s.role === "embedding");
  if (!spec) throw new DeltaEditError("E_CONFIG", "trace: the model has no token-embedding parameter");
  return model.params.get(spec.name);
}

/**
 * σ: the standard deviation (n − 1 denominator) of all entries of the token-embedding rows of the
 * subject tokens of `facts`, each occurrence counted (ROME's `collect_embedding_std`).
 */
export function subjectEmbeddingStd(model: LanguageModel, facts: readonly TokenizedFact[]): number {
  const E = tokenEmbeddings(model);
  const C = model.arch.hidden;
  let n = 0;
  let sum = 0;
  let sq = 0;
  for (const f of facts) {
    for (let i = f.subjectStart; i < f.subjectEnd; i++) {
      const o = f.ids[i]! * C;
      for (let c = 0; c < C; c++) {
        const v = E[o + c]!;
        sum += v;
        sq += v * v;
        n++;
      }
    }
  }
  if (n < 2) throw new DeltaEditError("E_ARG", "trace: σ needs at least one subject token");
  const mean = sum / n;
  return Math.sqrt(Math.max(0, (sq - n * mean * mean) / (n - 1)));
}

/** The fact's noise stream: seeded from (seed, fact index), independent of which other facts are traced. */
export function factRng(seed: number, index: number): Rng {
  return new Rng((BigInt(Math.trunc(seed)) << 32n) + BigInt(index));
}

/** ε (S, nS, C) ~ N(0, ν²): the noise added at the subject positions, one draw per sample. */
export function drawNoise(rng: Rng, S: number, nS: number, C: number, nu: number): Float32Array {
  const eps = new Float32Array(S * nS * C);
  for (let i = 0; i < eps.length; i++) eps[i] = nu * rng.normal();
  return eps;
}

/** Clean-run facts: argmax and p(o) at the last position, batched (right-padded). */
export function cleanPredictions(model: LanguageModel, facts: readonly TokenizedFact[], padId: number, chunk = 32): { argmax: number; pObject: number }[] {
  const V = model.arch.vocab;
  const out: { argmax: number; pObject: number }[] = [];
  for (let s = 0; s < facts.length; s += chunk) {
    const part = facts.slice(s, s + chunk);
    const batch = makeBatch(part.map((f) => f.ids), padId, model.config.vocabSize);
    const at: Position[] = part.map((f, row) => ({ row, pos: f.ids.length - 1 }));
    const logits = forward(model, batch, { logits: at }).logits!; // (P, V)
    part.forEach((f, r) => out.push({ argmax: argmaxRow(logits, r, V), pObject: probOf(logits, r, V, f.objectId) }));
  }
  return out;
}

/** One restoration: the states (block, kind) set back to clean at `positions`, averaged over the S samples. */
interface RestoreJob {
  variant: TraceVariant | "subjectAll";
  layer: number; // the reported block (window centre)
  pos: number; // the reported position (−1 for subjectAll)
  positions: number[];
  states: { layer: number; kind: PatchKind }[];
  start: number; // first block to rerun
}

/** The clean states (T, C) per block: block outputs, MLP outputs, attention outputs. */
interface CleanStates {
  block: Float32Array[];
  mlp: Float32Array[];
  attn: Float32Array[];
}

/**
 * Trace one fact with noise ε (S, nS, C) (see `drawNoise`; its S is the sample count). Returns
 * every IE; `opts.window` and `opts.maxBatchTokens` are read from `opts`.
 */
export function traceFact(model: LanguageModel, f: TokenizedFact, eps: Float32Array, opts: Pick<TraceOptions, "window" | "maxBatchTokens">, padId: number): FactTrace {
  const arch = model.arch;
  const L = arch.numLayers;
  const C = arch.hidden;
  const V = arch.vocab;
  const T = f.ids.length;
  const s0 = f.subjectStart;
  const s1 = f.subjectEnd;
  const nS = s1 - s0;
  if (!(nS >= 1 && s0 >= 0 && s1 <= T)) throw new DeltaEditError("E_ARG", `trace: fact #${f.fact.index}: bad subject range [${s0}, ${s1}) for ${T} tokens`);
  if (eps.length % (nS * C) !== 0 || eps.length === 0) throw new DeltaEditError("E_ARG", `trace: fact #${f.fact.index}: noise has length ${eps.length}, expected S·nS·C with nS·C = ${nS * C}`);
  const S = eps.length / (nS * C);
  const layers = Array.from({ length: L }, (_, l) => l);

  // 1. clean run (B = 1): every block output, MLP output and attention output at every position
  const b1 = makeBatch([f.ids], padId, model.config.vocabSize);
  const allPos: Position[] = f.ids.map((_, pos) => ({ row: 0, pos }));
  const clean = forward(model, b1, { keepHidden: layers, taps: { layers, at: allPos, value: true, attn: true }, logits: [{ row: 0, pos: T - 1 }] });
  const pClean = probOf(clean.logits!, 0, V, f.objectId);
  const cs: CleanStates = {
    block: layers.map((l) => clean.hidden.get(l)!), // (T, C) each
    mlp: layers.map((l) => clean.taps.value.get(l)!),
    attn: layers.map((l) => clean.taps.attn.get(l)!),
  };

  // 2. corrupted run (B = S): embeddings + ε at the subject positions
  const bS = makeBatch(Array.from({ length: S }, () => f.ids), padId, model.config.vocabSize);
  const embeds = new Float32Array(S * T * C); // (S·T, C)
  arch.embed(bS.ids, bS.shape, embeds);
  for (let s = 0; s < S; s++) {
    for (let j = 0; j < nS; j++) {
      const o = (s * T + s0 + j) * C;
      const e = (s * nS + j) * C;
      for (let c = 0; c < C; c++) embeds[o + c]! += eps[e + c]!;
    }
  }
  const lastS: Position[] = Array.from({ length: S }, (_, row) => ({ row, pos: T - 1 }));
  const corrupt = forward(model, bS, { startHidden: embeds, keepHidden: layers, logits: lastS });
  let pCorrupt = 0;
  for (let s = 0; s < S; s++) pCorrupt += probOf(corrupt.logits!, s, V, f.objectId) / S;
  const startInput = (a: number): Float32Array => (a === 0 ? embeds : corrupt.hidden.get(a - 1)!); // (S·T, C)

  // 3. restorations, grouped by the first block they rerun
  const jobs: RestoreJob[] = [];
  for (let l = 0; l < L; l++) {
    for (let i = s0; i < T; i++) {
      jobs.push({ variant: "residual", layer: l, pos: i, positions: [i], states: [{ layer: l, kind: "block" }], start: l + 1 });
      jobs.push({ variant: "mlp", layer: l, pos: i, positions: [i], states: [{ layer: l, kind: "mlp" }], start: l });
      jobs.push({ variant: "attn", layer: l, pos: i, positions: [i], states: [{ layer: l, kind: "attn" }], start: l });
      const w = windowBlocks(l, opts.window, L);
      jobs.push({ variant: "mlpWindow", layer: l, pos: i, positions: [i], states: w.map((b) => ({ layer: b, kind: "mlp" })), start: w[0]! });
      jobs.push({ variant: "attnWindow", layer: l, pos: i, positions: [i], states: w.map((b) => ({ layer: b, kind: "attn" })), start: w[0]! });
    }
    const subj = Array.from({ length: nS }, (_, j) => s0 + j);
    jobs.push({ variant: "subjectAll", layer: l, pos: -1, positions: subj, states: [{ layer: l, kind: "block" }], start: l + 1 });
  }
  const zeros = (): number[][] => Array.from({ length: T }, () => new Array<number>(L).fill(0));
  const ie: Record<TraceVariant, number[][]> = { residual: zeros(), mlp: zeros(), attn: zeros(), mlpWindow: zeros(), attnWindow: zeros() };
  const subjectAll = new Array<number>(L).fill(0);
  const perChunk = Math.max(1, Math.floor(opts.maxBatchTokens / (S * T))); // jobs per forward
  for (let a = 0; a <= L; a++) {
    const group = jobs.filter((j) => j.start === a);
    for (let g = 0; g < group.length; g += perChunk) {
      const part = group.slice(g, g + perChunk);
      const B = part.length * S;
      const batch = makeBatch(Array.from({ length: B }, () => f.ids), padId, model.config.vocabSize);
      const src = startInput(a); // (S·T, C)
      const startHidden = new Float32Array(B * T * C); // (B·T, C): job j, sample s → row j·S + s
      for (let j = 0; j < part.length; j++) startHidden.set(src, j * S * T * C);
      const patches = buildPatches(part, S, cs, C);
      const at: Position[] = Array.from({ length: B }, (_, row) => ({ row, pos: T - 1 }));
      const res = forward(model, batch, { startLayer: a, startHidden, patches, logits: at });
      part.forEach((job, j) => {
        let p = 0;
        for (let s = 0; s < S; s++) p += probOf(res.logits!, j * S + s, V, f.objectId) / S;
        if (job.variant === "subjectAll") subjectAll[job.layer] = p - pCorrupt;
        else ie[job.variant][job.pos]![job.layer] = p - pCorrupt;
      });
    }
  }
  return {
    index: f.fact.index,
    caseId: f.fact.caseId,
    prompt: f.text,
    subject: f.fact.subject,
    object: f.fact.object,
    tokens: f.tokens,
    subjectRange: [s0, s1],
    objectId: f.objectId,
    pClean,
    pCorrupt,
    te: pClean - pCorrupt,
    ie,
    subjectAll,
  };
}

/** One patch per (block, kind) over the chunk's rows: every sample row of a job gets the clean value. */
function buildPatches(part: readonly RestoreJob[], S: number, cs: CleanStates, C: number): Patch[] {
  const acc = new Map<string, { layer: number; kind: PatchKind; at: Position[]; src: Float32Array[] }>();
  part.forEach((job, j) => {
    for (const st of job.states) {
      const key = `${st.layer}:${st.kind}`;
      const e = acc.get(key) ?? { layer: st.layer, kind: st.kind, at: [], src: [] };
      const clean = st.kind === "block" ? cs.block[st.layer]! : st.kind === "mlp" ? cs.mlp[st.layer]! : cs.attn[st.layer]!; // (T, C)
      for (let s = 0; s < S; s++) {
        for (const pos of job.positions) {
          e.at.push({ row: j * S + s, pos });
          e.src.push(clean.subarray(pos * C, (pos + 1) * C));
        }
      }
      acc.set(key, e);
    }
  });
  return [...acc.values()].map((e) => {
    const values = new Float32Array(e.at.length * C); // (n, C)
    e.src.forEach((v, i) => values.set(v, i * C));
    return { layer: e.layer, kind: e.kind, at: e.at, values };
  });
}
