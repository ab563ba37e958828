/**
 * The GGUF files themselves, read back by an independent parser (node-llama-cpp's pure-JS
 * readGgufFileInfo, imported from .llamacpp/: see helpers/llamacpp.ts): version, metadata keys and
 * values, tensor names, dimensions (innermost first) and element types as llama.cpp's converter
 * writes them for Llama (byte-level and sentencepiece tokenizers) and GPT-2; the Q8_0 quantizer and
 * the rotary row permutation against their definitions; `deltaedit export --format gguf|gguf-lora`
 * end to end; and bad input — an unsupported architecture or tokenizer, an empty session, an
 * existing or unwritable --out, a disk that fills up mid-write — is a clear error that leaves no
 * file behind.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { cli } from "../helpers/cli.js";
import { DeltaEditError } from "../../src/errors.js";
import { Editor } from "../../src/eval/editor.js";
import { architectureFor } from "../../src/model/arch/index.js";
import { permuteRopeRows } from "../../src/model/gguf/plan.js";
import { quantizeQ8_0 } from "../../src/model/gguf/quantize.js";
import { writeGguf } from "../../src/model/gguf/writeModel.js";
import { f16ToF32 } from "../../src/model/half.js";
import { LanguageModel } from "../../src/model/model.js";
import { Rng } from "../../src/util/rng.js";
import { readGgufFileInfo } from "../helpers/llamacpp.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-gguf-export-"));
const WORLD = path.join(repoRoot(), "worlds", "factworld-v1");
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Files in `dir` whose name contains ".tmp-" (temporaries of atomic writes). */
const temporaries = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.includes(".tmp-"));

