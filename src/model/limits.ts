/**
 * Size limits of the model-loading layer, in one place. Every input read from a model directory
 * (config.json, tokenizer.json, safetensors headers, the Hub's answers) is checked against these
 * before anything is allocated for it or walked over it, so a hostile or corrupt file fails with a
 * DeltaEditError("E_LIMIT") naming the file and the field instead of crashing, hanging or taking
 * gigabytes. The defaults are far above every released model this toolkit supports
 * (docs/runtime.md, "Input limits", has the table).
 */
import { DeltaEditError } from "../errors.js";

export const LIMITS = Object.freeze({
  /**
   * max_position_embeddings / n_positions / n_ctx. 2^20 = 1 048 576 (Llama 3.1: 131 072).
   * RoPE tables are built lazily for the positions actually used, never for this length.
   */
  maxPositions: 1_048_576,
  /** vocab_size and every token id in tokenizer.json / config.json: ids must be < 2^24 = 16 777 216. */
  maxVocab: 16_777_216,
  /** hidden_size / n_embd, intermediate_size / n_inner, head_dim: each ≤ 2^20. */
  maxWidth: 1_048_576,
  /** num_attention_heads / n_head and num_key_value_heads: each ≤ 4096. */
  maxHeads: 4096,
  /** num_hidden_layers / n_layer ≤ 1024 (Llama 3.1 405B has 126). */
  maxLayers: 1024,
  /**
   * Elements in one tensor: 2^31 − 1. The native kernels take element counts and BLAS dimensions
   * as 32-bit ints (native/check.h GetInt, cblas `int`), so no single tensor may exceed this.
   * Applies to safetensors shapes and to the parameter shapes a config implies (V·C, C·F, …).
   */
  maxTensorElements: 2_147_483_647,
  /** Length N of a safetensors JSON header: 100 000 000 bytes (the Rust reference's limit). */
  maxSafetensorsHeaderBytes: 100_000_000,
  /** config.json, tokenizer.json, tokenizer_config.json, generation_config.json, the shard index: 64 MiB each. */
  maxJsonFileBytes: 64 * 1024 * 1024,
  /** Nesting depth of every JSON document read (arrays + objects): 64. */
  maxJsonDepth: 64,
});

export type LimitName = keyof typeof LIMITS;

/**
 * An E_LIMIT error: `${where}: ${what} = ${value} exceeds the limit of ${limit} (LIMITS.${name})`.
 * `where` names the file (and tensor / field) at fault.
 */
export function limitError(where: string, what: string, value: number | bigint | string, name: LimitName, context: Record<string, unknown> = {}): DeltaEditError {
  const limit = LIMITS[name];
  return new DeltaEditError("E_LIMIT", `${where}: ${what} = ${String(value)} exceeds the limit of ${limit} (LIMITS.${name})`, {
    hint: "deltaedit bounds every size it reads from a model directory (src/model/limits.ts, docs/runtime.md); the file is corrupt or not a supported model",
    context: { ...context, limit: name, value: typeof value === "bigint" ? value.toString() : value },
  });
}
