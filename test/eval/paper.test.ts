/**
 * The `paper` reproduction's computations: the checkpoint scaling rule, the activation / overlap
 * statistics against an independent brute-force computation on small random factors, and the PCA
 * and shift statistic on constructed data with a known answer. Tolerances are relative and loose
 * enough for any BLAS kernel family and thread count.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { LayerUpdate } from "../../src/edit/methods/method.js";
import { NoiseFactors } from "../../src/eval/noise.js";
import { overlapStats } from "../../src/eval/paper/overlap.js";
import { pca2, projectPca, shiftStats } from "../../src/eval/paper/representation.js";
import { defaultStreamLength, defaultSweepLength, paperSchedule } from "../../src/eval/paper/schedule.js";
import { Rng } from "../../src/util/rng.js";

/** |a − b| ≤ rel·max(|a|, |b|, floor). */
function close(a: number, b: number, rel: number, what: string, floor = 1e-12): void {
  assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b), floor), `${what}: ${a} vs ${b} (rel. tolerance ${rel})`);
}

test("checkpoint scaling: the paper's 200…3000 edits × C/1600, rounded, capped, then k·C and the end", () => {
  const xl = paperSchedule(1600, 12800);
  assert.deepEqual(xl.checkpoints, [200, 500, 1000, 2000, 3000, 6400, 12800]);
  assert.deepEqual(xl.extension, [6400]);
  const world = paperSchedule(256, 2048);
  assert.deepEqual(world.scaled.map((s) => s.scaled), [32, 80, 160, 320, 480]);
  assert.deepEqual(world.checkpoints, [32, 80, 160, 320, 480, 1024, 2048]);
  assert.match(world.rule, /200→32/);
  assert.match(world.rule, /3000→480/);
  // capped at a short stream; duplicates removed; never below 1 edit
  assert.deepEqual(paperSchedule(256, 100).checkpoints, [32, 80, 100]);
  assert.deepEqual(paperSchedule(4, 3).checkpoints, [1, 3]);
  // Llama3-8B width: 4096/1600 = 2.56
  assert.deepEqual(paperSchedule(4096, 32768).checkpoints, [512, 1280, 2560, 5120, 7680, 16384, 32768]);
  assert.equal(defaultStreamLength(256, 3000), 2048);
  assert.equal(defaultStreamLength(1600, 3000), 3000);
  assert.equal(defaultSweepLength(256, 2048), 512);
  assert.equal(defaultSweepLength(256, 300), 300);
  assert.throws(() => paperSchedule(0, 10), /hidden must be a positive integer/);
});

test("activation / overlap statistics equal a brute-force computation over the same factors", () => {
  const C = 7, F = 11, B = 2, steps = 9; // 18 requests, two per step
  const rng = new Rng(3);
  const factors = new NoiseFactors(C, F);
  const alpha: number[][] = [], beta: number[][] = [], keys: number[][] = [];
  for (let s = 0; s < steps; s++) {
    const infl = new Float32Array(C * B), act = new Float32Array(F * B), k = new Float32Array(F * B); // (C, B), (F, B), (F, B)
    for (let i = 0; i < infl.length; i++) infl[i] = rng.normal();
    for (let i = 0; i < act.length; i++) act[i] = rng.normal() * 0.3;
    for (let i = 0; i < k.length; i++) k[i] = rng.normal();
    if (s === 4) for (let r = 0; r < C; r++) infl[r * B] = 0; // one zero influence vector: skipped by the cosine
    const u: LayerUpdate = { layer: 3, n: B, keys: k, influence: infl, activation: act, dense: null };
    factors.addStep([u]);
    for (let c = 0; c < B; c++) {
      alpha.push(Array.from({ length: C }, (_, r) => infl[r * B + c]!));
      beta.push(Array.from({ length: F }, (_, r) => act[r * B + c]!));
      keys.push(Array.from({ length: F }, (_, r) => k[r * B + c]!));
    }
  }
  const dot = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + x * b[i]!, 0);
  const cps = [1, 2, 7, 18];
  const got = overlapStats(factors.layer(3), cps);
  cps.forEach((n, t) => {
    let act = 0, ov = 0, rel = 0, relN = 0, cos = 0, cosN = 0, own = 0, nrm = 0, pairs = 0;
    for (let j = 0; j < n; j++) {
      own += Math.abs(dot(beta[j]!, keys[j]!));
      nrm += Math.sqrt(dot(alpha[j]!, alpha[j]!));
      for (let i = 0; i < n; i++) {
        if (i === j) continue;
        pairs++;
        const g = Math.abs(dot(beta[j]!, keys[i]!)); // g_ji: key i on edit j
        act += g;
        const gjj = Math.abs(dot(beta[j]!, keys[j]!));
        if (gjj > 0) { rel += g / gjj; relN++; }
        const h = Math.abs(dot(alpha[j]!, alpha[i]!));
        ov += h;
        const d = Math.sqrt(dot(alpha[j]!, alpha[j]!) * dot(alpha[i]!, alpha[i]!));
        if (d > 0) { cos += h / d; cosN++; }
      }
    }
    const s = got[t]!;
    assert.equal(s.edits, n);
    assert.equal(s.layer, 3);
    const tol = 1e-4; // float32 G and H vs float64 loops
    close(s.meanAbsActivation, pairs ? act / pairs : 0, tol, `n=${n} mean |g|`);
    close(s.meanAbsOverlap, pairs ? ov / pairs : 0, tol, `n=${n} mean |h|`);
    close(s.meanOwnActivation, own / n, tol, `n=${n} mean |g_ii|`);
    close(s.meanInfluenceNorm, nrm / n, tol, `n=${n} mean ‖α‖`);
    if (relN === 0) assert.equal(s.meanRelativeActivation, null);
    else close(s.meanRelativeActivation!, rel / relN, tol, `n=${n} relative activation`);
    if (cosN === 0) assert.equal(s.meanAbsCosine, null);
    else close(s.meanAbsCosine!, cos / cosN, tol, `n=${n} |cos|`);
  });
  assert.equal(got[0]!.meanAbsActivation, 0, "one request has no pairs");
  assert.throws(() => overlapStats(factors.layer(3), [19]), /checkpoints/);
});

