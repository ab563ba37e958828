"""Minimal safetensors reader/writer in numpy (reference tooling, not shipped).

Independent of the TypeScript runtime: written from the safetensors format spec
(8-byte little-endian header length, JSON header, raw little-endian tensor data).

read:  F32 / F16 / BF16 -> float32 numpy arrays (BF16 widened exactly).
write: F32 / F16 / BF16 from float32 arrays (F16 and BF16 round to nearest even).
Also handles sharded checkpoints via model.safetensors.index.json.
"""
import json
import os
import struct

import numpy as np

_DT_SIZE = {"F32": 4, "F16": 2, "BF16": 2}


def bf16_bits_to_f32(bits):
    """uint16 bfloat16 bit patterns -> float32 (exact)."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16_bits(x):
    """float32 -> uint16 bfloat16 bit patterns, round to nearest even (NaN kept NaN)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    rounding = ((u >> 16) & 1) + 0x7FFF
    out = ((u + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = 0x7FC0
    return out


def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    return header, 8 + n


def read_safetensors(path):
    """Return (dict name -> float32 ndarray, metadata dict)."""
    header, base = read_header(path)
    with open(path, "rb") as f:
        blob = f.read()
    out = {}
    meta = header.get("__metadata__", {}) or {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        shape = tuple(info["shape"])
        a, b = info["data_offsets"]
        raw = blob[base + a: base + b]
        count = int(np.prod(shape)) if shape else 1
        if dt not in _DT_SIZE:
            raise ValueError("unsupported dtype %s for %s" % (dt, name))
        if len(raw) != count * _DT_SIZE[dt]:
            raise ValueError("size mismatch for %s" % name)
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        else:
            arr = bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2"))
        out[name] = arr.reshape(shape)
    return out, meta


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """Write dict name -> float32 array. Keys sorted; 8-byte aligned header. Deterministic."""
    names = sorted(tensors.keys())
    header = {}
    if metadata is None:
        metadata = {"format": "pt"}
    header["__metadata__"] = metadata
    chunks = []
    off = 0
    for name in names:
        x = np.asarray(tensors[name], dtype=np.float32)
        if dtype == "F32":
            raw = x.astype("<f4").tobytes()
        elif dtype == "F16":
            raw = x.astype("<f2").tobytes()
        elif dtype == "BF16":
            raw = f32_to_bf16_bits(x).astype("<u2").tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(x.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    pad = (8 - (len(hjson) % 8)) % 8
    hjson += b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for c in chunks:
            f.write(c)


def load_model_dir(model_dir):
    """Load all tensors of a HF model dir (single file or sharded index) as float32."""
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            wm = json.load(f)["weight_map"]
        out = {}
        for shard in sorted(set(wm.values())):
            t, _ = read_safetensors(os.path.join(model_dir, shard))
            for k, v in t.items():
                if wm.get(k) != shard:
                    raise ValueError("tensor %s not mapped to %s" % (k, shard))
                out[k] = v
        missing = set(wm) - set(out)
        if missing:
            raise ValueError("missing tensors: %s" % sorted(missing))
        return out
    t, _ = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    return t
