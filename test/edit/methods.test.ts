/**
 * Editing methods on real (tiny) checkpoints: ROME, MEMIT, AlphaEdit, DeltaEdit, FT, PRUNE, RECT.
 * stories260k (Llama, 5 blocks, C = 64, F = 172, stored out × in) for every method; tiny-gpt2-random
 * (GPT-2, stored in × out, down-proj bias) for the orientation- and bias-sensitive paths (FT, RECT).
 * Second moments C0 are built per layer from forward taps over a handful of sentences, plus εI so
 * that C0 is invertible (ROME) and the null space of the AlphaEdit projector is not empty.
 * Tolerances are stated next to each assertion; every check fails loudly.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as ops from "../../src/kernels/ops.js";
import { makeBatch, realPositions } from "../../src/model/batch.js";
import { forward } from "../../src/model/forward.js";
import { nllLoss } from "../../src/model/loss.js";
import { LanguageModel } from "../../src/model/model.js";
import { bareBlockOutputs, bareKeys } from "../../src/edit/keys.js";
import { buildInfluenceProjector, noiseVector } from "../../src/edit/noise.js";
import type { EditRequest } from "../../src/edit/request.js";
import { generateContextTemplates, type ContextTemplates } from "../../src/edit/templates.js";
import { applyDense, applyLowRank, weightOutIn } from "../../src/edit/update.js";
import { AlphaEdit } from "../../src/edit/methods/alphaedit.js";
import { DeltaEdit } from "../../src/edit/methods/deltaedit.js";
import { FineTune, ftRow } from "../../src/edit/methods/ft.js";
import { Memit } from "../../src/edit/methods/memit.js";
import { METHOD_NAMES, type BatchOutcome, type EditContext, type EditMethod, type MethodName } from "../../src/edit/methods/method.js";
import { Prune, restrain } from "../../src/edit/methods/prune.js";
import { Rect } from "../../src/edit/methods/rect.js";
import { createMethod } from "../../src/edit/methods/registry.js";
import { bareKeyValue, Rome } from "../../src/edit/methods/rome.js";
import { DeltaEditError } from "../../src/errors.js";
import { Rng } from "../../src/util/rng.js";
import { fixtureModel } from "../helpers/paths.js";
import { zLayerDelta } from "./_fixtures.js";

// ───────────────────────────── fixtures ─────────────────────────────

const STORIES = fixtureModel("stories260k");
const GPT2 = fixtureModel("tiny-gpt2-random");
/** εI added to the sampled second moments (below the null-space threshold 2e-2). */
const C0_RIDGE = 1e-4;
const CORPUS = [
  "Once upon a time, there was a little girl named Lily.",
  "She loved to play outside in the park with her friends.",
  "One day, Tom found a big red ball.",
  "The dog was happy and ran to the tree.",
  "Mom said it was time to go home and eat dinner.",
  "Ben had a toy car. He liked to drive it on the floor.",
  "The sun was shining and the birds were singing in the sky.",
  "Sue wanted to help her dad in the garden.",
];

function req(i: number, prompt: string, subject: string, targetNew: string): EditRequest {
  return { caseId: String(i), index: i, prompt, subject, targetNew, targetTrue: null, relationId: null };
}
const REQUESTS: EditRequest[] = [
  req(0, "{} went to the", "Lily", "store"),
  req(1, "{} likes to play with the", "Tom", "cat"),
  req(2, "{} was very", "Ben", "sad"),
  req(3, "{} saw a big", "Sue", "dog"),
  req(4, "{} looked at the", "Mom", "sky"),
  req(5, "{} ate the", "Tim", "apple"),
];

/** Uncentered second moments C0_l (F, F) + C0_RIDGE·I over CORPUS, from the unedited model. */
function secondMoments(model: LanguageModel): Map<number, Float32Array> {
  const F = model.arch.dFF;
  const L = model.arch.numLayers;
  const tok = model.tokenizer!;
  const layers = Array.from({ length: L }, (_, l) => l);
  const sums = layers.map(() => new Float32Array(F * F)); // (F, F) each
  let count = 0;
  for (const t of CORPUS) {
    const b = makeBatch([tok.encode(t)], tok.padTokenId, model.config.vocabSize);
    const r = forward(model, b, { stopAfterLayer: L - 1, taps: { layers, at: realPositions(b), key: true }, logits: "none" });
    for (const l of layers) ops.syrk(r.taps.key.get(l)!, sums[l]!, { n: F, k: b.lengths[0]!, trans: true, beta: 1 });
    count += b.lengths[0]!;
  }
  const out = new Map<number, Float32Array>();
  for (const l of layers) {
    const c0 = sums[l]!.map((x) => x / count);
    for (let i = 0; i < F; i++) c0[i * F + i]! += C0_RIDGE;
    out.set(l, c0);
  }
  return out;
}

