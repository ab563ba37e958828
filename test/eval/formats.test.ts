/**
 * The field's data formats, recognised from their fields: EasyEdit's flattened CounterFact, KnowEdit's
 * records with portability / locality dictionaries, ZsRE as MEND / EasyEdit distribute it. Loaded,
 * scored (metrics a format cannot support are absent, never zero), and run through `bench` and `edit`
 * unchanged. Small files in each format are written here.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { cli } from "../helpers/cli.js";
import { detectRecordFormat } from "../../src/edit/recordFormats.js";
import { parseRequests } from "../../src/edit/request.js";
import { loadDatasetFile } from "../../src/eval/datasets/detect.js";
import { counterfactCaseValues, evaluateCounterfactCase, summarizeCounterfact } from "../../src/eval/metrics/counterfact.js";
import { evaluateZsreCase, zsreCaseValues } from "../../src/eval/metrics/zsre.js";
import { readResultsJson } from "../../src/eval/report/json.js";
import { LanguageModel } from "../../src/model/model.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-formats-"));
process.env["DELTAEDIT_CACHE"] = path.join(tmp, "cache");
const CORPUS = path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt");
const MODEL = fixtureModel("stories260k");

function write(name: string, data: unknown): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, JSON.stringify(data, null, 1));
  return f;
}

/** EasyEdit's flattened CounterFact (counterfact-edit.json): the subject is written into the prompt. */
const EASYEDIT_CF = [
  { case_id: 0, prompt: "Ben went to the", target_new: "store", subject: "Ben", ground_truth: "park", rephrase_prompt: "One day, Ben went to the", locality_prompt: "Kitty went to the", locality_ground_truth: "park" },
  { case_id: 1, prompt: "Lily liked to play with the", target_new: "hat", subject: "Lily", ground_truth: "ball", rephrase_prompt: "After lunch, Lily liked to play with the", locality_prompt: "Tom went to the", locality_ground_truth: "park" },
  { case_id: 2, prompt: "went to the", target_new: "store", subject: "Sue", ground_truth: "park", rephrase_prompt: "x", locality_prompt: "y", locality_ground_truth: "z" },
  { case_id: 3, prompt: "Mia saw a big", target_new: "boat", subject: "Mia", ground_truth: "dog", rephrase_prompt: "Mia saw a big", locality_prompt: "Tim saw a big", locality_ground_truth: "dog" },
];

/** KnowEdit (wiki_counterfact style): no locality_prompt, portability / locality dictionaries, ground truth as alias lists. */
const KNOWEDIT = [
  {
    subject: "Ben",
    prompt: "Ben went to the",
    target_new: "store",
    ground_truth: ["park"],
    rephrase_prompt: "One day, Ben went to the",
    portability: { Subject_Aliasing: [{ prompt: "The boy Ben went to the", ground_truth: [["store", "shop"]] }], Reasoning: [{ prompt: "Ben bought milk at the", ground_truth: ["store"] }] },
    locality: { Relation_Specificity: [{ prompt: "Kitty went to the", ground_truth: ["park"] }], Forgetfulness: "" },
  },
];

/** ZsRE as MEND / EasyEdit distribute it (zsre_mend_eval.json fields; the file name says nothing). */
const ZSRE = [
  { subject: "Ben", src: "Where did Ben go?", pred: "park", rephrase: "Where did Ben walk to?", alt: "store", answers: ["park"], loc: "nq question: where did the cat sleep", loc_ans: "on the bed", cond: "park >> store || Where did Ben go?" },
  { subject: "Lily", src: "What did Lily like?", rephrase: "What did Lily love?", alt: "hats", answers: ["the ball"], loc: "nq question: who is tom", loc_ans: "a boy", portability: { Reasoning: [{ prompt: "Lily's favourite toy is", ground_truth: "the ball" }] } },
];

