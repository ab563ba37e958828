/**
 * AlphaEdit/DeltaEdit solve (src/edit/solve.ts; spec §4.3, §7.1–7.4) and MEMIT (§4.2, §7.5).
 *
 * Problems: C0 = low-rank-plus-small (dominant eigenvalues in [0.5, 2], the rest < 0.005, so the
 * 2e-2 threshold separates them cleanly); keys i.i.d. N(0, s²) with s = 3/√dIn (‖k‖ ≈ 3), which
 * keeps cond(P M P + λI) in the hundreds over 200 edits. At that conditioning the float32 oracle
 * itself is accurate to ~1e-5 (checked against float64 while writing these tests), so a relative
 * tolerance of 1e-4 (Frobenius) between the fast forms and the float32 oracle is meaningful.
 */
import { test } from "node:test";
import assert from "node:assert/strict";

import * as ops from "../../src/kernels/ops.js";
import { DeltaEditError } from "../../src/errors.js";
import { Rng } from "../../src/util/rng.js";
import { NullSpaceProjector } from "../../src/edit/projector.js";
import { AlphaEditSolver, MemitSolver, accumulatePastCov, denseAlphaEditSolve, memitSolve } from "../../src/edit/solve.js";
import { bitIdentical, column, lowRankPlusSmall, matmul, maxAbs, randn, relErr } from "./_fixtures.js";

const REL_TOL = 1e-4; // fast vs dense float32 oracle, ‖·‖_F relative

function setup(seed: number, dIn: number, dominant: number) {
  const rng = new Rng(seed);
  const { c0, q, dominantCols } = lowRankPlusSmall(rng, dIn, dominant);
  const proj = NullSpaceProjector.fromSecondMoment(c0, dIn, { keepNullBasis: true });
  return { rng, c0, q, dominantCols, proj, p: proj.toDense() };
}

const SEQUENCES = [
  { dIn: 96, dominant: 36, l2: 1, batch: 1, steps: 200 }, // r = 60: "auto" switches dual → primal at T = 61
  { dIn: 96, dominant: 36, l2: 10, batch: 1, steps: 200 },
  { dIn: 128, dominant: 48, l2: 1, batch: 3, steps: 40 }, // r = 80, T up to 120
  { dIn: 128, dominant: 48, l2: 10, batch: 5, steps: 40 }, // T up to 200
  { dIn: 64, dominant: 40, l2: 1, batch: 1, steps: 60 }, // r = 24 ≤ dIn/2: projector stores U0
] as const;

for (const sq of SEQUENCES) {
  test(`incremental solve == dense oracle at every step (dIn=${sq.dIn}, λ=${sq.l2}, batch=${sq.batch}, ${sq.steps} batches)`, () => {
    const { rng, proj, p } = setup(100 + sq.dIn + sq.batch, sq.dIn, sq.dominant);
    const { dIn, l2, batch: n } = sq;
    const solvers = {
      auto: new AlphaEditSolver(proj, { l2 }),
      dual: new AlphaEditSolver(proj, { l2, formulation: "dual" }),
      primal: new AlphaEditSolver(proj, { l2, formulation: "primal" }),
    };
    const pastCov = new Float32Array(dIn * dIn); // (dIn, dIn) Cpast of the reference
    let switchedAt = -1;
    for (let s = 0; s < sq.steps; s++) {
      const keys = randn(rng, dIn, n, 3 / Math.sqrt(dIn)); // (dIn, N)
      const oracle = denseAlphaEditSolve({ projector: p, pastCov, keys, dIn, n, l2 });
      const xs: Record<string, Float32Array> = {};
      for (const [name, solver] of Object.entries(solvers)) {
        const x = solver.solveAndAppend(keys, n);
        const e = relErr(x, oracle);
        assert.ok(e < REL_TOL, `step ${s}: ${name} vs dense oracle rel err ${e.toExponential(2)} (tol ${REL_TOL})`);
        xs[name] = x;
      }
      const ep = relErr(xs.primal!, xs.dual!);
      assert.ok(ep < REL_TOL, `step ${s}: primal vs dual rel err ${ep.toExponential(2)} (tol ${REL_TOL})`);
      if (switchedAt < 0 && solvers.auto.currentFormulation === "primal") switchedAt = solvers.auto.pastKeyCount;
      accumulatePastCov(pastCov, keys, dIn, n);
    }
    assert.equal(solvers.dual.pastKeyCount, sq.steps * n);
    if (sq.steps * n > proj.rank) assert.ok(switchedAt > proj.rank && switchedAt <= proj.rank + n, `auto switched to primal once T > r (T = ${switchedAt}, r = ${proj.rank})`);
    else assert.equal(solvers.auto.currentFormulation, "dual");
  });
}

