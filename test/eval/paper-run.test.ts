/**
 * `deltaedit paper` end to end on the smallest bundled real model (stories260k) with a tiny stream:
 * 4 edits, MEMIT and DeltaEdit, two β values. Checks paper.json's structure, the report, and the
 * resume contract: a rerun without --resume is refused, a resume recomputes only the stage whose
 * output was deleted (every other stage file and every session journal stays byte-identical), and a
 * resume with other options is refused.
 *
 * `paper --seeds 2` on the same fixture (AlphaEdit and both DeltaEdit variants, DeltaEdit's trigger
 * made easy to reach so that it differs from AlphaEdit): per-ordering benches and analyses, paper.json's
 * per-ordering values and aggregates against the per-ordering files, the verdict against an
 * independent paired t computed here (t_{0.975, 1} = tan(0.475 π)), the report in headless Chromium,
 * and resume per stage. Float comparisons are relative (any BLAS kernel family and thread count).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { spawnSync } from "node:child_process";
import { cli } from "../helpers/cli.js";
import { ORDERING_SHUFFLE, streamOrdering } from "../../src/eval/bench.js";
import type { OverlapStats } from "../../src/eval/paper/overlap.js";
import { readResultsJson } from "../../src/eval/report/json.js";
import { readPaperJson, validatePaperReport, type PaperOverlapMethod, type PaperReport, type PaperRepresentation } from "../../src/eval/report/paperReport.js";
import { assertBandPerLine, chromiumArgs, chromiumOrSkip, screenshotReport } from "../helpers/chromium.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-paper-"));
process.env["DELTAEDIT_CACHE"] = path.join(tmp, "cache");
const FIX = path.join(repoRoot(), "test", "fixtures");
const CORPUS = path.join(FIX, "corpus", "stories.txt");
const DATA = path.join(FIX, "edits", "stories-mcf.json");

/** Facts the stream never edits (subjects after the first 4 records), for the accuracy check and the representation prompts. */
function controlFacts(): string {
  const facts = path.join(tmp, "control-facts.jsonl");
  fs.writeFileSync(facts, ["Tim", "Sue", "Lily", "Max", "Sam"].map((s) => JSON.stringify({ prompt: "{} went to the", subject: s, target: "park" })).join("\n") + "\n");
  return facts;
}

/** |a − b| ≤ rel·max(|a|, |b|) + abs. */
function close(a: number | null | undefined, b: number | null | undefined, what: string, rel = 1e-9, abs = 1e-12): void {
  assert.ok(typeof a === "number" && typeof b === "number", `${what}: ${a} vs ${b}`);
  assert.ok(Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)) + abs, `${what}: ${a} vs ${b}`);
}

