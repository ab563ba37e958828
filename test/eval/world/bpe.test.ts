import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Tokenizer } from "@huggingface/tokenizers";
import { DeltaEditError } from "../../../src/errors.js";
import { ENDOFTEXT, trainBpe, type BpeModel } from "../../../src/eval/world/bpe.js";
import { BYTE_TO_UNICODE, fromByteLevel, preTokenize, splitSpecial, toByteLevel } from "../../../src/eval/world/bytelevel.js";
import { buildCorpus } from "../../../src/eval/world/corpus.js";
import { BpeEncoder } from "../../../src/eval/world/encoder.js";
import { buildKnowledgeBase } from "../../../src/eval/world/kb.js";
import { tokenizerConfig, tokenizerJson, writeTokenizerFiles } from "../../../src/eval/world/tokenizerjson.js";

const UNICODE_SAMPLES: readonly string[] = [
  "héllo wörld, ça va? Ünïcödé ßtraße",
  "日本語のテキストと中文 and 한국어",
  "emoji 🎉👨‍👩‍👧 and flags 🇳🇴",
  "  leading spaces, trailing spaces   ",
  "tabs\tand\nnewlines\r\n\n  indented",
  "it's we've they're I'm you'll he'd 'S",
  "numbers 12345 3.14159 -7 1,000,000",
  "symbols <>[]{}()!@#$%^&*_+=|\\/~`",
  "a<|endoftext|>b <|endoftext|><|endoftext|> c",
  "",
  " ",
  "\u00a0non-breaking\u2003em space\u200bzero width",
];

function hfLoad(model: BpeModel): Tokenizer {
  // a JSON round trip: exactly what a loader reading the files sees
  return new Tokenizer(JSON.parse(JSON.stringify(tokenizerJson(model))) as object, JSON.parse(JSON.stringify(tokenizerConfig(model))) as object);
}

function smallCorpus(): string[] {
  const kb = buildKnowledgeBase({ seed: 9, people: 120, cities: 12, companies: 12, bands: 12 });
  return buildCorpus(kb, { seed: 9 }).train;
}

test("byte-level table: 256 distinct printable characters, space is Ġ, inverse holds", () => {
  assert.equal(new Set(BYTE_TO_UNICODE).size, 256);
  assert.equal(BYTE_TO_UNICODE[0x20], "Ġ");
  assert.equal(BYTE_TO_UNICODE[0x41], "A");
  assert.equal(BYTE_TO_UNICODE[0x0a], "Ċ");
  const enc = new TextEncoder();
  for (const s of UNICODE_SAMPLES) assert.equal(fromByteLevel(toByteLevel(s, enc)), s);
  assert.deepEqual(preTokenize("Hello world's  big 42!"), ["Hello", " world", "'s", " ", " big", " 42", "!"]);
  assert.deepEqual(splitSpecial("a<|endoftext|>b", [ENDOFTEXT]), [
    { special: false, text: "a" },
    { special: true, text: ENDOFTEXT },
    { special: false, text: "b" },
  ]);
});

test("bpe: training is deterministic, fills the vocabulary, special token last", () => {
  const docs = smallCorpus();
  const a = trainBpe(docs, { vocabSize: 1024 });
  const b = trainBpe(docs, { vocabSize: 1024 });
  assert.deepEqual(a, b);
  assert.deepEqual(trainBpe([...docs].reverse(), { vocabSize: 1024 }), a, "independent of text order");
  assert.equal(a.tokens.length, 1024);
  assert.equal(new Set(a.tokens).size, 1024, "token strings are unique");
  assert.equal(a.tokens[1023], ENDOFTEXT);
  assert.deepEqual(a.specialTokens, [ENDOFTEXT]);
  for (let i = 0; i < 256; i++) assert.equal(a.tokens[i], BYTE_TO_UNICODE[i]);
  for (const [l, r] of a.merges) assert.ok(a.tokens.includes(l + r), `merge result ${l}${r} in vocab`);
  const smaller = trainBpe(docs, { vocabSize: 512 });
  assert.deepEqual(smaller.merges, a.merges.slice(0, smaller.merges.length), "merges are a prefix of a longer run");
});

