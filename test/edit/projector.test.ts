/** AlphaEdit null-space projector (src/edit/projector.ts; spec §3.6, §7.7, ODD-30). */
import { test } from "node:test";
import assert from "node:assert/strict";

import * as ops from "../../src/kernels/ops.js";
import { DeltaEditError } from "../../src/errors.js";
import { Rng } from "../../src/util/rng.js";
import { defaultNullSpaceOptions, NullSpaceProjector, selectNullSpaceCut, type ProjectorMeta } from "../../src/edit/projector.js";
import { alphaEditDefaults, NullSpaceSolve, type AlphaEditParams } from "../../src/edit/methods/alphaedit.js";
import type { EditContext } from "../../src/edit/methods/method.js";
import { createMethod } from "../../src/edit/methods/registry.js";
import { bitIdentical, column, lowRankPlusSmall, symmetricFromEigen, matmul, maxAbs, maxAbsDiff, randn, randomOrthogonal } from "./_fixtures.js";

// Two regimes: r ≤ dIn/2 stores U0 ("nullspace"), r > dIn/2 stores U1 ("complement").
const CASES = [
  { dIn: 64, dominant: 48, kind: "nullspace" }, // r = 16
  { dIn: 96, dominant: 24, kind: "complement" }, // r = 72
] as const;

for (const c of CASES) {
  test(`projector (${c.kind}, dIn=${c.dIn}): rank, P² = P, Pᵀ = P, apply == dense, P k0 ≈ 0`, () => {
    const rng = new Rng(11 + c.dIn);
    const { c0, q, dominantCols } = lowRankPlusSmall(rng, c.dIn, c.dominant);
    const proj = NullSpaceProjector.fromSecondMoment(c0, c.dIn);
    const dIn = c.dIn;
    // rank = number of eigenvalues of C0 below 2e-2 (by construction, and by an independent eigh)
    const vals = ops.eigh(c0, dIn).values;
    let below = 0;
    for (let i = 0; i < dIn; i++) if (Math.abs(vals[i]!) < 2e-2) below++;
    assert.equal(proj.rank, dIn - c.dominant, "rank = dIn − #dominant");
    assert.equal(proj.rank, below, "rank = #eigenvalues below threshold");
    assert.equal(proj.basisKind, c.kind);

    const p = proj.toDense(); // (dIn, dIn)
    const p2 = matmul(p, p, dIn, dIn, dIn);
    assert.ok(maxAbsDiff(p2, p) < 1e-5, `P² = P, max abs diff ${maxAbsDiff(p2, p)} (tol 1e-5)`);
    let asym = 0;
    for (let i = 0; i < dIn; i++) for (let j = 0; j < dIn; j++) asym = Math.max(asym, Math.abs(p[i * dIn + j]! - p[j * dIn + i]!));
    assert.ok(asym < 1e-6, `Pᵀ = P, max asymmetry ${asym} (tol 1e-6)`);
    let trace = 0;
    for (let i = 0; i < dIn; i++) trace += p[i * dIn + i]!;
    assert.ok(Math.abs(trace - proj.rank) < 1e-4, `trace P = rank, got ${trace} vs ${proj.rank} (tol 1e-4)`);

    const x = randn(rng, dIn, 7); // (dIn, 7)
    const px = proj.apply(x, 7);
    const dense = matmul(p, x, dIn, dIn, 7);
    assert.ok(maxAbsDiff(px, dense) < 1e-5 * Math.max(1, maxAbs(dense)), `apply == dense P X, max abs diff ${maxAbsDiff(px, dense)} (tol 1e-5)`);
    assert.ok(maxAbsDiff(proj.apply(px, 7), px) < 1e-5, "apply is idempotent (tol 1e-5)");

    for (const j of dominantCols.slice(0, 5)) {
      const k0 = column(q, dIn, dIn, j); // a preserved (dominant) direction, unit norm
      const pk0 = proj.apply(k0, 1);
      assert.ok(maxAbs(pk0) < 1e-5, `P k0 ≈ 0 for a dominant eigenvector, max |P k0| = ${maxAbs(pk0)} (tol 1e-5)`);
    }
  });
}

