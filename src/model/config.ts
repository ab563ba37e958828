/**
 * config.json → typed ModelConfig.
 *
 * Two families are supported: GPT-2 (`model_type: "gpt2"`) and the Llama family (`llama`,
 * `mistral`, `qwen2`: RMSNorm, RoPE, GQA, SwiGLU). Fields are read under their Hugging Face
 * names; a missing required field or an unsupported value is a DeltaEditError("E_CONFIG") naming
 * the field and the source file.
 *
 * Sliding-window attention (mistral/qwen2 `sliding_window`) is only recorded: the forward pass
 * uses full causal attention, which is identical for sequences no longer than the window (every
 * sequence this toolkit runs for editing is far shorter than the windows of released models).
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../errors.js";

export type Family = "gpt2" | "llama";

export type RopeScaling =
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: "linear"; factor: number };

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

  int(key: string, fallback?: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw configError(this.source, `missing required field "${key}"`, key);
    }
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      throw configError(this.source, `field "${key}" must be a positive integer, got ${JSON.stringify(v)}`, key);
    }
    return v;
  }

  num(key: string, fallback?: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw configError(this.source, `missing required field "${key}"`, key);
    }
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw configError(this.source, `field "${key}" must be a positive number, got ${JSON.stringify(v)}`, key);
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") throw configError(this.source, `field "${key}" must be true or false, got ${JSON.stringify(v)}`, key);
    return v;
  }

  str(key: string, fallback?: string): string {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw configError(this.source, `missing required field "${key}"`, key);
    }
    if (typeof v !== "string") throw configError(this.source, `field "${key}" must be a string, got ${JSON.stringify(v)}`, key);
    return v;
  }

  /** A token id or list of token ids (eos may be a list); null/absent → []. */
  tokenIds(key: string): number[] {
    const v = this.raw[key];
    if (v === undefined || v === null) return [];
    const list = Array.isArray(v) ? v : [v];
    for (const id of list) {
      if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) {
        throw configError(this.source, `field "${key}" must be a token id or a list of token ids, got ${JSON.stringify(v)}`, key);
      }
    }
    return list as number[];
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
  const hiddenSize = f.int("n_embd");
  const numHeads = f.int("n_head");
  if (hiddenSize % numHeads !== 0) throw configError(f.source, `n_embd (${hiddenSize}) is not divisible by n_head (${numHeads})`, "n_head");
  const act = f.str("activation_function", "gelu_new");
  if (act !== "gelu_new" && act !== "gelu_pytorch_tanh") {
    throw configError(f.source, `activation_function "${act}" is not supported for gpt2 (supported: gelu_new, gelu_pytorch_tanh)`, "activation_function");
  }
  return {
    family: "gpt2",
    modelType: "gpt2",
    vocabSize: f.int("vocab_size"),
    hiddenSize,
    numLayers: f.int("n_layer"),
    numHeads,
    numKvHeads: numHeads,
    headSize: hiddenSize / numHeads,
    intermediateSize: f.int("n_inner", 4 * hiddenSize),
    maxPositions: f.int("n_positions"),
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
  const hiddenSize = f.int("hidden_size");
  const numHeads = f.int("num_attention_heads");
  const numKvHeads = f.int("num_key_value_heads", numHeads);
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
  return {
    family: "llama",
    modelType,
    vocabSize: f.int("vocab_size"),
    hiddenSize,
    numLayers: f.int("num_hidden_layers"),
    numHeads,
    numKvHeads,
    headSize: f.int("head_dim", hiddenSize / numHeads),
    intermediateSize: f.int("intermediate_size"),
    maxPositions: f.int("max_position_embeddings"),
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
  if (typeof v !== "object" || Array.isArray(v)) throw configError(source, `field "rope_scaling" must be an object or null, got ${JSON.stringify(v)}`, "rope_scaling");
  const r = v as Record<string, unknown>;
  const type = r["rope_type"] ?? r["type"];
  const f = new Fields(r, `${source} rope_scaling`);
  if (type === "llama3") {
    return {
      type: "llama3",
      factor: f.num("factor"),
      lowFreqFactor: f.num("low_freq_factor"),
      highFreqFactor: f.num("high_freq_factor"),
      originalMaxPositions: f.int("original_max_position_embeddings"),
    };
  }
  if (type === "linear") return { type: "linear", factor: f.num("factor") };
  if (type === "default") return null;
  throw configError(source, `rope_scaling type ${JSON.stringify(type)} is not supported (supported: llama3, linear, or null)`, "rope_scaling");
}

/** Reads and parses `<dir>/config.json`. */
export function readModelConfig(dir: string): ModelConfig {
  const file = path.join(dir, "config.json");
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      throw new DeltaEditError("E_NOT_FOUND", `${file}: config.json not found`, {
        cause: e,
        hint: "pass a Hugging Face model directory (config.json, model.safetensors, tokenizer.json) or a Hub repo id such as gpt2-xl",
        context: { file },
      });
    }
    throw new DeltaEditError("E_CONFIG", `${file}: cannot read (${(e as Error).message})`, { cause: e, context: { file } });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw configError(file, `not valid JSON (${(e as Error).message})`);
  }
  return parseModelConfig(json, file);
}
