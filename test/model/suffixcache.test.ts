/**
 * The context-prefix cache of the target search (§7.8, `planSuffix` in src/edit/target.ts): the
 * positions before each row's lookup are run once into a KV cache, and a step reruns only the
 * suffixes. Checked against the full rerun of every block (the reference formulation) on ragged,
 * padded rows — lookups at different positions, one at position 0 (no prefix at all), targets at
 * several positions per row — for GPT-2 (learned positions, fused qkv), Llama (RoPE, GQA) and
 * Qwen2 (q/k/v biases, MQA): logits and the gradient w.r.t. δ agree to float32 rounding (the
 * suffix GEMMs have fewer rows, so BLAS may block them differently; no bit identity is claimed),
 * step after step with a changing δ, and with a cache that every step rewrites. `targetWork` (the
 * bench's FLOP count) reports the rows, suffixes and scored positions of the search's tokenization.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { makeBatch } from "../../src/model/batch.js";
import type { ModelConfig } from "../../src/model/config.js";
import { backward, forward, ForwardWorkspace } from "../../src/model/forward.js";
import { targetTokenIds } from "../../src/edit/request.js";
import { fillTemplate, locateSubject } from "../../src/edit/subject.js";
import { computeTarget, planSuffix, targetWork } from "../../src/edit/target.js";
import * as ops from "../../src/kernels/ops.js";
import { LanguageModel } from "../../src/model/model.js";
import { Rng } from "../../src/util/rng.js";
import { fixtureModel } from "../helpers/paths.js";
import { tinyGpt2Config, tinyLlamaConfig, tinyModel } from "../helpers/tiny.js";

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

function check(label: string, cfg: ModelConfig): void {
  test(`suffix cache equals the full rerun: ${label}`, () => {
    const model = tinyModel(cfg, 11);
    const V = cfg.vocabSize;
    const C = cfg.hiddenSize;
    const rng = new Rng(4);
    const lens = [9, 5, 12, 3, 7];
    const ids = lens.map((n) => Array.from({ length: n }, () => 1 + rng.int(V - 1)));
    const lookup = [{ row: 0, pos: 4 }, { row: 1, pos: 0 }, { row: 2, pos: 8 }, { row: 3, pos: 1 }, { row: 4, pos: 6 }];
    const logitPositions = [
      { row: 0, pos: 7 }, { row: 0, pos: 8 }, { row: 1, pos: 0 }, { row: 1, pos: 4 }, { row: 2, pos: 11 },
      { row: 2, pos: 8 }, { row: 3, pos: 2 }, { row: 4, pos: 6 }, { row: 4, pos: 5 + 1 },
    ];
    const layer = 0;
    const batch = makeBatch(ids, 0, V);
    const pre = forward(model, batch, { stopAfterLayer: layer, keepHidden: [layer], logits: "none" });
    const plan = planSuffix(model, { ids, lookup, logitPositions }, pre.hidden.get(layer)!, batch.T, layer, 0);
    assert.equal(plan.batch.shape.pastLength, 8);
    assert.equal(plan.batch.T, 5); // row 1: positions 0..4
    const delta = new Float32Array(C);
    const ws = new ForwardWorkspace();
    for (let step = 0; step < 3; step++) {
      const full = forward(model, batch, { injection: { layer, vector: delta, at: lookup }, logits: logitPositions, forBackward: true });
      const fast = forward(model, plan.batch, { startLayer: layer + 1, startHidden: plan.startHidden, kvCache: plan.kv, injection: { layer, vector: delta, at: plan.at }, logits: plan.logitPositions, forBackward: true, workspace: ws });
      const e = relErr(fast.logits!, full.logits!);
      assert.ok(e < 1e-5, `${label} step ${step}: logits differ by ${e} (relative)`);
      const dl = new Float32Array(full.logits!.length).map((_, i) => Math.sin(0.37 * i + step));
      const g1 = backward(model, full.saved!, dl, { injection: true }).dInjection!;
      const g2 = backward(model, fast.saved!, dl, { injection: true }).dInjection!;
      const eg = relErr(g2, g1);
      assert.ok(eg < 1e-4, `${label} step ${step}: dδ differs by ${eg} (relative)`);
      for (let c = 0; c < C; c++) delta[c] = 0.5 * Math.cos(c + 3 * step);
    }
  });
}

check("GPT-2", tinyGpt2Config());
check("Llama (GQA 4/2, untied)", tinyLlamaConfig());
check("Qwen2 (q/k/v biases, tied head, MQA)", tinyLlamaConfig({ bias: true, tied: true, kvHeads: 1 }));

test("suffix plan refuses a logit position before its row's lookup", () => {
  const cfg = tinyGpt2Config();
  const model = tinyModel(cfg, 2);
  const ids = [[1, 2, 3, 4]];
  const batch = makeBatch(ids, 0, cfg.vocabSize);
  const pre = forward(model, batch, { stopAfterLayer: 0, keepHidden: [0], logits: "none" });
  assert.throws(() => planSuffix(model, { ids, lookup: [{ row: 0, pos: 2 }], logitPositions: [{ row: 0, pos: 1 }] }, pre.hidden.get(0)!, batch.T, 0, 0), /lies before its lookup/);
});

test("targetWork counts the rows, suffixes and scored positions of the target search's own tokenization", async () => {
  const model = await LanguageModel.load(fixtureModel("tiny-gpt2-random"));
  const tok = model.tokenizer!;
  const req = { caseId: "w1", index: 0, prompt: "The mother tongue of {} is", subject: "Danielle Darrieux", targetNew: "the French language", targetTrue: null, relationId: null };
  const templates = ["{}", "Because of the rain. {}", "You know. {}"];
  const w = targetWork(model, req, templates);
  const T = targetTokenIds(tok, req.targetNew).length;
  assert.ok(T > 1, "the target should span several tokens");
  // rows: each template filled with the prompt (+ T − 1 target tokens), then the KL row "{} is a"
  const located = [...templates.map((t) => fillTemplate(t, req.prompt)), "{} is a"].map((s) => locateSubject(tok, s, req.subject, "test"));
  const lengths = located.map((l, i) => l.ids.length + (i < templates.length ? T - 1 : 0));
  const lookup = located.map((l) => l.subjectLast);
  assert.deepEqual(w.lengths, lengths);
  assert.deepEqual(w.lookup, lookup);
  assert.equal(w.rows, templates.length + 1);
  assert.equal(w.scored, templates.length * T + 1);
  const suffix = lengths.map((l, i) => l - lookup[i]!);
  assert.equal(w.suffixTokens, suffix.reduce((a, b) => a + b, 0));
  assert.equal(w.paddedSuffixTokens, w.rows * Math.max(...suffix));
  assert.equal(w.prefixTokens + w.suffixTokens, w.fullTokens);
  assert.equal(w.paddedFullTokens, w.rows * Math.max(...lengths));
});

// The whole search: the fast path (suffix cache + the head fused with its losses, ops.softmaxHead)
// against the reference formulation (full rerun, logits, log-softmax, NLL/KL gradients, dlogits·W),
// on the same request, δ stepping for 4 Adam steps with the KL term on. Reordered float32 sums:
// per-step losses to 1e-4 relative (KL, second order in δ, to 1e-6 absolute + 1e-2 relative), z to 1e-4.
test("computeTarget: the fast path (suffix cache + fused head) equals the reference formulation", async () => {
  const model = await LanguageModel.load(fixtureModel("tiny-gpt2-random"));
  const req = { caseId: "t1", index: 0, prompt: "The mother tongue of {} is", subject: "Danielle Darrieux", targetNew: "the French language", targetTrue: null, relationId: null };
  const templates = ["{}", "Because of the rain. {}", "You know. {}"];
  const N = model.arch.numLayers;
  const params = { layer: 0, lossLayer: N - 1, numGradSteps: 5, lr: 0.5, weightDecay: 0.5, klFactor: 0.0625, clampNormFactor: 4, lossStop: -1, earlyStopAvgProb: null, t0Source: "block" as const };
  const initial = ops.getThreads();
  for (const threads of [1, 2]) {
    ops.setThreads(threads);
    try {
      const fast = computeTarget(model, req, templates, { ...params, prefixCache: true });
      const ref = computeTarget(model, req, templates, { ...params, prefixCache: false });
      assert.equal(fast.steps, ref.steps);
      fast.losses.forEach((l, i) => {
        const r = ref.losses[i]!;
        for (const k of ["nll", "total", "avgProb"] as const) assert.ok(Math.abs(l[k] - r[k]) <= 1e-4 * Math.abs(r[k]) + 1e-7, `threads ${threads} step ${i} ${k}: ${l[k]} vs ${r[k]}`);
        assert.ok(Math.abs(l.kl - r.kl) <= 1e-2 * r.kl + 1e-6, `threads ${threads} step ${i} kl: ${l.kl} vs ${r.kl}`);
      });
      assert.ok(ref.losses[ref.losses.length - 1]!.kl > 1e-5, "the KL term is active");
      const e = relErr(fast.z, ref.z);
      assert.ok(e < 1e-4, `threads ${threads}: z differs by ${e} (relative)`);
    } finally {
      ops.setThreads(initial);
    }
  }
});
