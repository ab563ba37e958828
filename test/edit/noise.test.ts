/** DeltaEdit noise monitor and influence projector P_δ (src/edit/noise.ts; spec §4.4 c–e, §7.6, App. B). */
import { test } from "node:test";
import assert from "node:assert/strict";

import { DeltaEditError } from "../../src/errors.js";
import { Rng } from "../../src/util/rng.js";
import { NoiseMonitor, buildInfluenceProjector, noiseVector, updateGram, type InfluenceProjector } from "../../src/edit/noise.js";
import { orthonormalizeRows, randomizedTopSvd } from "../../src/edit/randomizedSvd.js";
import { bitIdentical, matmul, maxAbs, maxAbsDiff, randn, relErr } from "./_fixtures.js";

const EXACT = 1e-12; // float64 recurrence vs hand-computed values

test("noise monitor: first sample sets μ, σ² = 0; first non-zero σ² at the 3rd request (hand-computed)", () => {
  const mon = new NoiseMonitor({ varMultiplier: 3 });
  // request 1: first batch, ΔW_acc absent → only the counter moves
  mon.beginRequest();
  assert.deepEqual(mon.state, { requestCount: 1, mu: null, variance: null });
  // request 2: ν = 2 → μ = 2, σ² = 0 (kept at 0 by that sample's update)
  let o = mon.observe(mon.beginRequest(), 2);
  assert.equal(o.requestCount, 2);
  assert.equal(o.triggered, false);
  assert.equal(o.mu, 2);
  assert.equal(o.variance, 0, "σ² exactly 0 after the first sample");
  // request 3: ν = 4 → μ = 0.9·2 + 0.1·4 = 2.2; σ² = 0.9·0 + 0.1·(4 − 2.2)² = 0.324 (uses the updated μ)
  o = mon.observe(mon.beginRequest(), 4);
  assert.ok(Math.abs(o.mu - 2.2) < EXACT, `μ = 2.2, got ${o.mu} (tol ${EXACT})`);
  assert.ok(Math.abs(o.variance - 0.324) < EXACT, `σ² = 0.324, got ${o.variance} (tol ${EXACT})`);
  // request 4: ν = 3 → μ = 0.9·2.2 + 0.3 = 2.28; σ² = 0.9·0.324 + 0.1·(3 − 2.28)² = 0.34344
  o = mon.observe(mon.beginRequest(), 3);
  assert.ok(Math.abs(o.mu - 2.28) < EXACT, `μ = 2.28, got ${o.mu} (tol ${EXACT})`);
  assert.ok(Math.abs(o.variance - 0.34344) < EXACT, `σ² = 0.34344, got ${o.variance} (tol ${EXACT})`);
  assert.equal(o.testedMu, 2.2, "the test used the old μ");
});

