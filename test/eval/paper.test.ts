/**
 * The `paper` reproduction's computations: the checkpoint scaling rule, the activation / overlap
 * statistics against an independent brute-force computation on small random factors, and the PCA
 * and shift statistic on constructed data with a known answer; for multi-ordering runs (`--seeds N`)
 * the aggregation of the analyses across orderings and the verdict (paired t) against hand-computed
 * values with published t quantiles, and paper.json validation (a file written before `--seeds`
 * existed still validates and renders). Tolerances are relative and loose enough for any BLAS kernel
 * family and thread count.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import type { NoiseSummary } from "../../src/eval/noise.js";
import { aggregateOrderings } from "../../src/eval/report/acrossSeeds.js";
import type { BenchReport } from "../../src/eval/report/benchReport.js";
import { renderPaperHtml } from "../../src/eval/report/paperHtml.js";
import {
  overlapAcrossOrderings, paperVerdict, readPaperJson, representationAcrossOrderings, validatePaperReport,
  type PaperOverlapMethod, type PaperReport, type PaperRepresentation,
} from "../../src/eval/report/paperReport.js";
import { renderPaperSummary } from "../../src/eval/report/paperTable.js";
import { repoRoot } from "../helpers/paths.js";
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

/** Published Student t quantiles t_{0.975, ν} (e.g. NIST/SEMATECH table). */
const T975 = { 1: 12.706205, 2: 4.302653 } as const;

/** One ordering's bench: AlphaEdit and DeltaEdit at 10 edits with the given metric means and noise_E (undefined: not measured). */
function orderingBench(v: Record<"alphaedit" | "deltaedit", Record<string, number | undefined>>): BenchReport {
  const noise = (e: number): NoiseSummary => ({ edits: 10, layer: 3, variant: "final", level: "request", key: "solver", route: "factors", approximate: false, label: "final, layer 3", noiseE: e, median: e, meanSquared: e * e, meanRelative: null, meanProjection: 0, negativeProjectionFraction: 0, meanDrift: 0, meanActivationEnergy: e * e, meanInterference: 0 });
  return {
    title: "t", codeVersion: "0", model: { name: "m", hash: "h" }, protocol: { name: "checkpoints", batchSize: 1, totalEdits: 10, checkpoints: [10] }, modes: {}, seeds: { session: 0 },
    methods: (["alphaedit", "deltaedit"] as const).map((name) => ({
      name,
      checkpoints: [{ edits: 10, metrics: Object.fromEntries(Object.entries(v[name]).filter(([k, x]) => x !== undefined && k !== "noiseE").map(([k, x]) => [k, { mean: x!, std: 0 }])), noise: [noise(v[name]["noiseE"]!)] }],
    })),
  };
}

function overlapOrdering(alpha: number, delta: number): PaperOverlapMethod[] {
  const pt = (h: number) => ({ edits: 10, layer: 3, meanAbsActivation: 1, meanAbsOverlap: h, meanRelativeActivation: null, meanAbsCosine: 0.5, meanOwnActivation: 2, meanInfluenceNorm: 3, approximate: false });
  return [{ method: "alphaedit", available: true, layer: 3, points: [pt(alpha)] }, { method: "deltaedit", available: true, layer: 3, points: [pt(delta)] }, { method: "ft", available: false, reason: "dense", layer: null, points: [] }];
}

function representationOrdering(alpha: number, delta: number): PaperRepresentation {
  const stats = (r: number) => ({ prompts: 5, spread: 2, meanShift: 2 * r, relativeShift: r, centroidShift: r / 2 });
  return {
    prompts: { source: "facts", count: 5 }, layers: [{ layer: 3, variance: [1, 0.5], totalVariance: 2, before: [[0, 0]] }],
    methods: [{ method: "alphaedit", layer: 3, stats: stats(alpha), after: [[alpha, 0]] }, { method: "deltaedit", layer: 3, stats: stats(delta), after: [[delta, 0]] }],
  };
}

