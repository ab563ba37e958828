/**
 * The trainer (src/model/train.ts, adamw.ts, windows.ts, trainstate.ts):
 * - its next-token loss equals nllLoss (value and gradient);
 * - the weight gradients of a training step pass a finite-difference check on a tiny tied Llama;
 * - one optimizer step decreases the loss on its batch;
 * - AdamW details: schedule, clipping, decay only on block matrices;
 * - a run stopped after k steps (checkpoint written), or crashed between checkpoints, resumes to
 *   bit-identical weights and Adam moments;
 * - `frozenMlpBlocks` leaves the first blocks' MLP weights exactly as initialised and trains the rest.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { AdamW, clipGradNorm, gradNorm, isDecayed, lrAt } from "../../src/model/adamw.js";
import { nllLoss } from "../../src/model/loss.js";
import type { LanguageModel } from "../../src/model/model.js";
import { accumulateGradients, evaluateLoss, frozenMlpParams, nextTokenLoss, resolveTrainParams, train } from "../../src/model/train.js";
import { loadTrainState } from "../../src/model/trainstate.js";
import { WindowSampler } from "../../src/model/windows.js";
import { Rng } from "../../src/util/rng.js";
import { tinyGpt2Config, tinyLlamaConfig, tinyModel } from "../helpers/tiny.js";

/** A token stream with some structure (a noisy repeating pattern), ids < V. */
function stream(n: number, V: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  const s = new Int32Array(n);
  for (let i = 0; i < n; i++) s[i] = rng.uniform() < 0.8 ? (i * 7) % V : rng.int(V);
  return s;
}

function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `deltaedit-train-${tag}-`));
}

test("nextTokenLoss equals nllLoss with uniform weights (loss and dlogits)", () => {
  const P = 6;
  const V = 29;
  const rng = new Rng(5);
  const logits = Float32Array.from({ length: P * V }, () => 3 * rng.normal());
  const targets = Int32Array.from({ length: P }, () => rng.int(V));
  const w = 1 / P;
  const g = new Float32Array(P * V);
  const sum = nextTokenLoss(logits, targets, V, w, g);
  const ref = nllLoss(logits, P, V, Array.from(targets, (target, row) => ({ row, target, weight: w })));
  assert.ok(Math.abs(sum * w - ref.loss) < 1e-5, `loss ${sum * w} vs nllLoss ${ref.loss}`);
  for (let i = 0; i < g.length; i++) assert.ok(Math.abs(g[i]! - ref.dlogits[i]!) < 1e-6, `dlogits[${i}] ${g[i]} vs ${ref.dlogits[i]}`);
});

test("trainer weight gradients match finite differences (tiny tied Llama)", () => {
  const cfg = tinyLlamaConfig({ tied: true });
  const model = tinyModel(cfg, 3);
  const T = 6;
  const s = stream(64, cfg.vocabSize, 1);
  const windows = [s.subarray(0, T + 1), s.subarray(20, 20 + T + 1)];
  const weight = 1 / (windows.length * T);
  const grads = model.params.zerosLike();
  accumulateGradients(model, windows, T, weight, grads);
  const J = (): number => accumulateGradients(model, windows, T, weight, model.params.zerosLike()) * weight;
  const rng = new Rng(9);
  const EPS = 1e-2;
  // every parameter along one random unit direction; tolerance as in gradients.test.ts
  for (const name of model.params.names()) {
    const p = model.params.get(name);
    const g = grads.get(name);
    const d = Float32Array.from({ length: p.length }, () => rng.normal());
    const norm = Math.hypot(...d);
    let an = 0;
    for (let i = 0; i < p.length; i++) {
      d[i]! /= norm;
      an += g[i]! * d[i]!;
    }
    const orig = p.slice();
    for (let i = 0; i < p.length; i++) p[i] = orig[i]! + EPS * d[i]!;
    const plus = J();
    for (let i = 0; i < p.length; i++) p[i] = orig[i]! - EPS * d[i]!;
    const minus = J();
    p.set(orig);
    const fd = (plus - minus) / (2 * EPS);
    assert.ok(Math.abs(fd - an) <= 2e-3 + 3e-2 * Math.abs(an), `${name}: finite difference ${fd} vs analytic ${an}`);
  }
});