test("projector keepNullBasis: U0 orthonormal and U0 U0ᵀ = P (complement storage)", () => {
  const rng = new Rng(5);
  const dIn = 80;
  const { c0 } = lowRankPlusSmall(rng, dIn, 20);
  const proj = NullSpaceProjector.fromSecondMoment(c0, dIn, { keepNullBasis: true });
  assert.equal(proj.basisKind, "complement");
  const u0 = proj.nullBasis;
  assert.ok(u0 !== null, "U0 kept");
  const r = proj.rank;
  const gram = matmul(u0, u0, r, dIn, r, { transA: true }); // (r, r)
  for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) {
    const want = i === j ? 1 : 0;
    assert.ok(Math.abs(gram[i * r + j]! - want) < 1e-5, `U0ᵀU0 = I at (${i},${j}): ${gram[i * r + j]} (tol 1e-5)`);
  }
  const p = matmul(u0, u0, dIn, r, dIn, { transB: true });
  assert.ok(maxAbsDiff(p, proj.toDense()) < 1e-5, `U0 U0ᵀ = P (tol 1e-5), diff ${maxAbsDiff(p, proj.toDense())}`);
  assert.equal(NullSpaceProjector.fromSecondMoment(c0, dIn).nullBasis, null, "without keepNullBasis the complement projector has no U0");
});

test("projector threshold is absolute and configurable (nullspaceThreshold)", () => {
  const rng = new Rng(9);
  const dIn = 32;
  const { c0 } = lowRankPlusSmall(rng, dIn, 10);
  assert.equal(NullSpaceProjector.fromSecondMoment(c0, dIn, { nullspaceThreshold: 2e-2 }).rank, 22);
  assert.equal(NullSpaceProjector.fromSecondMoment(c0, dIn, { nullspaceThreshold: 10 }).rank, 32, "everything below a huge threshold");
  assert.equal(NullSpaceProjector.fromSecondMoment(c0, dIn, { nullspaceThreshold: 1e-30 }).rank, 0, "nothing below a tiny threshold");
  const zero = NullSpaceProjector.fromSecondMoment(c0, dIn, { nullspaceThreshold: 1e-30 });
  assert.equal(maxAbs(zero.apply(randn(rng, dIn, 2), 2)), 0, "rank-0 projector maps to 0");
  assert.throws(() => NullSpaceProjector.fromSecondMoment(c0, dIn, { nullspaceTreshold: 1 } as never), (e: unknown) => e instanceof DeltaEditError && e.code === "E_CONFIG");
  assert.throws(() => NullSpaceProjector.fromSecondMoment(c0.subarray(1), dIn), (e: unknown) => e instanceof DeltaEditError && e.code === "E_SHAPE" && /preservedCov/.test(e.message));
});

test("projector serialize → deserialize reproduces apply bit for bit", () => {
  const rng = new Rng(21);
  for (const [dIn, dominant, keep] of [[48, 40, false], [48, 8, true]] as const) {
    const { c0 } = lowRankPlusSmall(rng, dIn, dominant);
    const proj = NullSpaceProjector.fromSecondMoment(c0, dIn, { keepNullBasis: keep });
    const s = proj.serialize();
    const back = NullSpaceProjector.deserialize({ meta: JSON.parse(JSON.stringify(s.meta)), arrays: s.arrays }); // meta through JSON, as on disk
    assert.equal(back.rank, proj.rank);
    assert.equal(back.basisKind, proj.basisKind);
    const x = randn(rng, dIn, 3);
    assert.ok(bitIdentical(back.apply(x, 3), proj.apply(x, 3)), "apply bit-identical after round trip");
    assert.equal(back.nullBasis !== null, proj.nullBasis !== null, "U0 availability survives");
  }
});

// ───────────────────────────── null-space rules: "absolute" vs "gap" ─────────────────────────────
//
// Synthetic spectra C0 = Q diag(λ) Qᵀ with a random orthogonal Q. Every rank asserted below is
// fixed by construction with a margin far above float32 rounding: eigh moves eigenvalues by a few
// ulps of λ_max (≈ 1e-5 for λ_max = 100), while the planted gaps are ×50 … ×1000 and the eigenvalues
// next to τ sit a factor 1.05 (≈ 1e-3 absolute) away from it.

const TAU = 2e-2;

/** C0 = Q diag(eig) Qᵀ (dIn, dIn), float64 accumulation, stored float32; Q (dIn, dIn) columns = eigenvectors. */
function planted(rng: Rng, eig: readonly number[]): { c0: Float32Array; q: Float32Array; dIn: number } {
  const dIn = eig.length;
  const q = randomOrthogonal(rng, dIn);
  const c0 = symmetricFromEigen(q, eig, dIn);
  return { c0, q, dIn };
}