interface Fixture {
  dir: string;
  templates: ContextTemplates;
  moments: Map<number, Float32Array>;
}

async function fixture(dir: string): Promise<Fixture> {
  const model = await LanguageModel.load(dir);
  return { dir, templates: generateContextTemplates(model, new Rng(1)), moments: secondMoments(model) };
}

const stories = await fixture(STORIES);
const gpt2 = await fixture(GPT2);

async function freshContext(fx: Fixture, seed = 7): Promise<EditContext & { logs: string[] }> {
  const model = await LanguageModel.load(fx.dir);
  const logs: string[] = [];
  return { model, templates: fx.templates, secondMoment: (l) => fx.moments.get(l)!, rng: new Rng(seed), log: (m) => logs.push(m), logs };
}

/** Small-model settings of the MEMIT family (stories260k: edit blocks 1–3, z-layer 3). */
const FAMILY = { editLayers: [1, 2, 3], targetLayer: 3, lossLayer: 4, numGradSteps: 10 };
const OVERRIDES: Record<MethodName, Record<string, unknown>> = {
  rome: { layer: 2, lossLayer: 4, numGradSteps: 10 },
  memit: { ...FAMILY, mom2UpdateWeight: 10 },
  alphaedit: { ...FAMILY },
  deltaedit: { ...FAMILY },
  ft: { layers: [1], lr: 1e-3, normConstraint: 1e-3, numSteps: 10 },
  prune: { ...FAMILY, mom2UpdateWeight: 10 },
  rect: { ...FAMILY, mom2UpdateWeight: 10 },
};

// ───────────────────────────── helpers ─────────────────────────────

function snapshotParams(model: LanguageModel): Map<string, Float32Array> {
  return new Map(model.params.names().map((n) => [n, model.params.get(n).slice()]));
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "relErr: length mismatch");
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-300);
}

function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return Math.sqrt(s);
}

function bitIdentical(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/** R Xᵀ (C, F) in float64 from factors R (C, N), X (F, N). */
function lowRank64(r: Float32Array, x: Float32Array, C: number, F: number, n: number): Float64Array {
  const out = new Float64Array(C * F);
  for (let c = 0; c < C; c++) for (let f = 0; f < F; f++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += r[c * n + j]! * x[f * n + j]!;
    out[c * F + f] = s;
  }
  return out;
}

function diff(a: Float32Array, b: Float32Array): Float32Array {
  return a.map((v, i) => v - b[i]!);
}

/** Apply an outcome's recorded updates the way a session would. */
function applyOutcome(model: LanguageModel, o: BatchOutcome | { updates: BatchOutcome["updates"] }): void {
  for (const u of o.updates) {
    const t = model.arch.editTarget(u.layer);
    if (u.dense) applyDense(t, u.dense);
    else applyLowRank(t, u.influence!, u.activation!, u.n);
    if (u.biasName && u.biasDelta) {
      const b = model.params.get(u.biasName);
      for (let i = 0; i < b.length; i++) b[i]! += u.biasDelta[i]!;
    }
  }
}

function argmaxNextToken(model: LanguageModel, text: string): number {
  const ids = model.tokenizer!.encode(text);
  const res = forward(model, makeBatch([ids], model.tokenizer!.padTokenId), { logits: [{ row: 0, pos: ids.length - 1 }] });
  const l = res.logits!;
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i]! > l[best]!) best = i;
  return best;
}

/** Mean FT objective (prompt_last) of the requests under the current weights. */
function ftLoss(model: LanguageModel, requests: readonly EditRequest[]): number {
  let total = 0;
  for (const r of requests) {
    const row = ftRow(model, r, "prompt_last");
    const res = forward(model, makeBatch([row.ids], model.tokenizer!.padTokenId), { logits: row.terms.map((t) => ({ row: 0, pos: t.pos })) });
    total += nllLoss(res.logits!, row.terms.length, model.arch.vocab, row.terms.map((t, i) => ({ row: i, target: t.target, weight: 1 / row.terms.length }))).loss;
  }
  return total / requests.length;
}

const timings: Record<string, number> = {};

// ───────────────────────────── ROME ─────────────────────────────