test("PCA and shift statistic on constructed data: a known spread, components and shift", () => {
  // P points ±a·e0 (+ small ±b·e1), C = 6: mean 0, spread² = a² + b², first component e0, second e1
  const P = 8, C = 6, a = 3, b = 1;
  const before = new Float64Array(P * C);
  for (let p = 0; p < P; p++) {
    before[p * C] = (p % 2 === 0 ? 1 : -1) * a;
    before[p * C + 1] = (p % 4 < 2 ? 1 : -1) * b;
  }
  const pca = pca2(before, P, C);
  close(pca.totalVariance, a * a + b * b, 1e-9, "total variance");
  close(pca.variance[0], a * a, 1e-9, "variance 1");
  close(pca.variance[1], b * b, 1e-9, "variance 2");
  close(Math.abs(pca.components[0]!), 1, 1e-9, "component 1 = e0");
  close(Math.abs(pca.components[C + 1]!), 1, 1e-9, "component 2 = e1");
  assert.ok(pca.components[0]! > 0 && pca.components[C + 1]! > 0, "sign convention: largest entry positive");
  // every point moved by the same v = (0, 0, 2, 0, 0, 1.5): meanShift = ‖v‖ = 2.5, relative 2.5/√10
  const v = [0, 0, 2, 0, 0, 1.5];
  const after = before.map((x, i) => x + v[i % C]!);
  const s = shiftStats(before, after, P, C);
  close(s.spread, Math.sqrt(a * a + b * b), 1e-12, "spread");
  close(s.meanShift, 2.5, 1e-12, "mean shift");
  close(s.relativeShift, 2.5 / Math.sqrt(10), 1e-12, "relative shift");
  close(s.centroidShift, 2.5 / Math.sqrt(10), 1e-12, "centroid shift");
  // the shift is orthogonal to both components: the 2-D picture does not move
  const pb = projectPca(pca, before, P), pa = projectPca(pca, after, P);
  for (let i = 0; i < P * 2; i++) close(pa[i]!, pb[i]!, 1e-9, `projection ${i}`, 1e-9);
  close(pb[0]!, a, 1e-9, "point 0 on component 1");
  // points moved in opposite directions: the centroid stays, each moves ‖w‖
  const after2 = before.map((x, i) => x + (Math.floor(i / C) % 2 === 0 ? 1 : -1) * (i % C === 3 ? 4 : 0));
  const s2 = shiftStats(before, after2, P, C);
  close(s2.meanShift, 4, 1e-12, "alternating mean shift");
  close(s2.centroidShift, 0, 1e-12, "alternating centroid shift", 1e-12);
  assert.throws(() => shiftStats(before, after.subarray(1), P, C), /after/);
});
