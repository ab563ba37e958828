/**
 * Parity of the runtime with the independent numpy reference (tools/reference/): logits at every
 * position, block outputs and keys (taps), greedy generation ids, on every fixture model.
 * Tolerances (absolute on logits): GPT-2 5e-5, Llama family 5e-4 (the bar).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { makeBatch } from "../../src/model/batch.js";
import { forward } from "../../src/model/forward.js";
import { argmax, generate } from "../../src/model/generate.js";
import { LanguageModel } from "../../src/model/model.js";
import { GOLDEN_MODELS, maxAbsDiff, readGolden, readGoldenTensor } from "../helpers/golden.js";
import { fixtureModel } from "../helpers/paths.js";

for (const name of GOLDEN_MODELS) {
  test(`parity with the numpy reference: ${name}`, async (t) => {
    const g = readGolden(name);
    const model = await LanguageModel.load(fixtureModel(name));
    const tol = model.config.family === "gpt2" ? 5e-5 : 5e-4;
    const V = model.config.vocabSize;
    await t.test("logits at every position", () => {
      for (const c of g.logits) {
        const res = forward(model, makeBatch([c.ids], 0, V), { logits: "all" });
        const ref = readGoldenTensor(c);
        const d = maxAbsDiff(res.logits!, ref);
        assert.ok(d <= tol, `${name} case ${c.case}: max |Δlogit| = ${d} > ${tol}`);
        for (let p = 0; p < c.ids.length; p++) {
          assert.equal(argmax(res.logits!.subarray(p * V, (p + 1) * V)), c.argmax[p], `${name} case ${c.case}: argmax at position ${p}`);
        }
      }
    });
    await t.test("padded batch equals unpadded rows", () => {
      const seqs = g.logits.map((c) => c.ids);
      const res = forward(model, makeBatch(seqs, 0, V), { logits: "all" });
      const T = Math.max(...seqs.map((s) => s.length));
      g.logits.forEach((c, row) => {
        const ref = readGoldenTensor(c);
        const got = res.logits!.subarray(row * T * V, (row * T + c.ids.length) * V);
        const d = maxAbsDiff(got, ref);
        assert.ok(d <= tol, `${name} row ${row} (${c.case}) in a padded batch: max |Δlogit| = ${d} > ${tol}`);
      });
    });
    await t.test("taps: block outputs and down-projection inputs", () => {
      const h = g.hidden;
      const at = h.ids.map((_, pos) => ({ row: 0, pos }));
      const layers = h.layers.map((l) => l.layer);
      const res = forward(model, makeBatch([h.ids], 0, V), { taps: { layers, at, key: true, block: true }, logits: "none" });
      for (const l of h.layers) {
        const dBlock = maxAbsDiff(res.taps.block.get(l.layer)!, readGoldenTensor(l.block_out));
        const dKey = maxAbsDiff(res.taps.key.get(l.layer)!, readGoldenTensor(l.mlp_down_in));
        assert.ok(dBlock <= tol, `${name} layer ${l.layer}: block output max diff ${dBlock} > ${tol}`);
        assert.ok(dKey <= tol, `${name} layer ${l.layer}: key max diff ${dKey} > ${tol}`);
      }
    });
    await t.test("greedy generation (KV cache) matches full recomputation in the reference", () => {
      for (const c of g.generation) {
        const [got] = generate(model, [c.prompt_ids], { maxNewTokens: c.max_new_tokens });
        // compare only while the reference's top-2 margin exceeds our numerical tolerance
        let n = 0;
        while (n < c.generated_ids.length && c.step_top2_margin[n]! > 4 * tol) n++;
        assert.deepEqual(got!.slice(0, n), c.generated_ids.slice(0, n), `${name} ${c.case}: greedy ids (first ${n} decisive steps)`);
        if (name === "stories260k" || name === "tiny-gpt2-random") assert.ok(n >= 6, `${name}: expected at least 6 decisive steps, got ${n}`);
      }
    });
    await t.test("tokenizer ids match the independent tokenizer", () => {
      if (!g.tokenizer) return;
      for (const c of g.tokenizer.cases) {
        assert.deepEqual(model.tokenizer!.encode(c.text, { addSpecialTokens: c.add_special_tokens }), c.ids, `${name}: ids of ${JSON.stringify(c.text)}`);
      }
    });
  });
}