test("ROME: one rank-one edit maps the bare key to z and makes the target the top prediction", async () => {
  const ctx = await freshContext(stories);
  const { model } = ctx;
  const rome = new Rome(OVERRIDES.rome, model.arch.numLayers);
  const r = REQUESTS[0]!;
  const layer = rome.params.layer;
  const C = model.arch.hidden;
  const F = model.arch.dFF;
  const before = bareKeyValue(model, r, layer); // k_b (F), v_b (C)
  const w0 = weightOutIn(model.arch.editTarget(layer));
  const topBefore = argmaxNextToken(model, r.prompt.replace("{}", r.subject));
  const t0 = performance.now();
  const out = rome.applyBatch(ctx, [r]);
  timings["rome"] = performance.now() - t0;
  assert.equal(out.updates.length, 1);
  const u = out.updates[0]!;
  assert.equal(u.n, 1);
  assert.equal(u.dense, null);
  // the applied update is exactly Λ uᵀ and rank one: σ2/σ1 < 1e-5 (float32 subtraction noise)
  const dw = diff(weightOutIn(model.arch.editTarget(layer)), w0);
  assert.ok(relErr(dw, lowRank64(u.influence!, u.activation!, C, F, 1)) < 1e-4, "W_after − W_before ≠ Λ uᵀ");
  const s = ops.svd(dw, C, F).s;
  assert.ok(s[1]! / s[0]! < 1e-5, `update is not rank one: σ2/σ1 = ${s[1]! / s[0]!}`);
  assert.ok(Math.abs(norm(u.activation!) - 1) < 1e-5, "u is not normalised");
  // z = v_b + Λ (k_b·u); after the edit the down projection maps k_b to z (1e-3 relative)
  let kb = 0;
  for (let f = 0; f < F; f++) kb += before.key[f]! * u.activation![f]!;
  const z = before.value.map((v, c) => v + u.influence![c]! * kb);
  const after = bareKeyValue(model, r, layer);
  assert.ok(relErr(after.key, before.key) < 1e-6, "the edit changed the key at its own layer");
  const e = relErr(after.value, z);
  assert.ok(e < 1e-3, `W_new k_b ≠ z: relative error ${e}`);
  // ODD-22: z − v_b = δ up to rounding (t0 = v_b), δ from the report
  const zr = norm(z.map((v, c) => v - before.value[c]!));
  assert.ok(Math.abs(zr - out.requests[0]!.deltaNorm) <= 1e-3 * out.requests[0]!.deltaNorm, `‖z − v_b‖ = ${zr} vs ‖δ‖ = ${out.requests[0]!.deltaNorm}`);
  // efficacy on the tiny model: the new target's first token becomes the top prediction. stories260k's
  // SentencePiece splits " store" into ["▁", "▁st", …]: the word's first token is "▁st" (= encode("store")[0]).
  const tok = model.tokenizer!;
  const firsts = [tok.encode(" " + r.targetNew, { addSpecialTokens: false })[0]!, tok.encode(r.targetNew, { addSpecialTokens: false })[0]!];
  assert.ok(!firsts.includes(topBefore), "the target was already the top prediction before the edit");
  const top = argmaxNextToken(model, r.prompt.replace("{}", r.subject));
  assert.ok(firsts.includes(top), `top prediction ${JSON.stringify(tok.decode([top]))}, expected the first token of ${JSON.stringify(r.targetNew)}`);
});

test("ROME: a batch of two requests gives two sequential rank-one updates (ODD-34)", async () => {
  const ctx = await freshContext(stories);
  const rome = new Rome({ ...OVERRIDES.rome, mom2Adjustment: false }, ctx.model.arch.numLayers);
  const out = rome.applyBatch(ctx, REQUESTS.slice(1, 3));
  assert.equal(out.updates.length, 2);
  assert.equal(out.requests.length, 2);
  assert.ok(out.requests.every((x) => x.warnings.some((w) => w.includes("ODD-34"))));
});

// ───────────────────────────── MEMIT ─────────────────────────────

