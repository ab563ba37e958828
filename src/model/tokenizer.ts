/**
 * Text tokenizer for a model directory: tokenizer.json (+ tokenizer_config.json) through
 * `@huggingface/tokenizers` (byte-level BPE for GPT-2 / Llama-3 / Qwen2, sentencepiece-style BPE
 * for Llama-2 / Mistral).
 *
 * Special tokens: `encode` applies the tokenizer's own post-processor by default (Llama prepends
 * BOS, GPT-2 adds nothing). BOS/EOS ids come from tokenizer_config.json's `bos_token`/`eos_token`,
 * falling back to generation_config.json / config.json. The pad id follows the reference
 * implementations' convention: pad = eos, else 0.
 *
 * Limits (`limits.ts`): every JSON file is bounded in size and nesting depth, and every token id in
 * tokenizer.json (the model's vocab, added_tokens) must be an integer in [0, LIMITS.maxVocab),
 * checked BEFORE the tokenizer library is constructed (it keeps a JS array indexed by id, so one
 * huge id would make every later walk of the vocabulary take forever).
 */
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { DeltaEditError } from "../errors.js";
import { brief, readBoundedJson } from "./boundedjson.js";
import { LIMITS, limitError } from "./limits.js";

/** A tokenizer loaded from tokenizer.json (byte-level BPE, sentencepiece-style BPE). */
export interface TextTokenizer {
  /** Token ids of `text`; `addSpecialTokens` (default true) applies the tokenizer's post-processor. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  /** Text of `ids`; special tokens are kept unless `skipSpecialTokens` (default false). */
  decode(ids: readonly number[], opts?: { skipSpecialTokens?: boolean }): string;
  /** 1 + the largest token id (vocabulary plus added tokens). */
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  /** eos when there is one, else 0. */
  readonly padTokenId: number;
  /** Whether `encode` with special tokens prepends BOS. */
  readonly addsBos: boolean;
  /** The token string of `id`. */
  idToToken(id: number): string | undefined;
  /** The id of token string `t`. */
  tokenToId(t: string): number | undefined;
}

function tokError(file: string, msg: string, cause?: unknown): DeltaEditError {
  return new DeltaEditError("E_TOKENIZER", `${file}: ${msg}`, { context: { file }, ...(cause === undefined ? {} : { cause }) });
}

function readJsonObject(file: string, required: boolean): Record<string, unknown> | null {
  const read = readBoundedJson(file, "E_TOKENIZER");
  if (read === null) {
    if (!required) return null;
    throw new DeltaEditError("E_TOKENIZER", `${file}: tokenizer.json not found`, {
      hint: "the model directory needs the Hugging Face fast-tokenizer file tokenizer.json",
      context: { file },
    });
  }
  const json = read.value;
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw tokError(file, "expected a JSON object");
  return json as Record<string, unknown>;
}

/** Throws unless `id` is an integer in [0, LIMITS.maxVocab); `field` names it in tokenizer.json. */
function checkId(file: string, field: string, id: unknown): number {
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) {
    throw new DeltaEditError("E_TOKENIZER", `${file}: ${field} must be a non-negative integer token id, got ${brief(id)}`, { context: { file, field } });
  }
  if (id >= LIMITS.maxVocab) throw limitError(file, `${field}: token id`, id, "maxVocab", { file, field });
  return id;
}

/**
 * Validates every token id of a tokenizer.json (model.vocab — an object token → id, or a Unigram
 * list whose index is the id — and added_tokens[].id) and returns the largest (−1 when none).
 */
function scanTokenIds(file: string, tokJson: Record<string, unknown>): number {
  let maxId = -1;
  const model = tokJson["model"] as Record<string, unknown>;
  const vocab = model["vocab"];
  if (Array.isArray(vocab)) {
    if (vocab.length > LIMITS.maxVocab) throw limitError(file, "model.vocab: number of entries", vocab.length, "maxVocab", { file, field: "model.vocab" });
    maxId = vocab.length - 1;
  } else if (typeof vocab === "object" && vocab !== null) {
    for (const [token, id] of Object.entries(vocab as Record<string, unknown>)) {
      const v = checkId(file, `model.vocab[${brief(token, 40)}]`, id);
      if (v > maxId) maxId = v;
    }
  }
  const added = tokJson["added_tokens"];
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) throw tokError(file, `added_tokens must be a list, got ${brief(added)}`);
    added.forEach((t, i) => {
      const id = typeof t === "object" && t !== null ? (t as Record<string, unknown>)["id"] : undefined;
      const v = checkId(file, `added_tokens[${i}].id`, id);
      if (v > maxId) maxId = v;
    });
  }
  return maxId;
}

