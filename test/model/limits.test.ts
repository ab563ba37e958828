/**
 * Every documented input limit of model loading (src/model/limits.ts): each is enforced with an
 * E_LIMIT (or E_CONFIG / E_CHECKPOINT / E_TOKENIZER) error naming the file and the field or tensor,
 * before anything large is allocated or walked. Fuzzing found the originals: a 1e9-position config
 * crashed, a 1e9 token id hung every command, a 200 000-deep shape overflowed the stack.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { jsonDepth } from "../../src/model/boundedjson.js";
import { parseModelConfig, readModelConfig } from "../../src/model/config.js";
import { Llama } from "../../src/model/arch/llama.js";
import { LIMITS } from "../../src/model/limits.js";
import { LanguageModel } from "../../src/model/model.js";
import { SafetensorsFile } from "../../src/model/safetensors.js";
import { loadTokenizer } from "../../src/model/tokenizer.js";
import { makeBatch } from "../../src/model/batch.js";
import { forward } from "../../src/model/forward.js";
import { fixtureModel } from "../helpers/paths.js";
import { copyFixture, editJson, isErr, readJson, tmpDir } from "./mutate.js";

const LLAMA = readJson(path.join(fixtureModel("stories260k"), "config.json"));
const GPT2 = readJson(path.join(fixtureModel("tiny-gpt2-random"), "config.json"));

test("LIMITS is frozen and holds the documented defaults", () => {
  assert.ok(Object.isFrozen(LIMITS));
  assert.deepEqual(
    { ...LIMITS },
    {
      maxPositions: 2 ** 20,
      maxVocab: 2 ** 24,
      maxWidth: 2 ** 20,
      maxHeads: 4096,
      maxLayers: 1024,
      maxTensorElements: 2 ** 31 - 1,
      maxSafetensorsHeaderBytes: 100_000_000,
      maxJsonFileBytes: 64 * 2 ** 20,
      maxJsonDepth: 64,
    },
  );
});

test("config positions: max_position_embeddings / n_positions / n_ctx above 2^20 → E_LIMIT naming file and field", () => {
  for (const v of [1e9, 2e7, LIMITS.maxPositions + 1]) {
    assert.throws(() => parseModelConfig({ ...LLAMA, max_position_embeddings: v }, "x/config.json"), isErr("E_LIMIT", "x/config.json", '"max_position_embeddings"', String(v), "maxPositions"));
  }
  assert.throws(() => parseModelConfig({ ...GPT2, n_positions: 1e9 }, "g/config.json"), isErr("E_LIMIT", "g/config.json", '"n_positions"'));
  assert.throws(() => parseModelConfig({ ...GPT2, n_ctx: 1e9 }, "g/config.json"), isErr("E_LIMIT", "g/config.json", '"n_ctx"'));
  assert.throws(
    () => parseModelConfig({ ...LLAMA, rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 1e9 } }, "r/config.json"),
    isErr("E_LIMIT", "r/config.json", '"original_max_position_embeddings"'),
  );
  // exactly at the limit is accepted (llama: no tensor depends on it)
  assert.equal(parseModelConfig({ ...LLAMA, max_position_embeddings: LIMITS.maxPositions }, "x").maxPositions, LIMITS.maxPositions);
});

test("config dimensions: vocab, widths, heads, layers, token ids bounded; E_LIMIT names the field", () => {
  const cases: [Record<string, unknown>, string, string][] = [
    [{ ...LLAMA, vocab_size: LIMITS.maxVocab + 1 }, "vocab_size", "maxVocab"],
    [{ ...LLAMA, hidden_size: 2 ** 21, num_attention_heads: 2 ** 11, num_key_value_heads: 2 ** 11 }, "hidden_size", "maxWidth"],
    [{ ...LLAMA, intermediate_size: 2 ** 21 }, "intermediate_size", "maxWidth"],
    [{ ...LLAMA, head_dim: 2 ** 21 }, "head_dim", "maxWidth"],
    [{ ...LLAMA, num_attention_heads: 8192, num_key_value_heads: 8192 }, "num_attention_heads", "maxHeads"],
    [{ ...LLAMA, num_key_value_heads: 8192 }, "num_key_value_heads", "maxHeads"],
    [{ ...LLAMA, num_hidden_layers: 1e9 }, "num_hidden_layers", "maxLayers"],
    [{ ...LLAMA, eos_token_id: [2, 1e9] }, "eos_token_id", "maxVocab"],
    [{ ...GPT2, n_layer: 1025 }, "n_layer", "maxLayers"],
    [{ ...GPT2, n_embd: 2 ** 21, n_head: 1 }, "n_embd", "maxWidth"],
    [{ ...GPT2, n_inner: 2 ** 21 }, "n_inner", "maxWidth"],
    [{ ...GPT2, vocab_size: 1e9 }, "vocab_size", "maxVocab"],
  ];
  for (const [cfg, field, limit] of cases) {
    assert.throws(() => parseModelConfig(cfg, "d/config.json"), isErr("E_LIMIT", "d/config.json", `"${field}"`, limit));
  }
  // n_inner defaults to 4·n_embd: the default is bounded too
  assert.throws(() => parseModelConfig({ ...GPT2, n_embd: 2 ** 19, n_head: 1, vocab_size: 2, n_positions: 2 }, "d/config.json"), isErr("E_LIMIT", "n_inner (default 4·n_embd)"));
});

test("config products: every implied parameter tensor ≤ 2^31 − 1 elements (an embedding over 2^32 elements fails at parse)", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ ...LLAMA, vocab_size: 2 ** 22, hidden_size: 2 ** 10, num_attention_heads: 2 ** 4, num_key_value_heads: 2 ** 4 }, "vocab_size × hidden_size"], // 2^32
    [{ ...LLAMA, hidden_size: 2 ** 16, num_attention_heads: 2 ** 8, num_key_value_heads: 2 ** 8, head_dim: 2 ** 8, vocab_size: 2 }, "num_attention_heads × head_dim × hidden_size"],
    [{ ...LLAMA, hidden_size: 2 ** 12, num_attention_heads: 2 ** 4, num_key_value_heads: 2 ** 4, vocab_size: 2, intermediate_size: 2 ** 20 }, "intermediate_size × hidden_size"],
    [{ ...GPT2, n_embd: 2 ** 12, n_head: 2 ** 4, vocab_size: 2, n_positions: 2 ** 20 }, "n_positions × n_embd"],
    [{ ...GPT2, n_embd: 2 ** 15, n_head: 2 ** 4, vocab_size: 2, n_positions: 2, n_inner: 1 }, "n_embd × 3·n_embd"],
  ];
  for (const [cfg, what] of cases) {
    assert.throws(() => parseModelConfig(cfg, "p/config.json"), isErr("E_LIMIT", "p/config.json", what, "maxTensorElements"));
  }
  // 2^31 − 1 is allowed: vocab × hidden = (2^31 − 1) exactly is not a product of powers of two; use 2^21 × 2^10 = 2^31 (rejected) vs 2^21 × 1023 (accepted)
  assert.throws(() => parseModelConfig({ ...LLAMA, vocab_size: 2 ** 21, hidden_size: 2 ** 10, num_attention_heads: 2, num_key_value_heads: 2 }, "p"), isErr("E_LIMIT", "vocab_size"));
  assert.equal(parseModelConfig({ ...LLAMA, vocab_size: 2 ** 21, hidden_size: 1023, num_attention_heads: 1, num_key_value_heads: 1 }, "p").vocabSize, 2 ** 21);
});

test("config.json / tokenizer.json: file size and nesting depth bounded before parsing", () => {
  const dir = copyFixture("stories260k");
  // nesting: 200 000 levels inside an otherwise valid config
  const deep = "[".repeat(200_000) + "]".repeat(200_000);
  fs.writeFileSync(path.join(dir, "config.json"), `{"model_type":"llama","extra":${deep}}`);
  assert.throws(() => readModelConfig(dir), isErr("E_LIMIT", path.join(dir, "config.json"), "nesting depth", "maxJsonDepth"));
  // 64 levels are fine (a JSON syntax error only after the depth check passes)
  const ok64 = "[".repeat(63) + "]".repeat(63);
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...LLAMA, extra: JSON.parse(ok64) }));
  assert.equal(readModelConfig(dir).numLayers, 5);
  // size: a sparse 64 MiB + 1 file is refused from its size alone
  fs.rmSync(path.join(dir, "config.json"));
  fs.writeFileSync(path.join(dir, "config.json"), "");
  fs.truncateSync(path.join(dir, "config.json"), LIMITS.maxJsonFileBytes + 1);
  assert.throws(() => readModelConfig(dir), isErr("E_LIMIT", path.join(dir, "config.json"), "file size", "maxJsonFileBytes"));
  // tokenizer.json: same checks
  const tok = path.join(dir, "tokenizer.json");
  fs.writeFileSync(tok, `{"model":{"vocab":{}},"normalizer":${deep.replace(/\[/g, '{"a":').replace(/\]/g, "}").replace(/\{"a":\}/, "{}")}}`);
  assert.throws(() => loadTokenizer(dir), isErr("E_LIMIT", tok, "nesting depth"));
  fs.writeFileSync(tok, "");
  fs.truncateSync(tok, LIMITS.maxJsonFileBytes + 1);
  assert.throws(() => loadTokenizer(dir), isErr("E_LIMIT", tok, "maxJsonFileBytes"));
});

test("jsonDepth: brackets inside strings and escapes do not count", () => {
  const b = (s: string): Uint8Array => Buffer.from(s, "utf8");
  assert.equal(jsonDepth(b("1")).depth, 0);
  assert.equal(jsonDepth(b('{"a":[1,{"b":[]}]}')).depth, 4);
  assert.equal(jsonDepth(b('["[[[[", "\\"[[[", "日本[語"]')).depth, 1);
  assert.equal(jsonDepth(b("[".repeat(100)), 10).depth, 11, "stops one past the bound");
});

test("tokenizer ids: a vocab or added-token id ≥ 2^24 is E_LIMIT naming the field, before the library walks the id range", () => {
  const dir = copyFixture("stories260k");
  const file = path.join(dir, "tokenizer.json");
  const orig = fs.readFileSync(file, "utf8");
  const withVocab = (id: unknown): void => {
    const j = JSON.parse(orig) as { model: { vocab: Record<string, unknown> } };
    j.model.vocab["zzhuge"] = id;
    fs.writeFileSync(file, JSON.stringify(j));
  };
  const t0 = Date.now();
  withVocab(1e9);
  assert.throws(() => loadTokenizer(dir), isErr("E_LIMIT", file, 'model.vocab["zzhuge"]', "1000000000", "maxVocab"));
  withVocab(-1);
  assert.throws(() => loadTokenizer(dir), isErr("E_TOKENIZER", file, 'model.vocab["zzhuge"]', "non-negative integer"));
  withVocab(2.5);
  assert.throws(() => loadTokenizer(dir), isErr("E_TOKENIZER", file, "non-negative integer"));
  withVocab("7");
  assert.throws(() => loadTokenizer(dir), isErr("E_TOKENIZER", file, "non-negative integer"));
  const j = JSON.parse(orig) as { added_tokens: { id: number }[] };
  j.added_tokens.push({ ...j.added_tokens[0]!, id: 1e9, content: "<huge>" } as { id: number });
  fs.writeFileSync(file, JSON.stringify(j));
  assert.throws(() => loadTokenizer(dir), isErr("E_LIMIT", file, `added_tokens[${j.added_tokens.length - 1}].id`, "maxVocab"));
  assert.ok(Date.now() - t0 < 20_000, "rejections are immediate, not a walk over 1e9 ids");
  // the largest allowed id loads
  withVocab(LIMITS.maxVocab - 1);
  assert.equal(loadTokenizer(dir).vocabSize, LIMITS.maxVocab);
});

test("tokenizer ids must fit config.json vocab_size / the embedding rows", async () => {
  const dir = copyFixture("stories260k");
  editJson(dir, "tokenizer.json", (j) => {
    const added = j["added_tokens"] as Record<string, unknown>[];
    added.push({ ...added[0]!, id: 600, content: "<extra>" });
  });
  await assert.rejects(LanguageModel.load(dir), isErr("E_TOKENIZER", path.join(dir, "tokenizer.json"), "token id 600", '"<extra>"', "vocab_size = 512"));
  // weights-only loading does not need the tokenizer
  assert.equal((await LanguageModel.load(dir, { noTokenizer: true })).config.vocabSize, 512);
});

test("RoPE tables are built for the positions used, not for max_position_embeddings", async () => {
  const dir = copyFixture("stories260k");
  editJson(dir, "config.json", (j) => {
    j["max_position_embeddings"] = LIMITS.maxPositions;
  });
  const big = await LanguageModel.load(dir);
  const ref = await LanguageModel.load(fixtureModel("stories260k"));
  const rope = (big.arch as Llama).rope;
  assert.equal(rope.builtRows, 0, "nothing built at load");
  const ids = [1, 403, 407, 261, 378];
  const a = forward(big, makeBatch([ids], 0, 512), { logits: "all" }).logits!;
  const b = forward(ref, makeBatch([ids], 0, 512), { logits: "all" }).logits!;
  assert.ok(rope.builtRows >= ids.length && rope.builtRows <= 64, `built ${rope.builtRows} rows`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  assert.ok(d <= 1e-5, `same logits as the fixture (max |Δ| ${d})`);
  // growth: at least doubling (or to what is asked), never beyond the configured maximum; HS/2 = 4 columns
  assert.equal(rope.builtRows, 64);
  assert.equal(rope.cover(65).cos.length, 128 * 4);
  assert.equal(rope.cover(1000).cos.length, 1000 * 4);
  assert.equal(rope.cover(LIMITS.maxPositions).cos.length, LIMITS.maxPositions * 4, "exactly the configured maximum, never more");
  assert.throws(() => rope.cover(LIMITS.maxPositions + 1), isErr("E_ARG", "max_position_embeddings"));
});

/** A raw safetensors file from header text and data bytes. */
function rawSafetensors(file: string, headerText: string, data: Uint8Array = new Uint8Array(0), claimedLength?: number): void {
  const h = Buffer.from(headerText, "utf8");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(claimedLength ?? h.length));
  fs.writeFileSync(file, Buffer.concat([prefix, h, data]));
}