/** The exact projector onto the span of Q's columns `cols`, (dIn, dIn), float64. */
function exactProjector(q: Float32Array, dIn: number, cols: readonly number[]): Float64Array {
  const p = new Float64Array(dIn * dIn);
  for (let i = 0; i < dIn; i++) for (let j = 0; j < dIn; j++) {
    let s = 0;
    for (const c of cols) s += q[i * dIn + c]! * q[j * dIn + c]!;
    p[i * dIn + j] = s;
  }
  return p;
}

/** ‖a − b‖_F, float64. */
function froDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s);
}

/** Geometric sequence of `n` values with ratio `r`, centred (in log) on `centre`. */
function geometric(n: number, r: number, centre: number): number[] {
  return Array.from({ length: n }, (_, j) => centre * r ** (j - (n - 1) / 2));
}

/**
 * The planted spectrum (dIn = 64): 16 "zero" eigenvalues in [1e-6, 1e-5] (below the floor
 * 1e-6·λ_max ≈ 1e-4), a dense cluster D of 24 around τ, D[j] = τ·r^(j − 13.5) with r = 10^(1/23)
 * (a decade, 5.2e-3 … 0.0518; 14 below τ, the nearest a factor √r ≈ 1.05 away), and 24 preserved
 * eigenvalues from 1000·D[23] ≈ 51.8 to ≈ 101.8. Gaps: zero→D ≈ ×51 (from the floor), D→preserved ×1000.
 */
function plantedGapSpectrum(rng: Rng): { eig: number[]; zero: number[]; dense: number[]; big: number[] } {
  const r = 10 ** (1 / 23);
  const dense = geometric(24, r, TAU * r ** 0.5 * r ** (23 / 2 - 14)); // τ between D[13] and D[14]
  const zero = Array.from({ length: 16 }, () => 1e-6 + 9e-6 * rng.uniform());
  const big = Array.from({ length: 24 }, (_, j) => 1000 * dense[23]! + (50 * j) / 23);
  // interleave the order so that the planted clusters are not Q's leading columns
  const eig: number[] = [];
  for (let j = 0; j < 24; j++) {
    eig.push(big[j]!, dense[j]!);
    if (j < 16) eig.push(zero[j]!);
  }
  return { eig, zero, dense, big };
}

