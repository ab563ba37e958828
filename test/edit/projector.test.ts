/** AlphaEdit null-space projector (src/edit/projector.ts; spec §3.6, §7.7, ODD-30). */
import { test } from "node:test";
import assert from "node:assert/strict";

import * as ops from "../../src/kernels/ops.js";
import { DeltaEditError } from "../../src/errors.js";
import { Rng } from "../../src/util/rng.js";
import { NullSpaceProjector } from "../../src/edit/projector.js";
import { bitIdentical, column, lowRankPlusSmall, matmul, maxAbs, maxAbsDiff, randn } from "./_fixtures.js";

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
