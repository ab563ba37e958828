"""Write tiny RANDOM Hugging Face-format models under test/fixtures/models/ (reference tooling).

All weights come from seeded numpy RNGs (float32), so reruns produce identical bytes.
Each model reuses the stories260k tokenizer (vocab 512): tokenizer.json and
tokenizer_config.json are copied from test/fixtures/models/stories260k (or /work/shared/models).

Models:
  tiny-llama3-random       llama, GQA 4q/2kv, head_dim 16, hidden 64, 2 layers, ff 96,
                           rope_theta 5e5, rope_scaling llama3 (factor 8, low 1, high 4, orig 16),
                           untied lm_head, F32
  tiny-qwen2-random        qwen2, q/k/v biases, tied embeddings, GQA 4q/2kv, hidden 32, 2 layers, F32
  tiny-mistral-random      mistral, GQA 4q/1kv, hidden 32, untied, F32
  tiny-gpt2-prefixed-bf16  gpt2 (n_embd 32, 4 heads, 2 layers, vocab 512), names prefixed
                           "transformer.", BF16, explicit lm_head.weight == wte.weight
  tiny-llama-sharded-f16   llama, MHA 4 heads, hidden 32, untied, rope_scaling linear (factor 2),
                           F16, two shards + model.safetensors.index.json
"""
import json
import os
import shutil
import sys

sys.dont_write_bytecode = True  # keep tools/reference free of __pycache__

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from safetensors_np import write_safetensors  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MODELS = os.path.join(ROOT, "test", "fixtures", "models")
TOK_SRC_CANDIDATES = [os.path.join(MODELS, "stories260k"), "/work/shared/models/stories260k"]

VOCAB = 512
STD = 0.05


class Gen:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def normal(self, shape, std=STD):
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    def norm_weight(self, n):
        return (1.0 + self.rng.standard_normal(n) * 0.1).astype(np.float32)


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2) + "\n")


def prepare_dir(name):
    d = os.path.join(MODELS, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    src = next(p for p in TOK_SRC_CANDIDATES if os.path.exists(os.path.join(p, "tokenizer.json")))
    for fn in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(src, fn), os.path.join(d, fn))
    write_json(os.path.join(d, "generation_config.json"), {"bos_token_id": 1, "eos_token_id": 2})
    return d


def llama_weights(g, cfg, qkv_bias=False, untied=True):
    C = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    KV = cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or C // H
    F = cfg["intermediate_size"]
    V = cfg["vocab_size"]
    w = {"model.embed_tokens.weight": g.normal((V, C), 0.1)}
    for l in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % l
        w[p + "input_layernorm.weight"] = g.norm_weight(C)
        w[p + "self_attn.q_proj.weight"] = g.normal((H * D, C), 0.12)
        w[p + "self_attn.k_proj.weight"] = g.normal((KV * D, C), 0.12)
        w[p + "self_attn.v_proj.weight"] = g.normal((KV * D, C))
        if qkv_bias:
            w[p + "self_attn.q_proj.bias"] = g.normal((H * D,), 0.1)
            w[p + "self_attn.k_proj.bias"] = g.normal((KV * D,), 0.1)
            w[p + "self_attn.v_proj.bias"] = g.normal((KV * D,), 0.1)
        w[p + "self_attn.o_proj.weight"] = g.normal((C, H * D))
        w[p + "post_attention_layernorm.weight"] = g.norm_weight(C)
        w[p + "mlp.gate_proj.weight"] = g.normal((F, C))
        w[p + "mlp.up_proj.weight"] = g.normal((F, C))
        w[p + "mlp.down_proj.weight"] = g.normal((C, F))
    w["model.norm.weight"] = g.norm_weight(C)
    if untied:
        w["lm_head.weight"] = g.normal((V, C), 0.1)
    return w


def llama_config(model_type, arch, **kw):
    cfg = {
        "architectures": [arch],
        "model_type": model_type,
        "vocab_size": VOCAB,
        "hidden_act": "silu",
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-5,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float32",
        "use_cache": True,
    }
    cfg.update(kw)
    return cfg


def make_llama3():
    d = prepare_dir("tiny-llama3-random")
    cfg = llama_config(
        "llama", "LlamaForCausalLM",
        hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        rope_theta=500000.0,
        rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 16, "rope_type": "llama3"},
        attention_bias=False, mlp_bias=False, tie_word_embeddings=False)
    write_json(os.path.join(d, "config.json"), cfg)
    w = llama_weights(Gen(1001), cfg, untied=True)
    write_safetensors(os.path.join(d, "model.safetensors"), w, "F32")


