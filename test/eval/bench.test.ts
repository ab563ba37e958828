/**
 * The bench orchestrator: checkpoint schedules per protocol, per-case records and results.json on a
 * tiny stream, the "immediate" protocol scoring each record right after its batch, and resume (a
 * rerun reuses finished checkpoints and sessions instead of editing again).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { cli } from "../helpers/cli.js";
import { checkpointSchedule } from "../../src/eval/bench.js";
import { readResultsJson } from "../../src/eval/report/json.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-bench-"));
process.env["DELTAEDIT_CACHE"] = path.join(tmp, "cache");
const CORPUS = path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt");
const DATA = path.join(repoRoot(), "test", "fixtures", "edits", "stories-counterfact.json");

test("checkpoint schedules: DeltaEdit's 200 / every 500 / end, AlphaEdit's end, explicit lists", () => {
  assert.deepEqual(checkpointSchedule("checkpoints", 3000), [200, 500, 1000, 1500, 2000, 2500, 3000]);
  assert.deepEqual(checkpointSchedule("checkpoints", 1200), [200, 500, 1000, 1200]);
  assert.deepEqual(checkpointSchedule("checkpoints", 150), [150]);
  assert.deepEqual(checkpointSchedule("end", 3000), [3000]);
  assert.deepEqual(checkpointSchedule("immediate", 700), [200, 500, 700]);
  assert.deepEqual(checkpointSchedule("checkpoints", 10, [2, 5, 20, 5]), [2, 5, 10]);
});

test("bench writes per-case records, results.json and the report; a rerun resumes", async () => {
  const out = path.join(tmp, "run");
  const args = ["bench", "--model", fixtureModel("stories260k"), "--dataset", DATA, "--methods", "memit,deltaedit", "--edits", "4", "--checkpoints", "2", "--stats-corpus", CORPUS, "--out", out, "--set", "memit.numGradSteps=5", "--set", "deltaedit.numGradSteps=5"];
  const r = await cli(args);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /MEMIT/);
  assert.match(r.out, /DeltaEdit/);
  for (const m of ["memit", "deltaedit"]) {
    for (const [n, k] of [[2, 2], [4, 4]] as const) {
      const files = fs.readdirSync(path.join(out, m, String(n))).filter((f) => f.endsWith(".json"));
      assert.equal(files.length, k, `${m}: ${k} case records after ${n} edits`);
      const rec = JSON.parse(fs.readFileSync(path.join(out, m, String(n), files[0]!), "utf8")) as { post: { rewrite_prompts_probs: unknown[] }; num_edits: number };
      assert.equal(rec.num_edits, 1);
      assert.equal(rec.post.rewrite_prompts_probs.length, 1);
    }
  }
  const res = readResultsJson(path.join(out, "results.json"));
  assert.equal(res.protocol.name, "checkpoints");
  assert.deepEqual(res.protocol.checkpoints, [2, 4]);
  const de = res.methods.find((m) => m.name === "deltaedit")!;
  assert.deepEqual(de.checkpoints.map((c) => c.edits), [2, 4]);
  assert.ok(de.checkpoints[1]!.metrics["post_rewrite_success"], "efficacy recorded");
  assert.ok(de.checkpoints[1]!.noise && de.checkpoints[1]!.noise[0]!.noiseE > 0, "noise recorded for DeltaEdit");
  assert.equal(typeof de.checkpoints[1]!.triggerRate, "number");
  const html = fs.readFileSync(path.join(out, "report.html"), "utf8");
  assert.match(html, /<svg/);
  // rerun: nothing is edited again (the journals do not grow) and the same results come back
  const lines = fs.readFileSync(path.join(out, "memit", "session", "journal.jsonl"), "utf8");
  const r2 = await cli(args);
  assert.equal(r2.code, 0, r2.err);
  assert.equal(fs.readFileSync(path.join(out, "memit", "session", "journal.jsonl"), "utf8"), lines, "a rerun does not re-edit");
});

test("immediate protocol scores each record right after its own batch", async () => {
  const out = path.join(tmp, "immediate");
  const r = await cli(["bench", "--model", fixtureModel("stories260k"), "--dataset", DATA, "--methods", "alphaedit", "--edits", "3", "--protocol", "immediate", "--stats-corpus", CORPUS, "--out", out, "--set", "alphaedit.numGradSteps=5", "--json"]);
  assert.equal(r.code, 0, r.err);
  const parsed = JSON.parse(r.out) as { protocol: { name: string } };
  assert.equal(parsed.protocol.name, "immediate");
  assert.equal(fs.readdirSync(path.join(out, "alphaedit", "3")).length, 3);
});

test("single protocol: each record alone from the unedited weights, weights restored exactly, scores independent of the order", async () => {
  const records = JSON.parse(fs.readFileSync(DATA, "utf8")) as unknown[];
  const fwd = path.join(tmp, "single-fwd.json");
  const rev = path.join(tmp, "single-rev.json");
  fs.writeFileSync(fwd, JSON.stringify(records.slice(0, 3)));
  fs.writeFileSync(rev, JSON.stringify(records.slice(0, 3).reverse()));
  const probs: Record<string, unknown>[] = [];
  for (const [data, out] of [[fwd, path.join(tmp, "single-a")], [rev, path.join(tmp, "single-b")]] as const) {
    const r = await cli(["bench", "--model", fixtureModel("stories260k"), "--dataset", data, "--methods", "alphaedit", "--edits", "3", "--protocol", "single", "--stats-corpus", CORPUS, "--out", out, "--set", "alphaedit.numGradSteps=4"]);
    assert.equal(r.code, 0, r.err);
    const res = readResultsJson(path.join(out, "results.json"));
    assert.equal(res.protocol.name, "single");
    assert.deepEqual(res.methods[0]!.checkpoints.map((c) => c.edits), [3]);
    const dir = path.join(out, "alphaedit", "single");
    const byCase: Record<string, unknown> = {};
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith(".json"))) {
      const rec = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as { case_id: number; post: unknown };
      byCase[String(rec.case_id)] = rec.post;
    }
    assert.equal(Object.keys(byCase).length, 3);
    probs.push(byCase);
    // nothing was journaled: the session's model is the unedited one
    const journal = path.join(out, "alphaedit", "session", "journal.jsonl");
    assert.ok(!fs.existsSync(journal) || fs.readFileSync(journal, "utf8").trim() === "");
  }
  // each edit starts from the same weights and method state, seeded by its case id: same scores in either order
  assert.deepEqual(probs[0], probs[1]);
});

test("singleEdit restores every parameter of the edited blocks bit for bit", async () => {
  const { EditSession } = await import("../../src/edit/session/session.js");
  const { prepareSecondMoments } = await import("../../src/cli/commands/_stats.js");
  const { singleEdit } = await import("../../src/eval/singleEdit.js");
  const s = await EditSession.create({ dir: path.join(tmp, "single-restore"), modelSource: fixtureModel("stories260k"), method: "memit", overrides: { numGradSteps: 3 }, codeVersion: "test", secondMoments: (m, l) => prepareSecondMoments(m, l, { corpus: CORPUS }, () => {}) });
  try {
    const before = new Map(s.model.params.names().map((n) => [n, s.model.params.get(n).slice()]));
    const req = { caseId: "1", index: 0, prompt: "{} went to the", subject: "Lily", targetNew: "store", targetTrue: null, relationId: null };
    let changed = 0;
    singleEdit(s, req, 7, (m) => {
      for (const [n, w] of before) if (m.params.get(n).some((x, i) => x !== w[i])) changed++;
    });
    assert.ok(changed > 0, "the edit changed no weight while it was applied");
    for (const [n, w] of before) assert.ok(s.model.params.get(n).every((x, i) => x === w[i]), `${n} not restored`);
  } finally {
    s.close();
  }
});

test("bench refuses an empty or malformed --control-facts file, naming the file and line, before editing", async () => {
  const bad = [
    ["empty.jsonl", "\n", /empty\.jsonl: no control facts/],
    ["no-target.jsonl", '{"prompt": "{} lives in", "subject": "Tom"}\n', /no-target\.jsonl:1: control fact field "target"/],
    ["no-subject.jsonl", '{"prompt": "{} lives in", "subject": "", "target": "Paris"}\n', /no-subject\.jsonl:1: control fact field "subject"/],
    ["not-json.jsonl", '{"prompt": "{} lives in", "subject": "Tom", "target": "Paris"}\nnot json\n', /not-json\.jsonl:2: not valid JSON/],
  ] as const;
  for (const [name, text, re] of bad) {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, text);
    const out = path.join(tmp, `cf-${name}`);
    const r = await cli(["bench", "--model", fixtureModel("stories260k"), "--dataset", DATA, "--methods", "memit", "--edits", "2", "--stats-corpus", CORPUS, "--out", out, "--control-facts", file]);
    assert.notEqual(r.code, 0, name);
    assert.match(r.err, re, name);
    assert.doesNotMatch(r.err, /\n\s+at /, `${name}: a user mistake prints no stack trace`);
    assert.ok(!fs.existsSync(path.join(out, "memit")), `${name}: nothing was edited`);
  }
});
