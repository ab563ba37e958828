/**
 * The library's edit session (`Editor`, imported from the package entry src/index.ts): create, edit
 * in the API form and in raw record formats with rejections by case id, generate, evaluate, undo,
 * export, close and reopen to the same weights; hparams files; errors are DeltaEditErrors.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { DeltaEditError, Editor, type EditResult } from "../../src/index.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";
import { bitIdentical } from "../edit/_fixtures.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-editor-"));
process.env["DELTAEDIT_CACHE"] = path.join(tmp, "cache");
const CORPUS = path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt");
const DATA = path.join(repoRoot(), "test", "fixtures", "edits", "stories-mcf.json");
const MODEL = fixtureModel("stories260k");
const stats = { corpus: CORPUS };

/** The down projection of block `l` (the edited matrix), copied. */
function downProj(e: Editor, l: number): Float32Array {
  return Float32Array.from(e.model.arch.editTarget(l).W);
}

test("create, edit (API form and raw records), rejections by case id, generate, evaluate", async () => {
  const dir = path.join(tmp, "s1");
  const editor = await Editor.create({ dir, model: MODEL, method: "deltaedit", params: { numGradSteps: 5 }, stats });
  assert.equal(editor.method, "deltaedit");
  assert.equal(editor.params["numGradSteps"], 5);
  const before = await editor.generate("Lily went to the", { maxNewTokens: 3 });
  assert.equal(typeof before, "string");
  const report: EditResult = await editor.edit([
    { prompt: "{} went to the", subject: "Lily", targetNew: "store", caseId: "lily" },
    { prompt: "{} saw a", subject: "Tom", targetNew: "" }, // rejected: empty target
    { case_id: 7, prompt: "Ben liked to play with the", subject: "Ben", target_new: "hat", ground_truth: "ball" }, // EasyEdit form
  ]);
  assert.equal(report.applied, 2);
  assert.deepEqual(report.requests.map((r) => [r.caseId, r.batch]), [["lily", 1], ["7", 2]]);
  assert.deepEqual(report.rejected.map((r) => [r.caseId, r.field]), [["1", "target_new"]]);
  assert.deepEqual(report.batches, [1, 2]);
  assert.equal(report.batch, 2);
  assert.equal(report.position, 3);
  assert.equal(editor.position, 3);
  for (const r of report.requests) assert.ok(r.steps >= 1 && Number.isFinite(r.finalLoss));
  // the next call continues the stream; case ids default to stream positions
  const next = await editor.edit([{ prompt: "{} saw a big", subject: "Mia", targetNew: "boat" }]);
  assert.deepEqual(next.requests.map((r) => [r.caseId, r.index, r.batch]), [["3", 3, 3]]);
  // nothing editable: reported, nothing journaled
  const none = await editor.edit([{ prompt: "no slot", subject: "Zed", targetNew: "x" }]);
  assert.deepEqual([none.applied, none.batch, none.rejected.length, editor.journal.length], [0, null, 1, 3]);
  const ds = await editor.loadDataset(DATA, { size: 4 });
  assert.equal(ds.format, "counterfact");
  const ev = await editor.evaluate(ds);
  assert.equal(ev.cases.length, 4);
  assert.equal(ev.summary.dataset, "counterfact");
  for (const k of ["post_rewrite_success", "post_paraphrase_success", "post_neighborhood_success"]) assert.ok(ev.summary.values[k], k);
  const fromFile = await editor.evaluate(DATA);
  assert.ok(fromFile.cases.length > 4);
  await editor.close();
  await assert.rejects(editor.edit([{ prompt: "{} ran to the", subject: "Sam", targetNew: "park" }]), (e: unknown) => e instanceof DeltaEditError && e.code === "E_SESSION");
});