test("formats are recognised from the fields", () => {
  assert.equal(detectRecordFormat(EASYEDIT_CF[0]), "easyedit");
  assert.equal(detectRecordFormat(KNOWEDIT[0]), "easyedit");
  assert.equal(detectRecordFormat(ZSRE[0]), "zsre");
  assert.equal(detectRecordFormat({ prompt: "{} went to the", subject: "Ben", target_new: "store" }), "simple");
  assert.equal(detectRecordFormat({ requested_rewrite: {} }), "counterfact");
  // as edit requests: the filled-in prompt becomes a template; zsRE edits towards answers[0]
  const p = parseRequests([EASYEDIT_CF[0], ZSRE[0], EASYEDIT_CF[2], { prompt: "Ben and Ben went to the", subject: "Ben", target_new: "x" }]);
  assert.deepEqual(p.requests.map((r) => [r.prompt, r.subject, r.targetNew, r.targetTrue]), [["{} went to the", "Ben", "store", "park"], ["Where did {} go?", "Ben", "park", null]]);
  assert.deepEqual(p.rejected.map((r) => [r.caseId, r.field]), [["2", "prompt"], ["3", "subject"]]);
  assert.match(p.rejected[1]!.message, /occurs 2 times in prompt/);
});

test("EasyEdit flattened CounterFact: loaded as CounterFact cases; a one-prompt neighborhood where the file has one, absent where not", async () => {
  const ds = loadDatasetFile(write("counterfact-edit.json", EASYEDIT_CF));
  assert.equal(ds.format, "easyedit");
  assert.equal(ds.kind, "mcf");
  assert.deepEqual(ds.records.map((r) => r.caseId), [0, 1, 3]);
  assert.deepEqual(ds.rejected.map((r) => [r.caseId, r.field]), [["2", "prompt"]]);
  const [ben, lily] = ds.records;
  assert.equal(ben!.request.prompt, "{} went to the");
  assert.deepEqual(ben!.paraphrasePrompts, ["One day, Ben went to the"]);
  assert.deepEqual(ben!.neighborhoodPrompts, ["Kitty went to the"], "locality_ground_truth = ground_truth: CounterFact's neighborhood");
  assert.deepEqual(lily!.neighborhoodPrompts, []);
  assert.deepEqual(lily!.knowEdit?.locality, [{ group: "neighborhood", prompt: "Tom went to the", answer: "park" }], "another answer: a locality item");
  const model = await LanguageModel.load(MODEL);
  const cases = ds.records.map((r) => evaluateCounterfactCase(model, r));
  const v = cases.map(counterfactCaseValues);
  assert.ok("neighborhood_success" in v[0]! && !("neighborhood_success" in v[1]!), "no neighborhood prompt: no neighborhood value (not 0)");
  assert.ok("locality_acc" in v[1]! && "locality_neighborhood_acc" in v[1]!);
  assert.ok(!("ngram_entropy" in v[0]!), "no generation prompts: no fluency");
  const s = summarizeCounterfact(cases);
  for (const k of ["post_rewrite_success", "post_paraphrase_success", "post_neighborhood_success", "post_locality_acc"]) assert.ok(s.values[k], k);
  assert.equal(s.values["post_ngram_entropy"], undefined);
});

test("KnowEdit records: portability and locality token accuracies; no CounterFact neighborhood, so no specificity and no score", async () => {
  const ds = loadDatasetFile(write("wiki_counterfact.json", KNOWEDIT));
  const r = ds.records[0]!;
  assert.equal(r.requestedRewrite.target_true.str, "park");
  assert.deepEqual(r.knowEdit!.portability.map((x) => [x.group, x.answer]), [["Subject_Aliasing", "store"], ["Reasoning", "store"]]);
  assert.deepEqual(r.knowEdit!.locality.map((x) => [x.group, x.answer]), [["Relation_Specificity", "park"]]);
  const model = await LanguageModel.load(MODEL);
  const c = evaluateCounterfactCase(model, r);
  assert.equal(c.post.portability!["Reasoning"]!.length, 1);
  const v = counterfactCaseValues(c);
  for (const k of ["portability_acc", "portability_subject_aliasing_acc", "portability_reasoning_acc", "locality_acc", "locality_relation_specificity_acc"]) assert.ok(k in v, k);
  for (const x of Object.values(v)) assert.ok(Number.isFinite(x));
  assert.ok(v["portability_acc"]! >= 0 && v["portability_acc"]! <= 1);
  const s = summarizeCounterfact([c]);
  assert.equal(s.values["post_neighborhood_success"], undefined);
  assert.equal(s.score, null, "the harmonic score needs specificity");
  // a malformed dictionary names the field
  const bad = loadDatasetFile(write("bad-knowedit.json", [{ ...KNOWEDIT[0], portability: { Reasoning: [{ prompt: "x" }] } }]));
  assert.deepEqual(bad.rejected.map((x) => x.field), ["portability.Reasoning[0].ground_truth"]);
});

