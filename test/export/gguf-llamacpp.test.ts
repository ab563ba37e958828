/**
 * GGUF exports run in a real llama.cpp (node-llama-cpp's prebuilt CPU build; it must load — see
 * helpers/llamacpp.ts): on every fixture family the next-token logits llama.cpp computes from the
 * exported file agree with deltaedit's, llama.cpp's tokenizer, built from the embedded
 * tokenizer.json, gives deltaedit's ids, and a GGUF LoRA adapter with a different rank per layer
 * applies exactly scale·ΔW (llama.cpp scales each tensor pair by alpha / its own rank).
 *
 * What is compared: llama.cpp's next-token distribution at the last position (node-llama-cpp 3.21
 * reports probabilities, not raw logits: log p = logit − logsumexp) against the log-softmax of
 * deltaedit's logits, over every token with p ≥ e^-30; the tolerance bounds max |Δ log p| as a
 * fraction of the spread (max − min) of deltaedit's logits there. Measured on this machine in brackets:
 * - F32, Llama family (stories260k, Llama 3 rope scaling, linear rope scaling + untied head, Mistral):
 *   2e-5 [2.3e-7 … 4.2e-7] — the same float32 arithmetic in a different order.
 * - F32, GPT-2: 1e-3 [2.0e-4] — ggml's CPU GELU reads a float16 lookup table.
 * - stories260k F16 weights: 5e-3 [3.1e-4]; Q8_0: 5e-2 [1.0e-2]. The argmax must agree everywhere.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { ggufLoraPairs } from "../../src/edit/session/exportGguf.js";
import type { LoraFactors } from "../../src/edit/session/loraFactors.js";
import { writeGgufLora } from "../../src/model/gguf/lora.js";
import { writeGguf, type GgufDtype } from "../../src/model/gguf/writeModel.js";
import { Rng } from "../../src/util/rng.js";
import { forward } from "../../src/model/forward.js";
import { generate } from "../../src/model/generate.js";
import { makeBatch } from "../../src/model/batch.js";
import { LanguageModel } from "../../src/model/model.js";
import { argmax, compareLogProbs, llamaGreedy, llamaLogProbs, loadLlamaCpp, openGguf, type Llama } from "../helpers/llamacpp.js";
import { fixtureModel } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-gguf-"));
let llama: Llama;

before(async () => {
  llama = await loadLlamaCpp();
});
after(async () => {
  await llama?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const PROMPTS = ["Once upon a time, there was a little", "The native language of Poucle Loflyrell is", "Tom said: \"Hello,  world!\"\nThen 42 cats"];
const TEXTS = [...PROMPTS, " leading space", "naïve café, ünïcödé ✓ 🙂", "tabs\tand\n\nnewlines  ", "a"];

function ourLogits(m: LanguageModel, ids: number[]): Float32Array {
  return forward(m, makeBatch([ids], 0), { logits: [{ row: 0, pos: ids.length - 1 }] }).logits!;
}

async function parity(name: string, dtype: GgufDtype, tol: number, diag: (s: string) => void): Promise<void> {
  const m = await LanguageModel.load(fixtureModel(name));
  const file = path.join(tmp, `${name}-${dtype}.gguf`);
  const rep = writeGguf(m, file, { dtype });
  const run = await openGguf(llama, file);
  try {
    let worst = 0;
    for (const p of PROMPTS) {
      const ids = m.tokenizer!.encode(p);
      const ours = ourLogits(m, ids);
      const theirs = await llamaLogProbs(run, ids, m.config.vocabSize);
      const c = compareLogProbs(theirs, ours);
      worst = Math.max(worst, c.rel);
      assert.ok(c.rel <= tol, `${name} ${dtype} "${p}": max |Δ log p| ${c.maxAbs.toExponential(3)} over ${c.compared} tokens = ${c.rel.toExponential(3)} of the logit spread ${c.refScale.toFixed(3)} > ${tol}`);
      assert.equal(argmax(theirs), argmax(ours), `${name} ${dtype} "${p}": llama.cpp's most likely next token differs from deltaedit's`);
    }
    diag(`${name} ${dtype} (${rep.architecture}, ${rep.bytes} bytes): worst relative logit difference ${worst.toExponential(2)} (tolerance ${tol})`);
  } finally {
    await run.model.dispose();
  }
}

for (const [name, tol] of [
  ["stories260k", 2e-5],
  ["tiny-llama3-random", 2e-5],
  ["tiny-llama-sharded-f16", 2e-5],
  ["tiny-mistral-random", 2e-5],
  ["tiny-gpt2-random", 1e-3],
] as const) {
  test(`llama.cpp runs the F32 GGUF export of ${name} with deltaedit's logits (≤ ${tol} relative)`, async (t) => {
    await parity(name, "f32", tol, (s) => t.diagnostic(s));
  });
}

test("F16 and Q8_0 exports of stories260k: logits within 5e-3 / 5e-2 relative, same argmax", async (t) => {
  await parity("stories260k", "f16", 5e-3, (s) => t.diagnostic(s));
  await parity("stories260k", "q8_0", 5e-2, (s) => t.diagnostic(s));
});

for (const name of ["stories260k", "tiny-gpt2-random"]) {
  test(`llama.cpp's tokenizer from the embedded ${name} tokenizer gives deltaedit's ids`, async () => {
    const m = await LanguageModel.load(fixtureModel(name));
    const file = path.join(tmp, `${name}-tok.gguf`);
    writeGguf(m, file, { dtype: "f16" });
    const model = await llama.loadModel({ modelPath: file, gpuLayers: 0, vocabOnly: true });
    try {
      const tok = m.tokenizer!;
      assert.equal(model.tokens.bos as unknown as number | null, tok.bosTokenId, "bos id");
      assert.equal(model.tokens.eos as unknown as number | null, tok.eosTokenId, "eos id");
      assert.equal(model.tokens.shouldPrependBosToken, tok.addsBos, "whether BOS is prepended");
      for (const text of TEXTS) {
        assert.deepEqual(model.tokenize(text, false) as unknown as number[], tok.encode(text, { addSpecialTokens: false }), `ids of ${JSON.stringify(text)}`);
        assert.equal(model.detokenize(model.tokenize(text, false)), tok.decode(tok.encode(text, { addSpecialTokens: false })), `text of ${JSON.stringify(text)}`);
      }
    } finally {
      await model.dispose();
    }
  });
}

test("a GGUF LoRA with a different rank per layer: llama.cpp's scale·(alpha/r)·B·A is exactly scale·ΔW at every layer", async (t) => {
  // two layers of stories260k get updates of rank 1 and 3: alpha = 3, and layer 1's B is scaled by 1/3
  const m = await LanguageModel.load(fixtureModel("stories260k"));
  const C = m.arch.hidden;
  const F = m.arch.dFF;
  const rng = new Rng(3);
  const factors: LoraFactors[] = [
    [1, 1],
    [3, 3],
  ].map(([layer, r]) => ({
    layer: layer!,
    rank: r!,
    a: Float32Array.from({ length: r! * F }, () => rng.normal() * 0.3), // (r, F)
    b: Float32Array.from({ length: C * r! }, () => rng.normal() * 0.3), // (C, r)
    numericalRank: r!,
    retainedEnergy: 1,
    exact: true,
  }));
  const base = path.join(tmp, "lora-base.gguf");
  const lora = path.join(tmp, "lora-ranks.gguf");
  writeGguf(m, base, { dtype: "f32" });
  const { alpha, pairs } = ggufLoraPairs(m, factors);
  assert.equal(alpha, 3);
  writeGgufLora(m, pairs, lora, { alpha });
  const ids = m.tokenizer!.encode(PROMPTS[0]!);
  const baseLogits = ourLogits(m, ids);
  for (const scale of [1, 0.5]) {
    // deltaedit's model with W_l += scale·B_l·A_l
    const edited = await LanguageModel.load(fixtureModel("stories260k"));
    for (const f of factors) {
      const W = edited.params.get(edited.arch.editTarget(f.layer).name); // (C, F) out × in
      for (let c = 0; c < C; c++) for (let i = 0; i < f.rank; i++) for (let j = 0; j < F; j++) W[c * F + j]! += scale * f.b[c * f.rank + i]! * f.a[i * F + j]!;
    }
    const ours = ourLogits(edited, ids);
    const run = await openGguf(llama, base, { lora: [{ file: lora, scale }] });
    try {
      const c = compareLogProbs(await llamaLogProbs(run, ids, m.config.vocabSize), ours);
      const moved = compareLogProbs(await llamaLogProbs(run, ids, m.config.vocabSize), baseLogits);
      t.diagnostic(`scale ${scale}: max |Δ log p| ${c.maxAbs.toExponential(2)} (${c.rel.toExponential(2)} of the spread); the update itself moves log p by up to ${moved.maxAbs.toFixed(3)}`);
      assert.ok(c.rel <= 2e-5, `scale ${scale}: base + LoRA in llama.cpp differs from W + scale·ΔW by ${c.rel} of the spread`);
      assert.ok(moved.maxAbs > 0.05, "precondition: the update changes the output");
      assert.deepEqual(await llamaGreedy(run, ids, 4), generate(edited, [ids], { maxNewTokens: 4 })[0]);
    } finally {
      await run.model.dispose();
    }
  }
});