test("MEMIT: X solves (λ_m C0 + K Kᵀ) X = K and Δ = R Xᵀ is added exactly", async () => {
  const ctx = await freshContext(stories);
  const { model } = ctx;
  const memit = new Memit(OVERRIDES.memit, model.arch.numLayers);
  const C = model.arch.hidden;
  const F = model.arch.dFF;
  const before = snapshotParams(model);
  const w0 = FAMILY.editLayers.map((l) => weightOutIn(model.arch.editTarget(l)));
  const t0 = performance.now();
  const out = memit.applyBatch(ctx, REQUESTS.slice(0, 2));
  timings["memit"] = performance.now() - t0;
  assert.deepEqual(out.updates.map((u) => u.layer), FAMILY.editLayers);
  out.updates.forEach((u, i) => {
    const n = u.n;
    assert.equal(n, 2);
    // residual check in float64: normwise backward error ‖A X − K‖ ≤ 1e-5 ‖A‖ ‖X‖ (X rounded to float32)
    const c0 = ctx.secondMoment(u.layer);
    const a = new Float64Array(F * F); // (F, F) λ_m C0 + K Kᵀ
    for (let p = 0; p < F; p++) for (let q = 0; q < F; q++) {
      let s = 10 * c0[p * F + q]!;
      for (let j = 0; j < n; j++) s += u.keys![p * n + j]! * u.keys![q * n + j]!;
      a[p * F + q] = s;
    }
    const ax = new Float64Array(F * n);
    ops.gemm(a, Float64Array.from(u.activation!), ax, { m: F, n, k: F });
    const res = ax.map((v, k) => v - u.keys![k]!);
    const bound = 1e-5 * norm(a) * norm(u.activation!);
    assert.ok(norm(res) <= bound, `layer ${u.layer}: ‖AX − K‖ = ${norm(res)} > ${bound}`);
    // Δ = R Xᵀ added exactly: max |ΔW − R Xᵀ| ≤ 1e-6 max|W| (float32 rounding of the sum)
    const dw = diff(weightOutIn(model.arch.editTarget(u.layer)), w0[i]!);
    const rx = lowRank64(u.influence!, u.activation!, C, F, n);
    let maxW = 0;
    for (const v of w0[i]!) maxW = Math.max(maxW, Math.abs(v));
    let maxErr = 0;
    for (let k = 0; k < dw.length; k++) maxErr = Math.max(maxErr, Math.abs(dw[k]! - rx[k]!));
    assert.ok(maxErr <= 1e-6 * maxW, `layer ${u.layer}: ΔW differs from R Xᵀ by ${maxErr}`);
  });
  // only the edited matrices changed
  for (const [name, v] of before) {
    const edited = FAMILY.editLayers.some((l) => model.arch.editTarget(l).name === name);
    if (!edited) assert.ok(bitIdentical(model.params.get(name), v), `parameter ${name} changed`);
  }
});

// ───────────────────────────── AlphaEdit ─────────────────────────────

test("AlphaEdit: the fast solve equals the dense oracle and Δ leaves preserved keys unchanged", async () => {
  const ctxFast = await freshContext(stories);
  const ctxDense = await freshContext(stories);
  const L = ctxFast.model.arch.numLayers;
  const C = ctxFast.model.arch.hidden;
  const F = ctxFast.model.arch.dFF;
  const fast = new AlphaEdit(OVERRIDES.alphaedit, L);
  const dense = new AlphaEdit({ ...OVERRIDES.alphaedit, solver: "dense" }, L);
  const t0 = performance.now();
  const oFast = fast.applyBatch(ctxFast, REQUESTS.slice(0, 2));
  timings["alphaedit"] = performance.now() - t0;
  const oDense = dense.applyBatch(ctxDense, REQUESTS.slice(0, 2));
  oFast.updates.forEach((u, i) => {
    const d = oDense.updates[i]!;
    const e = relErr(u.activation!, d.activation!);
    assert.ok(e < 1e-4, `layer ${u.layer}: fast X vs dense X relative error ${e}`);
  });
  // preserved space: the top eigenvector k0 of C0 (eigenvalue ≫ 2e-2): ‖Δ k0‖ ≤ 1e-4 ‖Δ‖_F
  for (const u of oFast.updates) {
    const { values, vectors } = ops.eigh(ctxFast.secondMoment(u.layer), F);
    assert.ok(values[F - 1]! > 10 * 2e-2, `layer ${u.layer}: top eigenvalue ${values[F - 1]} not ≫ threshold`);
    const k0 = new Float32Array(F).map((_, f) => vectors[f * F + F - 1]!);
    const delta = lowRank64(u.influence!, u.activation!, C, F, u.n);
    const dk = new Float64Array(C);
    for (let c = 0; c < C; c++) for (let f = 0; f < F; f++) dk[c]! += delta[c * F + f]! * k0[f]!;
    assert.ok(norm(dk) <= 1e-4 * norm(delta), `layer ${u.layer}: ‖Δ k0‖ = ${norm(dk)}, ‖Δ‖ = ${norm(delta)}`);
  }
  // second batch (Cpast ≠ 0): still equal to the oracle (models differ by rounding after batch 1: 1e-3)
  const f2 = fast.applyBatch(ctxFast, REQUESTS.slice(2, 3));
  const d2 = dense.applyBatch(ctxDense, REQUESTS.slice(2, 3));
  f2.updates.forEach((u, i) => {
    const e = relErr(u.activation!, d2.updates[i]!.activation!);
    assert.ok(e < 1e-3, `batch 2, layer ${u.layer}: fast vs dense X relative error ${e}`);
  });
});

