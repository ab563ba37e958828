import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DeltaEditError } from "../../src/errors.js";
import { loadTokenizer } from "../../src/model/tokenizer.js";
import { fixtureModel } from "../helpers/paths.js";

test("GPT-2 tokenizer: known ids, no special tokens added, round trip", () => {
  const tok = loadTokenizer(fixtureModel("tiny-gpt2-random"));
  // Reference ids from GPT-2's BPE (HF GPT2TokenizerFast).
  assert.deepEqual(tok.encode("Hello world"), [15496, 995]);
  assert.deepEqual(tok.encode(" Paris"), [6342]);
  assert.deepEqual(tok.encode("The Eiffel Tower is located in"), [464, 412, 733, 417, 8765, 318, 5140, 287]);
  assert.deepEqual(tok.encode("<|endoftext|>"), [50256]);
  assert.equal(tok.vocabSize, 50257);
  assert.equal(tok.bosTokenId, 50256);
  assert.equal(tok.eosTokenId, 50256);
  assert.equal(tok.padTokenId, 50256);
  assert.equal(tok.addsBos, false);
  assert.equal(tok.idToToken(6342), "ĠParis");
  assert.equal(tok.tokenToId("ĠParis"), 6342);
  assert.equal(tok.tokenToId("definitely not a token"), undefined);
  for (const s of ["The Eiffel Tower is located in", " Paris", "naïve café, 1234 — ünïcödé 日本語 🙂", "  two  spaces\n\tnewline"]) {
    assert.equal(tok.decode(tok.encode(s)), s, `round trip of ${JSON.stringify(s)}`);
  }
  assert.equal(tok.decode([464, 50256, 6342]), "The<|endoftext|> Paris");
  assert.equal(tok.decode([464, 50256, 6342], { skipSpecialTokens: true }), "The Paris");
});

test("stories260k (Llama sentencepiece BPE) prepends BOS = 1", () => {
  const tok = loadTokenizer(fixtureModel("stories260k"));
  assert.equal(tok.bosTokenId, 1);
  assert.equal(tok.eosTokenId, 2);
  assert.equal(tok.padTokenId, 2);
  assert.equal(tok.addsBos, true);
  assert.equal(tok.vocabSize, 512);
  const ids = tok.encode("Once upon a time");
  assert.deepEqual(ids, [1, 403, 407, 261, 378]);
  assert.deepEqual(tok.encode("Once upon a time", { addSpecialTokens: false }), [403, 407, 261, 378]);
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), "Once upon a time");
  assert.equal(tok.decode(ids), "<s> Once upon a time");
  assert.equal(tok.idToToken(1), "<s>");
});

test("missing or invalid tokenizer.json is E_TOKENIZER naming the path", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-tok-"));
  const file = path.join(dir, "tokenizer.json");
  const check = (e: unknown): boolean =>
    e instanceof DeltaEditError && e.code === "E_TOKENIZER" && e.message.includes(file);
  assert.throws(() => loadTokenizer(dir), check);
  fs.writeFileSync(file, "{nope");
  assert.throws(() => loadTokenizer(dir), check);
  fs.writeFileSync(file, JSON.stringify({ version: "1.0" }));
  assert.throws(() => loadTokenizer(dir), check);
});
