/**
 * config.json → typed ModelConfig.
 *
 * Two families are supported: GPT-2 (`model_type: "gpt2"`) and the Llama family (`llama`,
 * `mistral`, `qwen2`: RMSNorm, RoPE, GQA, SwiGLU). Fields are read under their Hugging Face
 * names; a missing required field or an unsupported value is a DeltaEditError("E_CONFIG") naming
 * the field and the source file. Every dimension is bounded (`limits.ts`: positions, vocabulary, widths,
 * heads, layers) and so is every parameter tensor the dimensions imply (V·C, C·F, NH·HS·C, P·C):
 * a value beyond a limit is DeltaEditError("E_LIMIT") naming the file and the field.
 *
 * Sliding-window attention (mistral/qwen2 `sliding_window`) is only recorded: the forward pass
 * uses full causal attention, which is identical for sequences no longer than the window (every
 * sequence this toolkit runs for editing is far shorter than the windows of released models).
 */
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import { brief, readBoundedJson } from "./boundedjson.js";
import { LIMITS, limitError, type LimitName } from "./limits.js";

/** Architecture family: GPT-2 blocks or Llama-style blocks (Llama, Mistral, Qwen2). */
export type Family = "gpt2" | "llama";

/** RoPE frequency scaling from config.json `rope_scaling` (Llama 3 or linear). */
export type RopeScaling =
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: "linear"; factor: number };

/** The fields of config.json deltaedit uses, normalised across model families. */
export interface ModelConfig {
  family: Family;
  /** config.json `model_type`: gpt2 | llama | mistral | qwen2 */
  modelType: string;
  vocabSize: number; // V
  hiddenSize: number; // C
  numLayers: number; // L
  numHeads: number; // NH
  numKvHeads: number; // NKV (GPT-2: = NH)
  headSize: number; // HS
  intermediateSize: number; // MLP hidden width
  maxPositions: number;
  /** LayerNorm epsilon (GPT-2) or RMSNorm epsilon (Llama family). */
  normEps: number;
  activation: "gelu_new" | "silu";
  /** RoPE base; 0 for GPT-2 (learned absolute positions). */
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** q/k/v projections carry biases. */
  attentionBias: boolean;
  /** MLP projections (and the attention output projection, for llama's `mlp_bias`) carry biases. */
  mlpBias: boolean;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  /** First of `eosTokenIds`, or null. */
  eosTokenId: number | null;
  eosTokenIds: number[];
  /** Recorded only; attention is full causal (exact for sequences shorter than the window). */
  slidingWindow: number | null;
  raw: Record<string, unknown>;
}

const SUPPORTED_MODEL_TYPES = ["gpt2", "llama", "mistral", "qwen2"] as const;

function configError(source: string, msg: string, field?: string): DeltaEditError {
  return new DeltaEditError("E_CONFIG", `${source}: ${msg}`, { context: { file: source, ...(field === undefined ? {} : { field }) } });
}

/** Typed field readers bound to one config object and its source name. */
class Fields {
  constructor(
    private readonly raw: Record<string, unknown>,
    readonly source: string,
  ) {}

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  /** A positive integer; with `limit`, at most LIMITS[limit] (E_LIMIT naming the field otherwise). */
  int(key: string, fallback?: number, limit?: LimitName): number {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw configError(this.source, `missing required field "${key}"`, key);
    }
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      throw configError(this.source, `field "${key}" must be a positive integer, got ${brief(v)}`, key);
    }
    if (limit !== undefined) within(this.source, key, v, limit);
    return v;
  }

  num(key: string, fallback?: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw configError(this.source, `missing required field "${key}"`, key);
    }
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw configError(this.source, `field "${key}" must be a positive number, got ${brief(v)}`, key);
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") throw configError(this.source, `field "${key}" must be true or false, got ${brief(v)}`, key);
    return v;
  }

  str(key: string, fallback?: string): string {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw configError(this.source, `missing required field "${key}"`, key);
    }
    if (typeof v !== "string") throw configError(this.source, `field "${key}" must be a string, got ${brief(v)}`, key);
    return v;
  }

  /** A token id or list of token ids (eos may be a list), each < LIMITS.maxVocab; null/absent → []. */
  tokenIds(key: string): number[] {
    const v = this.raw[key];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    for (const id of list) {
      if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) {
        throw configError(this.source, `field "${key}" must be a token id or a list of token ids, got ${brief(v)}`, key);
      }
      if (id >= LIMITS.maxVocab) throw limitError(this.source, `field "${key}": token id`, id, "maxVocab", { file: this.source, field: key });
    }
    return list as number[];
  }
}

