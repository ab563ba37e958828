"""Write golden reference outputs under test/fixtures/golden/ (reference tooling, not shipped).

For every fixture model: full logits for a few token sequences (float64 compute, float32
sidecars), greedy generations (12 new ids, full recomputation per step), hidden-state taps
for one case, and (real models only) tokenizer cases from the independent BPE in bpe_np.py.
See tools/reference/README.md for the file format.
"""
import json
import os
import shutil
import sys

sys.dont_write_bytecode = True  # keep tools/reference free of __pycache__

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bpe_np import GPT2BPE, SentencePieceBPE  # noqa: E402
from model_np import load_model, logsumexp  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MODELS = os.path.join(ROOT, "test", "fixtures", "models")
GOLDEN = os.path.join(ROOT, "test", "fixtures", "golden")
SHARED = "/work/shared/models"

REAL = ["stories260k", "tiny-gpt2-random"]
RANDOM = ["tiny-llama3-random", "tiny-qwen2-random", "tiny-mistral-random",
          "tiny-gpt2-prefixed-bf16", "tiny-llama-sharded-f16"]
N_NEW = 12

GPT2_TEXTS = [
    "Hello world",
    " Paris",
    "The Eiffel Tower is located in",
    "Danielle Darrieux's mother tongue is",
    "In 1999, it cost $3.50!",
    "I'm sure they'll say we've done it; you're right.",
    "  two leading spaces\nnew line\n\n  end  ",
    "naïve café 😀",
]
SP_TEXTS = [
    "Once upon a time, there was a little girl.",
    "Lily and Ben",
    "Once upon a time",
    "Hello world",
    "The cat sat.  Two  spaces",
    "Tom's big red ball!",
    "café 😀",
    "",
]


def g9(x):
    return float("%.9g" % float(x))


def write_f32(name, arr):
    arr = np.ascontiguousarray(np.asarray(arr, dtype=np.float64).astype("<f4"))
    with open(os.path.join(GOLDEN, name), "wb") as f:
        f.write(arr.tobytes())
    return {"file": name, "dtype": "float32", "byte_order": "little", "layout": "row-major",
            "shape": list(arr.shape)}


def top2_margin(row):
    s = np.sort(row)
    return s[-1] - s[-2]


def tokenizer_for(model):
    tj = os.path.join(MODELS, model, "tokenizer.json")
    with open(tj, encoding="utf-8") as f:
        pre = (json.load(f).get("pre_tokenizer") or {}).get("type")
    if pre == "ByteLevel":
        return "gpt2-bytelevel-bpe", GPT2BPE(tj)
    return "sentencepiece-bpe", SentencePieceBPE(tj)


def sequences(model, V, tok_kind, tok):
    rng = np.random.default_rng(abs(hash_name(model)) % (2 ** 32))
    if tok_kind == "gpt2-bytelevel-bpe":
        bos = 50256
        long_ids = tok.encode("The Eiffel Tower is located in the city of Paris, and it was built in 1889 by")
        prompt = tok.encode("The Eiffel Tower is located in")
    else:
        bos = 1
        long_ids = tok.encode("Once upon a time, there was a little girl named Lily. She loved")
        prompt = tok.encode("Once upon a time")
    assert len(long_ids) >= 16
    rand7 = [V - 1] + [int(i) for i in rng.integers(0, V, 6)]
    cases = [("len1", [bos]), ("len7", rand7), ("len16", long_ids[:16])]
    return cases, prompt


