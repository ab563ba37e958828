/**
 * Forward passes with taps and injection, prefix caching, and the chained backward pass.
 *
 * Dimension legend: B rows, T padded length, BT = B·T, C hidden, F key width (d_ff),
 * V vocabulary, P number of requested logit positions.
 *
 * - A *tap* reads, at chosen (row, pos) pairs, the key (input of the MLP down projection),
 *   the value (its output) and/or the block output h^(l) (the residual stream after block l)
 *   of chosen layers. Block-output taps are taken BEFORE any injection at that layer.
 * - An *injection* adds one vector δ (C) to the output of block `layer` at chosen positions.
 *   Adding δ to the MLP output of block l is the same as adding it to the block output, so
 *   ROME's injection point is covered too.
 * - *Prefix caching*: `keepHidden: [L]` returns h^(L) (BT, C); a later call with
 *   `startLayer: L+1, startHidden: h` runs only blocks L+1..N−1 (an injection at layer L is
 *   then applied to a copy of `startHidden`). Exact: blocks ≤ L do not depend on δ.
 * - `forBackward: true` keeps every block's activations so that `backward()` can return the
 *   gradient of a loss on the logits w.r.t. the injected vector and/or chosen parameters.
 * - `startHidden` given with `startLayer: 0` replaces the token (+ position) embeddings
 *   (Hugging Face's `inputs_embeds`): causal tracing runs corrupted embeddings this way.
 * - A *patch* overwrites a state with a given value at chosen positions (causal tracing's
 *   "restoration"): kind "block" the block output h^(l) (layer −1 / startLayer−1: the input of
 *   the first block run), "mlp" / "attn" that sublayer's output before it is added to the
 *   residual stream (the rest of the block recomputes from it). Taps and keepHidden of a layer
 *   see its patched block output; an injection is added after the patch. Not with forBackward.
 *   An `attn` tap reads the attention sublayer's output (the MLP's is the `value` tap).
 */
import { DeltaEditError } from "../errors.js";
import { applyRowPatch, type BlockActs, type KVCacheLayer, type RowPatch, type SublayerIO } from "./arch/architecture.js";
import { checkPositions, type Batch, type Position } from "./batch.js";
import { linearBackward, linearForward } from "./linear.js";
import type { LanguageModel } from "./model.js";
import { ParamStore } from "./params.js";

/**
 * Reusable buffers for repeated passes over batches of one shape (the target optimisation runs
 * ~20 forward+backward passes over the same 7 rows): per-block activations, block outputs and
 * backward scratch are allocated once instead of every step. A changed batch shape reallocates
 * explicitly. A pass that reuses a workspace invalidates the `saved` state of the previous pass.
 */
export class ForwardWorkspace {
  private shapeKey = "";
  private acts: BlockActs[] = [];
  private outs: Float32Array[] = [];
  private grads: Float32Array[] = [];
  start = new Float32Array(0);

  /** Make the buffers fit (B, T, pastLength) of `batch`. */
  prepare(model: LanguageModel, batch: Batch): void {
    const key = `${batch.B}x${batch.T}+${batch.shape.pastLength}`;
    if (key === this.shapeKey) return;
    this.shapeKey = key;
    this.acts = [];
    this.outs = [];
    this.grads = [];
    this.start = new Float32Array(batch.B * batch.T * model.arch.hidden);
  }

  actsFor(model: LanguageModel, l: number, batch: Batch): BlockActs {
    return (this.acts[l] ??= model.arch.allocActs(batch.B * batch.T, batch.shape));
  }

  outFor(l: number, n: number): Float32Array {
    return (this.outs[l] ??= new Float32Array(n));
  }

  /** Two ping-pong gradient buffers (B·T·C). */
  grad(i: 0 | 1, n: number): Float32Array {
    return (this.grads[i] ??= new Float32Array(n));
  }
}

/** Hidden states to read (keys, values, block outputs) at the given layers and positions. */
export interface TapRequest {
  layers: number[];
  at: Position[];
  key?: boolean;
  value?: boolean;
  block?: boolean;
  attn?: boolean; // the attention sublayer's output (before it is added to the residual)
}