test("invariants: Δ = Δ P, Δ k0 ≈ 0 on preserved directions, X solves (P M P + λI) X = P K", () => {
  const dIn = 80;
  const d = 24; // output width of the edited matrix
  const { rng, q, dominantCols, proj, p } = setup(7, dIn, 30);
  const solver = new AlphaEditSolver(proj, { l2: 1 });
  const m = new Float32Array(dIn * dIn); // (dIn, dIn) M = K_all K_allᵀ
  for (let s = 0; s < 25; s++) {
    const n = 1 + (s % 3);
    const keys = randn(rng, dIn, n, 3 / Math.sqrt(dIn));
    const x = solver.solveAndAppend(keys, n); // (dIn, N)
    accumulatePastCov(m, keys, dIn, n);
    // Δ = R Xᵀ (d, dIn) with a random residual R (d, N)
    const residual = randn(rng, d, n);
    const delta = matmul(residual, x, d, n, dIn, { transB: true });
    const deltaP = matmul(delta, p, d, dIn, dIn);
    assert.ok(relErr(deltaP, delta) < 1e-5, `step ${s}: Δ P = Δ, rel err ${relErr(deltaP, delta)} (tol 1e-5)`);
    for (const j of dominantCols.slice(0, 4)) {
      const k0 = column(q, dIn, dIn, j); // unit preserved key direction
      const out = matmul(delta, k0, d, dIn, 1);
      assert.ok(maxAbs(out) < 1e-5 * Math.max(1, maxAbs(delta)), `step ${s}: |Δ k0| = ${maxAbs(out)} for a dominant eigenvector (tol 1e-5·max|Δ|)`);
    }
    // SPD system residual: (P M P + λ I) X − P K
    const pmp = matmul(matmul(p, m, dIn, dIn, dIn), p, dIn, dIn, dIn);
    for (let i = 0; i < dIn; i++) pmp[i * dIn + i]! += 1;
    const lhs = matmul(pmp, x, dIn, dIn, n);
    const rhs = matmul(p, keys, dIn, dIn, n);
    assert.ok(relErr(lhs, rhs) < 1e-4, `step ${s}: ‖(PMP+λI)X − PK‖/‖PK‖ = ${relErr(lhs, rhs)} (tol 1e-4)`);
  }
});

test("solve() does not change the state; commit() rejects stale or foreign steps", () => {
  const dIn = 48;
  const { rng, proj } = setup(3, dIn, 16);
  const solver = new AlphaEditSolver(proj, { l2: 1 });
  solver.solveAndAppend(randn(rng, dIn, 2, 0.4), 2);
  const keys = randn(rng, dIn, 3, 0.4);
  const a = solver.solve(keys, 3);
  const b = solver.solve(keys, 3);
  assert.ok(bitIdentical(a.X, b.X), "two solves of the same batch are bit-identical");
  assert.equal(solver.pastKeyCount, 2, "solve() leaves T unchanged");
  solver.commit(a);
  assert.equal(solver.pastKeyCount, 5);
  assert.throws(() => solver.commit(b), (e: unknown) => e instanceof DeltaEditError && e.code === "E_ARG", "stale step rejected");
  const other = new AlphaEditSolver(proj, { l2: 1 });
  assert.throws(() => other.commit(other.solve(keys, 3)) === undefined && other.commit(a), (e: unknown) => e instanceof DeltaEditError && e.code === "E_ARG", "foreign step rejected");
  assert.throws(() => solver.solve(keys.subarray(1), 3), (e: unknown) => e instanceof DeltaEditError && e.code === "E_SHAPE" && /keys/.test(e.message));
  assert.throws(() => new AlphaEditSolver(proj, { l2: 0 }), (e: unknown) => e instanceof DeltaEditError && e.code === "E_ARG");
  assert.throws(() => new AlphaEditSolver(proj, { l2: 1, formulaton: "dual" } as never), (e: unknown) => e instanceof DeltaEditError && e.code === "E_CONFIG");
  const noU0 = NullSpaceProjector.fromSecondMoment(lowRankPlusSmall(new Rng(1), 32, 4).c0, 32);
  assert.throws(() => new AlphaEditSolver(noU0, { l2: 1, formulation: "primal" }), (e: unknown) => e instanceof DeltaEditError && e.code === "E_ARG");
});

