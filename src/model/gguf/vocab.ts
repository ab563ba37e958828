/**
 * A model directory's tokenizer.json as llama.cpp's embedded tokenizer (`tokenizer.ggml.*`), the
 * two kinds convert_hf_to_gguf.py writes for the Llama family and GPT-2:
 *
 * - "gpt2": byte-level BPE (GPT-2, Llama 3): tokens in the byte-to-unicode alphabet, their types,
 *   the merges, and the pre-tokenizer's name — "gpt-2" for the GPT-2 regex (ByteLevel with
 *   use_regex), "llama-bpe" for Llama 3's Split regex. Any other pre-tokenizer is E_TOKENIZER:
 *   llama.cpp needs a name it knows, and a guessed one would split text differently.
 * - "llama": sentencepiece-style BPE with byte fallback (Llama 2, Mistral, TinyStories): tokens
 *   with scores and types (<0xNN> pieces are BYTE). llama.cpp tokenizes it by repeatedly merging
 *   the adjacent pair whose concatenation has the highest score; a token's score here is minus the
 *   rank of the first merge in tokenizer.json producing it, so the order matches BPE's merge order.
 *
 * Token types: added special tokens CONTROL, other added tokens USER_DEFINED, ids of the model's
 * vocabulary (config.json vocab_size) that no token uses "[PAD<id>]" UNUSED; for "llama" the unk
 * piece UNKNOWN and <0xNN> pieces BYTE, as sentencepiece marks them.
 * Special ids (bos, eos, unk, pad) and whether BOS/EOS are added are taken from what deltaedit's
 * own tokenizer does (`TextTokenizer`), so llama.cpp tokenizes prompts to the same ids.
 */
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { brief, readBoundedJson } from "../boundedjson.js";
import type { TextTokenizer } from "../tokenizer.js";
import { bool, str, TOKEN_TYPE, u32, type GgufMetadata } from "./format.js";

/** Llama 3's pre-tokenizer regex (tokenizer.json Split pattern) → llama.cpp "llama-bpe". */
const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** What was embedded. */
export interface GgufVocabSummary {
  /** tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (sentencepiece-style BPE). */
  model: "gpt2" | "llama";
  /** tokenizer.ggml.pre: llama.cpp's pre-tokenizer name ("gpt-2", "llama-bpe"; "default" for "llama"). */
  pre: string;
  /** Number of tokens (the model's vocab_size). */
  tokens: number;
  /** Number of merges written (0 for "llama", which uses scores). */
  merges: number;
}

type Json = Record<string, unknown>;

const obj = (v: unknown): Json | null => (typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : null);

function fail(file: string, msg: string, field?: string): DeltaEditError {
  return new DeltaEditError("E_TOKENIZER", `${file}: ${msg}`, { context: { file, ...(field === undefined ? {} : { field }) } });
}

/** A special token in tokenizer_config.json: a string or `{ content }`. */
function tokenContent(v: unknown): string | null {
  if (typeof v === "string") return v;
  const o = obj(v);
  return o && typeof o["content"] === "string" ? o["content"] : null;
}

/** The legacy Llama normalizer: Sequence[Prepend("▁"), Replace(" " → "▁")] (or its parts). */
function spmNormalizer(n: Json | null): { ok: boolean; prepend: boolean } {
  if (n === null) return { ok: false, prepend: false };
  const parts = n["type"] === "Sequence" && Array.isArray(n["normalizers"]) ? (n["normalizers"] as unknown[]).map(obj) : [n];
  let replace = false;
  let prepend = false;
  for (const p of parts) {
    if (p?.["type"] === "Prepend" && p["prepend"] === "\u2581") prepend = true;
    else if (p?.["type"] === "Replace" && obj(p["pattern"])?.["String"] === " " && p["content"] === "\u2581") replace = true;
    else return { ok: false, prepend: false };
  }
  return { ok: replace, prepend };
}

