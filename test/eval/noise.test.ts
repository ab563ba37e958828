/**
 * Superimposed-noise identity (evaluation spec §9, §6.4): random W0 and random low-rank updates
 * applied in float32, then the factor-based N_i is checked against the weights themselves,
 * the decomposition against ‖N_i‖², and every variant against a brute-force oracle.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { Journal } from "../../src/edit/session/journal.js";
import { writeManifest } from "../../src/edit/session/manifest.js";
import { MODEL_HASH_KIND } from "../../src/edit/session/modelhash.js";
import { saveFactors } from "../../src/edit/session/store.js";
import type { LayerUpdate } from "../../src/edit/methods/method.js";
import {
  measureNoise, modelDeviation, NoiseFactors, noiseVectors, summarizeDeviation, summarizeMeasurement, summarizeNoise,
  type NoiseLayerFactors,
} from "../../src/eval/noise.js";
import { noiseFactorsFromSession } from "../../src/eval/noiseSession.js";
import { StepNoiseRecorder } from "../../src/eval/noiseStepLevel.js";
import { Rng } from "../../src/util/rng.js";

const C = 12, F = 20, LAYER = 7;

function randn(rng: Rng, len: number, scale = 1): Float32Array {
  const x = new Float32Array(len);
  for (let i = 0; i < len; i++) x[i] = rng.normal() * scale;
  return x;
}

/** A run of `steps` steps of `B` columns at one layer; W (C, F) is updated in float32 as an editor would. */
function simulate(seed: number, steps: number, B: number) {
  const rng = new Rng(seed);
  const w0 = randn(rng, C * F); // (C, F)
  const w = w0.slice();
  const before: Float32Array[] = []; // per step: W before the step (C, F)
  const updates: LayerUpdate[] = [];
  const factors = new NoiseFactors(C, F);
  for (let s = 0; s < steps; s++) {
    before.push(w.slice());
    const influence = randn(rng, C * B, 0.5); // (C, B)
    const activation = randn(rng, F * B, 0.2); // (F, B)
    const keys = randn(rng, F * B); // (F, B)
    for (let r = 0; r < C; r++) for (let f = 0; f < F; f++) {
      let d = 0;
      for (let c = 0; c < B; c++) d += influence[r * B + c]! * activation[f * B + c]!;
      w[r * F + f]! += d;
    }
    const u: LayerUpdate = { layer: LAYER, n: B, keys, influence, activation, dense: null };
    updates.push(u);
    factors.addStep([u]);
  }
  return { w0, w, before, updates, factors };
}

function col(m: Float32Array, rows: number, N: number, c: number): Float64Array {
  const v = new Float64Array(rows);
  for (let r = 0; r < rows; r++) v[r] = m[r * N + c]!;
  return v;
}

/** (A − B) k in float64, A, B (C, F). */
function diffTimes(a: Float32Array, b: Float32Array, k: Float64Array): Float64Array {
  const out = new Float64Array(C);
  for (let r = 0; r < C; r++) for (let f = 0; f < F; f++) out[r]! += (a[r * F + f]! - b[r * F + f]!) * k[f]!;
  return out;
}

/** Σ_c α_c (β_c·k) over the columns of one update. */
function stepTimes(u: LayerUpdate, k: Float64Array, onlyCol?: number): Float64Array {
  const out = new Float64Array(C);
  for (let c = 0; c < u.n; c++) {
    if (onlyCol !== undefined && c !== onlyCol) continue;
    let g = 0;
    for (let f = 0; f < F; f++) g += u.activation![f * u.n + c]! * k[f]!;
    for (let r = 0; r < C; r++) out[r]! += u.influence![r * u.n + c]! * g;
  }
  return out;
}

const norm = (v: ArrayLike<number>): number => Math.sqrt(Array.from(v).reduce((a, x) => a + x * x, 0));
const sub = (a: ArrayLike<number>, b: ArrayLike<number>): Float64Array => Float64Array.from(a, (x, i) => x - b[i]!);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => Array.from(a).reduce((s, x, i) => s + x * b[i]!, 0);