/** Hidden states read by a forward pass, per layer. */
export interface Taps {
  key: Map<number, Float32Array>; // layer → (P, F)
  value: Map<number, Float32Array>; // layer → (P, C)
  block: Map<number, Float32Array>; // layer → (P, C), before injection
  attn: Map<number, Float32Array>; // layer → (P, C) attention sublayer outputs
}

/** Which state a patch overwrites: the block output, or the MLP / attention sublayer output. */
export type PatchKind = "block" | "mlp" | "attn";

export const PATCH_KINDS: readonly PatchKind[] = ["block", "mlp", "attn"];

/** Hidden states replaced during a forward pass (causal tracing). */
export interface Patch {
  layer: number; // block index; "block" also accepts startLayer − 1 (−1: the embeddings)
  kind: PatchKind;
  at: Position[];
  values: Float32Array; // (at.length, C): at[i] receives values[i·C .. (i+1)·C)
}

/** A vector δ (C) added to block `layer`'s output at the given positions. */
export interface Injection {
  layer: number;
  vector: Float32Array; // (C)
  at: Position[];
}

/** Options of `forward`: the blocks to run, positions whose logits to return, taps, injections, patches. */
export interface ForwardOptions {
  startLayer?: number; // first block to run (default 0)
  startHidden?: Float32Array; // (BT, C) input of block `startLayer` (required when startLayer > 0)
  stopAfterLayer?: number; // last block to run (default N−1); logits only when it is N−1
  taps?: TapRequest;
  injection?: Injection;
  /** Overwrite states with given values (causal tracing); see the header. */
  patches?: readonly Patch[];
  logits?: "all" | "none" | Position[]; // default "all" when the last block runs
  /**
   * Stop before the vocabulary projection: the final norm runs at the logit positions and is saved
   * (`saved.finalNormed`), `logits` is null. The caller projects (fused with its loss) and passes
   * dLoss/d(final normed rows) to `backward` as `dFinalNormed`.
   */
  skipHead?: boolean;
  keepHidden?: number[]; // return h^(l) (BT, C) for these layers (before injection)
  forBackward?: boolean;
  /** Reuse these buffers (same batch shape across calls); see ForwardWorkspace. */
  workspace?: ForwardWorkspace;
  /**
   * Per block l (index l), a KV cache holding the keys / values of `batch.shape.pastLength` earlier
   * positions of every row: the batch's tokens attend over them and their own, which are written at
   * pastLength + t (target search: the positions before each subject, §7.8). Needed for every block
   * run; differentiable (`backward` treats the cached past as a constant).
   */
  kvCache?: readonly (KVCacheLayer | undefined)[];
}

/** What `forward` returns: logits at the requested positions, taps, and the saved activations. */
export interface ForwardResult {
  logits: Float32Array | null; // (P, V)
  logitPositions: Position[];
  taps: Taps;
  hidden: Map<number, Float32Array>; // layer → (BT, C)
  /** Saved state for backward (only with forBackward). */
  saved: SavedForward | null;
}

export interface SavedForward {
  batch: Batch;
  workspace: ForwardWorkspace | null;
  startLayer: number;
  inputs: Float32Array[]; // per block from startLayer: its input (BT, C)
  acts: BlockActs[]; // per block from startLayer
  finalRows: Float32Array; // (P, C) last hidden rows at the logit positions
  finalNormed: Float32Array; // (P, C)
  finalStats: Float32Array; // (2P)
  logitPositions: Position[];
  injection: Injection | null;
  kvCache: readonly (KVCacheLayer | undefined)[] | null;
}

/** Options of `backward`: which gradients to compute. */
export interface BackwardOptions {
  /** Return dLoss/dδ for the forward's injection. */
  injection?: boolean;
  /** Parameter names whose gradients to accumulate ("all" for every parameter). */
  params?: readonly string[] | "all";
  /** Accumulate into these buffers instead of fresh ones (training loops). */
  into?: ParamStore;
  /** dLoss/d(final normed rows) (P, C), from a head run by the caller (`skipHead`); then `dlogits` is unused. */
  dFinalNormed?: Float32Array;
}