// ───────────────────────────── DeltaEdit ─────────────────────────────

test("DeltaEdit: a triggered request's δ is orthogonal to U_J and the noise statistics follow the EMA recurrence", async () => {
  const ctx = await freshContext(stories);
  const { model } = ctx;
  const C = model.arch.hidden;
  const F = model.arch.dFF;
  const lz = FAMILY.targetLayer;
  const de = new DeltaEdit({ ...OVERRIDES.deltaedit, warmupRequests: 2, varMultiplier: 1e-6 }, model.arch.numLayers);
  const reports: NonNullable<BatchOutcome["requests"][number]["noise"]>[] = [];
  let checkedTrigger = 0;
  for (let i = 0; i < 5; i++) {
    const r = REQUESTS[i]!;
    // pre-batch state to rebuild P_δ: ΔW_acc, κ (bare key at l_z), t0 (bare block output at l_z), RNG
    const accBefore = de.deltaWAcc ? de.deltaWAcc.slice() : null;
    const kappa = bareKeys(model, [r], lz); // (F, 1)
    const t0 = bareBlockOutputs(model, [r], lz); // (C, 1)
    const rngState = ctx.rng.state();
    const tt = performance.now();
    const out = de.applyBatch(ctx, [r]);
    if (i === 0) timings["deltaedit"] = performance.now() - tt;
    const noise = out.requests[0]!.noise!;
    reports.push(noise);
    if (!noise.triggered) continue;
    checkedTrigger++;
    const delta = zLayerDelta(model, out, r, lz, t0); // δ = z − t0 (C)
    // rebuild P_δ the way the method does
    const gram = new Float32Array(C * C);
    ops.syrk(accBefore!, gram, { n: C, k: F });
    const { noise: nvec, nu } = noiseVector(accBefore!, kappa, C, F);
    assert.ok(Math.abs(nu - noise.nu!) <= 1e-4 * noise.nu!, `ν ${nu} vs reported ${noise.nu}`);
    const proj = buildInfluenceProjector({ gram, noise: nvec, d: C, params: de.noiseParams(), rng: Rng.fromState(rngState) });
    assert.equal(proj.rank, noise.projectionRank, "projection rank");
    assert.ok(proj.rank > 0, "the triggered projection removes no direction");
    const coeff = new Float32Array(proj.rank);
    ops.gemm(proj.basisT, delta, coeff, { m: proj.rank, n: 1, k: C });
    assert.ok(norm(delta) > 0, "δ = 0");
    assert.ok(norm(coeff) <= 1e-3 * norm(delta), `‖U_Jᵀ δ‖ = ${norm(coeff)} vs ‖δ‖ = ${norm(delta)}`);
  }
  assert.ok(checkedTrigger >= 1, `no trigger within 5 requests: ${JSON.stringify(reports)}`);
  // noise statistics (spec §4.4 c, ODD-4/5): c counts requests; first sample μ = ν, σ² = 0; EMA α = 0.9
  const a = 0.9;
  assert.deepEqual(reports.map((x) => x.requestCount), [1, 2, 3, 4, 5]);
  assert.equal(reports[0]!.nu, null);
  assert.equal(reports[1]!.mu, reports[1]!.nu);
  assert.equal(reports[1]!.variance, 0);
  let mu = reports[1]!.mu!;
  let v = 0;
  for (let i = 2; i < 5; i++) {
    const x = reports[i]!;
    const expectTrigger = x.requestCount > 2 && v !== 0 && Math.abs(x.nu! - mu) > 1e-6 * Math.sqrt(v);
    assert.equal(x.triggered, expectTrigger, `request ${x.requestCount}: trigger`);
    if (!x.triggered) {
      mu = a * mu + (1 - a) * x.nu!;
      v = a * v + (1 - a) * (x.nu! - mu) ** 2;
    }
    assert.ok(Math.abs(x.mu! - mu) <= 1e-12 * Math.abs(mu), `request ${x.requestCount}: μ ${x.mu} vs ${mu}`);
    assert.ok(Math.abs(x.variance! - v) <= 1e-12 * Math.abs(v), `request ${x.requestCount}: σ² ${x.variance} vs ${v}`);
  }
});

// ───────────────────────────── FT ─────────────────────────────