test("noise monitor: no trigger while c ≤ 20; trigger is two-sided; triggered samples leave μ, σ² unchanged", () => {
  const mon = new NoiseMonitor({ varMultiplier: 3, warmupRequests: 20, emaDecay: 0.9 });
  mon.beginRequest(); // request 1 (first batch)
  let mu: number | null = null;
  let v: number | null = null;
  const expectPlain = (nu: number) => {
    // independent re-implementation of §4.4 c for the untriggered branch
    if (mu === null || v === null) { mu = nu; v = 0; return; }
    const m2: number = 0.9 * mu + 0.1 * nu;
    v = 0.9 * v + 0.1 * (nu - m2) * (nu - m2);
    mu = m2;
  };
  // requests 2..20 include big outliers: none may trigger (c ≤ 20)
  const warm = [1, 1.2, 0.9, 1.1, 50, 1, 0.95, 1.05, 1, -0, 1, 1.1, 0.9, 1, 80, 1, 1, 1, 1];
  for (let i = 0; i < warm.length; i++) {
    const nu = Math.abs(warm[i]!);
    const o = mon.observe(mon.beginRequest(), nu);
    expectPlain(nu);
    assert.equal(o.triggered, false, `request ${o.requestCount} (≤ 20) must not trigger`);
    assert.ok(Math.abs(o.mu - mu!) < EXACT && Math.abs(o.variance - v!) < EXACT, `request ${o.requestCount}: stats follow the recurrence`);
  }
  assert.equal(mon.state.requestCount, 20);
  const sd = () => Math.sqrt(mon.state.variance!);
  // request 21: a high outlier → triggered, stats unchanged
  const before = mon.state;
  let o = mon.observe(mon.beginRequest(), before.mu! + 3 * sd() + 1e-3);
  assert.equal(o.requestCount, 21);
  assert.equal(o.triggered, true, "c = 21 > 20 and |ν−μ| > 3σ → triggered");
  assert.deepEqual({ mu: o.mu, variance: o.variance }, { mu: before.mu, variance: before.variance }, "triggered: no update");
  // request 22: inside the band → not triggered, stats update
  o = mon.observe(mon.beginRequest(), before.mu! + 2.9 * sd());
  assert.equal(o.triggered, false);
  assert.notEqual(o.mu, before.mu);
  // a request without observe (e.g. PLAIN mode in the first batch) still counts
  mon.beginRequest();
  assert.equal(mon.state.requestCount, 23);
  // two-sidedness: a stable series around 10, then a low outlier at c = 21
  const two = new NoiseMonitor({ varMultiplier: 3 });
  two.beginRequest();
  for (let c = 2; c <= 20; c++) two.observe(two.beginRequest(), c % 2 === 0 ? 10.1 : 9.9);
  const st = two.state;
  const low = st.mu! - 3 * Math.sqrt(st.variance!) - 1e-3;
  assert.ok(low > 0, "the low outlier is a valid norm");
  const ol = two.observe(two.beginRequest(), low);
  assert.equal(ol.triggered, true, "ν far below μ also triggers (|ν − μ|)");
  assert.deepEqual(two.state, { ...st, requestCount: 21 }, "triggered: no update");
});

test("noise monitor: σ² = 0 never triggers; ordering errors are impossible to miss; serialize round trip", () => {
  const mon = new NoiseMonitor({ warmupRequests: 0 });
  const r1 = mon.beginRequest();
  assert.equal(mon.observe(r1, 5).triggered, false, "first sample: σ² = 0 → no trigger even past warm-up");
  assert.throws(() => mon.observe(r1, 5), (e: unknown) => e instanceof DeltaEditError && e.code === "E_ARG", "observe twice");
  const r2 = mon.beginRequest();
  mon.beginRequest();
  assert.throws(() => mon.observe(r2, 5), (e: unknown) => e instanceof DeltaEditError && e.code === "E_ARG", "observe a stale request");
  assert.throws(() => mon.observe({ requestCount: 3 }, 5), (e: unknown) => e instanceof DeltaEditError && e.code === "E_ARG", "forged request");
  assert.throws(() => new NoiseMonitor({ emaDecy: 0.9 } as never), (e: unknown) => e instanceof DeltaEditError && e.code === "E_CONFIG" && /emaDecay/.test(e.message));
  const a = new NoiseMonitor({ varMultiplier: 1.5 });
  const seq = [0, 3, 2.5, 2.7, 3.1, 2.2, 2.9];
  seq.forEach((nu, i) => { const ra = a.beginRequest(); if (i > 0) a.observe(ra, nu); });
  const b = NoiseMonitor.deserialize(JSON.parse(JSON.stringify(a.serialize())));
  for (const nu of [3.3, 1.0, 2.8]) {
    const oa = a.observe(a.beginRequest(), nu);
    const ob = b.observe(b.beginRequest(), nu);
    assert.deepEqual(ob, oa, "resumed monitor continues identically");
  }
});