/** What `backward` returns: the gradient w.r.t. the injected vector and/or the parameters. */
export interface BackwardResult {
  dInjection: Float32Array | null; // (C)
  grads: ParamStore | null;
}

/** Run the model's blocks over a batch: logits at chosen positions, taps, injections, patches; saves what `backward` needs. */
export function forward(model: LanguageModel, batch: Batch, opts: ForwardOptions = {}): ForwardResult {
  const arch = model.arch;
  const N = arch.numLayers;
  const C = arch.hidden;
  const F = arch.dFF;
  const BT = batch.B * batch.T;
  const shape = batch.shape;
  const start = opts.startLayer ?? 0;
  const stop = opts.stopAfterLayer ?? N - 1;
  if (batch.T > model.config.maxPositions) {
    throw new DeltaEditError("E_LIMIT", `forward: a row of ${batch.T} tokens exceeds the model's ${model.config.maxPositions} positions (config field max_position_embeddings / n_positions)`, { context: { field: "maxPositions" } });
  }
  if (!Number.isInteger(start) || start < 0 || start > N) throw new DeltaEditError("E_ARG", `forward: startLayer ${start} outside [0, ${N}]`);
  if (!Number.isInteger(stop) || stop < start - 1 || stop >= N) throw new DeltaEditError("E_ARG", `forward: stopAfterLayer ${stop} outside [${start - 1}, ${N - 1}]`);
  const inj = opts.injection ?? null;
  if (inj) {
    if (inj.vector.length !== C) throw new DeltaEditError("E_ARG", `forward: injection vector has length ${inj.vector.length}, expected hidden size ${C}`);
    if (inj.layer < start - 1 || inj.layer > stop) throw new DeltaEditError("E_ARG", `forward: injection layer ${inj.layer} is not in the blocks run (${start}..${stop}) nor the prefix-cache boundary ${start - 1}`);
    checkPositions(batch, inj.at, "injection");
  }
  const taps: Taps = { key: new Map(), value: new Map(), block: new Map(), attn: new Map() };
  if (opts.taps) {
    checkPositions(batch, opts.taps.at, "taps");
    for (const l of opts.taps.layers) if (l < start || l > stop) throw new DeltaEditError("E_ARG", `forward: tap layer ${l} is not among the blocks run (${start}..${stop})`);
  }

  const kvc = opts.kvCache ?? null;
  if (kvc) {
    for (let l = start; l <= stop; l++) {
      const kv = kvc[l];
      if (!kv) throw new DeltaEditError("E_ARG", `forward: kvCache has no entry for block ${l}`);
      const width = model.config.numKvHeads * model.config.headSize;
      if (shape.pastLength + batch.T > kv.maxT || kv.k.length !== batch.B * kv.maxT * width || kv.v.length !== kv.k.length) {
        throw new DeltaEditError("E_ARG", `forward: kvCache block ${l} holds (B ${kv.k.length / Math.max(1, kv.maxT * width)}, ${kv.maxT} positions); the batch needs (B ${batch.B}, ${shape.pastLength + batch.T})`);
      }
    }
    if (opts.patches?.length) throw new DeltaEditError("E_ARG", "forward: patches and a kvCache cannot be combined");
  } else if (shape.pastLength !== 0) {
    throw new DeltaEditError("E_ARG", `forward: the batch has ${shape.pastLength} past positions but no kvCache`);
  }
  const patches = patchTable(opts.patches ?? [], batch, C, start, stop, opts.forBackward === true);
  const attnOut = patches.attnNeeded || (opts.taps?.attn === true) ? new Float32Array(BT * C) : null; // (BT, C)

  const ws = opts.workspace ?? null;
  ws?.prepare(model, batch);
  // x: (BT, C) the residual stream entering the next block
  let x: Float32Array = ws ? ws.start : new Float32Array(BT * C);
  if (start === 0 && !opts.startHidden) {
    arch.embed(batch.ids, shape, x);
  } else {
    if (!opts.startHidden || opts.startHidden.length !== BT * C) {
      throw new DeltaEditError("E_ARG", `forward: startLayer ${start} needs startHidden of length B·T·C = ${BT * C}, got ${opts.startHidden?.length ?? "none"}`);
    }
    x.set(opts.startHidden);
  }
  const p0 = patches.byLayer.get(start - 1)?.block; // the input of the first block run (−1: the embeddings)
  if (p0) applyRowPatch(x, p0, C, `layer ${start - 1} block-output`);
  if (inj && inj.layer === start - 1 && (start > 0 || opts.startHidden)) addAt(x, inj.vector, inj.at, batch.T, C);
  const hidden = new Map<number, Float32Array>();
  const keep = new Set(opts.keepHidden ?? []);
  const saved: SavedForward | null = opts.forBackward
    ? { batch, workspace: ws, startLayer: start, inputs: [], acts: [], finalRows: new Float32Array(0), finalNormed: new Float32Array(0), finalStats: new Float32Array(0), logitPositions: [], injection: inj, kvCache: kvc }
    : null;
  let scratchActs: BlockActs | null = null;
  for (let l = start; l <= stop; l++) {
    const acts = ws ? ws.actsFor(model, l, batch) : saved ? arch.allocActs(BT, shape) : (scratchActs ??= arch.allocActs(BT, shape));
    const out = ws ? ws.outFor(l, BT * C) : new Float32Array(BT * C);
    const lp = patches.byLayer.get(l);
    const tapAttn = opts.taps?.attn === true && opts.taps.layers.includes(l);
    const sub: SublayerIO | null = lp || tapAttn ? { attnOut: lp?.attn || tapAttn ? attnOut : null, attnPatch: lp?.attn ?? null, mlpPatch: lp?.mlp ?? null } : null;
    arch.blockForward(l, x, out, shape, acts, kvc ? kvc[l]! : null, sub);
    if (lp?.block) applyRowPatch(out, lp.block, C, `layer ${l} block-output`);
    if (saved) {
      saved.inputs.push(x);
      saved.acts.push(acts);
    }
    if (opts.taps && opts.taps.layers.includes(l)) {
      const t = opts.taps;
      if (t.key) taps.key.set(l, gatherRows(acts.key, t.at, batch.T, F));
      if (t.value) taps.value.set(l, gatherRows(acts.value, t.at, batch.T, C));
      if (t.block) taps.block.set(l, gatherRows(out, t.at, batch.T, C));
      if (t.attn) taps.attn.set(l, gatherRows(attnOut!, t.at, batch.T, C));
    }
    if (keep.has(l)) hidden.set(l, out.slice());
    if (inj && inj.layer === l) addAt(out, inj.vector, inj.at, batch.T, C);
    x = out;
  }

  let logits: Float32Array | null = null;
  let logitPositions: Position[] = [];
  const want = opts.logits ?? (stop === N - 1 ? "all" : "none");
  if (want !== "none") {
    if (stop !== N - 1) throw new DeltaEditError("E_ARG", "forward: logits requested but the last block is not run");
    if (want === "all") {
      for (let row = 0; row < batch.B; row++) for (let pos = 0; pos < batch.T; pos++) logitPositions.push({ row, pos });
    } else {
      checkPositions(batch, want, "logits");
      logitPositions = want;
    }
    const P = logitPositions.length;
    const rows = gatherRows(x, logitPositions, batch.T, C); // (P, C)
    const normed = new Float32Array(P * C);
    const stats = new Float32Array(2 * P);
    arch.finalNormForward(rows, normed, stats, P);
    if (!opts.skipHead) {
      logits = new Float32Array(P * arch.vocab);
      linearForward(arch.lmHead(), normed, logits, P);
    }
    if (saved) {
      saved.finalRows = rows;
      saved.finalNormed = normed;
      saved.finalStats = stats;
      saved.logitPositions = logitPositions;
    }
  }
  return { logits, logitPositions, taps, hidden, saved };
}