test("paper: tiny run writes paper.json and the report; resume recomputes only a deleted stage", async () => {
  const out = path.join(tmp, "run");
  const facts = controlFacts();
  const args = [
    "paper", "--model", fixtureModel("stories260k"), "--dataset", DATA, "--stats-corpus", CORPUS, "--heldout", CORPUS, "--control-facts", facts,
    "--edits", "4", "--checkpoints", "2", "--methods", "memit,deltaedit", "--betas", "1,3", "--sweep-edits", "3", "--cases", "2", "--case-tokens", "6",
    "--set", "memit.numGradSteps=4", "--set", "deltaedit.numGradSteps=4", "--out", out,
  ];
  const r = await cli(args);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /checkpoints/, "the schedule rule is printed");
  assert.match(r.out, /MEMIT/);
  assert.match(r.out, /DeltaEdit \(official\)/);
  assert.match(r.out, /β sweep/);
  assert.doesNotMatch(r.out, /orderings|Verdict|~ not significantly/, "one ordering: today's summary");

  const p = JSON.parse(fs.readFileSync(path.join(out, "paper.json"), "utf8")) as PaperReport;
  // one ordering (the default): a valid version-1 file with none of the multi-ordering fields
  validatePaperReport(p);
  assert.equal(p.orderings, undefined);
  assert.equal(p.verdict, undefined);
  assert.equal(p.bench.orderings, undefined);
  assert.equal(p.representation?.pointsOrdering, undefined);
  for (const field of ["acrossOrderings", "perSeed", "ci95"]) assert.ok(!JSON.stringify(p).includes(`"${field}"`), `no ${field} in a one-ordering paper.json`);
  assert.ok(fs.existsSync(path.join(out, "bench", "memit", "memit", "session", "journal.jsonl")), "one-ordering layout (no seed-<k>/)");
  assert.equal(p.format, "deltaedit-paper");
  assert.equal(p.version, 1);
  assert.equal(p.model.hidden, 64);
  assert.equal(p.dataset.stream, 4);
  assert.deepEqual(p.schedule.checkpoints, [2, 4]);
  assert.deepEqual(p.methods.map((m) => [m.id, m.status]), [["memit", "done"], ["deltaedit", "done"]]);
  assert.deepEqual(p.bench.methods.map((m) => m.name), ["memit", "deltaedit"]);
  // main table: every checkpoint, both methods, the six metrics
  assert.deepEqual(p.table.map((b) => b.edits), [2, 4]);
  for (const b of p.table) {
    assert.deepEqual(b.rows.map((x) => x.method), ["memit", "deltaedit"]);
    for (const row of b.rows) for (const k of ["post_rewrite_success", "post_paraphrase_success", "post_neighborhood_success", "post_rewrite_acc", "post_paraphrase_acc", "post_neighborhood_acc"]) {
      assert.equal(typeof row.metrics[k]?.mean, "number", `${row.method} ${k} at ${b.edits}`);
    }
  }
  // noise with its split, and efficacy at the same points
  for (const n of p.noise) {
    assert.deepEqual(n.points.map((x) => x.edits), [2, 4]);
    for (const x of n.points) {
      assert.ok(x.noiseE > 0 && x.activationEnergy !== null && x.interference !== null && x.efficacy !== null);
      assert.ok(Math.abs(x.activationEnergy! + x.interference! - x.meanSquared) <= 1e-6 * Math.max(1, x.meanSquared), "‖N‖² = activation energy + interference");
    }
  }
  // activation / overlap per method
  assert.deepEqual(p.overlap.map((o) => [o.method, o.available]), [["memit", true], ["deltaedit", true]]);
  for (const o of p.overlap) {
    assert.deepEqual(o.points.map((x) => x.edits), [2, 4]);
    for (const x of o.points) assert.ok(x.meanAbsActivation > 0 && x.meanAbsOverlap > 0 && x.meanAbsCosine! > 0 && x.meanAbsCosine! <= 1 + 1e-6);
  }
  // representation shift: 5 control-fact prompts, a PCA per layer, a shift per method
  const rep = p.representation!;
  assert.equal(rep.prompts.count, 5);
  assert.match(rep.prompts.source, /control-fact/);
  for (const m of rep.methods) {
    const layer = rep.layers.find((l) => l.layer === m.layer)!;
    assert.equal(layer.before.length, 5);
    assert.equal(m.after.length, 5);
    assert.ok(m.stats.spread > 0 && m.stats.meanShift > 0 && Math.abs(m.stats.relativeShift - m.stats.meanShift / m.stats.spread) < 1e-9);
  }
  // β sweep: both values, trigger counts from the journals
  assert.deepEqual(p.betaSweep.points.map((b) => [b.beta, b.status, b.requests]), [[1, "done", 3], [3, "done", 3]]);
  for (const b of p.betaSweep.points) assert.ok(b.triggerRate !== null && b.triggerRate >= 0 && b.triggerRate <= 1 && typeof b.metrics["post_rewrite_success"] === "number");
  // case study and general ability
  assert.equal(p.caseStudy!.cases.length, 2);
  for (const c of p.caseStudy!.cases) {
    assert.equal(c.unedited.length, c.prompts.length);
    assert.deepEqual(Object.keys(c.methods).sort(), ["deltaedit", "memit"]);
  }
  for (const g of p.general) for (const x of g.points) assert.ok(x.perplexity! > 1 && x.factAccuracy !== null);
  assert.deepEqual(p.stages.map((s) => [s.name, s.status]), [
    ["bench:memit", "done"], ["bench:deltaedit", "done"], ["beta:1", "done"], ["beta:3", "done"], ["overlap", "done"], ["representation", "done"], ["cases", "done"],
  ]);
  const html = fs.readFileSync(path.join(out, "report.html"), "utf8");
  for (const id of ["metric:post_rewrite_success", "noise:E", "noise:efficacy", "overlap:activation", "overlap:influence", "repr:memit", "repr:deltaedit", "beta:trigger", "metric:general_perplexity"]) {
    assert.ok(html.includes(`data-plot="${id}"`), `report has plot ${id}`);
  }
  assert.match(html, /data-table="paper"/);
  assert.match(html, /data-case=/);

  // a rerun without --resume is refused
  const again = await cli(args);
  assert.equal(again.code, 2);
  assert.match(again.err, /--resume/);

  // delete one later stage's output: a resume recomputes that stage only
  const stages = path.join(out, "stages");
  const snapshot = (): Map<string, string> => new Map(fs.readdirSync(stages).map((f) => [f, fs.readFileSync(path.join(stages, f), "utf8")]));
  const journals = (): string[] => ["memit", "deltaedit"].map((m) => fs.readFileSync(path.join(out, "bench", m, m, "session", "journal.jsonl"), "utf8"));
  const before = snapshot();
  const journalsBefore = journals();
  fs.rmSync(path.join(stages, "representation.json"));
  const r2 = await cli([...args, "--resume"]);
  assert.equal(r2.code, 0, r2.err);
  const after = snapshot();
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), "the deleted stage file is back");
  for (const [f, text] of after) {
    if (f === "representation.json") assert.notEqual(text, before.get(f), "representation recomputed (new completion time)");
    else assert.equal(text, before.get(f), `${f} untouched by the resume`);
  }
  assert.deepEqual(journals(), journalsBefore, "no method edited again");
  assert.match(r2.err, /stage bench:memit: done earlier/);
  assert.match(r2.err, /stage representation: done in/);
  const p2 = JSON.parse(fs.readFileSync(path.join(out, "paper.json"), "utf8")) as PaperReport;
  assert.deepEqual(p2.stages.map((s) => s.status), ["resumed", "resumed", "resumed", "resumed", "resumed", "done", "resumed"]);
  for (const [i, m] of p2.representation!.methods.entries()) {
    const old = rep.methods[i]!;
    assert.ok(Math.abs(m.stats.relativeShift - old.stats.relativeShift) <= 1e-5 * old.stats.relativeShift, "recomputed shift agrees");
  }

  // a resume with different options is refused
  const other = await cli([...args.map((a) => (a === "1,3" ? "1,2" : a)), "--resume"]);
  assert.equal(other.code, 2);
  assert.match(other.err, /different configuration.*betas/);
});

