/**
 * Text tokenizer for a model directory: tokenizer.json (+ tokenizer_config.json) through
 * `@huggingface/tokenizers` (byte-level BPE for GPT-2 / Llama-3 / Qwen2, sentencepiece-style BPE
 * for Llama-2 / Mistral).
 *
 * Special tokens: `encode` applies the tokenizer's own post-processor by default (Llama prepends
 * BOS, GPT-2 adds nothing). BOS/EOS ids come from tokenizer_config.json's `bos_token`/`eos_token`,
 * falling back to generation_config.json / config.json. The pad id follows the reference
 * implementations' convention: pad = eos, else 0.
 */
import fs from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { DeltaEditError } from "../errors.js";

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
  idToToken(id: number): string | undefined;
  tokenToId(t: string): number | undefined;
}

function tokError(file: string, msg: string, cause?: unknown): DeltaEditError {
  return new DeltaEditError("E_TOKENIZER", `${file}: ${msg}`, { context: { file }, ...(cause === undefined ? {} : { cause }) });
}

function readJsonObject(file: string, required: boolean): Record<string, unknown> | null {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" && !required) return null;
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      throw new DeltaEditError("E_TOKENIZER", `${file}: tokenizer.json not found`, {
        cause: e,
        hint: "the model directory needs the Hugging Face fast-tokenizer file tokenizer.json",
        context: { file },
      });
    }
    throw tokError(file, `cannot read (${(e as Error).message})`, e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw tokError(file, `not valid JSON (${(e as Error).message})`, e);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw tokError(file, "expected a JSON object");
  return json as Record<string, unknown>;
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
  let maxId = -1;
  for (const id of tok.get_vocab(true).values()) if (id > maxId) maxId = id;

  const encode = (text: string, opts?: { addSpecialTokens?: boolean }): number[] =>
    tok.encode(text, { add_special_tokens: opts?.addSpecialTokens ?? true }).ids;
  const probe = encode("a");
  const probePlain = encode("a", { addSpecialTokens: false });
  const addsBos = bosTokenId !== null && probe.length > probePlain.length && probe[0] === bosTokenId;

  return {
    encode,
    decode: (ids, opts) => tok.decode([...ids], { skip_special_tokens: opts?.skipSpecialTokens ?? false }),
    vocabSize: maxId + 1,
    bosTokenId,
    eosTokenId,
    padTokenId: eosTokenId ?? 0,
    addsBos,
    idToToken: (id) => tok.id_to_token(id),
    tokenToId: (t) => tok.token_to_id(t),
  };
}