test("one trainer step decreases the loss on its batch", () => {
  const cfg = tinyLlamaConfig({ tied: true });
  const model = tinyModel(cfg, 4);
  const T = 8;
  const B = 4;
  const data = { train: stream(4 * (T + 1) + T, cfg.vocabSize, 2), heldOut: stream(200, cfg.vocabSize, 3) };
  // the first step's batch: the first B windows the sampler hands out
  const sampler = new WindowSampler({ stream: data.train, seqLen: T, seed: 11 });
  const batch = Array.from({ length: B }, () => sampler.next().slice());
  const before = evaluateLoss(model, batch, T, B);
  const res = train(model, data, { batchSize: B, seqLen: T, steps: 1, lr: 1e-2, warmupSteps: 0, evalEvery: 0, checkpointEvery: 0, seed: 11 });
  const after = evaluateLoss(model, batch, T, B);
  assert.equal(res.step, 1);
  assert.ok(Math.abs(res.lastLoss - before) < 1e-5, `step loss ${res.lastLoss} is the batch loss ${before} before the update`);
  assert.ok(after < before - 1e-3, `loss after one step ${after} should be below ${before}`);
});

test("AdamW: schedule, clipping, decay on block matrices only", () => {
  const s = { lr: 1, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
  assert.equal(lrAt(0, s), 0.1);
  assert.equal(lrAt(9, s), 1);
  assert.ok(Math.abs(lrAt(10, s) - 1) < 1e-12);
  assert.ok(Math.abs(lrAt(60, s) - 0.55) < 1e-12, "half-way through the cosine: (1 + 0.1) / 2");
  assert.ok(Math.abs(lrAt(110, s) - 0.1) < 1e-12 && Math.abs(lrAt(500, s) - 0.1) < 1e-12, "floor at 10 % of the peak");

  const model = tinyModel(tinyLlamaConfig({ tied: true }), 2);
  const decayed = model.params.specs.filter(isDecayed).map((x) => x.name);
  assert.ok(decayed.every((n) => /proj\.weight$/.test(n)), `decayed: ${decayed.join(", ")}`);
  assert.ok(!decayed.includes("model.embed_tokens.weight") && !decayed.some((n) => n.includes("norm")));

  const grads = model.params.zerosLike();
  for (const n of grads.names()) grads.get(n).fill(1);
  const n0 = gradNorm(grads);
  assert.ok(Math.abs(n0 - Math.sqrt(model.params.count())) < 1e-6 * n0);
  assert.equal(clipGradNorm(grads, 1), n0);
  assert.ok(Math.abs(gradNorm(grads) - 1) < 1e-5);

  // zero gradient: only decayed parameters move, by the factor (1 − lr·wd)
  for (const n of grads.names()) grads.get(n).fill(0);
  const before = new Map(model.params.names().map((n) => [n, model.params.get(n).slice()]));
  new AdamW(model.params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 }).update(model.params, grads, 0.5);
  for (const spec of model.params.specs) {
    const a = before.get(spec.name)!;
    const b = model.params.get(spec.name);
    const f = isDecayed(spec) ? 1 - 0.5 * 0.1 : 1;
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(b[i]! - a[i]! * f) <= 1e-7 * Math.abs(a[i]!) + 1e-12, `${spec.name}[${i}]`);
  }
  assert.throws(() => resolveTrainParams({ learningRate: 1 } as never), /unknown parameter "learningRate"/);
});

function sameWeights(a: LanguageModel, b: LanguageModel, what: string): void {
  for (const n of a.params.names()) {
    const x = a.params.get(n);
    const y = b.params.get(n);
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) assert.fail(`${what}: ${n}[${i}] ${x[i]} vs ${y[i]} (not bit-identical)`);
  }
}