test("safetensors: header nested 200 000 deep is E_LIMIT (no stack overflow formatting the error)", () => {
  const file = path.join(tmpDir(), "deep.safetensors");
  const shape = "[".repeat(200_000) + "1" + "]".repeat(200_000);
  rawSafetensors(file, `{"w":{"dtype":"F32","shape":${shape},"data_offsets":[0,4]}}`, new Uint8Array(4));
  assert.throws(() => SafetensorsFile.open(file), isErr("E_LIMIT", "deep.safetensors", "header", "nesting depth", "maxJsonDepth"));
  // a merely nested (depth 4) shape is an ordinary E_CHECKPOINT naming the tensor
  rawSafetensors(file, `{"w":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}}`, new Uint8Array(4));
  assert.throws(() => SafetensorsFile.open(file), isErr("E_CHECKPOINT", "deep.safetensors", '"w"', "shape"));
});

test("safetensors: header length over 100 000 000 bytes is E_LIMIT", () => {
  const file = path.join(tmpDir(), "big-header.safetensors");
  rawSafetensors(file, "{}", new Uint8Array(0), LIMITS.maxSafetensorsHeaderBytes + 1);
  assert.throws(() => SafetensorsFile.open(file), isErr("E_LIMIT", "big-header.safetensors", "header length", "100000001", "maxSafetensorsHeaderBytes"));
});

