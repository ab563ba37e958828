/** Tiny random model configs for gradient and invariant tests. */
import { parseModelConfig, type ModelConfig } from "../../src/model/config.js";
import { LanguageModel } from "../../src/model/model.js";

export function tinyGpt2Config(): ModelConfig {
  return parseModelConfig({ model_type: "gpt2", vocab_size: 37, n_embd: 16, n_layer: 3, n_head: 4, n_positions: 32, layer_norm_epsilon: 1e-5, activation_function: "gelu_new" }, "tiny-gpt2 test config");
}

export function tinyLlamaConfig(opts: { bias?: boolean; tied?: boolean; kvHeads?: number } = {}): ModelConfig {
  return parseModelConfig(
    {
      model_type: opts.bias ? "qwen2" : "llama",
      vocab_size: 41,
      hidden_size: 16,
      intermediate_size: 24,
      num_hidden_layers: 3,
      num_attention_heads: 4,
      num_key_value_heads: opts.kvHeads ?? 2,
      max_position_embeddings: 32,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      hidden_act: "silu",
      tie_word_embeddings: opts.tied ?? false,
      attention_bias: opts.bias ?? false,
    },
    "tiny-llama test config",
  );
}

/** Random model with weights large enough that every nonlinearity matters. */
export function tinyModel(cfg: ModelConfig, seed = 1): LanguageModel {
  const m = LanguageModel.random(cfg, seed, 0.3);
  // non-trivial norm weights and biases, so their gradients are exercised
  for (const s of m.params.specs) {
    if (s.role === "norm_weight" || s.role === "norm_bias" || s.role === "linear_bias") {
      const d = m.params.get(s.name);
      for (let i = 0; i < d.length; i++) d[i] = (s.role === "norm_weight" ? 1 : 0) + 0.1 * Math.sin(1.7 * i + s.name.length);
    }
  }
  return m;
}