test("paper --seeds 2: per-ordering benches and analyses, means with 95 % CIs, the verdict as a paired t; resume per stage", async (t) => {
  const out = path.join(tmp, "seeds2");
  const ids = ["alphaedit", "deltaedit", "deltaedit-paper"];
  const args = [
    "paper", "--model", fixtureModel("stories260k"), "--dataset", DATA, "--stats-corpus", CORPUS, "--heldout", CORPUS, "--control-facts", controlFacts(),
    "--edits", "4", "--checkpoints", "2", "--methods", ids.join(","), "--betas", "1", "--sweep-edits", "2", "--cases", "1", "--case-tokens", "4",
    "--set", "alphaedit.numGradSteps=4", "--set", "deltaedit.numGradSteps=4",
    // DeltaEdit's projection can fire from the 2nd request on, so that it differs from AlphaEdit
    "--set", "deltaedit.warmupRequests=1", "--set", "deltaedit.varMultiplier=0.1",
    "--seeds", "2", "--out", out,
  ];
  const r = await cli(args);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /after 4 edits .*mean ± 95 % CI over 2 orderings/);
  assert.match(r.out, /Verdict after 4 edits: DeltaEdit minus AlphaEdit/);
  assert.match(r.out, /~ not significantly different from the column's best \(two-sided paired t-test over the same 2 orderings, 95 %\)/);
  assert.match(r.out, /β sweep: .*ordering 0 \(file order\) only/);

  const p = readPaperJson(path.join(out, "paper.json")); // validates
  assert.deepEqual(p.orderings, { count: 2, confidence: 0.95, shuffle: ORDERING_SHUFFLE, dirs: ["seed-0", "seed-1"] });
  assert.equal(p.bench.orderings?.count, 2);
  assert.deepEqual(p.stages.map((s) => [s.name, s.status]), [
    ["bench:alphaedit", "done"], ["bench:deltaedit", "done"], ["bench:deltaedit-paper", "done"], ["beta:1", "done"],
    ["overlap:seed-0", "done"], ["overlap:seed-1", "done"], ["representation:seed-0", "done"], ["representation:seed-1", "done"], ["cases", "done"],
  ]);
  // ordering k is bench's: seed-0 the file order, seed-1 streamOrdering(4, 1) of it, the same for every method
  const caseIds = (id: string, k: number): number[] => (JSON.parse(fs.readFileSync(path.join(out, "bench", id, `seed-${k}`, "ordering.json"), "utf8")) as { caseIds: number[] }).caseIds;
  const file = caseIds("alphaedit", 0);
  assert.equal(file.length, 4);
  assert.deepEqual(caseIds("alphaedit", 1), streamOrdering(4, 1).map((i) => file[i]!));
  assert.notDeepEqual(caseIds("alphaedit", 1), file);
  for (const id of ids) for (const k of [0, 1]) assert.deepEqual(caseIds(id, k), caseIds("alphaedit", k), `${id} ordering ${k}`);

  // the per-ordering values, read from each ordering's own files
  const T1 = Math.tan(Math.PI * 0.475); // t_{0.975} with 1 df (Cauchy), independent of util/studentT.ts
  const results = (id: string, k: number) => readResultsJson(path.join(out, "bench", id, `seed-${k}`, "results.json")).methods[0]!;
  const cp = (id: string, k: number, e: number) => results(id, k).checkpoints.find((c) => c.edits === e)!;
  const stageData = <T>(name: string): T => (JSON.parse(fs.readFileSync(path.join(out, "stages", `${name}.json`), "utf8")) as { data: T }).data;
  const overlapOf = (id: string, k: number): OverlapStats[] => stageData<PaperOverlapMethod[]>(`overlap-seed-${k}`).find((m) => m.method === id)!.points;
  const shiftOf = (id: string, k: number): number => stageData<PaperRepresentation>(`representation-seed-${k}`).methods.find((m) => m.method === id)!.stats.relativeShift;
  /** mean and 95 % half-width of two values, computed here */
  const agg = (x: number, y: number): { mean: number; ci: number } => ({ mean: (x + y) / 2, ci: (T1 * Math.abs(x - y)) / 2 });
  const checkSpread = (sp: { mean: number | null; ci95: number | null; perSeed: (number | null)[] } | undefined, v: [number, number], what: string): void => {
    assert.ok(sp !== undefined, `${what}: no spread`);
    close(sp.perSeed[0], v[0], `${what} ordering 0`);
    close(sp.perSeed[1], v[1], `${what} ordering 1`);
    const a = agg(v[0], v[1]);
    close(sp.mean, a.mean, `${what} mean`);
    close(sp.ci95, a.ci, `${what} ci95`, 1e-7, 1e-9);
  };
  for (const block of p.table) {
    for (const row of block.rows) {
      for (const [key, s] of Object.entries(row.metrics)) {
        checkSpread(s === null ? undefined : { mean: s.mean, ci95: s.ci95 ?? null, perSeed: s.perSeed ?? [] }, [cp(row.method, 0, block.edits).metrics[key]!.mean, cp(row.method, 1, block.edits).metrics[key]!.mean], `${row.method} ${key} at ${block.edits}`);
      }
    }
  }
  for (const n of p.noise) for (const pt of n.points) {
    checkSpread(pt.acrossOrderings?.["noiseE"], [cp(n.method, 0, pt.edits).noise![0]!.noiseE, cp(n.method, 1, pt.edits).noise![0]!.noiseE], `${n.method} noise_E at ${pt.edits}`);
    close(pt.noiseE, pt.acrossOrderings!["noiseE"]!.mean, `${n.method} noise_E field = mean`);
  }
  for (const g of p.general) for (const pt of g.points) {
    checkSpread(pt.acrossOrderings?.["perplexity"], [cp(g.method, 0, pt.edits).metrics["general_perplexity"]!.mean, cp(g.method, 1, pt.edits).metrics["general_perplexity"]!.mean], `${g.method} perplexity at ${pt.edits}`);
  }
  assert.deepEqual(p.overlap.map((o) => [o.method, o.available]), ids.map((id) => [id, true]));
  for (const o of p.overlap) {
    assert.equal(o.acrossOrderings?.length, o.points.length);
    o.points.forEach((pt, i) => {
      for (const key of ["meanAbsActivation", "meanAbsOverlap"] as const) {
        checkSpread(o.acrossOrderings![i]![key], [overlapOf(o.method, 0)[i]![key], overlapOf(o.method, 1)[i]![key]], `${o.method} ${key} at ${pt.edits}`);
        close(pt[key], o.acrossOrderings![i]![key]!.mean, `${o.method} ${key} field = mean`);
      }
    });
  }
  const rep = p.representation!;
  assert.equal(rep.pointsOrdering, 0);
  for (const m of rep.methods) {
    checkSpread(m.acrossOrderings?.["relativeShift"], [shiftOf(m.method, 0), shiftOf(m.method, 1)], `${m.method} shift`);
    assert.deepEqual(m.after, stageData<PaperRepresentation>("representation-seed-0").methods.find((x) => x.method === m.method)!.after, "the PCA points are ordering 0's");
  }

  // the verdict: each DeltaEdit variant minus AlphaEdit at the end, paired over the orderings, recomputed here
  const v = p.verdict!;
  assert.ok(v !== null && v !== undefined, "a verdict");
  assert.equal(v.baseline, "alphaedit");
  assert.equal(v.edits, 4);
  assert.equal(v.orderings, 2);
  const value = (id: string, key: string, k: number): number => {
    if (key === "noiseE") return cp(id, k, 4).noise![0]!.noiseE;
    if (key === "shift") return shiftOf(id, k);
    if (key.startsWith("overlap:")) return overlapOf(id, k).at(-1)![key.slice("overlap:".length) as "meanAbsActivation" | "meanAbsOverlap"];
    return cp(id, k, 4).metrics[key]!.mean;
  };
  const keys = [...Object.keys(cp("alphaedit", 0, 4).metrics), "noiseE", "overlap:meanAbsActivation", "overlap:meanAbsOverlap", "shift"].sort();
  for (const variant of ["deltaedit", "deltaedit-paper"]) {
    const rows = v.rows.filter((x) => x.method === variant);
    assert.deepEqual(rows.map((x) => x.key).sort(), keys, `${variant}: one row per number`);
    for (const row of rows) {
      const d = [0, 1].map((k) => value(variant, row.key, k) - value("alphaedit", row.key, k)) as [number, number];
      const scale = Math.max(1, ...[0, 1].map((k) => Math.abs(value("alphaedit", row.key, k))));
      const want = agg(d[0], d[1]);
      assert.equal(row.n, 2);
      close(row.meanDiff, want.mean, `${variant} ${row.key} mean difference`, 1e-9, 1e-12 * scale);
      close(row.ci95, want.ci, `${variant} ${row.key} paired half-width`, 1e-7, 1e-9 * scale);
      close(row.mean, (value(variant, row.key, 0) + value(variant, row.key, 1)) / 2, `${variant} ${row.key} mean`);
      close(row.baselineMean, (value("alphaedit", row.key, 0) + value("alphaedit", row.key, 1)) / 2, `${variant} ${row.key} baseline mean`);
      // significance: |d̄| > half-width (not asserted when the two are equal to rounding)
      if (Math.abs(Math.abs(want.mean) - want.ci) > 1e-6 * scale) {
        const sig = Math.abs(want.mean) > want.ci;
        assert.equal(row.significant, sig, `${variant} ${row.key} significance`);
        const good = (want.mean > 0) === row.higherIsBetter;
        assert.equal(row.outcome, sig ? (good ? "better" : "worse") : "not significant", `${variant} ${row.key} outcome`);
      }
      assert.equal(row.higherIsBetter, !["general_perplexity", "noiseE", "overlap:meanAbsActivation", "overlap:meanAbsOverlap", "shift"].includes(row.key), `${row.key} direction`);
    }
  }
  assert.ok(v.rows.some((x) => x.meanDiff !== null && Math.abs(x.meanDiff) > 0), "DeltaEdit differs from AlphaEdit somewhere (its projection fired)");
  const verdictBlock = r.out.slice(r.out.indexOf("Verdict after"));
  for (const label of ["Efficacy", "noise_E", "mean |h| (influence overlap)", "representation shift"]) assert.ok(verdictBlock.includes(label), `terminal verdict has ${label}`);

  // the report: verdict table, CI bands around the metric, noise, overlap and general-ability lines
  const html = fs.readFileSync(path.join(out, "report.html"), "utf8");
  assert.match(html, /data-table="verdict"/);
  assert.match(html, /shift [^<]*ordering 0\)/, "the PCA scatter says it is ordering 0");
  const chromium = chromiumOrSkip(t);
  if (chromium !== null) {
    const url = `file://${path.join(out, "report.html")}`;
    const dump = spawnSync(chromium, [...chromiumArgs(path.join(tmp, "profile1")), "--dump-dom", url], { encoding: "utf8", timeout: 60_000, maxBuffer: 64 << 20 });
    assert.equal(dump.status, 0, `chromium --dump-dom failed (status ${dump.status}): ${dump.stderr.slice(-2000)}`);
    const plots = dump.stdout.split(/<svg class="plot"/).slice(1);
    const banded = ["metric:post_rewrite_success", "metric:general_perplexity", "noise:E", "overlap:activation", "overlap:influence"];
    for (const id of banded) {
      const chunk = plots.find((c) => c.includes(`data-plot="${id}"`));
      assert.ok(chunk !== undefined, `plot ${id} rendered`);
      assertBandPerLine(chunk, id);
    }
    assert.equal((dump.stdout.match(/<tr data-method="[^"]+" data-key=/g) ?? []).length, v.rows.length, "one verdict row per number and variant");
    screenshotReport(chromium, url, { profile: path.join(tmp, "profile2"), shot: path.join(tmp, "paper-seeds.png"), height: 2400, report: path.join(out, "report.html"), keepAs: "paper-seeds" });
  }

  // resume: delete one ordering's analysis, only that stage is recomputed; no session edits again
  const stages = path.join(out, "stages");
  const snapshot = (): Map<string, string> => new Map(fs.readdirSync(stages).map((f) => [f, fs.readFileSync(path.join(stages, f), "utf8")]));
  const journals = (): string[] => ids.flatMap((id) => [0, 1].map((k) => fs.readFileSync(path.join(out, "bench", id, `seed-${k}`, id === "alphaedit" ? "alphaedit" : "deltaedit", "session", "journal.jsonl"), "utf8")));
  const before = snapshot();
  const journalsBefore = journals();
  fs.rmSync(path.join(stages, "representation-seed-1.json"));
  const r2 = await cli([...args, "--resume"]);
  assert.equal(r2.code, 0, r2.err);
  const after = snapshot();
  assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
  for (const [f, text] of after) if (f !== "representation-seed-1.json") assert.equal(text, before.get(f), `${f} untouched by the resume`);
  assert.deepEqual(journals(), journalsBefore, "no method edited again");
  const p2 = readPaperJson(path.join(out, "paper.json"));
  assert.deepEqual(p2.stages.map((s) => s.status), ["resumed", "resumed", "resumed", "resumed", "resumed", "resumed", "resumed", "done", "resumed"]);
  p2.verdict!.rows.forEach((x, i) => close(x.meanDiff, v.rows[i]!.meanDiff, `resumed verdict ${x.method} ${x.key}`, 1e-5, 1e-9));

  // another number of orderings is another run
  const other = await cli([...args.map((a, i) => (args[i - 1] === "--seeds" ? "3" : a)), "--resume"]);
  assert.equal(other.code, 2);
  assert.match(other.err, /different configuration.*seeds/);
});