test("multi-ordering analyses and the verdict: means, CIs and paired tests against hand computation", () => {
  // three orderings; post_paraphrase_success measured in ordering 0 only
  const runs = [
    orderingBench({ alphaedit: { post_rewrite_success: 80, general_perplexity: 10, post_neighborhood_success: 50, post_paraphrase_success: 70, noiseE: 3 }, deltaedit: { post_rewrite_success: 90, general_perplexity: 12, post_neighborhood_success: 55, post_paraphrase_success: 75, noiseE: 2 } }),
    orderingBench({ alphaedit: { post_rewrite_success: 82, general_perplexity: 11, post_neighborhood_success: 60, noiseE: 3.3 }, deltaedit: { post_rewrite_success: 91, general_perplexity: 13, post_neighborhood_success: 50, noiseE: 2.2 } }),
    orderingBench({ alphaedit: { post_rewrite_success: 84, general_perplexity: 12, post_neighborhood_success: 55, noiseE: 3.6 }, deltaedit: { post_rewrite_success: 95, general_perplexity: 14.5, post_neighborhood_success: 60, noiseE: 2.1 } }),
  ];
  const bench = aggregateOrderings(runs, { dirs: ["seed-0", "seed-1", "seed-2"], shuffle: "test" });
  // the overlap analysis failed in ordering 2, the representation in ordering 0
  const overlap = overlapAcrossOrderings([overlapOrdering(1, 0.5), overlapOrdering(1.2, 0.68), null]);
  assert.deepEqual(overlap.map((o) => [o.method, o.available]), [["alphaedit", true], ["deltaedit", true], ["ft", false]]);
  close(overlap[0]!.points[0]!.meanAbsOverlap, 1.1, 1e-12, "overlap mean over the orderings that have it");
  assert.deepEqual(overlap[0]!.acrossOrderings![0]!["meanAbsOverlap"]!.perSeed, [1, 1.2, null]);
  close(overlap[0]!.acrossOrderings![0]!["meanAbsOverlap"]!.ci95!, T975[1] * (0.2 / Math.SQRT2) / Math.SQRT2, 1e-6, "overlap CI (2 values, 1 df)");
  assert.equal(overlap[0]!.points[0]!.meanRelativeActivation, null, "a statistic no ordering has stays null");
  assert.equal(overlap[0]!.acrossOrderings![0]!["meanAbsCosine"]!.ci95, 0, "equal values: zero-width interval");
  const representation = representationAcrossOrderings([null, representationOrdering(0.4, 0.3), representationOrdering(0.6, 0.35)])!;
  assert.equal(representation.pointsOrdering, 1, "the PCA points of the first ordering that has them");
  assert.deepEqual(representation.methods[0]!.after, [[0.4, 0]]);
  close(representation.methods[0]!.stats.relativeShift, 0.5, 1e-12, "shift mean");
  close(representation.methods[0]!.stats.meanShift, 1, 1e-12, "mean shift mean");
  assert.deepEqual(representation.methods[1]!.acrossOrderings!["relativeShift"]!.perSeed, [null, 0.3, 0.35]);
  assert.equal(representationAcrossOrderings([null, null]), null);

  const methods = [{ id: "alphaedit", method: "alphaedit", label: "AlphaEdit", params: {}, benchDir: "bench/alphaedit", status: "done" as const }, { id: "deltaedit", method: "deltaedit", label: "DeltaEdit", params: {}, benchDir: "bench/deltaedit", status: "done" as const }];
  const schedule = { hidden: 4, stream: 10, scaled: [], extension: [], checkpoints: [10], rule: "test" };
  const v = paperVerdict({ bench, methods, schedule, overlap, representation })!;
  assert.equal(v.baseline, "alphaedit");
  assert.equal(v.orderings, 3);
  assert.equal(v.edits, 10);
  const row = (key: string) => v.rows.find((x) => x.key === key)!;
  /** d̄ and its paired half-width t_{0.975, n−1} s_d / √n, by hand */
  const paired = (d: number[]): { mean: number; hw: number } => {
    const n = d.length, mean = d.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(d.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
    return { mean, hw: (T975[(n - 1) as 1 | 2] * sd) / Math.sqrt(n) };
  };
  const expect = (key: string, d: number[], outcome: string, higherIsBetter: boolean): void => {
    const r = row(key), want = paired(d);
    assert.equal(r.n, d.length, `${key} pairs`);
    close(r.meanDiff!, want.mean, 1e-9, `${key} mean difference`, 1e-12);
    close(r.ci95!, want.hw, 1e-6, `${key} half-width`, 1e-12);
    assert.equal(r.outcome, outcome, `${key} outcome`);
    assert.equal(r.higherIsBetter, higherIsBetter, `${key} direction`);
  };
  expect("post_rewrite_success", [10, 9, 11], "better", true); // 10 ± 2.48
  expect("general_perplexity", [2, 2, 2.5], "worse", false); // higher perplexity: significantly worse
  expect("post_neighborhood_success", [5, -10, 5], "not significant", true);
  expect("noiseE", [-1, -1.1, -1.5], "better", false);
  expect("overlap:meanAbsOverlap", [-0.5, -0.52], "better", false); // ordering 2 has no overlap: 2 pairs, 1 df
  expect("overlap:meanAbsActivation", [0, 0], "not significant", false); // identical: not significant
  expect("shift", [-0.1, -0.25], "not significant", false);
  const para = row("post_paraphrase_success");
  assert.deepEqual([para.n, para.ci95, para.significant, para.outcome], [1, null, null, "undetermined"]);
  close(para.meanDiff!, 5, 1e-12, "one pair: its difference");
  close(row("post_rewrite_success").mean!, 92, 1e-12, "DeltaEdit mean");
  close(row("post_rewrite_success").baselineMean!, 82, 1e-12, "AlphaEdit mean");

  // no verdict with one ordering, or without AlphaEdit
  assert.equal(paperVerdict({ bench: runs[0]!, methods, schedule, overlap, representation }), null);
  assert.equal(paperVerdict({ bench: { ...bench, methods: bench.methods.filter((m) => m.name !== "alphaedit") }, methods, schedule, overlap, representation }), null);
});

test("paper.json validation: a file from before --seeds validates and renders as before; malformed multi-ordering fields are named", () => {
  // written by `paper` (one ordering) before the multi-ordering fields existed; paths anonymised
  const file = path.join(repoRoot(), "test", "fixtures", "golden", "paper-v1.json");
  const old = readPaperJson(file);
  assert.equal(old.orderings, undefined);
  const html = renderPaperHtml(old);
  assert.ok(!html.includes('class="band"') && !html.includes('data-table="verdict"') && !html.includes('class="ns"'), "one ordering: no bands, marks or verdict");
  assert.match(html, /Mean ± population std over all records edited so far/);
  const text = renderPaperSummary(old);
  assert.doesNotMatch(text, /Verdict|orderings|±/);
  assert.match(text, /^DeltaEdit paper reproduction on stories-mcf\.json — after 4 edits \(the paper's 3000 on GPT2-XL\)$/m);

  const clone = (): Record<string, unknown> => JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  const bad = (mutate: (r: Record<string, unknown>) => void, field: RegExp): void => {
    const r = clone();
    mutate(r);
    assert.throws(() => validatePaperReport(r), field);
  };
  bad((r) => (r["format"] = "deltaedit-results"), /paper\.json: format/);
  bad((r) => (r["version"] = 2), /paper\.json: version/);
  const noise0 = (r: Record<string, unknown>) => ((r["noise"] as PaperReport["noise"])[0]!.points[0]!);
  const spread = { mean: 1, ci95: 0.5, perSeed: [1, 1] };
  bad((r) => (noise0(r).acrossOrderings = { noiseE: spread }), /noise\[0\]\.points\[0\]\.acrossOrderings is only written by a multi-ordering run/);
  const multi = (r: Record<string, unknown>): void => {
    r["orderings"] = { count: 2, confidence: 0.95, shuffle: "x", dirs: ["seed-0", "seed-1"] };
  };
  bad((r) => { multi(r); noise0(r).acrossOrderings = { noiseE: { ...spread, perSeed: [1, 1, 1] } }; }, /noise\[0\]\.points\[0\]\.acrossOrderings\.noiseE\.perSeed/);
  bad((r) => { multi(r); noise0(r).acrossOrderings = { noiseE: { ...spread, ci95: -1 } }; }, /acrossOrderings\.noiseE\.ci95/);
  bad((r) => { multi(r); (r["overlap"] as PaperOverlapMethod[])[0]!.acrossOrderings = []; }, /overlap\[0\]\.acrossOrderings must have one entry per point/);
  bad((r) => { multi(r); r["verdict"] = { baseline: "alphaedit", edits: 4, orderings: 2, confidence: 0.95, rows: [{ method: "deltaedit", key: "x", meanDiff: 1, ci95: 1, outcome: "great" }] }; }, /verdict\.rows\[0\]/);
  bad((r) => { multi(r); (r["orderings"] as Record<string, unknown>)["dirs"] = ["seed-0"]; }, /orderings\.dirs/);
  // the same file with well-formed multi-ordering fields is valid
  const ok = clone();
  multi(ok);
  noise0(ok).acrossOrderings = { noiseE: spread };
  ok["verdict"] = null;
  validatePaperReport(ok);
});
