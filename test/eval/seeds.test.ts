/**
 * Multi-ordering benches (`deltaedit bench --seeds N`, issue #13): the orderings are seeded
 * permutations of the same records, the aggregation across orderings (mean, Student-t 95 % CI,
 * per-ordering values) and the paired test, and end to end on stories260k: `--seeds 2` writes one
 * resumable bench per ordering plus the aggregate, ordering 0 reproduces `--seeds 1`, and a rerun
 * after an interruption finishes the unfinished ordering without touching the finished one.
 * Floats computed by the models are compared with tolerances (any BLAS kernel family / thread count).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { cli } from "../helpers/cli.js";
import { streamOrdering } from "../../src/eval/bench.js";
import { aggregateOrderings, meanCi, pairedTest } from "../../src/eval/report/acrossSeeds.js";
import type { BenchCheckpoint, BenchReport } from "../../src/eval/report/benchReport.js";
import { readResultsJson, resultsJson, writeResultsJson } from "../../src/eval/report/json.js";
import { renderSummaryTable } from "../../src/eval/report/table.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-seeds-"));
process.env["DELTAEDIT_CACHE"] = path.join(tmp, "cache");
const CORPUS = path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt");
const DATA = path.join(repoRoot(), "test", "fixtures", "edits", "stories-counterfact.json");

/** Published Student t quantiles t_{0.975, ν}, independent of util/studentT.ts. */
const T975: Record<number, number> = { 1: 12.706204736, 2: 4.302652730, 3: 3.182446305, 4: 2.776445105 };

/** Half-width t_{0.975, n−1} · s / √n, computed here from scratch. */
function halfWidth(xs: number[]): number {
  const n = xs.length;
  const m = xs.reduce((a, b) => a + b, 0) / n;
  const s = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (n - 1));
  return (T975[n - 1]! * s) / Math.sqrt(n);
}