/** E_LIMIT naming `field` of `source` when `value` > LIMITS[limit]. */
function within(source: string, field: string, value: number, limit: LimitName): void {
  if (value > LIMITS[limit]) throw limitError(source, `field "${field}"`, value, limit, { file: source, field });
}

/**
 * Bounds the element count of each parameter tensor the config implies: `[what, elements, field]`,
 * `field` being the one named in the error (the factor most likely at fault).
 */
function checkTensorSizes(source: string, tensors: readonly [string, number, string][]): void {
  for (const [what, elements, field] of tensors) {
    if (elements > LIMITS.maxTensorElements) {
      throw limitError(source, `${what} (elements of one parameter tensor)`, elements, "maxTensorElements", { file: source, field });
    }
  }
}

/** Parses a config.json object. `source` names the file in error messages. */
export function parseModelConfig(json: unknown, source: string): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw configError(source, `expected a JSON object, got ${Array.isArray(json) ? "array" : json === null ? "null" : typeof json}`);
  }
  const raw = json as Record<string, unknown>;
  const f = new Fields(raw, source);
  const modelType = raw["model_type"];
  if (typeof modelType !== "string") {
    throw configError(source, `missing required field "model_type" (supported: ${SUPPORTED_MODEL_TYPES.join(", ")})`, "model_type");
  }
  if (modelType === "gpt2") return parseGpt2(f, raw);
  if (modelType === "llama" || modelType === "mistral" || modelType === "qwen2") return parseLlamaFamily(f, raw, modelType, source);
  throw configError(source, `unsupported model_type "${modelType}" in ${source}; supported: ${SUPPORTED_MODEL_TYPES.join(", ")}`, "model_type");
}

function tokenIdsOf(f: Fields): Pick<ModelConfig, "bosTokenId" | "eosTokenId" | "eosTokenIds"> {
  const bos = f.tokenIds("bos_token_id");
  const eos = f.tokenIds("eos_token_id");
  return { bosTokenId: bos[0] ?? null, eosTokenId: eos[0] ?? null, eosTokenIds: eos };
}

function parseGpt2(f: Fields, raw: Record<string, unknown>): ModelConfig {
  const hiddenSize = f.int("n_embd", undefined, "maxWidth");
  const numHeads = f.int("n_head", undefined, "maxHeads");
  if (hiddenSize % numHeads !== 0) throw configError(f.source, `n_embd (${hiddenSize}) is not divisible by n_head (${numHeads})`, "n_head");
  const act = f.str("activation_function", "gelu_new");
  if (act !== "gelu_new" && act !== "gelu_pytorch_tanh") {
    throw configError(f.source, `activation_function "${act}" is not supported for gpt2 (supported: gelu_new, gelu_pytorch_tanh)`, "activation_function");
  }
  const vocabSize = f.int("vocab_size", undefined, "maxVocab");
  const numLayers = f.int("n_layer", undefined, "maxLayers");
  const maxPositions = f.int("n_positions", undefined, "maxPositions");
  if (f.has("n_ctx")) f.int("n_ctx", undefined, "maxPositions"); // legacy alias of n_positions: bounded, not used
  const intermediateSize = f.int("n_inner", 4 * hiddenSize, "maxWidth");
  if (!f.has("n_inner")) within(f.source, "n_inner (default 4·n_embd)", intermediateSize, "maxWidth");
  checkTensorSizes(f.source, [
    ["vocab_size × n_embd (wte)", vocabSize * hiddenSize, "vocab_size"],
    ["n_positions × n_embd (wpe)", maxPositions * hiddenSize, "n_positions"],
    ["n_embd × 3·n_embd (attn.c_attn)", hiddenSize * 3 * hiddenSize, "n_embd"],
    ["n_embd × n_inner (mlp.c_fc)", hiddenSize * intermediateSize, "n_inner"],
  ]);
  return {
    family: "gpt2",
    modelType: "gpt2",
    vocabSize,
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads: numHeads,
    headSize: hiddenSize / numHeads,
    intermediateSize,
    maxPositions,
    normEps: f.num("layer_norm_epsilon"),
    activation: "gelu_new",
    ropeTheta: 0,
    ropeScaling: null,
    attentionBias: true,
    mlpBias: true,
    tieWordEmbeddings: f.bool("tie_word_embeddings", true),
    ...tokenIdsOf(f),
    slidingWindow: null,
    raw,
  };
}

