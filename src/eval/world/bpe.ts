/**
 * Byte-level BPE trainer (GPT-2 style) for the world tokenizer.
 *
 * Pipeline: split each text around special tokens → GPT-2 regex pre-tokenization → count chunk
 * ("word") frequencies → start from the 256 byte symbols → repeatedly merge the most frequent
 * adjacent pair, never across chunks, until the vocabulary holds `vocabSize` tokens (special tokens
 * included) or no pair occurs `minFrequency` times.
 *
 * Vocabulary layout (V = tokens.length):
 *   ids 0..255          the 256 bytes in byte order, as their byte-level characters (BYTE_TO_UNICODE)
 *   ids 256..V-S-1      merge results, in merge order (a merge whose result already exists reuses its id)
 *   ids V-S..V-1        the S special tokens ("<|endoftext|>" by default: BOS, EOS and pad)
 *
 * Ties between pairs of equal count go to the smaller (left id, right id). Counts are order-free,
 * so the result is deterministic and does not even depend on the order of the texts.
 *
 * Efficiency: each distinct chunk is stored once with its count; pair counts are kept globally and
 * updated incrementally, only for the chunks that contain the merged pair (pair → chunk index
 * sets); the best pair comes from a max-heap with lazy invalidation (a popped entry whose count is
 * stale is re-pushed with the current count).
 */
import { DeltaEditError } from "../../errors.js";
import { BYTE_TO_UNICODE, preTokenize, splitSpecial } from "./bytelevel.js";

export const ENDOFTEXT = "<|endoftext|>";

export interface BpeTrainOptions {
  /** Total vocabulary size, special tokens included; in [256 + specials, 65536]. */
  vocabSize: number;
  /** Stop merging when the best pair occurs fewer times. Default 2. */
  minFrequency?: number;
  /** Special tokens, appended after the merges. Default ["<|endoftext|>"]. */
  specialTokens?: readonly string[];
  /** Progress sink. */
  log?: (msg: string) => void;
}

/** A trained byte-level BPE model. */
export interface BpeModel {
  readonly tokens: readonly string[]; // (V) id → byte-level token string
  readonly merges: readonly (readonly [string, string])[]; // (nMerges) in rank order
  readonly specialTokens: readonly string[]; // contents; ids are tokens.indexOf(content)
}

const PAIR_BASE = 65536; // pair key = left * PAIR_BASE + right (ids < 65536)

/** Max-heap of (count, pair key); larger count first, then smaller key. */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i]!;
    this.counts[i] = this.counts[j]!;
    this.counts[j] = c;
    const k = this.keys[i]!;
    this.keys[i] = this.keys[j]!;
    this.keys[j] = k;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Remove and return the top entry, or undefined when empty. */
  pop(): { count: number; key: number } | undefined {
    const n = this.keys.length;
    if (n === 0) return undefined;
    const top = { count: this.counts[0]!, key: this.keys[0]! };
    this.swap(0, n - 1);
    this.counts.pop();
    this.keys.pop();
    let i = 0;
    const m = n - 1;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < m && this.before(l, best)) best = l;
      if (r < m && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }
}

/** Count GPT-2 pre-tokenized chunks over `texts` (special tokens are cut out, not counted). */
export function countChunks(texts: Iterable<string>, specialTokens: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const seg of splitSpecial(text, specialTokens)) {
      if (seg.special) continue;
      for (const chunk of preTokenize(seg.text)) counts.set(chunk, (counts.get(chunk) ?? 0) + 1);
    }
  }
  return counts;
}

