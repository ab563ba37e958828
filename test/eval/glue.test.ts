/**
 * The general-ability harness (evaluation spec §5): classification scores against hand-computed
 * values, the prompts and parsers with the harness's quirks, task-file validation, and runs on small
 * task files written here: on a model, on a session, and along a bench stream.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { cli } from "../helpers/cli.js";
import { DeltaEditError } from "../../src/errors.js";
import { matthewsCorrelation, weightedF1 } from "../../src/eval/glue/classification.js";
import { readGlueData, runGlue } from "../../src/eval/glue/runGlue.js";
import { glueTask } from "../../src/eval/glue/tasks.js";
import { readResultsJson } from "../../src/eval/report/json.js";
import { LanguageModel } from "../../src/model/model.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-glue-"));
process.env["DELTAEDIT_CACHE"] = path.join(tmp, "cache");
const MODEL = fixtureModel("stories260k");
const CORPUS = path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt");

/** 10 few-shot pool items, then `n` test items, per task (fields as in the harness's files). */
function writeTasks(dir: string, n = 3): string {
  fs.mkdirSync(dir, { recursive: true });
  const items = (f: (i: number) => Record<string, unknown>): Record<string, unknown>[] => Array.from({ length: 10 + n }, (_, i) => f(i));
  const w = (file: string, data: unknown): void => fs.writeFileSync(path.join(dir, file), JSON.stringify(data));
  w("sst2.json", items((i) => ({ sentence: i % 2 ? "a happy day" : "a sad day", label: i % 2, idx: i })));
  w("mrpc.json", items((i) => ({ sentence1: "Lily went home.", sentence2: i % 2 ? "Lily went home." : "Tom ate cake.", label: i % 2, idx: i })));
  w("cola.json", items((i) => ({ sentence: i % 2 ? "The cat sat." : "Cat the sat.", label: i % 2, idx: i })));
  w("rte.json", items((i) => ({ sentence1: "Ben has a dog.", sentence2: "Ben has a pet.", label: i % 2, idx: i })));
  w("mmlu.json", items((i) => ({ question: "What is red?", subject: "colors", choices: ["an apple", "the sky", "grass", "snow"], answer: i % 4 })));
  w("nli.json", items((i) => ({ index: String(i), sentence1: "Mia is happy.", sentence2: "Mia is sad.", label: i % 2 ? "entailment" : "not_entailment" })));
  return dir;
}

test("weighted F1 and Matthews correlation as scikit-learn defines them (invalid −1 a class of its own)", () => {
  // gold [1,1,0,0], pred [1,0,0,−1]: F1(1) = 2/3, F1(0) = 1/2, F1(−1) = 0 (support 0) → (2·2/3 + 2·1/2)/4 = 7/12
  assert.ok(Math.abs(weightedF1([1, 1, 0, 0], [1, 0, 0, -1]) - 7 / 12) < 1e-12);
  // MCC: c = 2, s = 4, Σ t·p = 2·1 + 2·2 = 6, Σ p² = 6, Σ t² = 8 → (8 − 6)/√(10·8)
  assert.ok(Math.abs(matthewsCorrelation([1, 1, 0, 0], [1, 0, 0, -1]) - 2 / Math.sqrt(80)) < 1e-12);
  assert.equal(matthewsCorrelation([1, 0, 1, 0], [1, 0, 1, 0]), 1);
  assert.equal(matthewsCorrelation([1, 0, 1, 0], [0, 1, 0, 1]), -1);
  assert.equal(matthewsCorrelation([1, 1], [1, 1]), 0, "undefined (one class) → 0");
  assert.equal(weightedF1([0, 1, 2, 3], [0, 1, 2, 3]), 1);
});

test("prompts and answer parsers keep the harness's wording and quirks", () => {
  const sst = glueTask("sst2")!;
  assert.equal(sst.prompt({ sentence: "great film" }), "Review :great film\nSentiment :");
  assert.equal(sst.parse("Review :x\nSentiment : positive!", " positive!"), 1);
  assert.equal(sst.parse("Review :x\nSentiment : meh", " meh"), -1);
  const cola = glueTask("cola")!;
  assert.equal(cola.prompt({ sentence: "It rains." }), "Is this sentence linguistically acceptable?\nSentence: It rains.\nAnswer: ");
  assert.equal(cola.parse("…\nAnswer:  not sure", " not sure"), 0, "substring: \"no\" matches \"not\" (§5.6)");
  const rte = glueTask("rte")!;
  assert.equal(rte.parse("a\nquestion: b True or False?\nanswer: true, not false", " true, not false"), 0, "\"false\" is checked first");
  assert.equal(rte.gold({ label: 1 }), 1, "GLUE's label 1 (not entailment) scored as \"True\" (§5.6)");
  const mmlu = glueTask("mmlu")!;
  assert.equal(mmlu.name, "mmmlu");
  assert.equal(mmlu.prompt({ question: "Q?", choices: ["w", "x", "y", "z"] }), "Question: Q?\n(A) w\n(B) x\n(C) y\n(D) z\nAnswer:");
  assert.equal(mmlu.parse("", " B\nQuestion"), 1);
  assert.equal(mmlu.parse("", " B"), -1);
  const nli = glueTask("nli")!;
  assert.equal(nli.prompt({ sentence1: "A.", sentence2: "B." }), "A. entails the B. True or False? Answer:");
  assert.equal(nli.gold({ label: "not_entailment" }), 0);
});