/** Random accumulated update ΔW_acc = Σ R Xᵀ over `batches` (rank ≤ total keys). */
function accumulate(rng: Rng, d: number, dIn: number, batches: number[]) {
  let deltaW: Float32Array | null = null; // (d, dIn)
  let gram: Float32Array = new Float32Array(d * d); // (d, d)
  for (const n of batches) {
    const residual = randn(rng, d, n); // (d, N)
    const x = randn(rng, dIn, n, 1 / Math.sqrt(dIn)); // (dIn, N)
    gram = updateGram(gram, deltaW, residual, x, d, dIn, n);
    const inc = matmul(residual, x, d, n, dIn, { transB: true });
    deltaW = deltaW === null ? inc : deltaW.map((v, i) => v + inc[i]!);
  }
  return { deltaW: deltaW!, gram };
}

test("updateGram (§7.6 dense Gram) equals ΔW ΔWᵀ recomputed; noiseVector = ΔW κ", () => {
  const rng = new Rng(4);
  const d = 40, dIn = 96;
  const { deltaW, gram } = accumulate(rng, d, dIn, [1, 3, 2, 5, 1, 1, 4]);
  const direct = matmul(deltaW, deltaW, d, dIn, d, { transB: true });
  assert.ok(relErr(gram, direct) < 1e-5, `maintained Gram vs recomputed rel err ${relErr(gram, direct)} (tol 1e-5)`);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) assert.equal(gram[i * d + j], gram[j * d + i], "exactly symmetric");
  const key = randn(rng, dIn, 1); // κ (dIn)
  const { noise, nu } = noiseVector(deltaW, key, d, dIn);
  const want = matmul(deltaW, key, d, dIn, 1);
  assert.ok(maxAbsDiff(noise, want) < 1e-6 * Math.max(1, maxAbs(want)), "n = ΔW κ (tol 1e-6)");
  let s = 0;
  for (const v of want) s += v * v;
  assert.ok(Math.abs(nu - Math.sqrt(s)) < 1e-5 * Math.sqrt(s), "ν = ‖n‖ (tol 1e-5 rel)");
});

function denseIminusUUt(p: InfluenceProjector): Float32Array {
  const d = p.d;
  const out = new Float32Array(d * d);
  for (let i = 0; i < d; i++) {
    const e = new Float32Array(d);
    e[i] = 1;
    out.set(p.apply(e), i * d); // row i of P_δ (symmetric)
  }
  return out;
}

test("P_δ: U_Jᵀ (P_δ v) = 0; 'reference' (randomized) == 'exact' while rank(G) ≤ q; seeded → identical", () => {
  const rng = new Rng(8);
  const d = 64, dIn = 128; // q = ⌊64·0.25⌋ = 16
  const { deltaW, gram } = accumulate(rng, d, dIn, [3, 2, 4, 1]); // 10 edits: rank(G) ≤ 11 ≤ q
  const { noise } = noiseVector(deltaW, randn(rng, dIn, 1), d, dIn);
  const exact = buildInfluenceProjector({ gram, noise, d, params: { mode: "exact" } });
  const ref = buildInfluenceProjector({ gram, noise, d, params: { mode: "reference" }, rng: new Rng(123) });
  assert.equal(exact.q, 16);
  assert.equal(exact.cap, 48);
  assert.ok(exact.rank > 0 && exact.rank <= 11, `rank ${exact.rank} ≤ 11`);
  assert.equal(ref.rank, exact.rank, "same |J|");
  const diff = maxAbsDiff(denseIminusUUt(ref), denseIminusUUt(exact));
  assert.ok(diff < 1e-4, `reference vs exact projector max abs diff ${diff} (tol 1e-4)`);
  for (let j = 0; j < exact.rank; j++) {
    const e = Math.abs(ref.topEigenvalues[j]! - exact.topEigenvalues[j]!) / exact.topEigenvalues[j]!;
    assert.ok(e < 1e-4, `eigenvalue ${j}: randomized vs exact rel err ${e} (tol 1e-4)`);
  }
  for (const p of [ref, exact]) {
    const v = randn(rng, d, 1);
    const pv = p.apply(v);
    const coeff = matmul(p.basisT, pv, p.rank, d, 1); // U_Jᵀ (P_δ v)
    assert.ok(maxAbs(coeff) < 1e-5 * maxAbs(v), `${p.mode}: |U_Jᵀ P_δ v| = ${maxAbs(coeff)} (tol 1e-5·|v|)`);
    assert.ok(maxAbsDiff(p.apply(pv), pv) < 1e-5, `${p.mode}: P_δ idempotent (tol 1e-5)`);
  }
  const again = buildInfluenceProjector({ gram, noise, d, params: { mode: "reference" }, rng: new Rng(123) });
  assert.ok(bitIdentical(again.basisT, ref.basisT), "same seed → bit-identical U_J");
  assert.throws(() => buildInfluenceProjector({ gram, noise, d }), (e: unknown) => e instanceof DeltaEditError && e.code === "E_ARG", "reference mode needs an rng");
});