test("resume after a stop or a crash is bit-identical to an uninterrupted run", () => {
  const cfg = tinyLlamaConfig({ tied: true });
  const T = 8;
  // documents of 5..17 tokens: windows start at document starts (windows.ts "documents" layout)
  const ids = stream(300, cfg.vocabSize, 7);
  const starts: number[] = [];
  for (let i = 0, k = 0; i < ids.length - 1; i += 5 + (k++ * 7) % 13) starts.push(i);
  const data = { train: ids, heldOut: stream(100, cfg.vocabSize, 8), trainDocStarts: Int32Array.from(starts) };
  const hp = { batchSize: 3, seqLen: T, gradAccum: 2, steps: 14, lr: 5e-3, warmupSteps: 3, evalEvery: 5, evalWindows: 4, checkpointEvery: 4, seed: 5 };
  const fresh = (): LanguageModel => tinyModel(cfg, 21);

  const ref = fresh();
  const refRes = train(ref, data, hp); // 14 steps, 300 tokens / (3·2·8) ≈ 6 steps per epoch: crosses epochs

  // (a) stopped after step 7 by the callback (a checkpoint is written), then resumed in a "new process"
  const dirA = tmpDir("stop");
  const a1 = fresh();
  const r1 = train(a1, data, hp, { checkpointDir: dirA, shouldStop: (s) => s === 7 });
  assert.equal(r1.stopped, true);
  assert.equal(r1.step, 7);
  const a2 = fresh();
  const r2 = train(a2, data, hp, { checkpointDir: dirA, resume: true });
  assert.equal(r2.resumedFrom, 7);
  sameWeights(ref, a2, "stop at 7 + resume");
  assert.deepEqual(r2.history.map((h) => [h.step, h.heldOutLoss]), refRes.history.map((h) => [h.step, h.heldOutLoss]));

  // (b) crash after step 10 without a checkpoint there (like kill -9): resume from the step-8 checkpoint
  const dirB = tmpDir("crash");
  assert.throws(() => train(fresh(), data, hp, { checkpointDir: dirB, onStep: (i) => { if (i.step === 10) throw new Error("simulated kill"); } }), /simulated kill/);
  const b2 = fresh();
  const rb = train(b2, data, hp, { checkpointDir: dirB, resume: true });
  assert.equal(rb.resumedFrom, 8);
  sameWeights(ref, b2, "crash at 10 + resume from 8");

  // the final checkpoint holds the same weights and the step count
  const c = fresh();
  const { opt } = loadTrainState(dirB, c.params);
  assert.equal(opt.step, 14);
  sameWeights(ref, c, "final checkpoint");
  assert.deepEqual(fs.readdirSync(dirB).filter((f) => f.endsWith(".safetensors")), ["state-00000014.safetensors"], "old tensor files are removed");
  fs.rmSync(dirA, { recursive: true, force: true });
  fs.rmSync(dirB, { recursive: true, force: true });
});

test("frozenMlpBlocks: the first blocks' MLPs keep their weights, everything else trains (Llama and GPT-2)", () => {
  for (const [arch, cfg] of [["llama", tinyLlamaConfig({ tied: true })], ["gpt2", tinyGpt2Config()]] as const) {
    const T = 8;
    const data = { train: stream(200, cfg.vocabSize, 12), heldOut: stream(60, cfg.vocabSize, 13) };
    const hp = { batchSize: 3, seqLen: T, steps: 4, lr: 1e-2, warmupSteps: 0, evalEvery: 0, checkpointEvery: 0, seed: 3, frozenMlpBlocks: 2 };
    const init = tinyModel(cfg, 31);
    const model = tinyModel(cfg, 31);
    const frozen = frozenMlpParams(model.params, 2);
    // every MLP tensor of blocks 0 and 1, nothing else
    const expected = model.params.specs.filter((s) => s.layer !== null && s.layer < 2 && /\.mlp\./.test(s.name)).map((s) => s.name);
    assert.ok(expected.length >= 4, `${arch}: MLP tensors of blocks 0–1 found (${expected.join(", ")})`);
    assert.deepEqual([...frozen].sort(), expected.sort());
    train(model, data, hp);
    for (const name of model.params.names()) {
      const a = init.params.get(name);
      const b = model.params.get(name);
      let changed = false;
      for (let i = 0; i < a.length && !changed; i++) changed = a[i] !== b[i];
      if (frozen.has(name)) assert.equal(changed, false, `${arch}: frozen ${name} changed`);
      else assert.equal(changed, true, `${arch}: trainable ${name} did not change`);
    }
    assert.throws(() => train(tinyModel(cfg, 31), data, { ...hp, frozenMlpBlocks: cfg.numLayers + 1 }), new RegExp(`frozenMlpBlocks" is ${cfg.numLayers + 1}, more than the model's ${cfg.numLayers} blocks`));
  }
});
