/**
 * Training data order: fixed-length windows of T + 1 tokens (T inputs and their T next-token
 * targets) over one token stream of documents joined with the end-of-text token, visited in a
 * seeded random order, epoch after epoch. Two layouts:
 *
 * - "documents" (`docStarts` given: the offset of each document's leading end-of-text token):
 *   each epoch permutes the documents and packs them, in that order, into windows; every window
 *   starts at a document start (position 0 is always the end-of-text/BOS token, as in Llama
 *   pre-training), and the document that does not fit is cut at the window's end (its tail is
 *   skipped this epoch; the permutation changes which documents are cut).
 * - "grid" (no `docStarts`): windows start at o_e, o_e + T, o_e + 2T, … for a per-epoch random
 *   offset o_e ∈ [0, T), in a random order (consecutive windows share one token).
 *
 * Resumable: `state()` records the Rng state from BEFORE the current epoch was drawn, the epoch
 * number and the cursor inside the epoch (documents or windows handed out); a sampler built from
 * that state redraws the same epoch and continues at the cursor, so a resumed run sees exactly the
 * windows the uninterrupted one would.
 */
import { DeltaEditError } from "../errors.js";
import { Rng } from "../util/rng.js";

export interface SamplerState {
  epoch: number; // epochs started so far − 1 (0 during the first)
  cursor: number; // units (documents or grid windows) of the current epoch already consumed
  epochRngState: number[]; // (4) Rng state before the current epoch's permutation was drawn
}

export interface SamplerOptions {
  stream: Int32Array; // (N) token ids
  seqLen: number; // T
  seed: number;
  /** Offsets of the document starts in `stream`, increasing (documents layout). */
  docStarts?: Int32Array;
  /** Continue from a saved state instead of starting at epoch 0. */
  state?: SamplerState;
}

export class WindowSampler {
  readonly stream: Int32Array; // (N)
  readonly seqLen: number; // T
  private readonly docStarts: Int32Array | null; // (D) or null for the grid layout
  private readonly rng: Rng;
  private epochRngState: number[]; // (4)
  private order: Int32Array; // (units per epoch) documents, or grid window starts, in visiting order
  epoch: number;
  cursor: number;

  constructor(o: SamplerOptions) {
    const T = o.seqLen;
    if (!Number.isInteger(T) || T < 1) throw new DeltaEditError("E_ARG", `WindowSampler: seqLen must be a positive integer, got ${T}`);
    if (o.stream.length < 2 * T + 1) throw new DeltaEditError("E_ARG", `WindowSampler: the token stream has ${o.stream.length} tokens, need at least 2·seqLen + 1 = ${2 * T + 1}`);
    if (o.docStarts !== undefined) {
      const d = o.docStarts;
      if (d.length === 0 || d[0] !== 0) throw new DeltaEditError("E_ARG", "WindowSampler: docStarts must start with 0");
      for (let i = 1; i < d.length; i++) if (!(d[i]! > d[i - 1]! && d[i]! < o.stream.length)) throw new DeltaEditError("E_ARG", `WindowSampler: docStarts[${i}] = ${d[i]} is not increasing inside the stream`);
    }
    this.stream = o.stream;
    this.seqLen = T;
    this.docStarts = o.docStarts ?? null;
    this.rng = o.state ? Rng.fromState(o.state.epochRngState) : new Rng(o.seed);
    this.epoch = o.state?.epoch ?? 0;
    this.epochRngState = this.rng.state();
    this.order = this.drawEpoch();
    this.cursor = o.state?.cursor ?? 0;
    if (!Number.isInteger(this.cursor) || this.cursor < 0 || this.cursor > this.order.length) throw new DeltaEditError("E_ARG", `WindowSampler: cursor ${this.cursor} outside [0, ${this.order.length}]`);
  }

  /** Epochs completed, with the fraction of the current one. */
  progress(): number {
    return this.epoch + this.cursor / this.order.length;
  }

  /** Windows per epoch (exact for the grid; for documents, stream length / (T + 1), a lower bound). */
  get windowsPerEpoch(): number {
    return this.docStarts === null ? this.order.length : Math.floor(this.stream.length / (this.seqLen + 1));
  }

  state(): SamplerState {
    return { epoch: this.epoch, cursor: this.cursor, epochRngState: [...this.epochRngState] };
  }

  /** The next window: T + 1 token ids (inputs = [0, T), targets = [1, T]). */
  next(): Int32Array {
    const W = this.seqLen + 1;
    if (this.docStarts === null) {
      const s = this.nextUnit();
      return this.stream.subarray(s, s + W);
    }
    const out = new Int32Array(W); // (T + 1)
    for (let fill = 0; fill < W; ) {
      const d = this.nextUnit();
      const s = this.docStarts[d]!;
      const e = d + 1 < this.docStarts.length ? this.docStarts[d + 1]! : this.stream.length;
      const n = Math.min(e - s, W - fill);
      out.set(this.stream.subarray(s, s + n), fill);
      fill += n;
    }
    return out;
  }

  /** The next document index / grid start, starting a new epoch when the current one is used up. */
  private nextUnit(): number {
    if (this.cursor >= this.order.length) {
      this.epoch++;
      this.epochRngState = this.rng.state();
      this.order = this.drawEpoch();
      this.cursor = 0;
    }
    return this.order[this.cursor++]!;
  }

  /** Draw the current epoch's visiting order from `rng`. */
  private drawEpoch(): Int32Array {
    if (this.docStarts !== null) return Int32Array.from(this.rng.shuffle(Array.from({ length: this.docStarts.length }, (_, i) => i)));
    const T = this.seqLen;
    const offset = this.rng.int(T);
    const n = Math.floor((this.stream.length - offset - 1) / T);
    return Int32Array.from(this.rng.shuffle(Array.from({ length: n }, (_, i) => offset + i * T)));
  }
}

/**
 * Deterministic evaluation windows (T + 1 tokens each), at most `max`: with `docStarts`, documents
 * packed in stream order (each window starts at a document start, the overflowing document is
 * cut); otherwise a grid at offset 0.
 */
export function evalWindows(stream: Int32Array, seqLen: number, max: number, docStarts?: Int32Array): Int32Array[] {
  const W = seqLen + 1;
  const out: Int32Array[] = [];
  if (docStarts === undefined) {
    const n = Math.floor((stream.length - 1) / seqLen);
    for (let i = 0; i < Math.min(n, max); i++) out.push(stream.subarray(i * seqLen, i * seqLen + W));
    return out;
  }
  let d = 0;
  while (out.length < max && d < docStarts.length) {
    const w = new Int32Array(W); // (T + 1)
    let fill = 0;
    while (fill < W && d < docStarts.length) {
      const s = docStarts[d]!;
      const e = d + 1 < docStarts.length ? docStarts[d + 1]! : stream.length;
      const n = Math.min(e - s, W - fill);
      w.set(stream.subarray(s, s + n), fill);
      fill += n;
      d++;
    }
    if (fill < W) break; // the last, partial window is dropped
    out.push(w);
  }
  return out;
}

/** Offsets of the tokens equal to `eotId` that start a document (every occurrence but a final trailing one). */
export function documentStarts(stream: Int32Array, eotId: number): Int32Array {
  const starts: number[] = [];
  for (let i = 0; i < stream.length - 1; i++) if (stream[i] === eotId) starts.push(i);
  return Int32Array.from(starts);
}