def hash_name(s):
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def do_model(model):
    d = os.path.join(MODELS, model)
    if not os.path.isdir(d):
        shutil.copytree(os.path.join(SHARED, model), d)
    for fn in os.listdir(GOLDEN):
        if fn.startswith(model + "."):
            os.remove(os.path.join(GOLDEN, fn))
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    m = load_model(d)
    kind, tok = tokenizer_for(model)
    V = m.V
    cases, prompt = sequences(model, V, kind, tok)

    summary = {"model_type": cfg["model_type"], "vocab_size": V, "hidden_size": m.C,
               "num_layers": m.L, "intermediate_size": m.d_ff, "num_heads": m.H}
    if hasattr(m, "KV"):
        summary.update({"num_kv_heads": m.KV, "head_dim": m.D})
    out = {
        "magic": "deltaedit-golden",
        "version": 1,
        "generator": "tools/reference/make_golden.py",
        "model": model,
        "model_dir": "test/fixtures/models/" + model,
        "compute_dtype": "float64",
        "config_summary": summary,
        "logits": [],
        "generation": [],
        "hidden": None,
        "tokenizer": None,
    }
    for name, ids in cases:
        assert all(0 <= i < V for i in ids)
        lg = m.forward(ids)
        rec = {"case": name, "ids": [int(i) for i in ids]}
        rec.update(write_f32("%s.%s.f32" % (model, name), lg))
        rec["argmax"] = [int(i) for i in lg.argmax(-1)]
        rec["top2_margin"] = [g9(top2_margin(r)) for r in lg]
        rec["logsumexp"] = [g9(x) for x in logsumexp(lg)]
        out["logits"].append(rec)

    for name, p in (("prompt", prompt), ("bos", cases[0][1])):
        ids = [int(i) for i in p]
        new, margins = [], []
        for _ in range(N_NEW):
            lg = m.forward(ids + new)[-1]
            margins.append(g9(top2_margin(lg)))
            new.append(int(np.argmax(lg)))
        rec = {"case": name, "prompt_ids": ids, "max_new_tokens": N_NEW, "generated_ids": new,
               "step_top2_margin": margins, "stop_at_eos": False}
        if kind == "gpt2-bytelevel-bpe" or model == "stories260k":
            rec["generated_text"] = tok.decode(new)
        out["generation"].append(rec)

    hname, hids = cases[1]
    _, tp = m.forward(hids, taps=True)
    hid = {"case": hname, "ids": [int(i) for i in hids],
           "embeddings": write_f32("%s.hidden.embeddings.f32" % model, tp["embeddings"]),
           "layers": []}
    for l in range(m.L):
        hid["layers"].append({
            "layer": l,
            "block_out": write_f32("%s.hidden.L%d.block_out.f32" % (model, l), tp["block_out"][l]),
            "mlp_down_in": write_f32("%s.hidden.L%d.mlp_down_in.f32" % (model, l), tp["mlp_down_in"][l]),
        })
    out["hidden"] = hid

    if model in REAL:
        tcases = []
        if kind == "gpt2-bytelevel-bpe":
            for t in GPT2_TEXTS:
                ids = tok.encode(t)
                tcases.append({"text": t, "add_special_tokens": True, "ids": ids,
                               "tokens": [tok.inv[i] for i in ids]})
        else:
            for t in SP_TEXTS:
                for special in (True, False):
                    ids = tok.encode(t, add_special_tokens=special)
                    tcases.append({"text": t, "add_special_tokens": special, "ids": ids,
                                   "tokens": [tok.inv[i] for i in ids]})
        out["tokenizer"] = {"kind": kind, "cases": tcases}

    with open(os.path.join(GOLDEN, model + ".json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    return out


def main():
    os.makedirs(GOLDEN, exist_ok=True)
    only = sys.argv[1:]
    for model in REAL + RANDOM:
        if only and model not in only:
            continue
        out = do_model(model)
        gens = out["generation"]
        print("%-26s argmax(len16)=%s gen=%s min_margin=%.2e %s" % (
            model, out["logits"][2]["argmax"][:4], gens[0]["generated_ids"],
            min(min(g["step_top2_margin"]) for g in gens),
            repr(gens[0].get("generated_text", ""))))
    total = sum(os.path.getsize(os.path.join(GOLDEN, f)) for f in os.listdir(GOLDEN))
    print("golden total: %.2f MB" % (total / 1e6))


if __name__ == "__main__":
    main()
