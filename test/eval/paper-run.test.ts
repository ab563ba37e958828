/**
 * `deltaedit paper` end to end on the smallest bundled real model (stories260k) with a tiny stream:
 * 4 edits, MEMIT and DeltaEdit, two β values. Checks paper.json's structure, the report, and the
 * resume contract: a rerun without --resume is refused, a resume recomputes only the stage whose
 * output was deleted (every other stage file and every session journal stays byte-identical), and a
 * resume with other options is refused.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/main.js";
import type { PaperReport } from "../../src/eval/report/paperReport.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-paper-"));
process.env["DELTAEDIT_CACHE"] = path.join(tmp, "cache");
const FIX = path.join(repoRoot(), "test", "fixtures");
const CORPUS = path.join(FIX, "corpus", "stories.txt");
const DATA = path.join(FIX, "edits", "stories-mcf.json");

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

test("paper: tiny run writes paper.json and the report; resume recomputes only a deleted stage", async () => {
  const out = path.join(tmp, "run");
  // facts the stream never edits (subjects after the first 4 records), for the accuracy check and the representation prompts
  const facts = path.join(tmp, "control-facts.jsonl");
  fs.writeFileSync(facts, ["Tim", "Sue", "Lily", "Max", "Sam"].map((s) => JSON.stringify({ prompt: "{} went to the", subject: s, target: "park" })).join("\n") + "\n");
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

  const p = JSON.parse(fs.readFileSync(path.join(out, "paper.json"), "utf8")) as PaperReport;
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