test("FT-L: loss decreases, the L∞ box holds, only the chosen matrix changed (stories260k, no bias)", async () => {
  const ctx = await freshContext(stories);
  const { model } = ctx;
  const ft = new FineTune(OVERRIDES.ft, model.arch.numLayers);
  const rs = REQUESTS.slice(0, 2);
  const before = snapshotParams(model);
  const lossBefore = ftLoss(model, rs);
  const t0 = performance.now();
  const out = ft.applyBatch(ctx, rs);
  timings["ft"] = performance.now() - t0;
  const lossAfter = ftLoss(model, rs);
  assert.ok(lossAfter < lossBefore - 1e-3, `loss ${lossBefore} → ${lossAfter}`);
  const name = model.arch.editTarget(1).name;
  const w = model.params.get(name);
  const w0 = before.get(name)!;
  let maxStep = 0;
  for (let i = 0; i < w.length; i++) maxStep = Math.max(maxStep, Math.abs(w[i]! - w0[i]!));
  assert.ok(maxStep <= 1e-3 * (1 + 1e-4), `L∞ box violated: ${maxStep}`);
  assert.ok(maxStep > 0, "nothing changed");
  for (const [n, v] of before) if (n !== name) assert.ok(bitIdentical(model.params.get(n), v), `parameter ${n} changed`);
  const u = out.updates[0]!;
  assert.equal(u.biasName, undefined);
  assert.ok(bitIdentical(u.dense!, diff(weightOutIn(model.arch.editTarget(1)), weightOutIn({ ...model.arch.editTarget(1), W: w0 }))), "dense record ≠ W_after − W_before");
});

test("FT on GPT-2: trains the down-projection weight and bias, records (C, F) out × in, box on both; FT-M decreases its loss", async () => {
  const ctx = await freshContext(gpt2);
  const { model } = ctx;
  const t = model.arch.editTarget(0);
  assert.equal(t.layout, "in_out");
  assert.ok(t.biasName);
  const eps = 2e-3;
  const ft = new FineTune({ layers: [0], lr: 2e-3, normConstraint: eps, numSteps: 5 }, model.arch.numLayers);
  const before = snapshotParams(model);
  const w0 = weightOutIn(t);
  const lossBefore = ftLoss(model, REQUESTS.slice(0, 1));
  const out = ft.applyBatch(ctx, REQUESTS.slice(0, 1));
  assert.ok(ftLoss(model, REQUESTS.slice(0, 1)) < lossBefore, "FT-L loss did not decrease on GPT-2");
  const u = out.updates[0]!;
  assert.equal(u.dense!.length, t.dOut * t.dIn);
  assert.ok(bitIdentical(u.dense!, diff(weightOutIn(t), w0)), "dense record is not W_after − W_before out × in");
  assert.equal(u.biasName, t.biasName);
  const b = model.params.get(t.biasName!);
  const b0 = before.get(t.biasName!)!;
  for (let i = 0; i < b.length; i++) {
    assert.equal(u.biasDelta![i], Math.fround(b[i]! - b0[i]!), "bias delta record");
    assert.ok(Math.abs(b[i]! - b0[i]!) <= eps * (1 + 1e-4), "bias outside the box");
  }
  for (const [n, v] of before) if (n !== t.name && n !== t.biasName) assert.ok(bitIdentical(model.params.get(n), v), `parameter ${n} changed`);
  // FT-M (teacher-forced target_new) on stories260k
  const ctx2 = await freshContext(stories);
  const ftm = new FineTune({ layers: [2], lr: 1e-3, normConstraint: null, numSteps: 5, objective: "target_new" }, ctx2.model.arch.numLayers);
  const rowLoss = (m: LanguageModel): number => {
    const row = ftRow(m, REQUESTS[1]!, "target_new");
    const res = forward(m, makeBatch([row.ids], m.tokenizer!.padTokenId), { logits: row.terms.map((x) => ({ row: 0, pos: x.pos })) });
    return nllLoss(res.logits!, row.terms.length, m.arch.vocab, row.terms.map((x, i) => ({ row: i, target: x.target, weight: 1 / row.terms.length }))).loss;
  };
  const l0 = rowLoss(ctx2.model);
  ftm.applyBatch(ctx2, [REQUESTS[1]!]);
  assert.ok(rowLoss(ctx2.model) < l0, "FT-M loss did not decrease");
});

// ───────────────────────────── PRUNE ─────────────────────────────

