import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DeltaEditError } from "../../src/errors.js";
import { openCheckpoint } from "../../src/model/checkpoint.js";
import { writeSafetensors } from "../../src/model/safetensors.js";
import { fixtureModel } from "../helpers/paths.js";

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-ckpt-"));
}

function isErr(code: string, ...parts: string[]) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof DeltaEditError, `expected DeltaEditError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} should contain ${JSON.stringify(p)}`);
    return true;
  };
}

const TINY_LLAMA_CONFIG = {
  model_type: "llama",
  vocab_size: 8,
  hidden_size: 4,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  intermediate_size: 6,
  max_position_embeddings: 16,
  rms_norm_eps: 1e-5,
  hidden_act: "silu",
};

function seq(n: number, start: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => start + i);
}

test("tiny-gpt2-random opens; tensors have GPT-2 names and shapes", () => {
  const ck = openCheckpoint(fixtureModel("tiny-gpt2-random"));
  try {
    assert.equal(ck.config.family, "gpt2");
    assert.deepEqual(ck.weightFiles(), ["model.safetensors"]);
    const wte = ck.names().find((n) => n.endsWith("wte.weight"));
    assert.ok(wte !== undefined, `no wte in ${ck.names().join(",")}`);
    const info = ck.info(wte);
    assert.deepEqual(info.shape, [50257, 64]);
    assert.equal(info.file, "model.safetensors");
    const w = ck.read(wte);
    assert.equal(w.length, 50257 * 64);
    assert.ok(w.some((v) => v !== 0));
    const id = ck.identity();
    assert.match(id.hash, /^[0-9a-f]{64}$/);
    assert.equal(id.modelType, "gpt2");
    assert.deepEqual(id.files, [{ name: "model.safetensors", bytes: fs.statSync(path.join(fixtureModel("tiny-gpt2-random"), "model.safetensors")).size }]);
    assert.equal(ck.identity().hash, id.hash, "stable");
  } finally {
    ck.close();
  }
});

test("stories260k opens; no lm_head, tied embeddings", () => {
  const ck = openCheckpoint(fixtureModel("stories260k"));
  try {
    assert.equal(ck.config.family, "llama");
    assert.equal(ck.config.tieWordEmbeddings, true);
    assert.equal(ck.has("lm_head.weight"), false);
    assert.ok(ck.has("model.embed_tokens.weight"));
    assert.deepEqual(ck.info("model.embed_tokens.weight").shape, [512, 64]);
    assert.deepEqual(ck.info("model.layers.0.self_attn.k_proj.weight").shape, [32, 64], "GQA: NKV·HS = 4·8");
    const out = new Float32Array(512 * 64);
    ck.readInto("model.embed_tokens.weight", out);
    assert.ok(out.some((v) => v !== 0));
    assert.throws(() => ck.read("lm_head.weight"), isErr("E_NOT_FOUND", "lm_head.weight"));
  } finally {
    ck.close();
  }
});

test("sharded checkpoint via model.safetensors.index.json", () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(TINY_LLAMA_CONFIG));
  writeSafetensors(path.join(dir, "model-00001-of-00002.safetensors"), [
    { name: "model.embed_tokens.weight", shape: [8, 4], data: seq(32, 0) },
    { name: "model.norm.weight", shape: [4], data: seq(4, 100) },
  ]);
  writeSafetensors(path.join(dir, "model-00002-of-00002.safetensors"), [{ name: "lm_head.weight", shape: [8, 4], data: seq(32, -16), dtype: "BF16" }]);
  const index = {
    metadata: { total_size: 0 },
    weight_map: {
      "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
      "model.norm.weight": "model-00001-of-00002.safetensors",
      "lm_head.weight": "model-00002-of-00002.safetensors",
    },
  };
  fs.writeFileSync(path.join(dir, "model.safetensors.index.json"), JSON.stringify(index));
  const ck = openCheckpoint(dir);
  try {
    assert.deepEqual(ck.weightFiles(), ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
    assert.deepEqual(new Set(ck.names()), new Set(Object.keys(index.weight_map)));
    assert.equal(ck.info("lm_head.weight").file, "model-00002-of-00002.safetensors");
    assert.equal(ck.info("lm_head.weight").dtype, "BF16");
    assert.deepEqual(ck.read("model.norm.weight"), seq(4, 100));
    assert.deepEqual(ck.read("lm_head.weight"), seq(32, -16), "integers below 256 are exact in BF16");
    assert.equal(ck.identity().files.length, 2);
  } finally {
    ck.close();
  }
  const before = openCheckpoint(dir);
  const h1 = before.identity().hash;
  before.close();
  // Changing weights changes the fingerprint.
  writeSafetensors(path.join(dir, "model-00001-of-00002.safetensors"), [
    { name: "model.embed_tokens.weight", shape: [8, 4], data: seq(32, 1) },
    { name: "model.norm.weight", shape: [4], data: seq(4, 100) },
  ]);
  const after = openCheckpoint(dir);
  assert.notEqual(after.identity().hash, h1);
  after.close();

  // Missing shard → names the index file and the shard.
  fs.renameSync(path.join(dir, "model-00002-of-00002.safetensors"), path.join(dir, "moved.safetensors"));
  assert.throws(() => openCheckpoint(dir), isErr("E_CHECKPOINT", "model.safetensors.index.json", "model-00002-of-00002.safetensors"));
  fs.renameSync(path.join(dir, "moved.safetensors"), path.join(dir, "model-00002-of-00002.safetensors"));

  // Tensor in two shards.
  writeSafetensors(path.join(dir, "model-00002-of-00002.safetensors"), [
    { name: "lm_head.weight", shape: [8, 4], data: seq(32, 0) },
    { name: "model.norm.weight", shape: [4], data: seq(4, 0) },
  ]);
  assert.throws(() => openCheckpoint(dir), isErr("E_CHECKPOINT", "model.norm.weight", "two shards"));

  // weight_map names a tensor the shard lacks.
  writeSafetensors(path.join(dir, "model-00002-of-00002.safetensors"), [{ name: "other", shape: [1], data: seq(1, 0) }]);
  assert.throws(() => openCheckpoint(dir), isErr("E_CHECKPOINT", "lm_head.weight", "model.safetensors.index.json"));
});

test("missing config, missing weights, PyTorch-only weights", () => {
  const dir = tmpDir();
  assert.throws(
    () => openCheckpoint(dir),
    (e: unknown) => isErr("E_NOT_FOUND", path.join(dir, "config.json"))(e) && (e as DeltaEditError).hint !== undefined,
  );
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(TINY_LLAMA_CONFIG));
  assert.throws(() => openCheckpoint(dir), isErr("E_NOT_FOUND", "model.safetensors"));
  fs.writeFileSync(path.join(dir, "pytorch_model.bin"), "not really");
  assert.throws(
    () => openCheckpoint(dir),
    (e: unknown) => isErr("E_CHECKPOINT", "pytorch_model.bin", "safetensors")(e) && ((e as DeltaEditError).hint ?? "").includes("safe_serialization=True"),
  );
  assert.throws(() => openCheckpoint(path.join(dir, "nope")), isErr("E_NOT_FOUND", "nope"));
});