test("gap rule: picks exactly the planted cut (×1000 gap above a dense cluster around τ); absolute rule as before", () => {
  const rng = new Rng(101);
  const spec = plantedGapSpectrum(rng);
  assert.ok(spec.dense.filter((x) => x < TAU).length === 14 && Math.abs(spec.dense[13]! / TAU - 1) > 0.04 && Math.abs(spec.dense[14]! / TAU - 1) > 0.04, "construction: τ halfway between D[13] and D[14]");
  const lo = spec.dense[23]!; // ≈ 0.0518, the top of D
  const hi = spec.big[0]!; // = 1000 · lo
  const floor = 1e-6 * spec.big[23]!;
  const { c0, q, dIn } = planted(rng, spec.eig);
  const plantedNull = spec.eig.map((x, i) => [x, i] as const).filter(([x]) => x < 1).map(([, i]) => i); // zero ∪ D: 40 columns of Q
  const plantedBelowTau = spec.eig.map((x, i) => [x, i] as const).filter(([x]) => x < TAU).map(([, i]) => i); // zero ∪ D[0..13]: 30

  for (const precision of ["float32", "float64"] as const) {
    const gap = NullSpaceProjector.fromSecondMoment(c0, dIn, { nullspaceRule: "gap", nullspacePrecision: precision });
    assert.equal(gap.rank, 40, `${precision}: gap rule keeps zero ∪ D`);
    assert.equal(gap.cut.applied, "gap");
    assert.equal(gap.cut.rule, "gap");
    // the cut's eigenvalues are D[23] and 1000·D[23] up to rounding (≤ 1e-5 absolute here); tolerances 1 %
    assert.ok(Math.abs(gap.cut.lower! / lo - 1) < 1e-2 && Math.abs(gap.cut.upper! / hi - 1) < 1e-2, `gap at ${gap.cut.lower} → ${gap.cut.upper}, planted ${lo} → ${hi}`);
    assert.ok(Math.abs(gap.cut.ratio! / 1000 - 1) < 2e-2, `gap ratio ${gap.cut.ratio} ≈ 1000`);
    assert.ok(Math.abs(gap.effectiveThreshold / Math.sqrt(lo * hi) - 1) < 1e-2, `effective threshold ${gap.effectiveThreshold} ≈ √(lo·hi)`);
    // runner-up: zero → D, from the floor to D[0]: ×51
    const runnerUp = spec.dense[0]! / floor;
    assert.ok(Math.abs(gap.cut.windowRunnerUpRatio! / runnerUp - 1) < 2e-2, `runner-up ratio ${gap.cut.windowRunnerUpRatio} ≈ ${runnerUp}`);
    assert.ok(Math.abs(gap.cut.floor / floor - 1) < 1e-2, `floor ${gap.cut.floor} = 1e-6·λ_max`);
    // P = the exact projector onto the planted null space. Davis–Kahan: the float32 representation of
    // C0 (‖ΔC‖_F ≈ 6e-8·‖C0‖_F ≈ 3e-5) and eigh's rounding (≈ 1e-5) over a gap of 50 move P by < 1e-6;
    // what remains is the float32 rounding of P's entries (≤ 64 terms of ≤ 6e-8 each, 4096 entries): tol 1e-4.
    const d = froDiff(gap.toDense(), exactProjector(q, dIn, plantedNull));
    assert.ok(d < 1e-4, `‖P_gap − P_exact‖_F = ${d} (tol 1e-4)`);

    const abs = NullSpaceProjector.fromSecondMoment(c0, dIn, { nullspacePrecision: precision });
    assert.equal(abs.rank, 30, `${precision}: absolute rule keeps the 30 eigenvalues below τ`);
    assert.equal(abs.cut.applied, "absolute");
    assert.equal(abs.effectiveThreshold, TAU);
    assert.ok(abs.cut.ratio! > 1.09 && abs.cut.ratio! < 1.12, `absolute cut sits in the dense cluster: ratio ${abs.cut.ratio} ≈ 1.105`);
    // the absolute rule's P: the span of the eigenvectors below τ; gap to the neighbours ≈ 1e-3, so
    // Davis–Kahan allows ≈ 3e-5 / 1e-3 = 3e-2 of rotation against the exact one; tol 0.1
    const da = froDiff(abs.toDense(), exactProjector(q, dIn, plantedBelowTau));
    assert.ok(da < 0.1, `‖P_abs − P_exact‖_F = ${da} (tol 0.1)`);
  }
  // the default rule is the absolute one, and equal to the explicit one (same eigh, same cut)
  const def = NullSpaceProjector.fromSecondMoment(c0, dIn);
  assert.equal(def.options.nullspaceRule, "absolute");
  assert.equal(def.options.nullspacePrecision, "float32");
  const explicit = NullSpaceProjector.fromSecondMoment(c0, dIn, { nullspaceRule: "absolute", nullspaceThreshold: TAU });
  assert.equal(def.rank, explicit.rank);
  assert.ok(maxAbsDiff(def.toDense(), explicit.toDense()) < 1e-6, "default = explicit absolute rule");
});

test("gap rule: stable under a relative perturbation of C0 (same rank, ‖ΔP‖_F within the Davis–Kahan bound)", () => {
  const rng = new Rng(202);
  const spec = plantedGapSpectrum(rng);
  const { c0, dIn } = planted(rng, spec.eig);
  let c0Norm = 0;
  for (const x of c0) c0Norm += x * x;
  c0Norm = Math.sqrt(c0Norm);
  const base = NullSpaceProjector.fromSecondMoment(c0, dIn, { nullspaceRule: "gap" });
  const pBase = base.toDense();
  for (const rel of [1e-6, 1e-3]) {
    // symmetric E with ‖E‖_F = rel · ‖C0‖_F
    const e = randn(rng, dIn, dIn);
    for (let i = 0; i < dIn; i++) for (let j = 0; j < i; j++) e[i * dIn + j] = e[j * dIn + i]!;
    let eNorm = 0;
    for (const x of e) eNorm += x * x;
    const scale = (rel * c0Norm) / Math.sqrt(eNorm);
    const c1 = Float32Array.from(c0, (x, i) => x + scale * e[i]!);
    const normE = froDiff(c1, c0); // the perturbation as stored (float32), ≈ rel · ‖C0‖_F
    const pert = NullSpaceProjector.fromSecondMoment(c1, dIn, { nullspaceRule: "gap" });
    assert.equal(pert.rank, base.rank, `rel ${rel}: same rank`);
    assert.equal(pert.cut.applied, "gap");
    // Davis–Kahan sin Θ (Frobenius): ‖P − P'‖_F = √2 ‖sin Θ‖_F ≤ √2 ‖E‖_F / δ, δ ≥ 51.8 − 0.0518 − ‖E‖_F
    // (Weyl), plus the float32 rounding floor of building P twice (2 × 1e-4, see the previous test)
    const delta = spec.big[0]! - spec.dense[23]! - normE;
    const bound = (Math.SQRT2 * normE) / delta + 2e-4;
    const d = froDiff(pert.toDense(), pBase);
    assert.ok(d <= bound, `rel ${rel}: ‖ΔP‖_F = ${d}, bound √2‖E‖_F/δ + 2e-4 = ${bound} (‖E‖_F = ${normE})`);
  }
});