test("ZsRE records are recognised without the file name; KnowEdit portability is scored where present", async () => {
  const model = await LanguageModel.load(MODEL);
  const ds = loadDatasetFile(write("my-questions.json", ZSRE), { tokenizer: model.tokenizer! });
  assert.equal(ds.kind, "zsre");
  assert.equal(ds.records[0]!.request.targetNew, "park");
  const c0 = zsreCaseValues(evaluateZsreCase(model, ds.records[0]!));
  const c1 = zsreCaseValues(evaluateZsreCase(model, ds.records[1]!));
  assert.ok("rewrite_acc" in c0 && "neighborhood_acc" in c0 && !("portability_acc" in c0));
  assert.ok("portability_acc" in c1);
});

test("bench runs an EasyEdit file and a ZsRE file unchanged; metrics no record supports are absent from results.json", async () => {
  const file = write("counterfact-edit-nonb.json", EASYEDIT_CF.map((r) => ({ ...r, locality_ground_truth: "elsewhere" })));
  const out = path.join(tmp, "bench-easyedit");
  const r = await cli(["bench", "--model", MODEL, "--dataset", file, "--methods", "memit", "--edits", "3", "--stats-corpus", CORPUS, "--out", out, "--set", "memit.numGradSteps=3"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /read as EasyEdit/);
  const res = readResultsJson(path.join(out, "results.json"));
  const m = res.methods[0]!.checkpoints[0]!.metrics;
  assert.ok(m["post_rewrite_success"] && m["post_locality_acc"]);
  assert.equal(m["post_neighborhood_success"], undefined, "no record has a neighborhood: absent, not 0");
  assert.equal(m["post_score"], undefined);
  const zout = path.join(tmp, "bench-zsre");
  const z = await cli(["bench", "--model", MODEL, "--dataset", write("zsre-easyedit.json", ZSRE), "--methods", "memit", "--edits", "2", "--stats-corpus", CORPUS, "--out", zout, "--set", "memit.numGradSteps=3", "--json"]);
  assert.equal(z.code, 0, z.err);
  const zm = (JSON.parse(z.out) as { methods: { checkpoints: { metrics: Record<string, unknown> }[] }[] }).methods[0]!.checkpoints[0]!.metrics;
  assert.ok(zm["post_rewrite_acc"] && zm["post_neighborhood_acc"] && !zm["post_rewrite_success"]);
});

test("edit applies an EasyEdit file; an EasyEdit AlphaEdit YAML names the method and sets its parameters", async () => {
  const yaml = path.join(tmp, "AlphaEdit-stories.yaml");
  fs.writeFileSync(yaml, `alg_name: "AlphaEdit"\nmodel_name: "./hugging_cache/stories260k"\ndevice: 0\nstats_dir: "./data/stats"\nlayers: [1, 2, 3]\nv_num_grad_steps: 4\nv_lr: 5e-1\nv_loss_layer: 4\nmom2_update_weight: 20000\nnullspace_threshold: 2e-2\nL2: 0.1\n`);
  const dir = path.join(tmp, "edit-easyedit");
  const r = await cli(["edit", "--model", MODEL, "--hparams", yaml, "--edits", write("cf-edit.json", EASYEDIT_CF), "--session", dir, "--stats-corpus", CORPUS, "--json"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /ignored device = 0 \(/);
  assert.match(r.err, /ignored mom2_update_weight = 20000 \(unused by AlphaEdit/);
  assert.match(r.err, /rejected: request #2 \(case_id 2\): field "prompt"/);
  const summary = JSON.parse(r.out) as { method: string; applied: number; rejected: number };
  assert.deepEqual([summary.method, summary.applied, summary.rejected], ["alphaedit", 3, 1]);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8")) as { params: Record<string, unknown> };
  assert.deepEqual([manifest.params["editLayers"], manifest.params["numGradSteps"], manifest.params["l2"]], [[1, 2, 3], 4, 0.1]);
  // bench: --hparams METHOD=FILE, and a file for a method not benched is an error
  const bad = await cli(["bench", "--model", MODEL, "--dataset", write("cf2.json", EASYEDIT_CF), "--methods", "memit", "--edits", "1", "--hparams", yaml, "--out", path.join(tmp, "b2")]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /is for alphaedit, which is not in --methods memit/);
});
