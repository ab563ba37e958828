/**
 * Hugging Face files for a trained byte-level BPE model (`bpe.ts`): `tokenizer.json` (the
 * `tokenizers` library format, laid out like GPT-2's) and `tokenizer_config.json`
 * (transformers' GPT2Tokenizer settings; the one special token serves as BOS, EOS, UNK and pad).
 *
 *   pre_tokenizer   ByteLevel, add_prefix_space false, use_regex true (GPT-2 regex)
 *   post_processor  ByteLevel, trim_offsets false (adds nothing: no automatic BOS/EOS)
 *   decoder         ByteLevel
 *   model           BPE, merges as "left right" strings (byte-level tokens never contain a space)
 *
 * `clean_up_tokenization_spaces` is false so decode(encode(s)) === s.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BpeModel } from "./bpe.js";

export interface TokenizerConfigOptions {
  /** Maximum sequence length the model is trained for. Default 1024. */
  modelMaxLength?: number;
}

function addedTokens(model: BpeModel): { id: number; content: string }[] {
  return model.specialTokens.map((content) => ({ id: model.tokens.indexOf(content), content }));
}

/** The `tokenizer.json` object. */
export function tokenizerJson(model: BpeModel): Record<string, unknown> {
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>; // no inherited keys ("constructor")
  model.tokens.forEach((t, i) => {
    if (!model.specialTokens.includes(t) && !(t in vocab)) vocab[t] = i;
  });
  for (const { id, content } of addedTokens(model)) vocab[content] = id;
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens(model).map(({ id, content }) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: true,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: model.merges.map(([l, r]) => `${l} ${r}`),
    },
  };
}

/** The `tokenizer_config.json` object. */
export function tokenizerConfig(model: BpeModel, opts: TokenizerConfigOptions = {}): Record<string, unknown> {
  const special = model.specialTokens[0] ?? null;
  const decoder: Record<string, unknown> = {};
  for (const { id, content } of addedTokens(model)) {
    decoder[String(id)] = { content, lstrip: false, normalized: true, rstrip: false, single_word: false, special: true };
  }
  return {
    add_bos_token: false,
    add_prefix_space: false,
    bos_token: special,
    eos_token: special,
    unk_token: special,
    pad_token: special,
    clean_up_tokenization_spaces: false,
    model_max_length: opts.modelMaxLength ?? 1024,
    tokenizer_class: "GPT2Tokenizer",
    added_tokens_decoder: decoder,
  };
}

/** Write `tokenizer.json` and `tokenizer_config.json` into `dir` (created if missing). */
export function writeTokenizerFiles(dir: string, model: BpeModel, opts: TokenizerConfigOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson(model), null, 2) + "\n");
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig(model, opts), null, 2) + "\n");
}