test("P_δ: J keeps S_j > 0.1 only; ODD-6 cap branch (space ≥ 0.5) keeps the first cap columns", () => {
  const d = 16;
  // G = diag(5, 4, 3, 2, 1, 0.5, 0.2, 0.05, 0, …) with noise 0: eigenvalues known exactly
  const gram = new Float32Array(d * d);
  const eig = [5, 4, 3, 2, 1, 0.5, 0.2, 0.05];
  eig.forEach((v, i) => (gram[i * d + i] = v));
  const noise = new Float32Array(d);
  const p = buildInfluenceProjector({ gram, noise, d, params: { mode: "exact", space: 0.5 } }); // q = 8, cap = 8
  assert.equal(p.rank, 7, "7 eigenvalues > 0.1");
  const capped = buildInfluenceProjector({ gram, noise, d, params: { mode: "exact", space: 0.75 } }); // q = 12, cap = 4
  assert.equal(capped.cap, 4);
  assert.equal(capped.rank, 4, "|J| = 7 ≥ cap = 4 → the first cap columns");
  const v = new Float32Array(d).fill(1);
  const out = capped.apply(v);
  assert.ok(maxAbs(out.subarray(0, 4)) < 1e-6 && Math.abs(out[4]! - 1) < 1e-6, "removes exactly the top-4 directions (tol 1e-6)");
  const ref = buildInfluenceProjector({ gram, noise, d, params: { space: 0.5 }, rng: new Rng(1) });
  assert.equal(ref.rank, 7, "randomized finds the same 7 directions (rank(G) = 8 ≤ q = 8)");
});

test("randomized SVD pieces: orth gives orthonormal rows even for rank-deficient or zero input", () => {
  const rng = new Rng(2);
  const rows = 6, len = 20;
  const x = randn(rng, rows, len);
  x.set(x.subarray(0, len), 2 * len); // row 2 = row 0 (dependent)
  x.fill(0, 4 * len, 5 * len); // row 4 = 0
  orthonormalizeRows(x, rows, len);
  const g = matmul(x, x, rows, len, rows, { transB: true });
  for (let i = 0; i < rows; i++) for (let j = 0; j < rows; j++) {
    assert.ok(Math.abs(g[i * rows + j]! - (i === j ? 1 : 0)) < 1e-5, `QQᵀ = I at (${i},${j}): ${g[i * rows + j]} (tol 1e-5)`);
  }
  const a = randn(rng, 30, 30);
  const sym = matmul(a, a, 30, 30, 30, { transB: true }); // full-rank PSD
  const r = randomizedTopSvd(sym, 30, 30, 30, 2, new Rng(3)); // q = n: exact SVD
  const recon = new Float32Array(30 * 30);
  for (let i = 0; i < 30; i++) for (let j = 0; j < 30; j++) {
    let s = 0;
    for (let k = 0; k < 30; k++) s += r.u[i * 30 + k]! * r.s[k]! * r.vt[k * 30 + j]!;
    recon[i * 30 + j] = s;
  }
  assert.ok(relErr(recon, sym) < 1e-4, `U S Vᵀ = A for q = n, rel err ${relErr(recon, sym)} (tol 1e-4)`);
});
