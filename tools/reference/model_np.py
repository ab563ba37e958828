"""Float64 numpy reference forward pass for GPT-2 and Llama-family HF checkpoints.

Reference tooling only (not shipped). Written from the Hugging Face model
definitions' math, sharing no code with the TypeScript runtime.

  load_model(dir)                   -> RefModel
  model.forward(ids, taps=False)    -> logits [T, V] float64 (and taps dict)
  model.greedy(ids, n)              -> n greedy ids, full recomputation each step (no KV cache)

Taps (taps=True): {"embeddings": [T, C], "block_out": [L x [T, C]], "mlp_down_in": [L x [T, d_ff]]}
  block_out[l]   = residual stream after block l (before the final norm)
  mlp_down_in[l] = input of the MLP down projection in block l
                   (GPT-2: gelu_new(c_fc(ln_2(x))), Llama: silu(gate(x')) * up(x'))
"""
import json
import math
import os

import numpy as np

from safetensors_np import load_model_dir

LLAMA_TYPES = ("llama", "mistral", "qwen2")


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1.0 + np.exp(-x))


def causal_attention(q, k, v):
    """q: [H, T, D], k/v: [H, T, D] (already expanded for GQA). Returns [H, T, D]."""
    T = q.shape[1]
    D = q.shape[2]
    s = np.matmul(q, k.transpose(0, 2, 1)) / math.sqrt(D)
    mask = np.triu(np.ones((T, T), dtype=bool), k=1)
    s = np.where(mask[None], -np.inf, s)
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    p = p / p.sum(-1, keepdims=True)
    return np.matmul(p, v)


def rope_inv_freq(cfg, head_dim):
    theta = float(cfg.get("rope_theta", 10000.0))
    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    pos_scale = 1.0
    rs = cfg.get("rope_scaling")
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind in (None, "default"):
            pass
        elif kind == "linear":
            pos_scale = 1.0 / float(rs["factor"])
        elif kind == "llama3":
            factor = float(rs["factor"])
            low = float(rs["low_freq_factor"])
            high = float(rs["high_freq_factor"])
            orig = float(rs["original_max_position_embeddings"])
            low_wl = orig / low
            high_wl = orig / high
            wl = 2.0 * math.pi / inv
            out = np.where(wl > low_wl, inv / factor, inv)
            smooth = (orig / wl - low) / (high - low)
            smoothed = (1.0 - smooth) * out / factor + smooth * out
            medium = (wl >= high_wl) & (wl <= low_wl)
            inv = np.where(medium, smoothed, out)
        else:
            raise ValueError("unsupported rope_scaling type %r" % kind)
    return inv, pos_scale


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


class GPT2Ref:
    def __init__(self, cfg, w):
        self.cfg = cfg
        w = {(k[len("transformer."):] if k.startswith("transformer.") else k): _f64(v) for k, v in w.items()}
        self.w = w
        self.C = cfg["n_embd"]
        self.H = cfg["n_head"]
        self.L = cfg["n_layer"]
        self.eps = float(cfg.get("layer_norm_epsilon", 1e-5))
        self.V = w["wte.weight"].shape[0]
        self.lm_head = w["lm_head.weight"] if "lm_head.weight" in w else w["wte.weight"]
        act = cfg.get("activation_function", "gelu_new")
        if act not in ("gelu_new",):
            raise ValueError("unsupported activation %s" % act)
        self.d_ff = w["h.0.mlp.c_fc.weight"].shape[1]

    def forward(self, ids, taps=False):
        w = self.w
        ids = np.asarray(ids, dtype=np.int64)
        T = len(ids)
        C, H = self.C, self.H
        D = C // H
        x = w["wte.weight"][ids] + w["wpe.weight"][np.arange(T)]
        tp = {"embeddings": x.copy(), "block_out": [], "mlp_down_in": []}
        for l in range(self.L):
            p = "h.%d." % l
            a = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], self.eps)
            qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]
            q, k, v = qkv[:, :C], qkv[:, C:2 * C], qkv[:, 2 * C:]
            q = q.reshape(T, H, D).transpose(1, 0, 2)
            k = k.reshape(T, H, D).transpose(1, 0, 2)
            v = v.reshape(T, H, D).transpose(1, 0, 2)
            o = causal_attention(q, k, v).transpose(1, 0, 2).reshape(T, C)
            x = x + o @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
            m = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], self.eps)
            hmid = gelu_new(m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
            tp["mlp_down_in"].append(hmid)
            x = x + hmid @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
            tp["block_out"].append(x.copy())
        x = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], self.eps)
        logits = x @ self.lm_head.T
        return (logits, tp) if taps else logits