test("PRUNE: restrain() follows F(s) for both variants", () => {
  const sm = 2;
  assert.equal(restrain(1.5, sm, "reference", 1.2), 1.5);
  assert.equal(restrain(2, sm, "reference", 1.2), 2); // strict >
  assert.ok(Math.abs(restrain(5, sm, "reference", 1.2) - (Math.log(5) - Math.log(2) + 2)) < 1e-12);
  assert.ok(Math.abs(restrain(5, sm, "replace", 1.2) - (Math.log(5) / Math.log(1.2) - Math.log(2) / Math.log(1.2) + 2)) < 1e-12);
  assert.equal(restrain(2, sm, "replace", 1.2), 2); // ≥: F(σmax) = σmax
});

for (const variant of ["replace", "reference"] as const) {
  test(`PRUNE (${variant}): finish restrains the singular values of W − W0 above σmax(W0)`, async () => {
    const ctx = await freshContext(stories);
    const { model } = ctx;
    // a tiny λ_m makes the edits large enough that some singular values exceed σmax(W0)
    const prune = new Prune({ ...OVERRIDES.prune, mom2UpdateWeight: 1e-3, variant }, model.arch.numLayers);
    const w0 = FAMILY.editLayers.map((l) => weightOutIn(model.arch.editTarget(l)));
    const t0 = performance.now();
    prune.applyBatch(ctx, REQUESTS.slice(0, 2));
    if (variant === "reference") timings["prune"] = performance.now() - t0;
    prune.applyBatch(ctx, REQUESTS.slice(2, 4));
    const wEdited = FAMILY.editLayers.map((l) => weightOutIn(model.arch.editTarget(l)));
    const fin = prune.finish(ctx);
    assert.equal(fin.length, FAMILY.editLayers.length);
    let restrainedAny = 0;
    FAMILY.editLayers.forEach((l, i) => {
      const t = model.arch.editTarget(l);
      const C = t.dOut;
      const F = t.dIn;
      const sigmaMax = ops.svd(w0[i]!, C, F).s[0]!;
      const dw = diff(wEdited[i]!, w0[i]!); // ΔW before finish
      const s = Array.from(ops.svd(dw, C, F).s);
      const fs = s.map((x) => restrain(x, sigmaMax, variant, variant === "reference" ? Math.E : 1.2));
      restrainedAny += s.filter((x) => x > sigmaMax).length;
      const wFinal = weightOutIn(t);
      // the returned record is the applied change
      assert.ok(relErr(fin[i]!.dense!, diff(wFinal, wEdited[i]!)) < 1e-4, `layer ${l}: record ≠ applied change`);
      if (variant === "replace") {
        // W_final − W0 = U F(s) Vᵀ: its singular values are F(s), sorted (1e-4 relative to s_max)
        const got = Array.from(ops.svd(diff(wFinal, w0[i]!), C, F).s);
        const want = [...fs].sort((a, b) => b - a);
        for (let k = 0; k < 8; k++) assert.ok(Math.abs(got[k]! - want[k]!) <= 1e-4 * want[0]!, `layer ${l}: σ_${k} ${got[k]} vs F(s) ${want[k]}`);
      } else {
        // "reference" adds F(ΔW) on top: W_final − W_edited = U F(s) Vᵀ, i.e. W0 + ΔW + F(ΔW)
        const got = Array.from(ops.svd(diff(wFinal, wEdited[i]!), C, F).s);
        for (let k = 0; k < 8; k++) assert.ok(Math.abs(got[k]! - fs[k]!) <= 1e-4 * fs[0]!, `layer ${l}: σ_${k} ${got[k]} vs F(s) ${fs[k]}`);
      }
    });
    assert.ok(restrainedAny > 0, "no singular value exceeded σmax(W0): the test does not exercise the restraint");
    assert.ok(ctx.logs.some((m) => m.includes(`prune (${variant})`)), "the variant is not logged");
  });
}

// ───────────────────────────── RECT ─────────────────────────────