test("gap rule: falls back to the absolute threshold when no gap ≥ nullspaceGapMinRatio lies in the window", () => {
  const rng = new Rng(303);
  // (a) a smooth spectrum: ratio 1.2 between neighbours from 1e-4 to ≈ 60, τ halfway (in log) between two
  const smooth = geometric(48, 1.2, TAU * 1.2 ** 0.5 * 1.2 ** (47 / 2 - 20)); // 20 below τ
  assert.equal(smooth.filter((x) => x < TAU).length, 20);
  const a = planted(rng, smooth);
  const gap = NullSpaceProjector.fromSecondMoment(a.c0, a.dIn, { nullspaceRule: "gap" });
  const abs = NullSpaceProjector.fromSecondMoment(a.c0, a.dIn);
  assert.equal(gap.cut.applied, "fallback");
  assert.equal(gap.rank, 20);
  assert.equal(abs.rank, 20);
  assert.equal(gap.effectiveThreshold, TAU);
  assert.ok(gap.cut.windowBestRatio! > 1.1 && gap.cut.windowBestRatio! < 1.3, `largest ratio in the window ${gap.cut.windowBestRatio} ≈ 1.2`);
  assert.ok(maxAbsDiff(gap.toDense(), abs.toDense()) < 1e-6, "fallback projector = absolute projector");
  // a lower nullspaceGapMinRatio accepts the ≈ ×1.2 gaps (the largest one in the window, wherever rounding puts it)
  assert.equal(NullSpaceProjector.fromSecondMoment(a.c0, a.dIn, { nullspaceRule: "gap", nullspaceGapMinRatio: 1.05 }).cut.applied, "gap");

  // (b) a ×333 gap outside the window: smooth part 1.3e-3 … 3.0 (ratio 1.2), preserved cluster at
  // 1000 … 1900; the gap interval [3.0, 1000] misses [τ/100, 100τ] = [2e-4, 2], not [τ/1000, 1000τ] = [2e-5, 20]
  const low = geometric(40, 1.2, TAU * 1.2 ** 0.5 * 1.2 ** (39 / 2 - 12)); // low[j] = τ·1.2^(j − 11.5): 12 below τ
  const eig = [...low, ...Array.from({ length: 10 }, (_, j) => 1000 + 100 * j)];
  assert.ok(low[39]! > 2.5 && low[39]! < 3.5, "construction: the gap starts at ≈ 3.0"); 
  const b = planted(rng, eig);
  const fb = NullSpaceProjector.fromSecondMoment(b.c0, b.dIn, { nullspaceRule: "gap" });
  assert.equal(fb.cut.applied, "fallback");
  assert.equal(fb.rank, 12, "fallback = |λ| < τ");
  const wide = NullSpaceProjector.fromSecondMoment(b.c0, b.dIn, { nullspaceRule: "gap", nullspaceGapWindow: 1000 });
  assert.equal(wide.cut.applied, "gap");
  assert.equal(wide.rank, 40, "a wider window reaches the ×333 gap");

  // (c) C0 = 0: no gap at all (everything is "zero"); the absolute rule keeps everything
  const zero = NullSpaceProjector.fromSecondMoment(new Float32Array(16 * 16), 16, { nullspaceRule: "gap" });
  assert.equal(zero.cut.applied, "fallback");
  assert.equal(zero.rank, 16);
});