function throwsCode(fn: () => unknown, code: string, ...patterns: RegExp[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DeltaEditError, `expected a DeltaEditError, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

type Meta = Record<string, unknown>;
const dig = (m: Meta, key: string): unknown => key.split(".").reduce<unknown>((o, k) => (o as Meta | undefined)?.[k], m);

test("world (Llama, byte-level BPE) as F16 GGUF: converter's keys, tensor names, dims and types", async () => {
  const m = await LanguageModel.load(WORLD);
  const file = path.join(tmp, "world-f16.gguf");
  const rep = writeGguf(m, file, { dtype: "f16" });
  assert.deepEqual(rep.tokenizer, { model: "gpt2", pre: "gpt-2", tokens: 4096, merges: 3839 });
  const info = await readGgufFileInfo(file);
  assert.equal(info.version, 3);
  const md = info.metadata as unknown as Meta;
  const expect: [string, unknown][] = [
    ["general.architecture", "llama"],
    ["general.type", "model"],
    ["general.file_type", 1],
    ["llama.block_count", 6],
    ["llama.context_length", 128],
    ["llama.embedding_length", 256],
    ["llama.feed_forward_length", 768],
    ["llama.attention.head_count", 8],
    ["llama.attention.head_count_kv", 4],
    ["llama.rope.dimension_count", 32],
    ["llama.rope.freq_base", 10000],
    ["tokenizer.ggml.model", "gpt2"],
    ["tokenizer.ggml.pre", "gpt-2"],
    ["tokenizer.ggml.bos_token_id", 4095],
    ["tokenizer.ggml.eos_token_id", 4095],
    ["tokenizer.ggml.add_bos_token", true],
    ["tokenizer.ggml.add_eos_token", false],
  ];
  for (const [k, v] of expect) assert.equal(dig(md, k), v, k);
  assert.ok(Math.abs((dig(md, "llama.attention.layer_norm_rms_epsilon") as number) - 1e-5) < 1e-12);
  const tokens = dig(md, "tokenizer.ggml.tokens") as string[];
  const types = dig(md, "tokenizer.ggml.token_type") as number[];
  assert.equal(tokens.length, 4096);
  assert.equal(tokens[258], "Ġt");
  assert.equal(tokens[4095], "<|endoftext|>");
  assert.equal(types[4095], 3, "the special token is CONTROL");
  assert.equal(types[258], 1, "an ordinary token is NORMAL");
  assert.equal((dig(md, "tokenizer.ggml.merges") as string[])[2], "Ġ t");

  const t = new Map(info.tensorInfo!.map((x) => [x.name, x]));
  assert.equal(t.size, 1 + 6 * 9 + 1, "token_embd, 9 per block, output_norm; no output.weight (tied)");
  const dims = (n: string): number[] => t.get(n)!.dimensions.map(Number);
  assert.deepEqual(dims("token_embd.weight"), [256, 4096]);
  assert.deepEqual(dims("blk.0.attn_q.weight"), [256, 256]);
  assert.deepEqual(dims("blk.0.attn_k.weight"), [256, 128]);
  assert.deepEqual(dims("blk.5.ffn_gate.weight"), [256, 768]);
  assert.deepEqual(dims("blk.5.ffn_down.weight"), [768, 256]);
  assert.deepEqual(dims("output_norm.weight"), [256]);
  assert.equal(t.get("blk.0.ffn_down.weight")!.ggmlType, 1, "matrices F16");
  assert.equal(t.get("blk.0.attn_norm.weight")!.ggmlType, 0, "norms F32");
  for (const x of info.tensorInfo!) assert.equal(Number(x.offset) % 32, 0, `${x.name} aligned`);
});

test("GPT-2 as Q8_0 GGUF: Conv1D weights transposed, qkv fused, output written, norms with biases", async () => {
  const m = await LanguageModel.load(fixtureModel("tiny-gpt2-random"));
  const file = path.join(tmp, "gpt2-q8.gguf");
  writeGguf(m, file, { dtype: "q8_0" });
  const info = await readGgufFileInfo(file);
  const md = info.metadata as unknown as Meta;
  for (const [k, v] of [
    ["general.architecture", "gpt2"],
    ["general.file_type", 7],
    ["general.quantization_version", 2],
    ["gpt2.block_count", 2],
    ["gpt2.context_length", 128],
    ["gpt2.embedding_length", 64],
    ["gpt2.feed_forward_length", 256],
    ["gpt2.attention.head_count", 4],
    ["tokenizer.ggml.model", "gpt2"],
    ["tokenizer.ggml.pre", "gpt-2"],
    ["tokenizer.ggml.add_bos_token", false],
  ] as const) {
    assert.equal(dig(md, k), v, k);
  }
  const t = new Map(info.tensorInfo!.map((x) => [x.name, x]));
  const dims = (n: string): number[] => t.get(n)!.dimensions.map(Number);
  assert.deepEqual(dims("position_embd.weight"), [64, 128]);
  assert.deepEqual(dims("blk.1.attn_qkv.weight"), [64, 192]);
  assert.deepEqual(dims("blk.1.attn_output.weight"), [64, 64]);
  assert.deepEqual(dims("blk.1.ffn_up.weight"), [64, 256]);
  assert.deepEqual(dims("blk.1.ffn_down.weight"), [256, 64]);
  assert.deepEqual(dims("output.weight"), [64, 50257]);
  for (const n of ["blk.0.attn_norm.bias", "blk.0.ffn_norm.bias", "output_norm.bias", "blk.0.attn_qkv.bias", "blk.0.ffn_down.bias"]) assert.ok(t.has(n), n);
  assert.equal(t.get("blk.1.ffn_down.weight")!.ggmlType, 8, "Q8_0");
  assert.equal(t.get("blk.1.ffn_down.bias")!.ggmlType, 0, "biases F32");
});

test("stories260k (sentencepiece-style BPE) embeds a llama tokenizer: scores in merge order, BYTE/UNKNOWN/CONTROL types", async () => {
  const m = await LanguageModel.load(fixtureModel("stories260k"));
  const file = path.join(tmp, "stories.gguf");
  const rep = writeGguf(m, file, { dtype: "f32" });
  assert.equal(rep.tokenizer.model, "llama");
  const md = (await readGgufFileInfo(file, { readTensorInfo: false })).metadata as unknown as Meta;
  const tokens = dig(md, "tokenizer.ggml.tokens") as string[];
  const types = dig(md, "tokenizer.ggml.token_type") as number[];
  const scores = dig(md, "tokenizer.ggml.scores") as number[];
  assert.equal(dig(md, "tokenizer.ggml.pre"), "default");
  assert.equal(dig(md, "tokenizer.ggml.add_space_prefix"), true);
  assert.equal(dig(md, "tokenizer.ggml.unknown_token_id"), 0);
  assert.deepEqual([types[0], types[1], types[2], types[3 + 10], types[300]], [2, 3, 3, 6, 1], "<unk> UNKNOWN, <s> </s> CONTROL, <0x0A> BYTE, pieces NORMAL");
  assert.equal(tokens[13], "<0x0A>");
  assert.ok(scores[259] === 0, "▁t comes from the first merge");
  assert.ok(scores[259]! > scores[260]! && scores[260]! > scores[300]!, "earlier merges score higher");
});

test("Q8_0 blocks: f16 scale max|x|/127, int8 round half away from zero, |x − d·q| ≤ d/2", () => {
  const rng = new Rng(7);
  const x = new Float32Array(96);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal() * 3;
  x[40] = 0; // a block with a zero; and an all-zero block:
  x.fill(0, 64, 96);
  const q = quantizeQ8_0(x);
  assert.equal(q.length, 3 * 34);
  const view = new DataView(q.buffer);
  for (let b = 0; b < 3; b++) {
    const d = f16ToF32(new Uint16Array([view.getUint16(b * 34, true)]))[0]!;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
    assert.ok(Math.abs(d - amax / 127) <= (amax / 127) * 1e-3, `block ${b} scale`);
    for (let j = 0; j < 32; j++) {
      const qi = view.getInt8(b * 34 + 2 + j);
      assert.ok(Math.abs(x[b * 32 + j]! - d * qi) <= d / 2 + amax * 1e-3, `block ${b} element ${j}`);
    }
  }
  assert.equal(f16ToF32(new Uint16Array([view.getUint16(68, true)]))[0], 0, "all-zero block: d = 0");
  throwsCode(() => quantizeQ8_0(new Float32Array(33)), "E_SHAPE", /not whole blocks of 32/);
});

test("rotary row permutation = the converter's reshape(heads, 2, HS/2, C).swapaxes(1, 2)", () => {
  const heads = 3;
  const HS = 8;
  const C = 5;
  const x = new Float32Array(heads * HS * C).map((_, i) => i);
  const y = permuteRopeRows(x, heads, C);
  for (let h = 0; h < heads; h++)
    for (let two = 0; two < 2; two++)
      for (let i = 0; i < HS / 2; i++)
        for (let c = 0; c < C; c++) {
          // source index [h, two, i, c] lands at [h, i, two, c]
          assert.equal(y[((h * (HS / 2) + i) * 2 + two) * C + c], x[((h * 2 + two) * (HS / 2) + i) * C + c]);
        }
});

test("unsupported models are E_CONFIG / E_TOKENIZER naming the field, and no file is created", async () => {
  const qwen = await LanguageModel.load(fixtureModel("tiny-qwen2-random"));
  const f1 = path.join(tmp, "qwen.gguf");
  throwsCode(() => writeGguf(qwen, f1), "E_CONFIG", /tiny-qwen2-random\/config\.json: model_type "qwen2" cannot be exported to GGUF yet \(supported: llama, mistral, gpt2\)/);
  assert.equal(fs.existsSync(f1), false);

  const llama = await LanguageModel.load(fixtureModel("stories260k"));
  throwsCode(() => architectureFor(llama.config).ggufPlan({ ...llama.config, attentionBias: true }, "x/config.json"), "E_CONFIG", /x\/config\.json: attention_bias = true/);

  // a GPT-2 tokenizer whose pre-tokenizer llama.cpp has no name for
  const dir = path.join(tmp, "gpt2-whitespace");
  fs.mkdirSync(dir);
  const src = fixtureModel("tiny-gpt2-random");
  for (const f of fs.readdirSync(src)) if (f !== "tokenizer.json") fs.symlinkSync(path.join(src, f), path.join(dir, f));
  const tj = JSON.parse(fs.readFileSync(path.join(src, "tokenizer.json"), "utf8")) as Record<string, unknown>;
  tj["pre_tokenizer"] = { type: "Sequence", pretokenizers: [{ type: "Whitespace" }, { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false }] };
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tj));
  const odd = await LanguageModel.load(dir);
  const f2 = path.join(tmp, "odd.gguf");
  throwsCode(() => writeGguf(odd, f2), "E_TOKENIZER", /gpt2-whitespace\/tokenizer\.json: pre_tokenizer .* is not one llama\.cpp knows by name/);
  assert.equal(fs.existsSync(f2), false);
  assert.deepEqual(temporaries(tmp), []);
});

test("an existing, empty or unreachable output and a disk filling up mid-write: clear errors, nothing left behind", async () => {
  const m = await LanguageModel.load(fixtureModel("stories260k"));
  const keep = path.join(tmp, "keep.gguf");
  fs.writeFileSync(keep, "keep me");
  throwsCode(() => writeGguf(m, keep), "E_ARG", /keep\.gguf already exists; a GGUF export never overwrites/);
  assert.equal(fs.readFileSync(keep, "utf8"), "keep me");
  throwsCode(() => writeGguf(m, ""), "E_ARG", /non-empty path/);
  throwsCode(() => writeGguf(m, path.join(tmp, "no", "such", "dir.gguf")), "E_ARG", /does not exist/);
  throwsCode(() => writeGguf(m, path.join(tmp, "x.gguf"), { dtype: "q4" as never }), "E_ARG", /dtype must be one of f32, f16, q8_0/);

  const out = path.join(tmp, "full.gguf");
  const realWrite = fs.writeSync;
  let writes = 0;
  fs.writeSync = ((...a: Parameters<typeof fs.writeSync>) => {
    if (++writes > 3) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    return (realWrite as (...b: unknown[]) => number)(...a);
  }) as typeof fs.writeSync;
  try {
    throwsCode(() => writeGguf(m, out), "E_IO", /full\.gguf\.tmp-\d+: write failed: no space left on device/);
  } finally {
    fs.writeSync = realWrite;
  }
  assert.ok(writes > 3, "precondition: the write failed mid-way");
  assert.equal(fs.existsSync(out), false);
  assert.deepEqual(temporaries(tmp), []);
});

test("deltaedit export --format gguf / gguf-lora on a session: files, reports, usage errors, empty sessions", async () => {
  const dir = path.join(tmp, "session");
  const ed = await Editor.create({ dir, model: WORLD, method: "deltaedit" });
  await ed.close();
  const base = ["export", "--session", dir];

  // no edit yet: an adapter would be empty
  const lEmpty = path.join(tmp, "empty.lora.gguf");
  const e0 = await cli([...base, "--format", "gguf-lora", "--out", lEmpty]);
  assert.equal(e0.code, 1, e0.err);
  assert.match(e0.err, /the session holds no update to export/);
  assert.equal(fs.existsSync(lEmpty), false);

  const ed2 = await Editor.open(dir);
  const r = await ed2.edit([{ prompt: "{} is a professional athlete in", subject: "Showi Jeclenis", targetNew: "soccer" }]);
  assert.equal(r.applied, 1);
  await ed2.close();

  const g = path.join(tmp, "edited-q8.gguf");
  const ok1 = await cli([...base, "--format", "gguf", "--out", g, "--dtype", "q8_0", "--json"]);
  assert.equal(ok1.code, 0, ok1.err);
  const j1 = JSON.parse(ok1.out) as { architecture: string; dtype: string; unedited: boolean; tokenizer: { model: string } };
  assert.deepEqual([j1.architecture, j1.dtype, j1.unedited, j1.tokenizer.model], ["llama", "q8_0", false, "gpt2"]);
  const b = path.join(tmp, "base.gguf");
  const ok2 = await cli([...base, "--format", "gguf", "--unedited", "--out", b]);
  assert.equal(ok2.code, 0, ok2.err);
  assert.match(ok2.out, /GGUF llama, unedited model, f16, 56 tensors/);
  const l = path.join(tmp, "edits.lora.gguf");
  const ok3 = await cli([...base, "--format", "gguf-lora", "--out", l, "--json"]);
  assert.equal(ok3.code, 0, ok3.err);
  const j3 = JSON.parse(ok3.out) as { alpha: number; layers: { module: string; rank: number; exact: boolean }[] };
  assert.deepEqual(j3.layers.map((x) => x.module), ["blk.1.ffn_down", "blk.2.ffn_down"]);
  assert.ok(j3.layers.every((x) => x.exact && x.rank >= 1));
  assert.equal(j3.alpha, Math.max(...j3.layers.map((x) => x.rank)));
  const info = await readGgufFileInfo(l);
  const md = info.metadata as unknown as Meta;
  assert.deepEqual([dig(md, "general.architecture"), dig(md, "general.type"), dig(md, "adapter.type"), dig(md, "adapter.lora.alpha")], ["llama", "adapter", "lora", j3.alpha]);
  const t = new Map(info.tensorInfo!.map((x) => [x.name, x.dimensions.map(Number)]));
  const r1 = j3.layers[0]!.rank;
  assert.deepEqual(t.get("blk.1.ffn_down.weight.lora_a"), [768, r1], "lora_a: ne [in, r]");
  assert.deepEqual(t.get("blk.1.ffn_down.weight.lora_b"), [r1, 256], "lora_b: ne [r, out]");

  // usage errors: exit code 2, a message, nothing written, the existing file untouched
  fs.writeFileSync(path.join(tmp, "exists.gguf"), "keep me");
  for (const [args, re] of [
    [["--format", "gguf", "--out", path.join(tmp, "exists.gguf")], /--out .*exists\.gguf already exists; give a new file name/],
    [["--format", "gguf", "--out", path.join(tmp, "missing", "x.gguf")], /the directory of --out .* does not exist/],
    [["--format", "gguf-lora", "--dtype", "q8_0", "--out", path.join(tmp, "q.gguf")], /a gguf-lora adapter is written as f32 or f16/],
    [["--format", "lora", "--unedited", "--out", path.join(tmp, "u")], /--unedited applies to --format gguf only/],
    [["--format", "hf", "--dtype", "f16", "--out", path.join(tmp, "h")], /--dtype applies to --format gguf and gguf-lora only/],
    [["--format", "ggml", "--out", path.join(tmp, "g")], /--format must be one of hf, lora, gguf, gguf-lora/],
  ] as const) {
    const e = await cli([...base, ...args]);
    assert.equal(e.code, 2, `${args.join(" ")}: ${e.err}`);
    assert.match(e.err, re);
    assert.doesNotMatch(e.err, /internal error/);
  }
  assert.equal(fs.readFileSync(path.join(tmp, "exists.gguf"), "utf8"), "keep me");
  for (const n of ["q.gguf", "u", "h", "g"]) assert.equal(fs.existsSync(path.join(tmp, n)), false, n);
  assert.deepEqual(temporaries(tmp), []);
});