class LlamaRef:
    def __init__(self, cfg, w):
        self.cfg = cfg
        w = {k: _f64(v) for k, v in w.items()}
        self.w = w
        self.C = cfg["hidden_size"]
        self.H = cfg["num_attention_heads"]
        self.KV = cfg.get("num_key_value_heads") or self.H
        self.L = cfg["num_hidden_layers"]
        self.D = cfg.get("head_dim") or self.C // self.H
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        act = cfg.get("hidden_act", "silu")
        if act != "silu":
            raise ValueError("unsupported hidden_act %s" % act)
        # HF semantics: tie_word_embeddings (default true) -> lm_head shares embed_tokens.
        if cfg.get("tie_word_embeddings", True) or "lm_head.weight" not in w:
            self.lm_head = w["model.embed_tokens.weight"]
        else:
            self.lm_head = w["lm_head.weight"]
        self.V = self.lm_head.shape[0]
        self.inv_freq, self.pos_scale = rope_inv_freq(cfg, self.D)
        self.d_ff = w["model.layers.0.mlp.gate_proj.weight"].shape[0]

    def _lin(self, x, name):
        y = x @ self.w[name + ".weight"].T
        b = self.w.get(name + ".bias")
        return y if b is None else y + b

    def forward(self, ids, taps=False):
        w = self.w
        ids = np.asarray(ids, dtype=np.int64)
        T = len(ids)
        H, KV, D = self.H, self.KV, self.D
        pos = np.arange(T, dtype=np.float64) * self.pos_scale
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = np.concatenate([freqs, freqs], axis=-1)
        cos, sin = np.cos(emb), np.sin(emb)  # [T, D]
        x = w["model.embed_tokens.weight"][ids].copy()
        tp = {"embeddings": x.copy(), "block_out": [], "mlp_down_in": []}
        group = H // KV
        for l in range(self.L):
            p = "model.layers.%d." % l
            a = rms_norm(x, w[p + "input_layernorm.weight"], self.eps)
            q = self._lin(a, p + "self_attn.q_proj").reshape(T, H, D).transpose(1, 0, 2)
            k = self._lin(a, p + "self_attn.k_proj").reshape(T, KV, D).transpose(1, 0, 2)
            v = self._lin(a, p + "self_attn.v_proj").reshape(T, KV, D).transpose(1, 0, 2)
            q = q * cos[None] + rotate_half(q) * sin[None]
            k = k * cos[None] + rotate_half(k) * sin[None]
            kv_index = np.arange(H) // group
            o = causal_attention(q, k[kv_index], v[kv_index]).transpose(1, 0, 2).reshape(T, H * D)
            x = x + self._lin(o, p + "self_attn.o_proj")
            m = rms_norm(x, w[p + "post_attention_layernorm.weight"], self.eps)
            hmid = silu(self._lin(m, p + "mlp.gate_proj")) * self._lin(m, p + "mlp.up_proj")
            tp["mlp_down_in"].append(hmid)
            x = x + self._lin(hmid, p + "mlp.down_proj")
            tp["block_out"].append(x.copy())
        x = rms_norm(x, w["model.norm.weight"], self.eps)
        logits = x @ self.lm_head.T
        return (logits, tp) if taps else logits


def _greedy(model, ids, n):
    ids = list(int(i) for i in ids)
    out = []
    for _ in range(n):
        logits = model.forward(ids)
        nxt = int(np.argmax(logits[-1]))  # ties -> lowest id
        out.append(nxt)
        ids.append(nxt)
    return out


GPT2Ref.greedy = _greedy
LlamaRef.greedy = _greedy


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    w = load_model_dir(model_dir)
    mt = cfg.get("model_type")
    if mt == "gpt2":
        return GPT2Ref(cfg, w)
    if mt in LLAMA_TYPES:
        return LlamaRef(cfg, w)
    raise ValueError("unsupported model_type %r" % mt)


def logsumexp(x):
    m = x.max(-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0]