test("bpe: our encoder and @huggingface/tokenizers agree and round-trip", () => {
  const docs = smallCorpus();
  const model = trainBpe(docs, { vocabSize: 1024 });
  const ours = new BpeEncoder(model);
  const hf = hfLoad(model);
  const sample = [...docs.filter((_, i) => i % 7 === 0).slice(0, 300), ...UNICODE_SAMPLES];
  for (const s of sample) {
    const ids = ours.encode(s);
    assert.deepEqual(hf.encode(s).ids, ids, `ids differ for ${JSON.stringify(s.slice(0, 80))}`);
    assert.equal(ours.decode(ids), s, "our round trip");
    // (tokenizers.js refuses to decode an empty id list)
    if (ids.length > 0) assert.equal(hf.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }), s, "HF round trip");
  }
  assert.deepEqual(ours.encode(`x${ENDOFTEXT}`).slice(-1), [1023]);
  assert.equal(hf.encode(ENDOFTEXT).ids.length, 1, "special token is one id, nothing added around it");
});

test("bpe: leading-space convention and tokenizer files at a realistic size", () => {
  const kb = buildKnowledgeBase({ seed: 0 });
  const docs = buildCorpus(kb, { seed: 0 }).train;
  const model = trainBpe(docs, { vocabSize: 4096 });
  assert.equal(model.tokens.length, 4096);
  const ours = new BpeEncoder(model);
  for (const w of ["French", "piano", "chess", "Norway", "banking", "jazz"]) {
    assert.deepEqual(ours.tokenize(` ${w}`), [`Ġ${w}`], `" ${w}" is one token`);
  }
  // every closed-set word object (not the subject-name sets) is at most 2 tokens with its leading space
  for (const r of kb.relations) {
    for (const o of r.objects) {
      if (o.id.includes(":") && (o.id.startsWith("company:") || o.id.startsWith("city:"))) continue;
      assert.ok(ours.encode(` ${o.str}`).length <= 2, `${r.id} object " ${o.str}" → ${ours.tokenize(` ${o.str}`).join("|")}`);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), "world-tok-"));
  try {
    writeTokenizerFiles(dir, model, { modelMaxLength: 256 });
    const tj = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")) as Record<string, unknown>;
    const tc = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
    assert.equal((tj.model as { type: string }).type, "BPE");
    assert.equal(Object.keys((tj.model as { vocab: object }).vocab).length, 4096);
    assert.deepEqual(tj.pre_tokenizer, { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true });
    assert.equal(tc.model_max_length, 256);
    assert.equal(tc.eos_token, ENDOFTEXT);
    const hf = new Tokenizer(tj, tc);
    for (const d of docs.slice(0, 200)) assert.deepEqual(hf.encode(d).ids, ours.encode(d));
    assert.equal(hf.token_to_id(ENDOFTEXT), 4095);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bpe: bad options are E_ARG", () => {
  assert.throws(() => trainBpe(["a b"], { vocabSize: 100 }), (e: unknown) => e instanceof DeltaEditError && e.code === "E_ARG" && e.message.includes("vocabSize"));
  assert.throws(() => trainBpe(["a b"], { vocabSize: 300, specialTokens: ["x", "x"] }), (e: unknown) => e instanceof DeltaEditError && e.message.includes("specialTokens"));
  // a tiny corpus runs out of pairs: the vocabulary is smaller than asked, never padded
  const m = trainBpe(["ab ab ab"], { vocabSize: 1000 });
  assert.ok(m.tokens.length < 1000 && m.tokens[m.tokens.length - 1] === ENDOFTEXT);
});