/** |a − b| <= tol · max(|b|, floor): relative with a floor for values near zero. */
function close(a: number, b: number, tol: number, floor: number, what: string): void {
  assert.ok(Math.abs(a - b) <= tol * Math.max(Math.abs(b), floor), `${what}: got ${a}, expected ${b} (relative tolerance ${tol})`);
}

/** Brute-force decomposition of ‖N_i‖² from its definition, excluding set `out` (j ∉ out contributes). */
function bruteDecomposition(f: NoiseLayerFactors, i: number, include: (j: number) => boolean, n: number): { act: number; inter: number; rho: number } {
  const g = (j: number): number => dot(f.beta.subarray(j * F, (j + 1) * F), f.keys.subarray(i * F, (i + 1) * F));
  const h = (j: number, l: number): number => dot(f.alpha.subarray(j * C, (j + 1) * C), f.alpha.subarray(l * C, (l + 1) * C));
  let act = 0, inter = 0, rho = 0;
  for (let j = 0; j < n; j++) {
    if (!include(j)) continue;
    act += g(j) ** 2 * h(j, j);
    rho += g(j) * h(i, j);
    for (let l = 0; l < n; l++) if (l !== j && include(l)) inter += g(j) * g(l) * h(j, l);
  }
  return { act, inter, rho: rho / Math.sqrt(h(i, i)) };
}

test("one request per step: Σ α_j β_jᵀ = W_n − W_0 and factor N_i = (W_n − W_0) k_i − Δ_i k_i", () => {
  const n = 15;
  const { w0, w, updates, factors } = simulate(1, n, 1);
  const f = factors.layer(LAYER);
  assert.equal(f.n, n);
  // Σ α_j β_jᵀ vs W_n − W_0: float32 weight accumulation, 1e-5 relative to ‖ΔW‖_F
  const sum = new Float64Array(C * F);
  for (let j = 0; j < n; j++) for (let r = 0; r < C; r++) for (let t = 0; t < F; t++) sum[r * F + t]! += f.alpha[j * C + r]! * f.beta[j * F + t]!;
  const dw = Float64Array.from(w, (x, e) => x - w0[e]!);
  assert.ok(norm(sub(sum, dw)) <= 1e-5 * norm(dw), `Σ α βᵀ differs from W_n − W_0 by ${norm(sub(sum, dw))} (‖ΔW‖ ${norm(dw)})`);

  const m = measureNoise(f);
  assert.equal(m.variant, "final");
  assert.equal(m.level, "request");
  const vecs = noiseVectors(f, [...Array(n).keys()]);
  for (let i = 0; i < n; i++) {
    const k = col(updates[i]!.keys!, F, 1, 0);
    const ref = sub(diffTimes(w, w0, k), stepTimes(updates[i]!, k)); // (C)
    const refNorm = norm(ref);
    close(m.norm[i]!, refNorm, 1e-4, 1e-6, `‖N_${i}‖ vs weights`);
    assert.ok(norm(sub(vecs[i]!, ref)) <= 1e-4 * refNorm, `N_${i} vector differs from (W_n − W_0) k − Δ_i k`);
    // decomposition sums to ‖N_i‖² computed from the weights (1e-4 relative)
    close(m.activationEnergy![i]! + m.interference![i]!, refNorm ** 2, 1e-4, 1e-6, `activation + interference of request ${i}`);
    const brute = bruteDecomposition(f, i, (j) => j !== i, n);
    close(m.activationEnergy![i]!, brute.act, 1e-4, 1e-6, `activation energy of request ${i}`);
    close(m.interference![i]!, brute.inter, 1e-4, Math.max(brute.act, 1e-6), `interference of request ${i}`);
    // projection on α_i and orthogonal drift
    const a = col(updates[i]!.influence!, C, 1, 0);
    const rho = dot(a, ref) / norm(a);
    close(m.projection[i]!, rho, 1e-4, refNorm, `ρ_${i}`);
    close(m.drift[i]!, refNorm ** 2 - rho ** 2, 1e-4, refNorm ** 2, `drift of request ${i}`);
    const sig = norm(stepTimes(updates[i]!, k));
    close(m.signal[i]!, sig, 1e-4, 1e-6, `‖S_${i}‖`);
    close(m.relative[i]!, refNorm / sig, 1e-4, 1e-6, `relative noise of request ${i}`);
  }
});