/**
 * Backward from dLoss/dlogits (P, V) at the forward's logit positions. Runs the blocks in
 * reverse only as far down as needed: to the block above the injection layer for dδ, to the
 * lowest block holding a requested parameter, or through the embeddings.
 */
export function backward(model: LanguageModel, saved: SavedForward, dlogits: Float32Array | null, opts: BackwardOptions): BackwardResult {
  const arch = model.arch;
  const N = arch.numLayers;
  const C = arch.hidden;
  const { batch } = saved;
  const BT = batch.B * batch.T;
  const P = saved.logitPositions.length;
  if (P === 0) throw new DeltaEditError("E_ARG", "backward: the forward pass produced no logits");
  if (opts.dFinalNormed) {
    if (opts.dFinalNormed.length !== P * C) throw new DeltaEditError("E_ARG", `backward: dFinalNormed has length ${opts.dFinalNormed.length}, expected P·C = ${P}·${C}`);
  } else if (!dlogits || dlogits.length !== P * arch.vocab) {
    throw new DeltaEditError("E_ARG", `backward: dlogits has length ${dlogits?.length ?? "none"}, expected P·V = ${P}·${arch.vocab}`);
  }
  const inj = saved.injection;
  if (opts.injection && !inj) throw new DeltaEditError("E_ARG", "backward: injection gradient requested but the forward had no injection");

  const allNames = model.params.names();
  const names = opts.params === "all" ? allNames : (opts.params ?? []);
  for (const n of names) if (!model.params.has(n)) throw new DeltaEditError("E_ARG", `backward: unknown parameter "${n}"`);
  const want = new Set(names);
  const grads = names.length > 0 ? (opts.into ?? model.params.zerosLike(names)) : null;

  // lowest block we must go through
  let lowest = N; // N = none
  if (opts.injection && inj) lowest = Math.min(lowest, inj.layer + 1);
  let needEmbed = false;
  for (const n of names) {
    const spec = model.params.spec(n);
    if (spec.layer !== null) lowest = Math.min(lowest, spec.layer);
    else if (spec.role === "embedding" || spec.role === "position") needEmbed = true; // (a tied head also gets its head-side gradient above)
  }
  if (needEmbed) lowest = 0;
  if (lowest < saved.startLayer) {
    throw new DeltaEditError("E_ARG", `backward: needs block ${lowest} but the forward started at block ${saved.startLayer} (prefix-cached); rerun the forward from a lower layer`);
  }

  // head: logits = norm(h)·Eᵀ
  const headName = arch.lmHeadName();
  if (opts.dFinalNormed && want.has(headName)) throw new DeltaEditError("E_ARG", `backward: the head's gradient ("${headName}") needs dlogits, not dFinalNormed`);
  const dNormed = opts.dFinalNormed ?? new Float32Array(P * C);
  if (!opts.dFinalNormed) linearBackward(arch.lmHead(), saved.finalNormed, dlogits!, dNormed, grads && want.has(headName) ? grads.get(headName) : null, null, P);
  const dRows = new Float32Array(P * C);
  arch.finalNormBackward(saved.finalRows, dNormed, dRows, saved.finalStats, P, grads, want);
  // dH: (BT, C) gradient w.r.t. the output of the current block
  const ws = saved.workspace;
  let pingpong: 0 | 1 = 0;
  let dH = ws ? ws.grad(0, BT * C).fill(0) : new Float32Array(BT * C);
  saved.logitPositions.forEach((p, i) => {
    const o = (p.row * batch.T + p.pos) * C;
    for (let c = 0; c < C; c++) dH[o + c]! += dRows[i * C + c]!;
  });

  let dInjection: Float32Array | null = null;
  const takeInjectionGrad = (layer: number, g: Float32Array): void => {
    if (opts.injection && inj && inj.layer === layer) {
      dInjection = new Float32Array(C);
      for (const p of inj.at) {
        const o = (p.row * batch.T + p.pos) * C;
        for (let c = 0; c < C; c++) dInjection[c]! += g[o + c]!;
      }
    }
  };
  takeInjectionGrad(N - 1, dH);
  for (let l = N - 1; l >= lowest; l--) {
    const i = l - saved.startLayer;
    const needDx = l > lowest || needEmbed || (opts.injection === true && inj !== null && inj.layer === l - 1);
    pingpong = pingpong === 0 ? 1 : 0;
    const dX = needDx ? (ws ? ws.grad(pingpong, BT * C) : new Float32Array(BT * C)) : null;
    arch.blockBackward(l, saved.inputs[i]!, dH, dX, batch.shape, saved.acts[i]!, grads, want, saved.kvCache ? saved.kvCache[l]! : null);
    if (!dX) break;
    dH = dX;
    takeInjectionGrad(l - 1, dH);
  }
  if (needEmbed && grads) arch.embedBackward(batch.ids, batch.shape, dH, grads);
  return { dInjection, grads };
}