/** Train a byte-level BPE model on `texts`. Throws `E_ARG` on bad options. */
export function trainBpe(texts: Iterable<string>, opts: BpeTrainOptions): BpeModel {
  const specials = opts.specialTokens ?? [ENDOFTEXT];
  const minFrequency = opts.minFrequency ?? 2;
  const log = opts.log;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < 256 + specials.length || opts.vocabSize > PAIR_BASE) {
    throw new DeltaEditError("E_ARG", `trainBpe: option "vocabSize" must be an integer in [${256 + specials.length}, ${PAIR_BASE}], got ${opts.vocabSize}`);
  }
  if (!Number.isInteger(minFrequency) || minFrequency < 1) throw new DeltaEditError("E_ARG", `trainBpe: option "minFrequency" must be an integer ≥ 1, got ${minFrequency}`);
  if (new Set(specials).size !== specials.length || specials.some((s) => s.length === 0)) {
    throw new DeltaEditError("E_ARG", `trainBpe: option "specialTokens" must be distinct non-empty strings, got ${JSON.stringify(specials)}`);
  }

  // distinct chunks as byte-id sequences, with their counts
  const enc = new TextEncoder();
  const words: number[][] = []; // (nWords, len_w) symbol ids
  const freq: number[] = []; // (nWords)
  for (const [chunk, c] of countChunks(texts, specials)) {
    words.push(Array.from(enc.encode(chunk)));
    freq.push(c);
  }
  log?.(`trainBpe: ${words.length} distinct chunks`);

  const tokens: string[] = [...BYTE_TO_UNICODE];
  const tokenId = new Map<string, number>(tokens.map((t, i) => [t, i]));
  const merges: [string, string][] = [];
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPair = (key: number, c: number, w: number): void => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + c);
    let s = pairWords.get(key);
    if (s === undefined) pairWords.set(key, (s = new Set()));
    s.add(w);
  };
  words.forEach((s, w) => {
    for (let i = 0; i + 1 < s.length; i++) addPair(s[i]! * PAIR_BASE + s[i + 1]!, freq[w]!, w);
  });
  const heap = new PairHeap();
  for (const [key, c] of pairCount) heap.push(c, key);

  const target = opts.vocabSize - specials.length;
  while (tokens.length < target) {
    const top = heap.pop();
    if (top === undefined) break;
    const cur = pairCount.get(top.key) ?? 0;
    if (cur !== top.count) {
      if (cur > 0) heap.push(cur, top.key); // stale entry: re-queue at its current count
      continue;
    }
    if (cur < minFrequency) break;
    const a = Math.floor(top.key / PAIR_BASE);
    const b = top.key % PAIR_BASE;
    const merged = tokens[a]! + tokens[b]!;
    let c = tokenId.get(merged);
    if (c === undefined) {
      c = tokens.length;
      tokens.push(merged);
      tokenId.set(merged, c);
    }
    merges.push([tokens[a]!, tokens[b]!]);

    // rewrite every chunk containing (a, b); collect net pair-count changes
    const delta = new Map<number, number>();
    for (const w of pairWords.get(top.key) ?? []) {
      const s = words[w]!;
      const out: number[] = [];
      for (let i = 0; i < s.length; ) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(c);
          i += 2;
        } else out.push(s[i++]!);
      }
      if (out.length === s.length) continue; // stale index entry: (a, b) no longer in this chunk
      const f = freq[w]!;
      for (let i = 0; i + 1 < s.length; i++) {
        const k = s[i]! * PAIR_BASE + s[i + 1]!;
        delta.set(k, (delta.get(k) ?? 0) - f);
      }
      for (let i = 0; i + 1 < out.length; i++) {
        const k = out[i]! * PAIR_BASE + out[i + 1]!;
        delta.set(k, (delta.get(k) ?? 0) + f);
        let set = pairWords.get(k);
        if (set === undefined) pairWords.set(k, (set = new Set()));
        set.add(w);
      }
      words[w] = out;
    }
    pairWords.delete(top.key);
    for (const [k, d] of delta) {
      if (d === 0) continue;
      const n = (pairCount.get(k) ?? 0) + d;
      if (n > 0) pairCount.set(k, n);
      else {
        pairCount.delete(k);
        pairWords.delete(k);
      }
      if (d > 0) heap.push(n, k);
    }
    if (log !== undefined && merges.length % 500 === 0) log(`trainBpe: ${merges.length} merges, vocab ${tokens.length}, last pair count ${cur}`);
  }

  for (const s of specials) {
    if (tokenId.has(s)) throw new DeltaEditError("E_ARG", `trainBpe: special token ${JSON.stringify(s)} collides with a learned token`);
    tokens.push(s);
  }
  log?.(`trainBpe: done, ${merges.length} merges, vocab ${tokens.length}`);
  return { tokens, merges, specialTokens: [...specials] };
}
