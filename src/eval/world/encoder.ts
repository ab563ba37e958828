/**
 * Reference encoder/decoder for a trained byte-level BPE model (`bpe.ts`), independent of any
 * tokenizer library: the tests check that `@huggingface/tokenizers` loading our tokenizer.json
 * produces the same ids.
 *
 * Encoding a chunk: start from its byte-level characters, then repeatedly merge the adjacent pair
 * of lowest merge rank (leftmost on a tie) until no adjacent pair has a rank — the standard GPT-2
 * procedure. Special tokens in the text are matched verbatim and map to their own ids.
 *
 * Instance state: a per-encoder cache chunk → ids (bounded by `cacheLimit` entries).
 */
import { DeltaEditError } from "../../errors.js";
import type { BpeModel } from "./bpe.js";
import { fromByteLevel, preTokenize, splitSpecial, toByteLevel } from "./bytelevel.js";

export class BpeEncoder {
  private readonly model: BpeModel;
  private readonly ids = new Map<string, number>(); // token → id
  private readonly ranks = new Map<string, number>(); // "left right" → merge rank
  private readonly specialIds = new Map<string, number>(); // special token → id
  private readonly cache = new Map<string, number[]>(); // chunk → ids
  private readonly enc = new TextEncoder();
  private readonly cacheLimit: number;

  constructor(model: BpeModel, cacheLimit = 100_000) {
    this.model = model;
    this.cacheLimit = cacheLimit;
    model.tokens.forEach((t, i) => {
      if (!this.ids.has(t)) this.ids.set(t, i);
    });
    model.merges.forEach(([l, r], i) => {
      const k = `${l} ${r}`;
      if (!this.ranks.has(k)) this.ranks.set(k, i);
    });
    for (const s of model.specialTokens) this.specialIds.set(s, this.ids.get(s)!);
  }

  get vocabSize(): number {
    return this.model.tokens.length;
  }

  /** Token ids of `text` (no BOS/EOS added). */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const seg of splitSpecial(text, this.model.specialTokens)) {
      if (seg.special) {
        out.push(this.specialIds.get(seg.text)!);
        continue;
      }
      for (const chunk of preTokenize(seg.text)) {
        for (const id of this.encodeChunk(chunk)) out.push(id);
      }
    }
    return out;
  }

  /** Text of `ids`; special tokens are written out verbatim. */
  decode(ids: readonly number[]): string {
    let out = "";
    let run = "";
    for (const id of ids) {
      const t = this.model.tokens[id];
      if (t === undefined) throw new DeltaEditError("E_TOKENIZER", `BpeEncoder.decode: id ${id} is outside the vocabulary [0, ${this.model.tokens.length})`);
      if (this.specialIds.has(t)) {
        out += fromByteLevel(run) + t;
        run = "";
      } else run += t;
    }
    return out + fromByteLevel(run);
  }

  /** The token strings of `text` (for inspection). */
  tokenize(text: string): string[] {
    return this.encode(text).map((id) => this.model.tokens[id]!);
  }

  private encodeChunk(chunk: string): number[] {
    const hit = this.cache.get(chunk);
    if (hit !== undefined) return hit;
    const parts = Array.from(toByteLevel(chunk, this.enc)); // one symbol per byte
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = this.ranks.get(`${parts[i]!} ${parts[i + 1]!}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const l = parts[best]!;
      const r = parts[best + 1]!;
      const next: string[] = [];
      for (let i = 0; i < parts.length; ) {
        if (i + 1 < parts.length && parts[i] === l && parts[i + 1] === r) {
          next.push(l + r);
          i += 2;
        } else next.push(parts[i++]!);
      }
      parts.length = 0;
      parts.push(...next);
    }
    const ids = parts.map((p) => {
      const id = this.ids.get(p);
      if (id === undefined) throw new DeltaEditError("E_TOKENIZER", `BpeEncoder: merged symbol ${JSON.stringify(p)} is not in the vocabulary`);
      return id;
    });
    if (this.cache.size < this.cacheLimit) this.cache.set(chunk, ids);
    return ids;
  }
}
