/**
 * The registry of supported architectures: config family → parameter table, checkpoint
 * tensor-name aliases and the Architecture implementation. An explicit map, no side effects.
 */
import type { ModelConfig } from "../config.js";
import type { GgufArchitecture } from "../gguf/plan.js";
import type { ParamSpec, ParamStore } from "../params.js";
import type { Architecture } from "./architecture.js";
import { Gpt2, gpt2GgufPlan, gpt2ParamSpecs } from "./gpt2.js";
import { Llama, llamaGgufPlan, llamaParamSpecs } from "./llama.js";

export interface ArchitectureEntry {
  paramSpecs(cfg: ModelConfig): ParamSpec[];
  /** Checkpoint names under which a parameter may be stored, in order of preference. */
  checkpointNames(spec: ParamSpec, cfg: ModelConfig): string[];
  /** Parameters that may be absent from a checkpoint, and what to fill them from. */
  tiedTo(spec: ParamSpec, cfg: ModelConfig): string | null;
  /**
   * Checkpoint tensors that are known buffers or redundant copies, not parameters (skipped when
   * loading): GPT-2's causal-mask buffers `h.N.attn.bias` / `h.N.attn.masked_bias`, Llama's
   * `rotary_emb.inv_freq`, and a tied model's `lm_head.weight` copy. Any other tensor the
   * architecture does not use is an error at load.
   */
  isIgnoredTensor(name: string): boolean;
  /** The block a checkpoint tensor belongs to (`h.3.…` / `model.layers.3.…` → 3), or null. */
  blockIndexOf(name: string): number | null;
  /** config.json field holding the number of blocks (for error messages). */
  readonly layersField: string;
  /** How the parameters are laid out in a llama.cpp GGUF file (E_CONFIG naming `configFile` when the model cannot be). */
  ggufPlan(cfg: ModelConfig, configFile?: string): GgufArchitecture;
  create(cfg: ModelConfig, params: ParamStore): Architecture;
}

const gpt2Entry: ArchitectureEntry = {
  paramSpecs: gpt2ParamSpecs,
  // The hub's gpt2 files have no "transformer." prefix; files saved from GPT2LMHeadModel do.
  checkpointNames: (spec) => [spec.name, "transformer." + spec.name],
  tiedTo: () => null,
  isIgnoredTensor: (name) => /(^|\.)h\.\d+\.attn\.(bias|masked_bias)$/.test(name) || name === "lm_head.weight",
  blockIndexOf: (name) => blockIndex(/^(?:transformer\.)?h\.(\d+)\./, name),
  layersField: "n_layer",
  ggufPlan: gpt2GgufPlan,
  create: (cfg, params) => new Gpt2(cfg, params),
};

const llamaEntry: ArchitectureEntry = {
  paramSpecs: llamaParamSpecs,
  checkpointNames: (spec) => [spec.name],
  tiedTo: () => null,
  isIgnoredTensor: (name) => /rotary_emb\.inv_freq$/.test(name) || name === "lm_head.weight",
  blockIndexOf: (name) => blockIndex(/^model\.layers\.(\d+)\./, name),
  layersField: "num_hidden_layers",
  ggufPlan: llamaGgufPlan,
  create: (cfg, params) => new Llama(cfg, params),
};

function blockIndex(re: RegExp, name: string): number | null {
  const m = re.exec(name);
  return m === null ? null : Number(m[1]);
}

export function architectureFor(cfg: ModelConfig): ArchitectureEntry {
  return cfg.family === "gpt2" ? gpt2Entry : llamaEntry;
}