test("serialize → deserialize → continue is bit-identical to an uninterrupted run (dual and primal phases)", () => {
  const dIn = 64;
  const { rng, proj } = setup(17, dIn, 24); // r = 40
  const batches: { keys: Float32Array; n: number }[] = [];
  for (let s = 0; s < 30; s++) {
    const n = 1 + (s % 3);
    batches.push({ keys: randn(rng, dIn, n, 0.375), n });
  }
  for (const cut of [5, 25]) { // T = 10 (dual), T = 50 (auto has switched to primal)
    const straight = new AlphaEditSolver(proj, { l2: 1 });
    let resumed = new AlphaEditSolver(proj, { l2: 1 });
    batches.forEach((b, s) => {
      const want = straight.solveAndAppend(b.keys, b.n);
      if (s === cut) {
        const snap = resumed.serialize();
        const meta = JSON.parse(JSON.stringify(snap.meta));
        const arrays = Object.fromEntries(Object.entries(snap.arrays).map(([k, v]) => [k, Float32Array.from(v)]));
        resumed = AlphaEditSolver.deserialize({ meta, arrays }, NullSpaceProjector.deserialize(proj.serialize()));
      }
      const got = resumed.solveAndAppend(b.keys, b.n);
      assert.ok(bitIdentical(got, want), `batch ${s} (resumed at ${cut}): X bit-identical`);
    });
    assert.equal(resumed.currentFormulation, straight.currentFormulation);
  }
  const wrong = NullSpaceProjector.fromSecondMoment(lowRankPlusSmall(new Rng(2), dIn, 10).c0, dIn);
  assert.throws(() => AlphaEditSolver.deserialize(new AlphaEditSolver(proj, { l2: 1 }).serialize(), wrong), (e: unknown) => e instanceof DeltaEditError && e.code === "E_CHECKPOINT");
});

test("MEMIT: Woodbury (cached Cholesky of λ_m C0) == float64 reference; direct LU fallback for singular C0", () => {
  const rng = new Rng(31);
  const dIn = 96;
  const { c0 } = lowRankPlusSmall(rng, dIn, 60, 0.5); // full rank: eigenvalues in [0, 0.5] ∪ [0.5, 2]
  for (let i = 0; i < dIn; i++) c0[i * dIn + i]! += 1e-2;
  for (const lambdaM of [15000, 1]) {
    const solver = MemitSolver.fromSecondMoment(c0, dIn, lambdaM);
    assert.equal(solver.factorization, "cholesky");
    for (const n of [1, 4, 10]) {
      const keys = randn(rng, dIn, n, 30 / Math.sqrt(dIn));
      const ref = memitSolve({ preservedCov: c0, keys, dIn, n, lambdaM });
      const fast = solver.solve(keys, n);
      assert.ok(fast instanceof Float64Array && ref instanceof Float64Array, "MEMIT works in float64 (ODD-24)");
      const e = relErr(fast, ref);
      assert.ok(e < 1e-9, `λ_m=${lambdaM}, N=${n}: Woodbury vs reference rel err ${e.toExponential(2)} (tol 1e-9, float64)`);
      // the reference really solves (λ_m C0 + K Kᵀ) X = K
      const sys = Float64Array.from(c0, (v) => v * lambdaM);
      ops.syrk(Float64Array.from(keys), sys, { n: dIn, k: n, beta: 1 });
      const lhs = new Float64Array(dIn * n);
      ops.gemm(sys, ref, lhs, { m: dIn, n, k: dIn });
      assert.ok(relErr(lhs, Float64Array.from(keys)) < 1e-9, "reference residual (tol 1e-9)");
    }
  }
  const singular = Float32Array.from(c0);
  for (let i = 0; i < dIn; i++) { singular[3 * dIn + i] = 0; singular[i * dIn + 3] = 0; } // C0 with an exactly zero row/column
  const lu = MemitSolver.fromSecondMoment(singular, dIn, 100);
  assert.equal(lu.factorization, "direct");
  const keys = randn(rng, dIn, 2, 1);
  const e = relErr(lu.solve(keys, 2), memitSolve({ preservedCov: singular, keys, dIn, n: 2, lambdaM: 100 }));
  assert.ok(e < 1e-8, `direct fallback vs reference rel err ${e.toExponential(2)} (tol 1e-8)`);
});
