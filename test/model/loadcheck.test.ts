/**
 * Loading is loud on garbage: the checkpoint must match config.json exactly (no tensors for blocks
 * beyond the layer count, no unknown tensors; known buffers and tied copies tolerated), and
 * non-finite weights are an error naming the tensor unless explicitly allowed.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { makeBatch } from "../../src/model/batch.js";
import { forward } from "../../src/model/forward.js";
import { LanguageModel } from "../../src/model/model.js";
import { copyFixture, editJson, editWeights, isErr } from "./mutate.js";

test("num_hidden_layers smaller than the checkpoint's: E_CHECKPOINT naming the first unused tensor and the field", async () => {
  const dir = copyFixture("stories260k");
  editJson(dir, "config.json", (j) => {
    j["num_hidden_layers"] = 3;
  });
  await assert.rejects(
    LanguageModel.load(dir),
    isErr("E_CHECKPOINT", "model.safetensors", '"model.layers.3.input_layernorm.weight"', "block 3", "num_hidden_layers = 3", "holds 5 blocks"),
  );
});

test("GPT-2 n_layer smaller than the checkpoint's (its attn.bias buffers included) is an error too", async () => {
  const dir = copyFixture("tiny-gpt2-random");
  editJson(dir, "config.json", (j) => {
    j["n_layer"] = 1;
  });
  await assert.rejects(LanguageModel.load(dir, { noTokenizer: true }), isErr("E_CHECKPOINT", "model.safetensors", '"h.1.attn.bias"', "n_layer = 1", "holds 2 blocks"));
});

test("num_hidden_layers larger than the checkpoint's: missing tensor named", async () => {
  const dir = copyFixture("stories260k");
  editJson(dir, "config.json", (j) => {
    j["num_hidden_layers"] = 6;
  });
  await assert.rejects(LanguageModel.load(dir), isErr("E_CHECKPOINT", "missing tensor", '"model.layers.5.input_layernorm.weight"'));
});

test("an unknown tensor is an error naming it; known buffers (rotary inv_freq, a tied lm_head copy) are tolerated", async () => {
  const dir = copyFixture("stories260k");
  const ref = await LanguageModel.load(dir);
  editWeights(dir, (ts) => [...ts, { name: "model.layers.1.mlp.extra_proj.weight", shape: [2, 2], data: new Float32Array(4) }]);
  await assert.rejects(LanguageModel.load(dir), isErr("E_CHECKPOINT", "model.safetensors", '"model.layers.1.mlp.extra_proj.weight"', "not a parameter"));

  // biases present while config.json says attention_bias is false: the first of them is named
  const dir2 = copyFixture("stories260k");
  editWeights(dir2, (ts) => [...ts, { name: "model.layers.0.self_attn.q_proj.bias", shape: [64], data: new Float32Array(64) }]);
  await assert.rejects(LanguageModel.load(dir2), isErr("E_CHECKPOINT", '"model.layers.0.self_attn.q_proj.bias"'));

  const dir3 = copyFixture("stories260k");
  editWeights(dir3, (ts) => {
    const embed = ts.find((t) => t.name === "model.embed_tokens.weight")!;
    return [
      ...ts,
      { name: "model.layers.0.self_attn.rotary_emb.inv_freq", shape: [4], data: new Float32Array([1, 0.1, 0.01, 0.001]) },
      { name: "lm_head.weight", shape: embed.shape, data: embed.data.slice() },
    ];
  });
  const m = await LanguageModel.load(dir3);
  const ids = [1, 403, 407];
  const a = forward(m, makeBatch([ids], 0, 512), { logits: "all" }).logits!;
  const b = forward(ref, makeBatch([ids], 0, 512), { logits: "all" }).logits!;
  assert.deepEqual(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  assert.ok(d <= 1e-5, `tolerated tensors change nothing (max |Δ| ${d})`);
});

test("a NaN or Inf weight is E_CHECKPOINT naming the tensor; allowNonFinite loads it with a warning", async () => {
  const dir = copyFixture("stories260k");
  const target = "model.layers.2.mlp.down_proj.weight";
  editWeights(dir, (ts) => {
    const t = ts.find((x) => x.name === target)!;
    t.data[17] = NaN;
    t.data[40] = -Infinity;
  });
  await assert.rejects(
    LanguageModel.load(dir),
    isErr("E_CHECKPOINT", path.join("model.safetensors"), `"${target}"`, "2 non-finite", "first at flat index 17"),
  );
  const logs: string[] = [];
  const m = await LanguageModel.load(dir, { allowNonFinite: true, log: (s) => logs.push(s) });
  assert.ok(Number.isNaN(m.params.get(target)[17]));
  assert.ok(logs.some((l) => l.includes("warning") && l.includes(target)), logs.join("\n"));

  const dir2 = copyFixture("stories260k");
  editWeights(dir2, (ts) => {
    ts.find((x) => x.name === "model.norm.weight")!.data[0] = Infinity;
  });
  await assert.rejects(LanguageModel.load(dir2, { noTokenizer: true }), isErr("E_CHECKPOINT", '"model.norm.weight"', "1 non-finite"));
});