test("safetensors: a tensor over 2^31 − 1 elements is E_LIMIT naming it (before offsets or allocation)", () => {
  const dir = tmpDir();
  const file = path.join(dir, "huge.safetensors");
  // an embedding of 2^33 elements (the fuzzer's crash) and one just over the limit
  for (const shape of [[2 ** 23, 2 ** 10], [2 ** 31], [1, 2, 3, 2 ** 30]]) {
    rawSafetensors(file, JSON.stringify({ "model.embed_tokens.weight": { dtype: "F32", shape, data_offsets: [0, 4] } }), new Uint8Array(4));
    assert.throws(() => SafetensorsFile.open(file), isErr("E_LIMIT", "huge.safetensors", '"model.embed_tokens.weight"', "maxTensorElements"));
  }
  // a zero dimension makes any shape empty, whatever the other dims
  rawSafetensors(file, JSON.stringify({ e: { dtype: "F32", shape: [2 ** 40, 0], data_offsets: [0, 0] } }));
  const st = SafetensorsFile.open(file);
  assert.equal(st.read("e").length, 0);
  st.close();
  // a non-integer dimension is E_CHECKPOINT naming the tensor
  rawSafetensors(file, JSON.stringify({ w: { dtype: "F32", shape: [1.5], data_offsets: [0, 4] } }), new Uint8Array(4));
  assert.throws(() => SafetensorsFile.open(file), isErr("E_CHECKPOINT", '"w"', "shape"));
});