test("undo, export, close and reopen: the reopened session has the live session's weights", async () => {
  const dir = path.join(tmp, "s2");
  const editor = await Editor.create({ dir, model: MODEL, method: "alphaedit", params: { numGradSteps: 4 }, stats });
  const w0 = downProj(editor, 2);
  const a = await editor.edit([{ prompt: "{} went to the", subject: "Lily", targetNew: "store" }]);
  const w1 = downProj(editor, 2);
  await editor.edit([{ prompt: "{} saw a big", subject: "Mia", targetNew: "boat" }]);
  const w2 = downProj(editor, 2);
  await editor.undo(a.batch!);
  const live = downProj(editor, 2);
  // undo subtracts batch 1's recorded update Δ1 = W1 − W0: W = W2 − Δ1 up to float32 rounding of the
  // stored factors and of the additions (relative 1e-5 of ‖W2‖_F, far above rounding, far below ‖Δ1‖)
  let err = 0;
  let norm = 0;
  let d1 = 0;
  for (let i = 0; i < live.length; i++) {
    err += (live[i]! - (w2[i]! - (w1[i]! - w0[i]!))) ** 2;
    norm += w2[i]! ** 2;
    d1 += (w1[i]! - w0[i]!) ** 2;
  }
  assert.ok(Math.sqrt(d1) > 1e-3 * Math.sqrt(norm), "batch 1 changed block 2 measurably");
  assert.ok(Math.sqrt(err) <= 1e-5 * Math.sqrt(norm), `undo left ${Math.sqrt(err)} of ‖W‖ ${Math.sqrt(norm)}`);
  await assert.rejects(editor.undo(a.batch!), (e: unknown) => e instanceof DeltaEditError && /already undone/.test(e.message));
  const hf = await editor.export({ format: "hf", out: path.join(tmp, "s2-hf") });
  assert.equal(hf.format, "hf");
  const lora = await editor.export({ format: "lora", out: path.join(tmp, "s2-lora") });
  assert.ok(lora.format === "lora" && lora.layers.length > 0);
  await assert.rejects(editor.export({ format: "hf", out: path.join(tmp, "s2-hf") }), (e: unknown) => e instanceof DeltaEditError && /not empty/.test(e.message), "nothing overwritten");
  await editor.close();
  // reopen (statistics: the corpus recorded in the manifest); the same float32 operations in the same order
  const again = await Editor.open(dir, { access: "read" });
  assert.ok(bitIdentical(downProj(again, 2), live), "replayed weights are bit-identical (same thread count)");
  assert.equal(again.journal.filter((r) => r.kind === "undo").length, 1);
  await assert.rejects(again.edit([{ prompt: "{} ran", subject: "Sam", targetNew: "home" }]), (e: unknown) => e instanceof DeltaEditError && /reading only/.test(e.message));
  await again.close();
});

test("an EasyEdit AlphaEdit YAML drives an edit; its fields are reported; errors are DeltaEditErrors naming the culprit", async () => {
  const yaml = path.join(tmp, "AlphaEdit.yaml");
  fs.writeFileSync(yaml, `alg_name: "AlphaEdit"\nmodel_name: "stories260k"\ndevice: 0\nlayers: [1, 2, 3]\nclamp_norm_factor: 0.75\nfact_token: "subject_last"\nv_num_grad_steps: 4\nv_lr: 5e-1\nv_loss_layer: 4\nv_weight_decay: 0.5\nkl_factor: 0.0625\nmom2_adjustment: true\nmom2_update_weight: 20000\nnullspace_threshold: 2e-2\nL2: 0.1\n`);
  const lines: string[] = [];
  const editor = await Editor.create({ dir: path.join(tmp, "s3"), model: MODEL, hparams: yaml, params: { numGradSteps: 3 }, stats, log: (m) => lines.push(m) });
  assert.equal(editor.method, "alphaedit");
  assert.deepEqual([editor.params["editLayers"], editor.params["l2"], editor.params["numGradSteps"]], [[1, 2, 3], 0.1, 3], "explicit params override the file");
  assert.ok(editor.hparams!.ignored.some((x) => x.field === "device"));
  assert.ok(lines.some((l) => /ignored model_name/.test(l)));
  const r = await editor.edit([{ prompt: "{} went to the", subject: "Lily", targetNew: "store" }]);
  assert.equal(r.applied, 1);
  await editor.close();
  // a value from the file that the method refuses names the file and field
  const bad = path.join(tmp, "AlphaEdit-bad.yaml");
  fs.writeFileSync(bad, `alg_name: AlphaEdit\nlayers: [1, 2, 4]\nv_loss_layer: 4\n`);
  await assert.rejects(Editor.create({ dir: path.join(tmp, "s4"), model: MODEL, hparams: bad, stats }), (e: unknown) => e instanceof DeltaEditError && e.code === "E_CONFIG" && /set by field "layers"/.test(e.message) && e.message.includes(bad));
  assert.ok(!fs.existsSync(path.join(tmp, "s4", "manifest.json")), "nothing half-written");
  await assert.rejects(Editor.create({ dir: path.join(tmp, "s5"), model: MODEL, method: "nope" as never, stats }), (e: unknown) => e instanceof DeltaEditError && e.code === "E_CONFIG");
  await assert.rejects(Editor.create({ dir: path.join(tmp, "s6"), model: MODEL }), (e: unknown) => e instanceof DeltaEditError && /no method/.test(e.message));
  await assert.rejects(Editor.create({ dir: path.join(tmp, "s7"), model: MODEL, method: "memit", stats: { cacheDir: path.join(tmp, "empty-cache") } }), (e: unknown) => e instanceof DeltaEditError && /stats: \{ corpus/.test(e.hint ?? ""));
});