test("selectNullSpaceCut on given eigenvalues: exact ties, negative eigenvalues (|λ|), the window", () => {
  const base = { ...defaultNullSpaceOptions, nullspaceRule: "gap" as const };
  // powers of two, so the three ×1024 gaps are exactly equal: floor = 2^-30 · 2^10 = 2^-20; the gap whose
  // geometric centre is nearest τ in log wins: centres 2^-15, 2^-5 (= 0.031), 2^5 → the middle one
  const vals = [-(2 ** -20), 2 ** -20, 2 ** -10, 1, 2 ** 10];
  const { rank, cut } = selectNullSpaceCut(vals, { ...base, nullspaceGapFloor: 2 ** -30 });
  assert.equal(rank, 3);
  assert.equal(cut.applied, "gap");
  assert.equal(cut.ratio, 1024);
  assert.equal(cut.windowRunnerUpRatio, 1024);
  assert.equal(cut.effectiveThreshold, 2 ** -5);
  // absolute: |λ| < τ counts the negative eigenvalue too
  assert.equal(selectNullSpaceCut(vals, defaultNullSpaceOptions).rank, 3);
  assert.equal(selectNullSpaceCut([-0.5, 1e-3, 1], defaultNullSpaceOptions).rank, 1, "|−0.5| ≥ τ");
  // the window: [0.019, 0.021] is the only gap overlapping [τ/1, τ·1]; with W = 100 the ×4762 gap above counts
  const w = [1e-6, 0.019, 0.021, 100];
  const narrow = selectNullSpaceCut(w, { ...base, nullspaceGapWindow: 1 });
  assert.equal(narrow.cut.applied, "fallback");
  assert.equal(narrow.rank, 2);
  assert.ok(Math.abs(narrow.cut.windowBestRatio! - 0.021 / 0.019) < 1e-12);
  assert.equal(selectNullSpaceCut(w, base).rank, 3);
  // a gap whose lower end is in the window counts even when most of it lies above
  assert.equal(selectNullSpaceCut([1e-6, 1.5, 1500, 3000], base).rank, 2);
});

test("null-space options are validated (E_CONFIG naming the parameter), at the projector and at the methods", () => {
  const { c0 } = lowRankPlusSmall(new Rng(4), 16, 4);
  const isConfig = (name: string) => (e: unknown) => e instanceof DeltaEditError && e.code === "E_CONFIG" && e.message.includes(name) && e.context["parameter"] === name;
  assert.throws(() => NullSpaceProjector.fromSecondMoment(c0, 16, { nullspaceRule: "relative" as never }), isConfig("nullspaceRule"));
  assert.throws(() => NullSpaceProjector.fromSecondMoment(c0, 16, { nullspaceGapMinRatio: 1 }), isConfig("nullspaceGapMinRatio"));
  assert.throws(() => NullSpaceProjector.fromSecondMoment(c0, 16, { nullspaceGapWindow: 0.5 }), isConfig("nullspaceGapWindow"));
  assert.throws(() => NullSpaceProjector.fromSecondMoment(c0, 16, { nullspaceGapFloor: 0 }), isConfig("nullspaceGapFloor"));
  assert.throws(() => NullSpaceProjector.fromSecondMoment(c0, 16, { nullspacePrecision: "float16" as never }), isConfig("nullspacePrecision"));
  for (const m of ["alphaedit", "deltaedit"] as const) {
    assert.throws(() => createMethod(m, { nullspaceRule: "gapp" }, 48), isConfig("nullspaceRule"), `${m}: bad rule at construction`);
    assert.throws(() => createMethod(m, { nullspaceGapMinRatio: "0.5" }, 48), isConfig("nullspaceGapMinRatio"));
    assert.throws(() => createMethod(m, { nullspaceThreshold: 0 }, 48), isConfig("nullspaceThreshold"));
    assert.throws(() => createMethod(m, { nullspaceRules: "gap" }, 48), (e: unknown) => e instanceof DeltaEditError && e.code === "E_CONFIG" && /did you mean "nullspaceRule"/.test(e.hint ?? ""));
    // --set strings, and parameter sets recorded before the rule existed (replay): defaults fill in
    const gap = createMethod(m, { nullspaceRule: "gap", nullspaceGapWindow: "1000", nullspacePrecision: "float64" }, 48).params as unknown as Record<string, unknown>;
    assert.equal(gap["nullspaceRule"], "gap");
    assert.equal(gap["nullspaceGapWindow"], 1000);
    const old = createMethod(m, { l2: 1, nullspaceThreshold: 2e-2, solver: "fast" }, 48).params as unknown as Record<string, unknown>;
    assert.equal(old["nullspaceRule"], "absolute");
    assert.equal(old["nullspacePrecision"], "float32");
    assert.equal(old["nullspaceThreshold"], 2e-2);
  }
});