def make_qwen2():
    d = prepare_dir("tiny-qwen2-random")
    cfg = llama_config(
        "qwen2", "Qwen2ForCausalLM",
        hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2,
        rope_theta=1000000.0, rope_scaling=None, rms_norm_eps=1e-6,
        use_sliding_window=False, sliding_window=32768, max_window_layers=2,
        tie_word_embeddings=True)
    write_json(os.path.join(d, "config.json"), cfg)
    w = llama_weights(Gen(1002), cfg, qkv_bias=True, untied=False)
    write_safetensors(os.path.join(d, "model.safetensors"), w, "F32")


def make_mistral():
    d = prepare_dir("tiny-mistral-random")
    cfg = llama_config(
        "mistral", "MistralForCausalLM",
        hidden_size=32, intermediate_size=80, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, head_dim=8,
        rope_theta=10000.0, sliding_window=4096, tie_word_embeddings=False)
    write_json(os.path.join(d, "config.json"), cfg)
    w = llama_weights(Gen(1003), cfg, untied=True)
    write_safetensors(os.path.join(d, "model.safetensors"), w, "F32")


def make_gpt2_bf16():
    d = prepare_dir("tiny-gpt2-prefixed-bf16")
    C, L, H, NP = 32, 2, 4, 64
    cfg = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "activation_function": "gelu_new",
        "vocab_size": VOCAB,
        "n_embd": C,
        "n_head": H,
        "n_layer": L,
        "n_positions": NP,
        "n_ctx": NP,
        "n_inner": None,
        "layer_norm_epsilon": 1e-5,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": True,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "bfloat16",
    }
    write_json(os.path.join(d, "config.json"), cfg)
    g = Gen(1004)
    w = {}
    w["transformer.wte.weight"] = g.normal((VOCAB, C), 0.1)
    w["transformer.wpe.weight"] = g.normal((NP, C), 0.05)
    for l in range(L):
        p = "transformer.h.%d." % l
        w[p + "ln_1.weight"] = g.norm_weight(C)
        w[p + "ln_1.bias"] = g.normal((C,), 0.02)
        w[p + "attn.c_attn.weight"] = np.concatenate(
            [g.normal((C, C), 0.12), g.normal((C, C), 0.12), g.normal((C, C))], axis=1)
        w[p + "attn.c_attn.bias"] = g.normal((3 * C,), 0.02)
        w[p + "attn.c_proj.weight"] = g.normal((C, C))
        w[p + "attn.c_proj.bias"] = g.normal((C,), 0.02)
        w[p + "ln_2.weight"] = g.norm_weight(C)
        w[p + "ln_2.bias"] = g.normal((C,), 0.02)
        w[p + "mlp.c_fc.weight"] = g.normal((C, 4 * C))
        w[p + "mlp.c_fc.bias"] = g.normal((4 * C,), 0.02)
        w[p + "mlp.c_proj.weight"] = g.normal((4 * C, C))
        w[p + "mlp.c_proj.bias"] = g.normal((C,), 0.02)
    w["transformer.ln_f.weight"] = g.norm_weight(C)
    w["transformer.ln_f.bias"] = g.normal((C,), 0.02)
    w["lm_head.weight"] = w["transformer.wte.weight"].copy()
    write_safetensors(os.path.join(d, "model.safetensors"), w, "BF16")


def make_llama_sharded_f16():
    d = prepare_dir("tiny-llama-sharded-f16")
    cfg = llama_config(
        "llama", "LlamaForCausalLM",
        hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4,
        rope_theta=10000.0, rope_scaling={"type": "linear", "factor": 2.0},
        attention_bias=False, mlp_bias=False, tie_word_embeddings=False,
        torch_dtype="float16")
    write_json(os.path.join(d, "config.json"), cfg)
    w = llama_weights(Gen(1005), cfg, untied=True)
    # shard 1: embeddings + layer 0; shard 2: layer 1 + norm + lm_head
    s1 = {k: v for k, v in w.items() if k.startswith("model.embed_tokens") or k.startswith("model.layers.0.")}
    s2 = {k: v for k, v in w.items() if k not in s1}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    weight_map = {}
    total = 0
    for fn, part in zip(names, (s1, s2)):
        write_safetensors(os.path.join(d, fn), part, "F16")
        for k, v in part.items():
            weight_map[k] = fn
            total += v.size * 2
    write_json(os.path.join(d, "model.safetensors.index.json"),
               {"metadata": {"total_size": int(total)},
                "weight_map": {k: weight_map[k] for k in sorted(weight_map)}})


def main():
    make_llama3()
    make_qwen2()
    make_mistral()
    make_gpt2_bf16()
    make_llama_sharded_f16()
    for name in ("tiny-llama3-random", "tiny-qwen2-random", "tiny-mistral-random",
                 "tiny-gpt2-prefixed-bf16", "tiny-llama-sharded-f16"):
        d = os.path.join(MODELS, name)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        print("%-26s %7.1f KB" % (name, size / 1024.0))


if __name__ == "__main__":
    main()