async function checkRect(fx: Fixture, overrides: Record<string, unknown>, keep: number): Promise<void> {
  const ctx = await freshContext(fx);
  const { model } = ctx;
  const layers = overrides["editLayers"] as number[];
  const rect = new Rect({ ...overrides, keepFraction: keep }, model.arch.numLayers);
  const w0 = layers.map((l) => weightOutIn(model.arch.editTarget(l)));
  const t0 = performance.now();
  const out = rect.applyBatch(ctx, REQUESTS.slice(0, 2));
  if (fx === stories && keep === 0.4) timings["rect"] = performance.now() - t0;
  out.updates.forEach((u, i) => {
    const t = model.arch.editTarget(u.layer);
    const C = t.dOut;
    const F = t.dIn;
    const dense = u.dense!;
    assert.equal(dense.length, C * F);
    // applied change = the record (exact: W_pre restored, then W += masked Δ)
    assert.ok(bitIdentical(diff(weightOutIn(t), w0[i]!), diff(w0[i]!.map((w, k) => w + dense[k]!), w0[i]!)), `layer ${u.layer}: applied ≠ record`);
    // about keepFraction of the entries are non-zero (ties aside): within ±1 % of numel
    const nz = dense.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0);
    assert.ok(Math.abs(nz / dense.length - keep) <= 0.01, `layer ${u.layer}: ${nz}/${dense.length} non-zero, expected ≈ ${keep}`);
    // and they are the largest relative changes: min ρ(kept) ≥ max ρ(dropped)
    const full = lowRank64(u.influence!, u.activation!, C, F, u.n);
    let minKept = Infinity;
    let maxDropped = 0;
    for (let k = 0; k < dense.length; k++) {
      const rho = Math.abs(full[k]! / (w0[i]![k]! + 1e-8));
      if (dense[k] !== 0) minKept = Math.min(minKept, rho);
      else maxDropped = Math.max(maxDropped, rho);
      if (dense[k] !== 0) assert.ok(Math.abs(dense[k]! - full[k]!) <= 1e-5 * Math.abs(full[k]!) + 1e-12, "kept entry ≠ Δ");
    }
    assert.ok(minKept >= maxDropped * (1 - 1e-5), `layer ${u.layer}: kept ρ ${minKept} < dropped ρ ${maxDropped}`);
  });
}

test("RECT: keeps about keepFraction of the update, the entries with the largest relative change (stories260k, Llama layout)", async () => {
  await checkRect(stories, OVERRIDES.rect, 0.4);
  await checkRect(stories, { ...OVERRIDES.rect, sparsifyInLoop: true }, 0.2);
});

test("RECT on GPT-2 (stored in × out): the dense record is out × in and matches the applied change", async () => {
  await checkRect(gpt2, { editLayers: [0], targetLayer: 0, lossLayer: 1, numGradSteps: 5, mom2UpdateWeight: 10 }, 0.4);
});

// ───────────────────────────── every method: second batch and replay ─────────────────────────────

for (const name of METHOD_NAMES) {
  test(`${name}: a second batch works and replay + next batch is bit-identical to the uninterrupted run`, async () => {
    const a = await freshContext(stories);
    const b = await freshContext(stories);
    const L = a.model.arch.numLayers;
    const mA: EditMethod = createMethod(name, OVERRIDES[name], L);
    const o1 = mA.applyBatch(a, REQUESTS.slice(0, 1));
    const o2 = mA.applyBatch(a, REQUESTS.slice(1, 3));
    assert.equal(o2.requests.length, 2);
    for (const s of o2.layerStats) assert.ok(Number.isFinite(s.deltaNorm) && s.deltaNorm > 0, `${name}: batch 2 layer ${s.layer} ‖Δ‖ = ${s.deltaNorm}`);
    const finA = mA.finish?.(a) ?? null;
    // resume: a fresh instance replays batch 1 (before its factors are re-applied), then edits batch 2
    const mB = createMethod(name, OVERRIDES[name], L);
    mB.replay(b, o1);
    applyOutcome(b.model, o1);
    mB.applyBatch(b, REQUESTS.slice(1, 3));
    const finB = mB.finish?.(b) ?? null;
    assert.equal(finA === null, finB === null);
    for (const n of a.model.params.names()) {
      assert.ok(bitIdentical(a.model.params.get(n), b.model.params.get(n)), `${name}: parameter ${n} differs after replay`);
    }
  });
}

test("registry: every method name constructs; unknown names are E_CONFIG listing the supported names", () => {
  for (const name of METHOD_NAMES) assert.equal(createMethod(name, OVERRIDES[name], 5).name, name);
  assert.throws(
    () => createMethod("romee" as MethodName, {}, 5),
    (e: unknown) => e instanceof DeltaEditError && e.code === "E_CONFIG" && METHOD_NAMES.every((n) => e.message.includes(n)),
  );
  assert.throws(() => createMethod("rome", { layre: 2 }, 5), (e: unknown) => e instanceof DeltaEditError && e.code === "E_CONFIG");
});

test("timings of one edit per method on stories260k (reported)", () => {
  for (const [k, v] of Object.entries(timings)) assert.ok(Number.isFinite(v), k);
  process.stdout.write(`# one-edit timings (ms): ${JSON.stringify(Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])))}\n`);
});
