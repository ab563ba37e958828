/**
 * Fluency: n-gram entropy of generated text (evaluation spec §3.7).
 *
 * 1. Generation: per generation prompt, top-k sampling (k = 5, temperature 1, seeded `Rng`) right
 *    after the prompt until the sequence (BOS if any + prompt + generated) is 100 tokens; EOS does
 *    not stop it. Prompts of equal length are generated together (`generate` groups rows so
 *    each continues from the end of its own prompt).
 * 2. Decoding: the FULL sequence (prompt included, special tokens kept), NFKD, every "\n\n" → " ",
 *    every "<|endoftext|>" deleted. Clean default (Q9): the strings of the BOS/EOS/PAD tokens are
 *    deleted too; `keepSpecialStrings: true` reproduces the references (only "<|endoftext|>").
 * 3. Per text: `wordTokenize` (NLTK port, see wordtokenize.ts), Shannon entropy in bits of the
 *    bigram (H2) and trigram (H3) frequency distributions; text fluency = mean(2/3·H2, 4/3·H3)
 *    = H2/3 + 2·H3/3.
 * 4. Case fluency = mean over the texts. (Run fluency = mean over cases ×100: aggregate.ts.)
 */
import { DeltaEditError } from "../../errors.js";
import { generate } from "../../model/generate.js";
import type { LanguageModel } from "../../model/model.js";
import type { Rng } from "../../util/rng.js";
import { contextIds, requireTokenizer } from "./score.js";
import { wordTokenize } from "./wordtokenize.js";

export interface GenerationOptions {
  rng: Rng; // seeded; owned by the caller (record the seed)
  /** Total sequence length in tokens, prompt (and BOS) included. Default 100. */
  maxLength?: number;
  /** Default 5. */
  topK?: number;
  /** Reference behaviour (Q9): delete only "<|endoftext|>", keep other special-token strings. */
  keepSpecialStrings?: boolean;
}

export const FLUENCY_MAX_LENGTH = 100;
export const FLUENCY_TOP_K = 5;

/** Step 2: NFKD, "\n\n" → " ", delete the given strings (always including "<|endoftext|>"). */
export function cleanGeneratedText(text: string, deleteStrings: readonly string[] = []): string {
  let t = text.normalize("NFKD").split("\n\n").join(" ");
  for (const s of ["<|endoftext|>", ...deleteStrings]) if (s.length > 0) t = t.split(s).join("");
  return t;
}

/** Steps 1–2: one cleaned text per prompt. */
export function generateTexts(model: LanguageModel, prompts: readonly string[], opts: GenerationOptions): string[] {
  const tok = requireTokenizer(model, "generateTexts");
  const maxLength = opts.maxLength ?? FLUENCY_MAX_LENGTH;
  const topK = opts.topK ?? FLUENCY_TOP_K;
  const ids = prompts.map((p) => contextIds(tok, p));
  ids.forEach((x, i) => {
    if (x.length === 0) throw new DeltaEditError("E_ARG", `generateTexts: prompt ${i} tokenises to nothing`);
  });
  const specials: string[] = [];
  if (!opts.keepSpecialStrings) {
    for (const id of [tok.bosTokenId, tok.eosTokenId, tok.padTokenId]) {
      const s = id === null ? undefined : tok.idToToken(id);
      if (s !== undefined && !specials.includes(s)) specials.push(s);
    }
  }
  // group prompts by length: every row of a group needs the same number of new tokens
  const out = new Array<string>(prompts.length);
  const byLen = new Map<number, number[]>();
  ids.forEach((x, i) => byLen.set(x.length, [...(byLen.get(x.length) ?? []), i]));
  for (const [len, rows] of [...byLen.entries()].sort((a, b) => a[0] - b[0])) {
    const n = Math.max(0, maxLength - len);
    const gen = n > 0 ? generate(model, rows.map((i) => ids[i]!), { maxNewTokens: n, topK, rng: opts.rng }) : rows.map(() => []);
    rows.forEach((i, r) => {
      out[i] = cleanGeneratedText(tok.decode([...ids[i]!, ...gen[r]!], { skipSpecialTokens: false }), specials);
    });
  }
  return out;
}

/** Shannon entropy in bits of the n-gram frequency distribution of `tokens` (0 if no n-gram). */
export function ngramEntropy(tokens: readonly string[], n: number): number {
  const counts = new Map<string, number>();
  let total = 0;
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join("\u0000");
    counts.set(key, (counts.get(key) ?? 0) + 1);
    total++;
  }
  let h = 0;
  for (const c of counts.values()) {
    const p = c / total;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Text fluency of a token list: mean(2/3·H2, 4/3·H3). */
export function tokenFluency(tokens: readonly string[]): number {
  return ((2 / 3) * ngramEntropy(tokens, 2) + (4 / 3) * ngramEntropy(tokens, 3)) / 2;
}

/** Case fluency (`ngram_entropy`): mean over texts of the fluency of `wordTokenize(text)`. */
export function ngramEntropyOfTexts(texts: readonly string[]): number {
  if (texts.length === 0) return NaN;
  return texts.reduce((a, t) => a + tokenFluency(wordTokenize(t)), 0) / texts.length;
}