/** llama.cpp's name of a byte-level BPE pre-tokenizer, or null when it is not one llama.cpp knows. */
function bytePre(pre: Json | null): string | null {
  if (pre === null) return null;
  if (pre["type"] === "ByteLevel") return pre["use_regex"] !== false && pre["add_prefix_space"] !== true ? "gpt-2" : null;
  if (pre["type"] !== "Sequence" || !Array.isArray(pre["pretokenizers"])) return null;
  const [split, bl, ...rest] = (pre["pretokenizers"] as unknown[]).map(obj);
  if (rest.length > 0 || split?.["type"] !== "Split" || bl?.["type"] !== "ByteLevel" || bl["use_regex"] !== false || bl["add_prefix_space"] === true) return null;
  return obj(split["pattern"])?.["Regex"] === LLAMA3_REGEX ? "llama-bpe" : null;
}

/**
 * The `tokenizer.ggml.*` metadata of `dir`'s tokenizer.json for a model of `vocabSize` token rows;
 * `tok` is the same directory's loaded tokenizer.
 */
export function ggufVocab(dir: string, vocabSize: number, tok: TextTokenizer): { metadata: GgufMetadata; summary: GgufVocabSummary } {
  const file = path.join(dir, "tokenizer.json");
  const read = readBoundedJson(file, "E_TOKENIZER");
  if (read === null) throw new DeltaEditError("E_TOKENIZER", `${file}: tokenizer.json not found; a GGUF file embeds the tokenizer`, { context: { file } });
  const json = obj(read.value);
  const model = obj(json?.["model"]);
  if (json === null || model === null) throw fail(file, `missing "model" section`, "model");
  if (model["type"] !== "BPE") throw fail(file, `model.type ${brief(model["type"])} cannot be embedded in GGUF (supported: BPE)`, "model.type");
  const vocab = obj(model["vocab"]);
  if (vocab === null) throw fail(file, "model.vocab must be an object token → id", "model.vocab");

  const byteFallback = model["byte_fallback"] === true;
  const decoder = obj(json["decoder"]);
  const normalizer = obj(json["normalizer"]);
  const preTok = obj(json["pre_tokenizer"]);
  let kind: "gpt2" | "llama";
  let pre: string;
  let addSpacePrefix = false;
  if (!byteFallback && decoder?.["type"] === "ByteLevel") {
    kind = "gpt2";
    const p = bytePre(preTok);
    if (p === null || normalizer !== null) {
      throw fail(file, `pre_tokenizer ${brief(json["pre_tokenizer"], 120)}${normalizer !== null ? ` with normalizer ${brief(json["normalizer"])}` : ""} is not one llama.cpp knows by name (supported: GPT-2's ByteLevel regex → "gpt-2", Llama 3's Split regex → "llama-bpe")`, "pre_tokenizer");
    }
    pre = p;
  } else if (byteFallback) {
    kind = "llama";
    pre = "default";
    const n = spmNormalizer(normalizer);
    if (n.ok && preTok === null) addSpacePrefix = n.prepend;
    else if (normalizer === null && preTok?.["type"] === "Metaspace" && preTok["replacement"] === "\u2581") {
      const scheme = preTok["prepend_scheme"];
      addSpacePrefix = scheme === "always" || scheme === "first" || (scheme === undefined && preTok["add_prefix_space"] !== false);
    } else {
      throw fail(file, `a BPE with byte fallback whose normalizer/pre_tokenizer is not sentencepiece's (▁ for spaces): ${brief(json["normalizer"])} / ${brief(json["pre_tokenizer"])}`, "normalizer");
    }
  } else {
    throw fail(file, `neither a byte-level BPE (decoder ByteLevel) nor a sentencepiece-style BPE (byte_fallback): cannot embed it in GGUF`, "model");
  }

  // ids → token text and type
  const V = vocabSize;
  const text: (string | undefined)[] = new Array<string | undefined>(V);
  for (const [t, id] of Object.entries(vocab)) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= V) throw fail(file, `model.vocab[${brief(t, 40)}] = ${brief(id)} is not a token id below vocab_size ${V}`, "model.vocab");
    text[id] = t;
  }
  const types = new Int32Array(V).fill(TOKEN_TYPE.normal);
  const added = Array.isArray(json["added_tokens"]) ? (json["added_tokens"] as unknown[]).map(obj) : [];
  for (const a of added) {
    const id = a?.["id"];
    const content = a?.["content"];
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= V || typeof content !== "string") throw fail(file, `added token ${brief(a)} has no id below vocab_size ${V} or no content`, "added_tokens");
    text[id] = content;
    types[id] = a!["special"] === true ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
  }
  const unk = typeof model["unk_token"] === "string" ? (vocab[model["unk_token"]] as number | undefined) : undefined;
  const tokens: string[] = new Array<string>(V);
  for (let id = 0; id < V; id++) {
    const t = text[id];
    if (t === undefined) {
      tokens[id] = `[PAD${id}]`;
      types[id] = TOKEN_TYPE.unused;
      continue;
    }
    tokens[id] = t;
    if (kind === "llama") {
      if (id === unk) types[id] = TOKEN_TYPE.unknown; // as sentencepiece marks it, even when also an added special token
      else if (types[id] === TOKEN_TYPE.normal && /^<0x[0-9A-Fa-f]{2}>$/.test(t)) types[id] = TOKEN_TYPE.byte;
    }
  }

  // merges: "a b" strings or [a, b] pairs (spaces inside a part written as U+0120, as the converter does)
  const rawMerges = Array.isArray(model["merges"]) ? (model["merges"] as unknown[]) : [];
  const merges: string[] = rawMerges.map((m, i) => {
    if (typeof m === "string") return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
      return m.map((p: string) => p.replace(/ /g, "\u0120")).join(" ");
    }
    throw fail(file, `model.merges[${i}] is ${brief(m)}, expected "a b" or ["a", "b"]`, "model.merges");
  });

  const md: GgufMetadata = [
    ["tokenizer.ggml.model", str(kind)],
    ["tokenizer.ggml.pre", str(pre)],
    ["tokenizer.ggml.tokens", { type: "string[]", value: tokens }],
  ];
  if (kind === "llama") {
    const rank = new Map<string, number>();
    merges.forEach((m, r) => {
      const sp = m.indexOf(" ");
      const joined = m.slice(0, sp) + m.slice(sp + 1);
      if (!rank.has(joined)) rank.set(joined, r);
    });
    const scores = new Float32Array(V);
    for (let id = 0; id < V; id++) {
      if (types[id] !== TOKEN_TYPE.normal) continue;
      const r = rank.get(tokens[id]!);
      // unmergeable multi-character pieces (BPE never produces them) get the lowest scores
      scores[id] = r !== undefined ? -r : [...tokens[id]!].length > 1 ? -(merges.length + id) : 0;
    }
    md.push(["tokenizer.ggml.scores", { type: "f32[]", value: scores }]);
  }
  md.push(["tokenizer.ggml.token_type", { type: "i32[]", value: types }]);
  if (kind === "gpt2") md.push(["tokenizer.ggml.merges", { type: "string[]", value: merges }]);

  const config = obj(readBoundedJson(path.join(dir, "tokenizer_config.json"), "E_TOKENIZER")?.value) ?? {};
  const idOf = (key: string): number | null => {
    const c = tokenContent(config[key]);
    if (c === null) return null;
    const id = tok.tokenToId(c);
    return id !== undefined && id < V ? id : null;
  };
  const special: [string, number | null][] = [
    ["tokenizer.ggml.bos_token_id", tok.bosTokenId],
    ["tokenizer.ggml.eos_token_id", tok.eosTokenId],
    ["tokenizer.ggml.unknown_token_id", kind === "llama" && unk !== undefined ? unk : idOf("unk_token")],
    ["tokenizer.ggml.padding_token_id", idOf("pad_token")],
  ];
  for (const [k, id] of special) if (id !== null) md.push([k, u32(id)]);
  const withSpecial = tok.encode("a");
  const plain = tok.encode("a", { addSpecialTokens: false });
  const addsEos = tok.eosTokenId !== null && withSpecial.length > plain.length && withSpecial[withSpecial.length - 1] === tok.eosTokenId;
  md.push(["tokenizer.ggml.add_bos_token", bool(tok.addsBos)], ["tokenizer.ggml.add_eos_token", bool(addsEos)]);
  if (kind === "llama") md.push(["tokenizer.ggml.add_space_prefix", bool(addSpacePrefix)]);
  if (typeof config["chat_template"] === "string") md.push(["tokenizer.chat_template", str(config["chat_template"])]);
  return { metadata: md, summary: { model: kind, pre, tokens: V, merges: kind === "gpt2" ? merges.length : 0 } };
}