/** A special token in tokenizer_config.json is a string or an AddedToken object `{ content }`. */
function tokenContent(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as Record<string, unknown>)["content"] === "string") {
    return (v as Record<string, unknown>)["content"] as string;
  }
  return null;
}

function firstId(v: unknown): number | null {
  const x = Array.isArray(v) ? v[0] : v;
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0 ? x : null;
}

/** Loads `<dir>/tokenizer.json` (and tokenizer_config.json when present). */
export function loadTokenizer(dir: string): TextTokenizer {
  const tokFile = path.join(dir, "tokenizer.json");
  const tokJson = readJsonObject(tokFile, true) as Record<string, unknown>;
  if (typeof tokJson["model"] !== "object" || tokJson["model"] === null) throw tokError(tokFile, `missing "model" section (not a Hugging Face tokenizer.json?)`);
  const maxId = scanTokenIds(tokFile, tokJson);
  const tokConfig = readJsonObject(path.join(dir, "tokenizer_config.json"), false) ?? {};
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tokJson, tokConfig);
  } catch (e) {
    throw tokError(tokFile, `unusable tokenizer (${(e as Error).message})`, e);
  }
  const fallbacks = [readJsonObject(path.join(dir, "generation_config.json"), false), readJsonObject(path.join(dir, "config.json"), false)];
  const specialId = (tokenKey: string, idKey: string): number | null => {
    const content = tokenContent(tokConfig[tokenKey]);
    if (content !== null) {
      const id = tok.token_to_id(content);
      if (id !== undefined) return id;
    }
    for (const fb of fallbacks) {
      const id = fb === null ? null : firstId(fb[idKey]);
      if (id !== null) return id;
    }
    return null;
  };
  const bosTokenId = specialId("bos_token", "bos_token_id");
  const eosTokenId = specialId("eos_token", "eos_token_id");

  // the tokenizers library checks its pipeline lazily: a malformed normalizer, pre-tokenizer or
  // post-processor fails at the first encode, so every call is guarded and the probe below runs at load
  const guard = <T>(what: string, fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof DeltaEditError) throw e;
      throw tokError(tokFile, `unusable tokenizer: ${what} failed (${e instanceof Error ? e.message : String(e)})`, e);
    }
  };
  const encode = (text: string, opts?: { addSpecialTokens?: boolean }): number[] =>
    guard("encode", () => tok.encode(text, { add_special_tokens: opts?.addSpecialTokens ?? true }).ids);
  const probe = encode("a");
  const probePlain = encode("a", { addSpecialTokens: false });
  const addsBos = bosTokenId !== null && probe.length > probePlain.length && probe[0] === bosTokenId;
  guard("decode", () => tok.decode(probe, { skip_special_tokens: false }));

  return {
    encode,
    decode: (ids, opts) => guard("decode", () => tok.decode([...ids], { skip_special_tokens: opts?.skipSpecialTokens ?? false })),
    vocabSize: maxId + 1,
    bosTokenId,
    eosTokenId,
    padTokenId: eosTokenId ?? 0,
    addsBos,
    idToToken: (id) => guard("id_to_token", () => tok.id_to_token(id)),
    tokenToId: (t) => guard("token_to_id", () => tok.token_to_id(t)),
  };
}

/**
 * Throws E_TOKENIZER unless every id the tokenizer can produce (and its bos/eos/pad ids) indexes a
 * row of the model's embedding: `vocabSize` is config.json's vocab_size. `dir` names the model.
 */
export function checkTokenizerFitsVocab(tok: TextTokenizer, vocabSize: number, dir: string): void {
  const file = path.join(dir, "tokenizer.json");
  const fail = (what: string, id: number): DeltaEditError =>
    new DeltaEditError("E_TOKENIZER", `${file}: ${what} ${id}${tok.idToToken(id) === undefined ? "" : ` (${brief(tok.idToToken(id), 40)})`} is outside the model's vocabulary: ${path.join(dir, "config.json")} has vocab_size = ${vocabSize}`, {
      hint: "tokenizer.json and config.json belong to different models",
      context: { file, field: "vocab_size", id, vocabSize },
    });
  if (tok.vocabSize > vocabSize) throw fail("token id", tok.vocabSize - 1);
  for (const [what, id] of [["bos_token id", tok.bosTokenId], ["eos_token id", tok.eosTokenId], ["pad id", tok.padTokenId]] as const) {
    if (id !== null && id >= vocabSize) throw fail(what, id);
  }
}