/** rows (P, W) gathered from x (B·T, W) at positions. */
export function gatherRows(x: Float32Array, at: readonly Position[], T: number, W: number): Float32Array {
  const out = new Float32Array(at.length * W);
  at.forEach((p, i) => {
    const o = (p.row * T + p.pos) * W;
    out.set(x.subarray(o, o + W), i * W);
  });
  return out;
}

interface LayerPatches {
  block?: RowPatch;
  mlp?: RowPatch;
  attn?: RowPatch;
}

/**
 * Validate patches against the blocks run and merge them per (layer, kind) into row patches
 * (rows = row·T + pos); a later patch of the same state wins.
 */
function patchTable(list: readonly Patch[], batch: Batch, C: number, start: number, stop: number, forBackward: boolean): { byLayer: Map<number, LayerPatches>; attnNeeded: boolean } {
  const byLayer = new Map<number, LayerPatches>();
  if (list.length === 0) return { byLayer, attnNeeded: false };
  if (forBackward) throw new DeltaEditError("E_ARG", "forward: patches cannot be combined with forBackward (a patched state has no gradient path)");
  const acc = new Map<string, { rows: number[]; values: Float32Array[] }>();
  list.forEach((p, i) => {
    const what = `forward: patches[${i}]`;
    if (!PATCH_KINDS.includes(p.kind)) throw new DeltaEditError("E_ARG", `${what}: kind "${String(p.kind)}" is not one of ${PATCH_KINDS.join(", ")}`);
    const lo = p.kind === "block" ? start - 1 : start;
    if (!Number.isInteger(p.layer) || p.layer < lo || p.layer > stop) {
      throw new DeltaEditError("E_ARG", `${what}: ${p.kind} patch at layer ${p.layer} is not in the blocks run (${start}..${stop})${p.kind === "block" ? ` nor the input boundary ${start - 1}` : ""}`);
    }
    if (p.values.length !== p.at.length * C) throw new DeltaEditError("E_ARG", `${what}: values has length ${p.values.length}, expected at.length·C = ${p.at.length}·${C}`);
    checkPositions(batch, p.at, what);
    const key = `${p.layer}:${p.kind}`;
    const e = acc.get(key) ?? { rows: [], values: [] };
    p.at.forEach((q, j) => {
      e.rows.push(q.row * batch.T + q.pos);
      e.values.push(p.values.subarray(j * C, (j + 1) * C));
    });
    acc.set(key, e);
  });
  let attnNeeded = false;
  for (const [key, e] of acc) {
    const [layerStr, kind] = key.split(":") as [string, PatchKind];
    const layer = Number(layerStr);
    const values = new Float32Array(e.rows.length * C); // (n, C)
    e.values.forEach((v, j) => values.set(v, j * C));
    const lp = byLayer.get(layer) ?? {};
    lp[kind] = { rows: Int32Array.from(e.rows), values };
    byLayer.set(layer, lp);
    if (kind === "attn") attnNeeded = true;
  }
  return { byLayer, attnNeeded };
}

function addAt(x: Float32Array, v: Float32Array, at: readonly Position[], T: number, C: number): void {
  for (const p of at) {
    const o = (p.row * T + p.pos) * C;
    for (let c = 0; c < C; c++) x[o + c]! += v[c]!;
  }
}