test("prefix variant: N_i = (W_before i − W_0) k_i; N_0 = 0", () => {
  const n = 12;
  const { w0, before, updates, factors } = simulate(2, n, 1);
  const f = factors.layer(LAYER);
  const m = measureNoise(f, { variant: "prefix" });
  assert.equal(m.variant, "prefix");
  assert.equal(m.norm[0], 0, "the first edit has no noise in the prefix variant");
  for (let i = 0; i < n; i++) {
    const k = col(updates[i]!.keys!, F, 1, 0);
    const ref = diffTimes(before[i]!, w0, k);
    close(m.norm[i]!, norm(ref), 1e-4, 1e-6, `prefix ‖N_${i}‖`);
    close(m.activationEnergy![i]! + m.interference![i]!, norm(ref) ** 2, 1e-4, 1e-6, `prefix decomposition ${i}`);
  }
  // at n edits the prefix noise of edit i only depends on edits before it
  const m5 = measureNoise(f, { variant: "prefix", edits: 5 });
  for (let i = 0; i < 5; i++) close(m5.norm[i]!, m.norm[i]!, 1e-9, 1e-9, `prefix ‖N_${i}‖ after 5 vs after ${n} edits`);
});

test("batch > 1: request-level vs step-level, final and prefix; the dense route agrees with the step level", () => {
  const steps = 5, B = 3, n = steps * B;
  const { w0, w, before, updates, factors } = simulate(3, steps, B);
  const f = factors.layer(LAYER);
  assert.deepEqual(Array.from(f.step), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
  const reqFinal = measureNoise(f, { level: "request" });
  const stepFinal = measureNoise(f, { level: "step" });
  const reqPrefix = measureNoise(f, { level: "request", variant: "prefix" });
  const stepPrefix = measureNoise(f, { level: "step", variant: "prefix" });

  const dense = new StepNoiseRecorder(LAYER, C, F, { trackTotal: true });
  const lowRank = new StepNoiseRecorder(LAYER, C, F, { trackTotal: true });
  for (const u of updates) {
    const d = new Float32Array(C * F); // (C, F) = R Xᵀ
    for (let r = 0; r < C; r++) for (let t = 0; t < F; t++) {
      let x = 0;
      for (let c = 0; c < B; c++) x += u.influence![r * B + c]! * u.activation![t * B + c]!;
      d[r * F + t] = x;
    }
    dense.addStep({ layer: LAYER, n: B, keys: null, influence: null, activation: null, dense: d }, u.keys, B);
    lowRank.addStep(u);
  }
  const deltaTotal = Float32Array.from(w, (x, e) => x - w0[e]!);
  const denseFinal = dense.measure({ deltaTotal });
  const denseTracked = lowRank.measure();
  const densePrefix = dense.measure({ variant: "prefix" });
  assert.equal(denseFinal.route, "step-level, no decomposition");
  assert.equal(denseFinal.activationEnergy, null);

  for (let i = 0; i < n; i++) {
    const s = Math.floor(i / B), c = i % B, u = updates[s]!;
    const k = col(u.keys!, F, B, c);
    const total = diffTimes(w, w0, k);
    const refReq = sub(total, stepTimes(u, k, c));
    const refStep = sub(total, stepTimes(u, k));
    const refStepPrefix = diffTimes(before[s]!, w0, k);
    const refReqPrefix = Float64Array.from(refStepPrefix); // plus the earlier columns of the same step
    for (let cc = 0; cc < c; cc++) stepTimes(u, k, cc).forEach((x, r) => (refReqPrefix[r]! += x));
    close(reqFinal.norm[i]!, norm(refReq), 1e-4, 1e-6, `request-level final ‖N_${i}‖`);
    close(stepFinal.norm[i]!, norm(refStep), 1e-4, 1e-6, `step-level final ‖N_${i}‖`);
    close(reqPrefix.norm[i]!, norm(refReqPrefix), 1e-4, 1e-6, `request-level prefix ‖N_${i}‖`);
    close(stepPrefix.norm[i]!, norm(refStepPrefix), 1e-4, 1e-6, `step-level prefix ‖N_${i}‖`);
    for (const [m, ref] of [[reqFinal, refReq], [stepFinal, refStep], [reqPrefix, refReqPrefix], [stepPrefix, refStepPrefix]] as const) {
      close(m.activationEnergy![i]! + m.interference![i]!, norm(ref) ** 2, 1e-4, 1e-6, `${m.variant}/${m.level} decomposition of ${i}`);
    }
    close(denseFinal.norm[i]!, norm(refStep), 1e-4, 1e-6, `dense route final ‖N_${i}‖`);
    close(denseTracked.norm[i]!, norm(refStep), 1e-4, 1e-6, `dense route (low-rank input, tracked total) ‖N_${i}‖`);
    close(densePrefix.norm[i]!, norm(refStepPrefix), 1e-4, 1e-6, `dense route prefix ‖N_${i}‖`);
  }
  // request-level noise includes the batch-mates, step-level does not: they differ for B > 1
  assert.ok(reqFinal.norm.some((x, i) => Math.abs(x - stepFinal.norm[i]!) > 1e-3), "request- and step-level should differ with B > 1");
  assert.throws(() => new StepNoiseRecorder(LAYER, C, F).measure(), /deltaTotal/);
  assert.throws(() => new StepNoiseRecorder(LAYER, C, F).measure({ variant: "prefix" }), /trackTotal/);
});

test("summaries: noise_E, median, means, labels; checkpoints; headline layer; RECT/PRUNE flags", () => {
  const { factors, updates } = simulate(4, 20, 1);
  const f = factors.layer(LAYER);
  const m = measureNoise(f, { edits: 10 });
  const s = summarizeMeasurement(m);
  const norms = Array.from(m.norm);
  close(s.noiseE, norms.reduce((a, b) => a + b, 0) / 10, 1e-12, 1e-12, "noise_E is the mean ‖N_i‖");
  const sorted = [...norms].sort((a, b) => a - b);
  close(s.median, (sorted[4]! + sorted[5]!) / 2, 1e-12, 1e-12, "median");
  close(s.meanActivationEnergy! + s.meanInterference!, s.meanSquared, 1e-9, 1e-9, "mean terms add to mean ‖N‖²");
  assert.equal(s.label, "final, key=solver, request-level, factors, layer 7");
  const cps = summarizeNoise(factors, [5, 10, 20], { variant: "prefix" });
  assert.deepEqual(cps.map((c) => c.edits), [5, 10, 20]);
  assert.ok(cps.every((c) => c.variant === "prefix" && c.layer === LAYER));
  assert.throws(() => summarizeNoise(factors, [21]), /opts\.edits/);

  // several layers: the headline is the last edited layer; `layers` restricts storage
  const multi = new NoiseFactors(C, F);
  const only = new NoiseFactors(C, F, [9]);
  for (const u of updates.slice(0, 4)) {
    const step = [{ ...u, layer: 3 }, { ...u, layer: 9 }];
    multi.addStep(step);
    only.addStep(step);
  }
  assert.equal(multi.headlineLayer(), 9);
  assert.deepEqual(multi.layers(), [3, 9]);
  assert.deepEqual(only.layers(), [9]);
  // RECT records factors and the masked dense update → approximate; PRUNE's final dense update → counted
  const u0 = updates[0]!;
  multi.addStep([{ ...u0, layer: 9, dense: new Float32Array(C * F) }]);
  multi.addStep([{ layer: 9, n: 0, keys: null, influence: null, activation: null, dense: new Float32Array(C * F) }]);
  const f9 = multi.layer(9);
  assert.equal(f9.approximate, true);
  assert.equal(f9.denseSteps, 1);
  assert.match(summarizeMeasurement(measureNoise(f9)).label, /approximate/);
  assert.throws(() => multi.layer(4), /layer 4 has no recorded update/);
});

test("key override: scoring other keys changes g but not the factors", () => {
  const { factors } = simulate(5, 8, 1);
  const f = factors.layer(LAYER);
  const same = measureNoise(f, { keys: { keys: f.keys, label: "bare-prompt" } });
  assert.equal(same.key, "bare-prompt");
  const base = measureNoise(f);
  for (let i = 0; i < 8; i++) close(same.norm[i]!, base.norm[i]!, 1e-12, 1e-12, "same keys, same noise");
});

test("scales to a few thousand requests (n² memory, BLAS)", () => {
  const n = 2000, c = 16, fdim = 32;
  const rng = new Rng(6);
  const factors = new NoiseFactors(c, fdim);
  for (let s = 0; s < n / 100; s++) {
    factors.addStep([{ layer: 1, n: 100, keys: randn(rng, fdim * 100), influence: randn(rng, c * 100), activation: randn(rng, fdim * 100, 0.1), dense: null }]);
  }
  const t0 = performance.now();
  const [s] = summarizeNoise(factors, [n], { level: "step" });
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(s !== undefined && Number.isFinite(s.noiseE) && s.noiseE > 0, "noise_E is finite and positive");
  close(s.meanActivationEnergy! + s.meanInterference!, s.meanSquared, 1e-9, 1e-9, "terms add up at n = 2000");
  assert.ok(seconds < 20, `n = 2000 took ${seconds.toFixed(1)} s (limit 20 s)`);
});

test("model-level deviation D_i = ‖h − z*‖", () => {
  const d = modelDeviation(Float32Array.of(3, 0, 0, 4), Float32Array.of(0, 0, 0, 0));
  assert.deepEqual(d, { deviation: 5, targetNorm: 5, relative: 1 });
  const s = summarizeDeviation([d, modelDeviation(Float32Array.of(1, 0), Float32Array.of(1, 0)), modelDeviation(Float32Array.of(2, 0), Float32Array.of(0, 0))]);
  assert.deepEqual(s, { edits: 3, mean: 7 / 3, median: 2, meanRelative: 2 / 3 });
  assert.throws(() => modelDeviation(new Float32Array(3), new Float32Array(2)), /argument h/);
});

test("factors from a session directory: batches in order, undone batches left out, dense finish counted", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-noise-"));
  try {
    const { updates } = simulate(7, 4, 2);
    writeManifest(path.join(dir, "manifest.json"), {
      format: "deltaedit-session", version: 2, codeVersion: "test", created: new Date(0).toISOString(),
      model: { source: "/nowhere", hash: "0".repeat(64), hashKind: MODEL_HASH_KIND, modelType: "llama", numLayers: LAYER + 1, hidden: C, dFF: F },
      method: "memit", preset: "test", overrides: {}, params: {}, batchSize: 2, seed: 0, threads: 1,
      templates: { memit: [["{}"]], rome: ["{}"] }, rngStateAfterTemplates: [1, 2, 3, 4], stats: {},
    });
    const journal = Journal.read(path.join(dir, "journal.jsonl"), { repair: true, numLayers: LAYER + 1 });
    const time = new Date(0).toISOString();
    const outcome = { requests: [], layerStats: [], timings: { target: 0, keys: 0, solve: 0, apply: 0, total: 0 }, replayData: {} };
    updates.forEach((u, i) => {
      const name = `${String(i + 1).padStart(6, "0")}.safetensors`;
      const { metas, sha256 } = saveFactors(path.join(dir, "factors", name), [u], C, F);
      const requests = [0, 1].map((k) => ({ caseId: String(2 * i + k), index: 2 * i + k, subject: "s", prompt: "{} p", targetNew: "t" }));
      journal.append({ kind: "batch", batch: i + 1, requests, rejected: [], outcome, updates: metas, factors: name, factorsSha256: sha256, rngState: [1, 2, 3, 4], nextIndex: 2 * i + 2, time });
    });
    journal.append({ kind: "undo", batch: 2, time });
    const fin = saveFactors(path.join(dir, "factors", "finish.safetensors"), [{ layer: LAYER, n: 0, keys: null, influence: null, activation: null, dense: new Float32Array(C * F) }], C, F);
    journal.append({ kind: "finish", updates: fin.metas, factors: "finish.safetensors", factorsSha256: fin.sha256, time });
    const f = noiseFactorsFromSession(dir).layer(LAYER);
    assert.equal(f.n, 6, "3 applied batches of 2 requests");
    assert.equal(f.denseSteps, 1);
    // rows are batches 1, 3, 4 in order: compare alpha of the first request of batch 3
    assert.deepEqual(Array.from(f.alpha.subarray(2 * C, 3 * C)), Array.from(col(updates[2]!.influence!, C, 2, 0), Math.fround));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