function near(a: number | null | undefined, b: number, tol: number, what: string): void {
  assert.ok(typeof a === "number" && Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: got ${String(a)}, expected ${b}`);
}

test("orderings: ordering 0 is the file order, k > 0 a deterministic permutation of the same positions", () => {
  assert.deepEqual(streamOrdering(7, 0), [0, 1, 2, 3, 4, 5, 6]);
  for (const k of [1, 2, 3, 17]) {
    const a = streamOrdering(50, k);
    assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i), `ordering ${k} is a permutation`);
    assert.deepEqual(streamOrdering(50, k), a, `ordering ${k} is the same on every call`);
    assert.notDeepEqual(a, streamOrdering(50, 0), `ordering ${k} is shuffled`);
  }
  assert.notDeepEqual(streamOrdering(50, 1), streamOrdering(50, 2), "different orderings differ");
  // pinned: integer-only arithmetic (xoshiro128** + Fisher–Yates), so this holds on every machine
  assert.deepEqual(streamOrdering(8, 1), PINNED_ORDERING_8_1);
  assert.deepEqual(streamOrdering(0, 3), []);
  assert.throws(() => streamOrdering(5, -1), /non-negative integer/);
});
const PINNED_ORDERING_8_1 = [0, 5, 3, 7, 1, 2, 6, 4];

test("meanCi and the paired test against values computed independently", () => {
  const xs = [81.25, 87.5, 75.0];
  const r = meanCi(xs);
  near(r.mean, (81.25 + 87.5 + 75.0) / 3, 1e-12, "mean");
  near(r.halfWidth, halfWidth(xs), 1e-8, "half-width (t_{0.975,2} · s/√3)");
  assert.equal(meanCi([3]).halfWidth, null, "one value: no interval");
  assert.equal(meanCi([1, null, Number.NaN, 3]).n, 2, "non-finite values are skipped");
  // d = [1, 2, 3]: mean 2, s = 1, half-width 4.3027/√3 = 2.484 > 2: not significant
  const loose = pairedTest([11, 12, 13], [10, 10, 10]);
  assert.equal(loose.significant, false);
  near(loose.halfWidth, T975[2]! / Math.sqrt(3), 1e-8, "paired half-width");
  // d = [1, 1.1, 0.9]: mean 1, s = 0.1, half-width 0.248: significant
  assert.equal(pairedTest([11, 11.1, 10.9], [10, 10, 10]).significant, true);
  assert.equal(pairedTest([5, 6, 7], [5, 6, 7]).significant, false, "identical: not significant");
  assert.equal(pairedTest([6, 7, 8], [5, 6, 7]).significant, true, "a constant non-zero difference is significant");
  assert.equal(pairedTest([6, null, 8], [5, 6, null]).significant, null, "one complete pair: no test");
});

/** Ordering k of a constructed 2-method report: efficacy and noise_E chosen per ordering. */
function orderingReport(k: number, eff: Record<string, number[]>, noiseE: number[], trig: number[]): BenchReport {
  const cp = (name: string, edits: number): BenchCheckpoint => ({
    edits,
    metrics: { post_rewrite_success: { mean: eff[name]![k]! * (edits === 2 ? 1.1 : 1), std: 10 + k, count: edits } },
    seconds: 5 + k,
    ...(name === "deltaedit" ? { triggerRate: trig[k]!, noise: [{ edits, layer: 3, variant: "final", level: "request", key: "solver", route: "factors", approximate: false, label: "final, key=solver, request-level, factors, layer 3", noiseE: noiseE[k]!, median: 1, meanSquared: 2 + k, meanRelative: 0.1, meanProjection: 0, negativeProjectionFraction: 0.5, meanDrift: 1, meanActivationEnergy: 1 + k, meanInterference: 1 } as const] } : {}),
  });
  return {
    title: "T", codeVersion: "test", model: { name: "m", hash: "h" },
    dataset: { name: "d", records: 4, selection: "first 4 records in file order" },
    protocol: { name: "checkpoints", batchSize: 1, totalEdits: 4, checkpoints: [2, 4] },
    modes: { neighborhood: "standard" }, seeds: { session: 0 },
    methods: ["memit", "deltaedit"].map((name) => ({ name, checkpoints: [cp(name, 2), cp(name, 4)] })),
  };
}

test("aggregateOrderings: means, 95 % CI half-widths t·s/√N, per-ordering values, spreads, runs; results.json round trip", () => {
  const eff = { memit: [70, 80, 60], deltaedit: [90, 95, 85] };
  const noiseE = [1.0, 1.5, 2.0];
  const trig = [0.25, 0.5, 0.25];
  const agg = aggregateOrderings([0, 1, 2].map((k) => orderingReport(k, eff, noiseE, trig)), { dirs: ["seed-0", "seed-1", "seed-2"], shuffle: "test shuffle", selection: "first 4 records in file order" });
  assert.deepEqual(agg.orderings, { count: 3, confidence: 0.95, shuffle: "test shuffle", dirs: ["seed-0", "seed-1", "seed-2"] });
  assert.equal(agg.seeds["orderings"], 3);
  for (const name of ["memit", "deltaedit"] as const) {
    const m = agg.methods.find((x) => x.name === name)!;
    assert.deepEqual(m.checkpoints.map((c) => c.edits), [2, 4]);
    const s = m.checkpoints[1]!.metrics["post_rewrite_success"]!;
    const xs = eff[name];
    assert.deepEqual(s.perSeed, xs);
    near(s.mean, xs.reduce((a, b) => a + b, 0) / 3, 1e-12, `${name} mean`);
    near(s.ci95, halfWidth(xs), 1e-8, `${name} ci95`);
    near(s.std, Math.sqrt((100 + 121 + 144) / 3), 1e-12, `${name} std (RMS of the orderings' stds)`);
    assert.equal(s.count, 4);
    const s2 = m.checkpoints[0]!.metrics["post_rewrite_success"]!;
    near(s2.ci95, halfWidth(xs.map((x) => x * 1.1)), 1e-8, `${name} ci95 at 2 edits`);
  }
  const de = agg.methods[1]!.checkpoints[1]!;
  near(de.noise![0]!.noiseE, 1.5, 1e-12, "noise_E averaged");
  near(de.noise![0]!.meanActivationEnergy, 2, 1e-12, "activation energy averaged");
  assert.deepEqual(de.spread!["noiseE"]!.perSeed, noiseE);
  near(de.spread!["noiseE"]!.ci95, halfWidth(noiseE), 1e-8, "noise_E ci95");
  near(de.triggerRate, 1 / 3, 1e-12, "trigger rate averaged");
  near(de.spread!["triggerRate"]!.ci95, halfWidth(trig), 1e-8, "trigger ci95");
  near(de.seconds, 6, 1e-12, "seconds averaged");
  assert.equal(agg.methods[0]!.checkpoints[1]!.spread!["noiseE"], undefined, "MEMIT has no noise here: no spread");
  assert.equal(agg.runs!.length, 6, "one run per (method, ordering)");
  assert.deepEqual(agg.runs![5], { method: "deltaedit", seed: 2, sessionDir: "seed-2/deltaedit/session", seconds: 7, status: "done" });
  assert.match(agg.dataset!.selection!, /first 4 records in file order; 3 orderings of them \(test shuffle\)/);

  // results.json: written, read back and validated; a perSeed of the wrong length is named
  const file = path.join(tmp, "agg", "results.json");
  writeResultsJson(file, agg);
  const back = readResultsJson(file);
  assert.deepEqual(back.methods[1]!.checkpoints[1]!.metrics, agg.methods[1]!.checkpoints[1]!.metrics);
  const bad = structuredClone(agg);
  bad.methods[0]!.checkpoints[0]!.metrics["post_rewrite_success"]!.perSeed = [1, 2];
  assert.throws(() => resultsJson(bad), /methods\[0\]\.checkpoints\[0\]\.metrics\.post_rewrite_success\.perSeed must be an array of 3/);
  // an old (one-ordering) report still validates: the new fields are optional
  assert.doesNotThrow(() => resultsJson(orderingReport(0, eff, noiseE, trig)));

  // terminal table: mean ± CI cells; MEMIT is significantly below DeltaEdit on efficacy (every ordering, by 15–25)
  const text = renderSummaryTable(agg);
  assert.match(text, /95 % confidence interval \(Student t, 2 df/);
  assert.match(text, /~ not significantly different from the column's best \(two-sided paired t-test over the same 3 orderings, 95 %\)/);
  const deRow = text.split("\n").find((l) => l.startsWith("DeltaEdit"))!;
  assert.ok(deRow.includes(`90.00 ± ${halfWidth(eff.deltaedit).toFixed(2)}*`), deRow);
  const memitRow = text.split("\n").find((l) => l.startsWith("MEMIT"))!;
  assert.ok(!memitRow.includes("~"), `a significant difference is not marked: ${memitRow}`);
  // a noisy difference: MEMIT close to DeltaEdit in two orderings, above in one
  const agg2 = aggregateOrderings([0, 1, 2].map((k) => orderingReport(k, { memit: [89, 99, 80], deltaedit: [90, 95, 85] }, noiseE, trig)), { dirs: ["a", "b", "c"], shuffle: "s" });
  assert.match(renderSummaryTable(agg2).split("\n").find((l) => l.startsWith("MEMIT"))!, /~/, "not significant: marked");
});

test("bench --seeds 2: one resumable bench per ordering, aggregated results.json; ordering 0 reproduces --seeds 1; resume after an interruption", async () => {
  const base = ["--model", fixtureModel("stories260k"), "--dataset", DATA, "--edits", "4", "--checkpoints", "2", "--stats-corpus", CORPUS, "--set", "memit.numGradSteps=5", "--set", "deltaedit.numGradSteps=5"];
  const out = path.join(tmp, "seeds2");
  const args = ["bench", ...base, "--methods", "memit,deltaedit", "--seeds", "2", "--out", out];
  const r = await cli(args);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /ordering 2\/2/, "the progress line names the ordering");
  assert.match(r.out, /mean over 2 orderings of the edit stream ± half-width of its 95 % confidence interval \(Student t, 1 df/);
  const records = JSON.parse(fs.readFileSync(DATA, "utf8")) as { case_id: number }[];
  const first4 = records.slice(0, 4).map((x) => x.case_id);
  for (const k of [0, 1]) {
    const ord = JSON.parse(fs.readFileSync(path.join(out, `seed-${k}`, "ordering.json"), "utf8")) as { caseIds: number[] };
    assert.deepEqual([...ord.caseIds].sort((a, b) => a - b), first4, `ordering ${k}: the same records`);
    assert.deepEqual(ord.caseIds, streamOrdering(4, k).map((i) => first4[i]), `ordering ${k}: streamOrdering(4, ${k})`);
    for (const m of ["memit", "deltaedit"]) {
      assert.ok(fs.existsSync(path.join(out, `seed-${k}`, m, "bench-state.json")), `seed-${k}/${m}/bench-state.json`);
      assert.equal(fs.readdirSync(path.join(out, `seed-${k}`, m, "4")).filter((f) => f.endsWith(".json")).length, 4);
    }
    assert.ok(fs.existsSync(path.join(out, `seed-${k}`, "results.json")) && fs.existsSync(path.join(out, `seed-${k}`, "report.html")));
  }
  assert.notDeepEqual(streamOrdering(4, 1), [0, 1, 2, 3], "the test's second ordering is a real shuffle");
  const res = readResultsJson(path.join(out, "results.json"));
  assert.equal(res.orderings?.count, 2);
  assert.deepEqual(res.orderings?.dirs, ["seed-0", "seed-1"]);
  assert.equal(res.runs?.length, 4);
  const per = [0, 1].map((k) => readResultsJson(path.join(out, `seed-${k}`, "results.json")));
  for (const [mi, name] of ["memit", "deltaedit"].entries()) {
    const m = res.methods[mi]!;
    assert.equal(m.name, name);
    assert.deepEqual(m.checkpoints.map((c) => c.edits), [2, 4]);
    for (const [ci, c] of m.checkpoints.entries()) {
      for (const [key, s] of Object.entries(c.metrics)) {
        const vals = per.map((p) => p.methods[mi]!.checkpoints[ci]!.metrics[key]!.mean);
        assert.equal(s.perSeed?.length, 2, `${name} ${key}: one value per ordering`);
        s.perSeed!.forEach((v, k) => near(v, vals[k]!, 1e-12, `${name} ${key} perSeed[${k}]`));
        near(s.mean, (vals[0]! + vals[1]!) / 2, 1e-12, `${name} ${key} mean`);
        near(s.ci95, (T975[1]! * Math.abs(vals[0]! - vals[1]!) / Math.SQRT2) / Math.SQRT2, 1e-8, `${name} ${key} ci95 (df 1)`);
      }
    }
  }
  const de = res.methods[1]!.checkpoints[1]!;
  assert.equal(de.spread?.["noiseE"]?.perSeed.length, 2, "noise_E per ordering");
  assert.equal(de.spread?.["triggerRate"]?.perSeed.length, 2, "trigger rate per ordering");
  const html = fs.readFileSync(path.join(out, "report.html"), "utf8");
  assert.ok((html.match(/<path class="band"/g) ?? []).length >= 2, "the HTML plots have CI bands");

  // --seeds 1 (the default): today's layout and structure; its numbers are ordering 0's
  const one = path.join(tmp, "seeds1");
  const r1 = await cli(["bench", ...base, "--methods", "memit", "--seeds", "1", "--out", one]);
  assert.equal(r1.code, 0, r1.err);
  assert.ok(!fs.existsSync(path.join(one, "seed-0")) && fs.existsSync(path.join(one, "memit", "bench-state.json")), "one ordering: no seed-<k>/ directories");
  assert.doesNotMatch(r1.out, /orderings|~ not significantly/);
  const single = readResultsJson(path.join(one, "results.json"));
  assert.equal(single.orderings, undefined);
  assert.equal(single.runs, undefined);
  assert.deepEqual(Object.keys(single.seeds), ["session"]);
  assert.equal(single.dataset?.selection, "first 4 records in file order");
  for (const c of single.methods[0]!.checkpoints) {
    assert.ok(!("spread" in c), "no spread with one ordering");
    for (const s of Object.values(c.metrics)) assert.ok(!("perSeed" in s) && !("ci95" in s), "no per-ordering fields with one ordering");
    const same = per[0]!.methods[0]!.checkpoints.find((x) => x.edits === c.edits)!;
    for (const [key, s] of Object.entries(c.metrics)) near(same.metrics[key]!.mean, s.mean, 1e-4, `ordering 0 = file order: memit ${key} after ${c.edits}`);
  }

  // interruption: ordering 1 was killed after its first checkpoint (bench-state has 2 only, no results.json)
  const journal = (k: number, m: string): string => fs.readFileSync(path.join(out, `seed-${k}`, m, "session", "journal.jsonl"), "utf8");
  const before = { j0: journal(0, "memit"), j1: journal(1, "deltaedit"), r0: fs.readFileSync(path.join(out, "seed-0", "results.json"), "utf8") };
  fs.rmSync(path.join(out, "seed-1", "results.json"));
  fs.rmSync(path.join(out, "results.json"));
  for (const m of ["memit", "deltaedit"]) {
    const f = path.join(out, "seed-1", m, "bench-state.json");
    const st = JSON.parse(fs.readFileSync(f, "utf8")) as { checkpoints: { edits: number }[] };
    st.checkpoints = st.checkpoints.filter((c) => c.edits === 2);
    fs.writeFileSync(f, JSON.stringify(st));
  }
  const r2 = await cli(args);
  assert.equal(r2.code, 0, r2.err);
  assert.match(r2.err, /ordering 0 of 2 finished in an earlier run/);
  assert.equal(fs.readFileSync(path.join(out, "seed-0", "results.json"), "utf8"), before.r0, "the finished ordering is not rerun");
  assert.equal(journal(0, "memit"), before.j0);
  assert.equal(journal(1, "deltaedit"), before.j1, "the interrupted ordering resumes from its session: nothing is edited again");
  const res2 = readResultsJson(path.join(out, "results.json"));
  for (const [mi, m] of res2.methods.entries()) {
    for (const [key, s] of Object.entries(m.checkpoints[1]!.metrics)) near(s.mean, res.methods[mi]!.checkpoints[1]!.metrics[key]!.mean, 1e-4, `${m.name} ${key} after resume`);
  }

  // a changed stream under the same --out is refused, naming the ordering file
  const r3 = await cli(["bench", ...base.map((a) => (a === "4" ? "3" : a)), "--methods", "memit", "--seeds", "2", "--out", out]);
  assert.notEqual(r3.code, 0);
  assert.match(r3.err, /seed-0[/\\]ordering\.json lists other records than ordering 0/);
  const r4 = await cli(["bench", ...base, "--methods", "memit", "--seeds", "2", "--protocol", "single", "--out", path.join(tmp, "single")]);
  assert.notEqual(r4.code, 0);
  assert.match(r4.err, /--protocol single edits each record alone/);
});