test("AlphaEdit's per-layer projector follows the method's null-space options and logs the cut", () => {
  const rng = new Rng(505);
  const { c0, dIn } = planted(rng, plantedGapSpectrum(rng).eig);
  const logs: string[] = [];
  const ctx = { model: { arch: { dFF: dIn } }, secondMoment: () => c0, log: (m: string) => logs.push(m) } as unknown as EditContext;
  const params = createMethod("alphaedit", { nullspaceRule: "gap" }, 48).params as AlphaEditParams;
  const p = new NullSpaceSolve(ctx, params.l2, params, "fast").projector(3);
  assert.equal(p.rank, 40);
  assert.ok(p.nullBasis !== null, "U0 kept for the primal solve");
  assert.match(logs[0]!, /^layer 3: null-space projector rank 40 of 64 \(gap rule: effective threshold /);
  const q = new NullSpaceSolve(ctx, params.l2, alphaEditDefaults, "fast").projector(3);
  assert.equal(q.rank, 30);
  assert.match(logs[1]!, /absolute threshold 0\.02/);
  const smooth = planted(rng, geometric(32, 1.2, 1)).c0;
  const ctx2 = { ...ctx, secondMoment: () => smooth, model: { arch: { dFF: 32 } } } as unknown as EditContext;
  new NullSpaceSolve(ctx2, params.l2, params, "fast").projector(1);
  assert.match(logs[2]!, /gap rule found no gap ≥ ×10 in \[0\.0002000, 2\.000\] \(largest ×1\.\d+\): fell back to the absolute threshold 0\.02/);
});

test("projector serialization v2 keeps the rule and the cut; v1 metas still load (rule absolute)", () => {
  const rng = new Rng(606);
  const { c0, dIn } = planted(rng, plantedGapSpectrum(rng).eig);
  const proj = NullSpaceProjector.fromSecondMoment(c0, dIn, { nullspaceRule: "gap", keepNullBasis: true });
  const s = proj.serialize();
  assert.equal(s.meta.version, 2);
  const meta = JSON.parse(JSON.stringify(s.meta)) as ProjectorMeta;
  assert.equal(meta.nullspaceRule, "gap");
  assert.equal(meta.cut.applied, "gap");
  const back = NullSpaceProjector.deserialize({ meta, arrays: s.arrays });
  assert.deepEqual(back.cut, proj.cut);
  assert.deepEqual(back.options, proj.options);
  const x = randn(rng, dIn, 2);
  assert.ok(bitIdentical(back.apply(x, 2), proj.apply(x, 2)));
  // a version-1 meta (written before rules existed)
  const abs = NullSpaceProjector.fromSecondMoment(c0, dIn).serialize();
  const v1 = { format: abs.meta.format, version: 1, dIn, rank: abs.meta.rank, nullspaceThreshold: 2e-2, basisKind: abs.meta.basisKind, hasNullBasis: abs.meta.hasNullBasis } as const;
  const old = NullSpaceProjector.deserialize({ meta: v1, arrays: abs.arrays });
  assert.equal(old.options.nullspaceRule, "absolute");
  assert.equal(old.cut.applied, "absolute");
  assert.equal(old.effectiveThreshold, 2e-2);
  assert.equal(old.rank, 30);
  assert.throws(() => NullSpaceProjector.deserialize({ meta: { ...meta, version: 3 as never }, arrays: s.arrays }), (e: unknown) => e instanceof DeltaEditError && e.code === "E_CHECKPOINT");
  assert.throws(() => NullSpaceProjector.deserialize({ meta: { ...meta, nullspaceRule: "bogus" as never }, arrays: s.arrays }), (e: unknown) => e instanceof DeltaEditError && e.code === "E_CHECKPOINT");
  assert.throws(() => NullSpaceProjector.deserialize({ meta: { ...meta, cut: undefined as never }, arrays: s.arrays }), (e: unknown) => e instanceof DeltaEditError && e.code === "E_CHECKPOINT" && /meta\.cut/.test(e.message));
});