test("task files are validated by file, item and field", () => {
  const dir = writeTasks(path.join(tmp, "bad"), 1);
  fs.writeFileSync(path.join(dir, "cola.json"), JSON.stringify([...Array.from({ length: 10 }, () => ({ sentence: "x", label: 0 })), { sentence: "y" }]));
  assert.throws(() => readGlueData(dir), (e: unknown) => e instanceof DeltaEditError && /cola\.json: item 10 has no field "label"/.test(e.message));
  assert.throws(() => readGlueData(dir, { tasks: ["squad"] }), (e: unknown) => e instanceof DeltaEditError && /unknown task "squad"/.test(e.message));
  fs.writeFileSync(path.join(dir, "rte.json"), JSON.stringify([{ sentence1: "a", sentence2: "b", label: 0 }]));
  assert.throws(() => readGlueData(dir, { tasks: ["rte"] }), (e: unknown) => e instanceof DeltaEditError && /test items start at item 10/.test(e.message));
  assert.throws(() => readGlueData(path.join(tmp, "none")), (e: unknown) => e instanceof DeltaEditError && e.code === "E_NOT_FOUND");
});

test("the six tasks run on a model: counts add up, scores in range, both predictions made", async () => {
  const data = readGlueData(writeTasks(path.join(tmp, "tasks")));
  assert.equal(data.size, 6);
  const r = runGlue(await LanguageModel.load(MODEL), data);
  assert.deepEqual(Object.keys(r.results).sort(), ["cola", "mmmlu", "mrpc", "nli", "rte", "sst"]);
  for (const [t, x] of Object.entries(r.results)) {
    assert.equal(x.total, 3, t);
    assert.equal(x.correct + x.incorrect + x.invalid, x.total, t);
    for (const v of [x.f1, x.f1_new]) assert.ok(v >= 0 && v <= 1, `${t}: ${v}`);
    assert.ok(x.mcc >= -1 && x.mcc <= 1);
  }
  assert.equal(r.results.mmmlu!.correct_new! + r.results.mmmlu!.incorrect_new!, 3);
  for (const it of r.items.sst!) assert.ok([0, 1].includes(it.answer_new));
});

test("deltaedit glue on a model and on a session; bench --glue along the stream", async () => {
  const data = writeTasks(path.join(tmp, "cli-tasks"), 2);
  const m = await cli(["glue", "--model", MODEL, "--data", data, "--tasks", "sst,rte", "--json", "--out", path.join(tmp, "glue-out")]);
  assert.equal(m.code, 0, m.err);
  const res = JSON.parse(m.out) as { edit_num: number; results: Record<string, { total: number }> };
  assert.equal(res.edit_num, -1);
  assert.deepEqual(Object.keys(res.results).sort(), ["rte", "sst"]);
  assert.ok(fs.existsSync(path.join(tmp, "glue-out", "sst_gen.json")));
  const both = await cli(["glue", "--model", MODEL, "--session", "x", "--data", data]);
  assert.equal(both.code, 2);
  const out = path.join(tmp, "bench");
  const b = await cli(["bench", "--model", MODEL, "--dataset", path.join(repoRoot(), "test", "fixtures", "edits", "stories-counterfact.json"), "--methods", "memit", "--edits", "3", "--checkpoints", "1", "--glue", data, "--glue-at", "3", "--stats-corpus", CORPUS, "--out", out, "--set", "memit.numGradSteps=3"]);
  assert.equal(b.code, 0, b.err);
  assert.ok(fs.existsSync(path.join(out, "glue", "base_glue.json")));
  assert.ok(fs.existsSync(path.join(out, "glue", "memit_3_glue.json")));
  assert.ok(!fs.existsSync(path.join(out, "glue", "memit_1_glue.json")), "--glue-at 3 only");
  const rj = readResultsJson(path.join(out, "results.json"));
  const cps = rj.methods[0]!.checkpoints;
  assert.equal(cps.find((c) => c.edits === 1)!.metrics["glue_sst_f1"], undefined);
  assert.ok(cps.find((c) => c.edits === 3)!.metrics["glue_sst_f1"]);
  assert.match(rj.notes!.join("\n"), /GLUE-style tasks, unedited model/);
  const sess = await cli(["glue", "--session", path.join(out, "memit", "session"), "--data", data, "--tasks", "nli", "--json", "--stats-corpus", CORPUS]);
  assert.equal(sess.code, 0, sess.err);
  assert.equal((JSON.parse(sess.out) as { edit_num: number }).edit_num, 3);
});
