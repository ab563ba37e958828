import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DeltaEditError } from "../../src/errors.js";
import { parseModelConfig, readModelConfig } from "../../src/model/config.js";
import { fixtureModel } from "../helpers/paths.js";

function expectConfigError(fn: () => unknown, ...mustContain: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DeltaEditError, `expected DeltaEditError, got ${String(e)}`);
    assert.equal(e.code, "E_CONFIG", e.message);
    for (const s of mustContain) assert.ok(e.message.includes(s), `message ${JSON.stringify(e.message)} should contain ${JSON.stringify(s)}`);
    return true;
  });
}

const LLAMA3 = {
  model_type: "llama",
  vocab_size: 128256,
  hidden_size: 4096,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  intermediate_size: 14336,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000.0,
  rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: "llama3" },
  hidden_act: "silu",
  tie_word_embeddings: false,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
};

test("tiny-gpt2-random config", () => {
  const c = readModelConfig(fixtureModel("tiny-gpt2-random"));
  assert.equal(c.family, "gpt2");
  assert.equal(c.modelType, "gpt2");
  assert.equal(c.vocabSize, 50257);
  assert.equal(c.hiddenSize, 64);
  assert.equal(c.numLayers, 2);
  assert.equal(c.numHeads, 4);
  assert.equal(c.numKvHeads, 4);
  assert.equal(c.headSize, 16);
  assert.equal(c.intermediateSize, 256, "n_inner null → 4·n_embd");
  assert.equal(c.maxPositions, 128);
  assert.equal(c.normEps, 1e-5);
  assert.equal(c.activation, "gelu_new");
  assert.equal(c.ropeTheta, 0);
  assert.equal(c.ropeScaling, null);
  assert.equal(c.attentionBias, true);
  assert.equal(c.mlpBias, true);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.bosTokenId, 50256);
  assert.equal(c.eosTokenId, 50256);
  assert.deepEqual(c.eosTokenIds, [50256]);
  assert.equal(c.slidingWindow, null);
});

test("stories260k config (llama, GQA, tied)", () => {
  const c = readModelConfig(fixtureModel("stories260k"));
  assert.equal(c.family, "llama");
  assert.equal(c.modelType, "llama");
  assert.deepEqual(
    [c.vocabSize, c.hiddenSize, c.numLayers, c.numHeads, c.numKvHeads, c.headSize, c.intermediateSize, c.maxPositions],
    [512, 64, 5, 8, 4, 8, 172, 512],
  );
  assert.equal(c.activation, "silu");
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.ropeScaling, null);
  assert.equal(c.attentionBias, false);
  assert.equal(c.mlpBias, false);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.bosTokenId, 1);
  assert.equal(c.eosTokenId, 2);
});

test("llama3 rope scaling, eos list, defaults", () => {
  const c = parseModelConfig(LLAMA3, "llama3/config.json");
  assert.deepEqual(c.ropeScaling, { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
  assert.equal(c.eosTokenId, 128001);
  assert.deepEqual(c.eosTokenIds, [128001, 128008, 128009]);
  assert.equal(c.headSize, 128);
  assert.equal(c.numKvHeads, 8);
  assert.equal(c.ropeTheta, 500000);
  assert.equal(c.tieWordEmbeddings, false);
  const { num_key_value_heads: _kv, rope_theta: _rt, rope_scaling: _rs, ...minimal } = LLAMA3;
  const d = parseModelConfig(minimal, "x");
  assert.equal(d.numKvHeads, 32, "num_key_value_heads defaults to num_attention_heads");
  assert.equal(d.ropeTheta, 10000);
  assert.equal(d.ropeScaling, null);
  const lin = parseModelConfig({ ...LLAMA3, rope_scaling: { type: "linear", factor: 2 } }, "x");
  assert.deepEqual(lin.ropeScaling, { type: "linear", factor: 2 });
});

test("qwen2 and mistral", () => {
  const q = parseModelConfig(
    { ...LLAMA3, model_type: "qwen2", rope_scaling: null, tie_word_embeddings: true, sliding_window: 32768, use_sliding_window: false },
    "qwen/config.json",
  );
  assert.equal(q.family, "llama");
  assert.equal(q.modelType, "qwen2");
  assert.equal(q.attentionBias, true);
  assert.equal(q.tieWordEmbeddings, true);
  assert.equal(q.slidingWindow, null, "qwen2 records the window only when use_sliding_window");
  const m = parseModelConfig({ ...LLAMA3, model_type: "mistral", rope_scaling: null, sliding_window: 4096 }, "m");
  assert.equal(m.slidingWindow, 4096);
  assert.equal(m.attentionBias, false);
  assert.equal(parseModelConfig({ ...LLAMA3, attention_bias: true, mlp_bias: true }, "x").mlpBias, true);
});

test("config errors name the field and the file", () => {
  expectConfigError(() => parseModelConfig({ ...LLAMA3, model_type: "falcon" }, "some/config.json"), 'unsupported model_type "falcon"', "some/config.json", "gpt2, llama, mistral, qwen2");
  expectConfigError(() => parseModelConfig({ hidden_size: 4 }, "a/config.json"), "model_type", "a/config.json");
  const { hidden_size: _h, ...noHidden } = LLAMA3;
  expectConfigError(() => parseModelConfig(noHidden, "b/config.json"), '"hidden_size"', "b/config.json");
  expectConfigError(() => parseModelConfig({ ...LLAMA3, hidden_act: "gelu" }, "c.json"), "hidden_act", "silu");
  expectConfigError(() => parseModelConfig({ ...LLAMA3, rope_scaling: { type: "yarn", factor: 4 } }, "d.json"), "rope_scaling", "llama3, linear");
  expectConfigError(() => parseModelConfig({ ...LLAMA3, rope_scaling: { rope_type: "llama3", factor: 8 } }, "e.json"), "low_freq_factor", "e.json");
  expectConfigError(() => parseModelConfig({ ...LLAMA3, num_key_value_heads: 5 }, "f.json"), "num_key_value_heads");
  expectConfigError(() => parseModelConfig({ ...LLAMA3, num_hidden_layers: "32" }, "g.json"), "num_hidden_layers", "positive integer");
  const gpt2 = JSON.parse(fs.readFileSync(path.join(fixtureModel("tiny-gpt2-random"), "config.json"), "utf8")) as Record<string, unknown>;
  expectConfigError(() => parseModelConfig({ ...gpt2, activation_function: "relu" }, "gpt2.json"), "activation_function", "gelu_new");
  expectConfigError(() => parseModelConfig({ ...gpt2, n_layer: undefined }, "gpt2.json"), '"n_layer"', "gpt2.json");
  assert.equal(parseModelConfig({ ...gpt2, activation_function: "gelu_pytorch_tanh", n_inner: 100 }, "x").intermediateSize, 100);
  expectConfigError(() => parseModelConfig([], "h.json"), "h.json");
});

test("readModelConfig: missing file is E_NOT_FOUND with a hint; bad JSON is E_CONFIG", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-cfg-"));
  assert.throws(
    () => readModelConfig(dir),
    (e: unknown) => e instanceof DeltaEditError && e.code === "E_NOT_FOUND" && e.message.includes(path.join(dir, "config.json")) && e.hint !== undefined,
  );
  fs.writeFileSync(path.join(dir, "config.json"), "{oops");
  expectConfigError(() => readModelConfig(dir), "config.json", "JSON");
});