function parseLlamaFamily(f: Fields, raw: Record<string, unknown>, modelType: string, source: string): ModelConfig {
  const hiddenSize = f.int("hidden_size", undefined, "maxWidth");
  const numHeads = f.int("num_attention_heads", undefined, "maxHeads");
  const numKvHeads = f.int("num_key_value_heads", numHeads, "maxHeads");
  if (numHeads % numKvHeads !== 0) {
    throw configError(source, `num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`, "num_key_value_heads");
  }
  if (!f.has("head_dim") && hiddenSize % numHeads !== 0) {
    throw configError(source, `hidden_size (${hiddenSize}) is not divisible by num_attention_heads (${numHeads}) and head_dim is not given`, "head_dim");
  }
  const act = f.str("hidden_act");
  if (act !== "silu") throw configError(source, `hidden_act "${act}" is not supported for ${modelType} (supported: silu)`, "hidden_act");
  // Sliding window: mistral/qwen2 record it; qwen2 only applies it when use_sliding_window is true.
  let slidingWindow: number | null = null;
  if ((modelType === "mistral" || modelType === "qwen2") && f.has("sliding_window")) {
    const active = modelType === "qwen2" ? f.bool("use_sliding_window", false) : true;
    if (active) slidingWindow = f.int("sliding_window");
  }
  const vocabSize = f.int("vocab_size", undefined, "maxVocab");
  const numLayers = f.int("num_hidden_layers", undefined, "maxLayers");
  const headSize = f.int("head_dim", hiddenSize / numHeads, "maxWidth");
  const intermediateSize = f.int("intermediate_size", undefined, "maxWidth");
  const maxPositions = f.int("max_position_embeddings", undefined, "maxPositions");
  checkTensorSizes(source, [
    ["vocab_size × hidden_size (embed_tokens, lm_head)", vocabSize * hiddenSize, "vocab_size"],
    ["num_attention_heads × head_dim × hidden_size (q_proj, o_proj)", numHeads * headSize * hiddenSize, "head_dim"],
    ["intermediate_size × hidden_size (gate/up/down_proj)", intermediateSize * hiddenSize, "intermediate_size"],
  ]);
  return {
    family: "llama",
    modelType,
    vocabSize,
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headSize,
    intermediateSize,
    maxPositions,
    normEps: f.num("rms_norm_eps"),
    activation: "silu",
    ropeTheta: f.num("rope_theta", 10000),
    ropeScaling: parseRopeScaling(raw["rope_scaling"], source),
    attentionBias: modelType === "qwen2" ? true : f.bool("attention_bias", false),
    mlpBias: f.bool("mlp_bias", false),
    tieWordEmbeddings: f.bool("tie_word_embeddings", false),
    ...tokenIdsOf(f),
    slidingWindow,
    raw,
  };
}

function parseRopeScaling(v: unknown, source: string): RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "object" || Array.isArray(v)) throw configError(source, `field "rope_scaling" must be an object or null, got ${brief(v)}`, "rope_scaling");
  const r = v as Record<string, unknown>;
  const type = r["rope_type"] ?? r["type"];
  const f = new Fields(r, `${source} rope_scaling`);
  if (type === "llama3") {
    return {
      type: "llama3",
      factor: f.num("factor"),
      lowFreqFactor: f.num("low_freq_factor"),
      highFreqFactor: f.num("high_freq_factor"),
      originalMaxPositions: f.int("original_max_position_embeddings", undefined, "maxPositions"),
    };
  }
  if (type === "linear") return { type: "linear", factor: f.num("factor") };
  if (type === "default") return null;
  throw configError(source, `rope_scaling type ${brief(type)} is not supported (supported: llama3, linear, or null)`, "rope_scaling");
}

/** Reads and parses `<dir>/config.json` (bounded size and nesting depth, see `boundedjson.ts`). */
export function readModelConfig(dir: string): ModelConfig {
  const file = path.join(dir, "config.json");
  const read = readBoundedJson(file, "E_CONFIG");
  if (read === null) {
    throw new DeltaEditError("E_NOT_FOUND", `${file}: config.json not found`, {
      hint: "pass a Hugging Face model directory (config.json, model.safetensors, tokenizer.json) or a Hub repo id such as gpt2-xl",
      context: { file },
    });
  }
  return parseModelConfig(read.value, file);
}