test("safetensors: data_offsets must tile the data section exactly (no gap, no trailing bytes)", () => {
  const dir = tmpDir();
  const file = path.join(dir, "tiling.safetensors");
  const hdr = (o: Record<string, [number, number]>): string =>
    JSON.stringify(Object.fromEntries(Object.entries(o).map(([k, [b, e]]) => [k, { dtype: "F32", shape: [(e - b) / 4], data_offsets: [b, e] }])));
  rawSafetensors(file, hdr({ a: [0, 8], b: [12, 16] }), new Uint8Array(16));
  assert.throws(() => SafetensorsFile.open(file), isErr("E_CHECKPOINT", "tiling.safetensors", '"b"', "gap"));
  rawSafetensors(file, hdr({ a: [4, 8] }), new Uint8Array(8));
  assert.throws(() => SafetensorsFile.open(file), isErr("E_CHECKPOINT", '"a"', "gap"));
  rawSafetensors(file, hdr({ a: [0, 8] }), new Uint8Array(12));
  assert.throws(() => SafetensorsFile.open(file), isErr("E_CHECKPOINT", "tiling.safetensors", '"a"', "4 bytes belong to no tensor"));
  rawSafetensors(file, "{}", new Uint8Array(4));
  assert.throws(() => SafetensorsFile.open(file), isErr("E_CHECKPOINT", "tiling.safetensors", "no tensors"));
  rawSafetensors(file, hdr({ a: [0, 8], b: [8, 16] }), new Uint8Array(16));
  const st = SafetensorsFile.open(file);
  assert.deepEqual(st.names(), ["a", "b"]);
  st.close();
});
