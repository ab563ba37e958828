/**
 * Text in, text out: tokenize a prompt with the model's tokenizer (default special tokens), generate
 * greedily or by seeded top-k sampling with the KV cache (generate.ts), decode the new tokens. The
 * CLI's `generate` and the library's `Editor.generate` both go through here.
 */
import { DeltaEditError } from "../errors.js";
import { Rng } from "../util/rng.js";
import { generate, type GenerateOptions } from "./generate.js";
import type { LanguageModel } from "./model.js";

/** Options of `generateText`. */
export interface GenerateTextOptions {
  /** New tokens to generate (default 32). */
  maxNewTokens?: number;
  /** Top-k sampling with this k (seeded by `seed`); greedy decoding when absent. */
  topK?: number;
  /** Seed of the top-k sampler (default 0). */
  seed?: number;
  /** Stop when the model emits its EOS token. */
  stopAtEos?: boolean;
}

/** The prompt's ids, the generated ids and their decoded text (the continuation only). */
export interface GeneratedText {
  promptIds: number[];
  ids: number[];
  text: string;
}

/** Generate a continuation of `prompt` (text, or token ids). */
export function generateText(model: LanguageModel, prompt: string | readonly number[], o: GenerateTextOptions = {}): GeneratedText {
  const tok = model.tokenizer;
  let promptIds: number[];
  if (typeof prompt === "string") {
    if (!tok) throw new DeltaEditError("E_TOKENIZER", `generate: model ${model.dir ?? ""} has no tokenizer.json; pass token ids instead of text`);
    promptIds = tok.encode(prompt);
  } else promptIds = [...prompt];
  if (promptIds.length === 0) throw new DeltaEditError("E_ARG", "generate: the prompt gives no tokens");
  for (const t of promptIds) if (!Number.isInteger(t) || t < 0 || t >= model.config.vocabSize) throw new DeltaEditError("E_ARG", `generate: token id ${t} is outside the vocabulary [0, ${model.config.vocabSize})`);
  const opts: GenerateOptions = { maxNewTokens: o.maxNewTokens ?? 32, stopAtEos: o.stopAtEos ?? false };
  if (o.topK !== undefined) {
    opts.topK = o.topK;
    opts.rng = new Rng(o.seed ?? 0);
  }
  const [ids] = generate(model, [promptIds], opts);
  return { promptIds, ids: ids!, text: tok && ids!.length > 0 ? tok.decode(ids!) : "" };
}
