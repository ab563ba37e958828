/**
 * Finite-difference checks of the handwritten backward: the gradient of a scalar loss
 * (NLL over target positions + KL to a reference distribution) w.r.t. an injected vector and
 * w.r.t. every parameter of every block, the final norm, the head and the embeddings, on
 * tiny random GPT-2, Llama (GQA) and Qwen2 (q/k/v biases, tied head) models, with a padded batch.
 *
 * Central differences in float32 along random unit directions; tolerance
 * |fd − analytic| ≤ 2e-3 + 3e-2·|analytic| (float32 forward noise / 2ε ≈ 1e-4).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ModelConfig } from "../../src/model/config.js";
import { makeBatch } from "../../src/model/batch.js";
import { backward, forward, ForwardWorkspace, type Injection } from "../../src/model/forward.js";
import { klLoss, logSoftmax, nllLoss } from "../../src/model/loss.js";
import { Rng } from "../../src/util/rng.js";
import { tinyGpt2Config, tinyLlamaConfig, tinyModel } from "../helpers/tiny.js";

const EPS = 1e-2;

function setup(cfg: ModelConfig) {
  const model = tinyModel(cfg, 7);
  const V = cfg.vocabSize;
  const batch = makeBatch([[1, 5, 9, 3, 7], [2, 8, 4, 6]], 0, V);
  const logitPositions = [{ row: 0, pos: 2 }, { row: 0, pos: 4 }, { row: 1, pos: 3 }, { row: 1, pos: 1 }];
  const targets = [{ row: 0, target: 3, weight: 0.25 }, { row: 1, target: 11, weight: 0.25 }, { row: 2, target: 5, weight: 0.5 }];
  const rng = new Rng(3);
  const ref = new Float32Array(V);
  for (let i = 0; i < V; i++) ref[i] = rng.normal();
  const refLogp = logSoftmax(ref, 1, V);
  return { model, V, batch, logitPositions, targets, refLogp };
}

type Setup = ReturnType<typeof setup>;

function lossOf(s: Setup, inj: Injection | undefined, withGrad: boolean) {
  const res = forward(s.model, s.batch, { logits: s.logitPositions, forBackward: withGrad, ...(inj ? { injection: inj } : {}) });
  const P = s.logitPositions.length;
  const nll = nllLoss(res.logits!, P, s.V, s.targets);
  const kl = klLoss(res.logits!, P, s.V, [3], s.refLogp, 0.7, nll.dlogits);
  return { J: nll.loss + kl.loss, dlogits: kl.dlogits, saved: res.saved };
}

function unitDirection(n: number, rng: Rng): Float32Array {
  const d = new Float32Array(n);
  let s = 0;
  for (let i = 0; i < n; i++) {
    d[i] = rng.normal();
    s += d[i]! * d[i]!;
  }
  for (let i = 0; i < n; i++) d[i]! /= Math.sqrt(s);
  return d;
}

function checkClose(fd: number, an: number, what: string): void {
  assert.ok(Math.abs(fd - an) <= 2e-3 + 3e-2 * Math.abs(an), `${what}: finite difference ${fd} vs analytic ${an}`);
}

function checkModel(label: string, cfg: ModelConfig): void {
  test(`backward matches finite differences: ${label}`, async (t) => {
    const s = setup(cfg);
    const C = cfg.hiddenSize;
    const rng = new Rng(11);
    await t.test("gradient w.r.t. an injected vector (each injection layer)", () => {
      for (let layer = 0; layer < cfg.numLayers; layer++) {
        const vec = unitDirection(C, rng);
        for (let i = 0; i < C; i++) vec[i]! *= 0.5;
        const at = [{ row: 0, pos: 1 }, { row: 1, pos: 2 }];
        const base = lossOf(s, { layer, vector: vec, at }, true);
        const g = backward(s.model, base.saved!, base.dlogits, { injection: true }).dInjection!;
        for (let k = 0; k < 2; k++) {
          const d = unitDirection(C, rng);
          const plus = vec.map((v, i) => v + EPS * d[i]!);
          const minus = vec.map((v, i) => v - EPS * d[i]!);
          const fd = (lossOf(s, { layer, vector: plus, at }, false).J - lossOf(s, { layer, vector: minus, at }, false).J) / (2 * EPS);
          let an = 0;
          for (let i = 0; i < C; i++) an += g[i]! * d[i]!;
          checkClose(fd, an, `${label} injection at layer ${layer}, direction ${k}`);
        }
      }
    });
    await t.test("gradient w.r.t. every parameter", () => {
      const base = lossOf(s, undefined, true);
      const grads = backward(s.model, base.saved!, base.dlogits, { params: "all" }).grads!;
      for (const name of s.model.params.names()) {
        const w = s.model.params.get(name);
        const d = unitDirection(w.length, rng);
        const orig = w.slice();
        for (let i = 0; i < w.length; i++) w[i] = orig[i]! + EPS * d[i]!;
        const jp = lossOf(s, undefined, false).J;
        for (let i = 0; i < w.length; i++) w[i] = orig[i]! - EPS * d[i]!;
        const jm = lossOf(s, undefined, false).J;
        w.set(orig);
        const g = grads.get(name);
        let an = 0;
        for (let i = 0; i < w.length; i++) an += g[i]! * d[i]!;
        checkClose((jp - jm) / (2 * EPS), an, `${label} parameter ${name}`);
      }
    });
    await t.test("gradient of one chosen weight matrix equals its slice of the full gradient", () => {
      const base = lossOf(s, undefined, true);
      const all = backward(s.model, base.saved!, base.dlogits, { params: "all" }).grads!;
      const target = s.model.arch.editTarget(1).name;
      const base2 = lossOf(s, undefined, true);
      const one = backward(s.model, base2.saved!, base2.dlogits, { params: [target] }).grads!;
      assert.deepEqual(Array.from(one.get(target)), Array.from(all.get(target)), "single-matrix gradient must equal the full gradient's entry exactly");
    });
  });
}

checkModel("GPT-2", tinyGpt2Config());
checkModel("Llama (GQA 4/2, untied)", tinyLlamaConfig());
checkModel("Qwen2 (q/k/v biases, tied head, MQA)", tinyLlamaConfig({ bias: true, tied: true, kvHeads: 1 }));

test("prefix caching: rerunning only blocks L+1..N equals a full rerun, and gives the same gradient", () => {
  for (const cfg of [tinyGpt2Config(), tinyLlamaConfig()]) {
    const s = setup(cfg);
    const L = 1;
    const rng = new Rng(5);
    const vec = unitDirection(cfg.hiddenSize, rng);
    const at = [{ row: 0, pos: 3 }, { row: 1, pos: 1 }];
    const inj = { layer: L, vector: vec, at };
    const full = forward(s.model, s.batch, { logits: s.logitPositions, injection: inj, forBackward: true, taps: { layers: [L], at, block: true } });
    const prefix = forward(s.model, s.batch, { stopAfterLayer: L, keepHidden: [L], logits: "none" });
    const cached = forward(s.model, s.batch, { startLayer: L + 1, startHidden: prefix.hidden.get(L)!, logits: s.logitPositions, injection: inj, forBackward: true });
    assert.deepEqual(Array.from(cached.logits!), Array.from(full.logits!), `${cfg.modelType}: cached logits must equal the full rerun bit for bit`);
    const dl = new Float32Array(full.logits!.length).map((_, i) => Math.sin(i));
    const g1 = backward(s.model, full.saved!, dl, { injection: true }).dInjection!;
    const g2 = backward(s.model, cached.saved!, dl, { injection: true }).dInjection!;
    assert.deepEqual(Array.from(g2), Array.from(g1), `${cfg.modelType}: cached gradient must equal the full-rerun gradient`);
    // taps of the block output are taken before the injection
    const tap = full.taps.block.get(L)!;
    const h = prefix.hidden.get(L)!;
    assert.deepEqual(Array.from(tap.subarray(0, cfg.hiddenSize)), Array.from(h.subarray(3 * cfg.hiddenSize, 4 * cfg.hiddenSize)));
  }
});

test("backward refuses a parameter below a prefix-cached start", () => {
  const s = setup(tinyGpt2Config());
  const prefix = forward(s.model, s.batch, { stopAfterLayer: 1, keepHidden: [1], logits: "none" });
  const cached = forward(s.model, s.batch, { startLayer: 2, startHidden: prefix.hidden.get(1)!, logits: s.logitPositions, forBackward: true });
  const dl = new Float32Array(cached.logits!.length);
  assert.throws(() => backward(s.model, cached.saved!, dl, { params: ["h.0.mlp.c_proj.weight"] }), /forward started at block 2/);
});


test("a reused ForwardWorkspace gives bit-identical logits and gradients, pass after pass", () => {
  for (const cfg of [tinyGpt2Config(), tinyLlamaConfig()]) {
    const s = setup(cfg);
    const ws = new ForwardWorkspace();
    const rng = new Rng(9);
    for (let pass = 0; pass < 3; pass++) {
      const vec = unitDirection(cfg.hiddenSize, rng);
      const inj = { layer: 1, vector: vec, at: [{ row: 0, pos: 2 }, { row: 1, pos: 1 }] };
      const a = forward(s.model, s.batch, { logits: s.logitPositions, injection: inj, forBackward: true });
      const b = forward(s.model, s.batch, { logits: s.logitPositions, injection: inj, forBackward: true, workspace: ws });
      assert.deepEqual(Array.from(b.logits!), Array.from(a.logits!), `${cfg.modelType} pass ${pass}: logits`);
      const dl = new Float32Array(a.logits!.length).map((_, i) => Math.cos(i + pass));
      const ga = backward(s.model, a.saved!, dl, { injection: true, params: "all" });
      const gb = backward(s.model, b.saved!, dl, { injection: true, params: "all" });
      assert.deepEqual(Array.from(gb.dInjection!), Array.from(ga.dInjection!), `${cfg.modelType} pass ${pass}: dδ`);
      for (const n of s.model.params.names()) assert.deepEqual(Array.from(gb.grads!.get(n)), Array.from(ga.grads!.get(n)), `${cfg.modelType} pass ${pass}: grad ${n}`);
    }
  }
});
