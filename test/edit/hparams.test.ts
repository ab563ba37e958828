/**
 * EasyEdit and official-repository hyperparameter files (edit/hparams.ts): every field mapped or
 * reported as ignored, the method's own validation accepting the result, DeltaEdit's repeated last
 * layer, and clear errors (unknown field with a suggestion, a field of another method, a value that
 * would change the method, a method mismatch, bad YAML).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { DeltaEditError } from "../../src/errors.js";
import { HPARAMS_RULES, readHparamsFile } from "../../src/edit/hparams.js";
import { repoRoot } from "../helpers/paths.js";
import { createMethod } from "../../src/edit/methods/registry.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-hparams-"));
function write(name: string, text: string): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
}
const configError = (re: RegExp) => (e: unknown): boolean => e instanceof DeltaEditError && e.code === "E_CONFIG" && re.test(e.message + " " + (e.hint ?? ""));

/** EasyEdit's hparams/AlphaEdit/gpt2-xl.yaml as distributed (YAML 1.2: 5e-1 is a number). */
const EASYEDIT_ALPHAEDIT_GPT2XL = `alg_name: "AlphaEdit"
model_name: "./hugging_cache/gpt2-xl"
stats_dir: "./data/stats"
# Make sure that the projection matrix P has been downloaded beforehand.
P_loc: "./null_space_project.pt"
device: 0
layers: [13, 14, 15, 16, 17]
clamp_norm_factor: 0.75
layer_selection: "all"
fact_token: "subject_last"
v_num_grad_steps: 20
v_lr: 5e-1
v_loss_layer: 47
v_weight_decay: 0.5
kl_factor: 0.0625
mom2_adjustment: true
mom2_update_weight: 20000
rewrite_module_tmp: "transformer.h.{}.mlp.c_proj"
layer_module_tmp: "transformer.h.{}"
mlp_module_tmp: "transformer.h.{}.mlp"
attn_module_tmp: "transformer.h.{}.attn"
ln_f_module: "transformer.ln_f"
lm_head_module: "lm_head"
mom2_dataset: "wikipedia"
mom2_n_samples: 100000
mom2_dtype: "float32"
nullspace_threshold: 2e-2
L2: 10
`;

/** The official DeltaEdit repository's hparams/DeltaEdit/gpt2-xl.json (z-layer marked by repeating 17). */
const OFFICIAL_DELTAEDIT_GPT2XL = JSON.stringify({
  layers: [13, 14, 15, 16, 17, 17],
  clamp_norm_factor: 0.75,
  layer_selection: "all",
  fact_token: "subject_last",
  v_num_grad_steps: 20,
  v_lr: 0.5,
  v_loss_layer: 47,
  v_weight_decay: 0.5,
  kl_factor: 0.0625,
  mom2_adjustment: true,
  mom2_update_weight: 20000,
  rewrite_module_tmp: "transformer.h.{}.mlp.c_proj",
  layer_module_tmp: "transformer.h.{}",
  mlp_module_tmp: "transformer.h.{}.mlp",
  attn_module_tmp: "transformer.h.{}.attn",
  ln_f_module: "transformer.ln_f",
  lm_head_module: "transformer.wte",
  mom2_dataset: "wikipedia",
  mom2_n_samples: 100000,
  mom2_dtype: "float32",
  nullspace_threshold: 0.02,
  L2: 1,
  solve_method: "alphaedit",
  var: 3,
  space: 0.25,
});

test("EasyEdit's AlphaEdit gpt2-xl YAML: every field mapped or ignored with a reason; the method accepts the result", () => {
  const h = readHparamsFile(write("AlphaEdit-gpt2-xl.yaml", EASYEDIT_ALPHAEDIT_GPT2XL));
  assert.equal(h.method, "alphaedit");
  assert.deepEqual(h.overrides, { editLayers: [13, 14, 15, 16, 17], targetLayer: 17, clampNormFactor: 0.75, numGradSteps: 20, lr: 0.5, lossLayer: 47, weightDecay: 0.5, klFactor: 0.0625, nullspaceThreshold: 0.02, l2: 10 });
  const ignored = h.ignored.map((x) => x.field).sort();
  assert.deepEqual(ignored, ["P_loc", "alg_name", "attn_module_tmp", "device", "fact_token", "layer_module_tmp", "layer_selection", "lm_head_module", "ln_f_module", "mlp_module_tmp", "model_name", "mom2_adjustment", "mom2_dataset", "mom2_dtype", "mom2_n_samples", "mom2_update_weight", "rewrite_module_tmp", "stats_dir"]);
  for (const x of h.ignored) assert.ok(x.reason.length > 10, `${x.field} has a reason`);
  const fields = EASYEDIT_ALPHAEDIT_GPT2XL.split("\n").filter((l) => /^\w+:/.test(l)).length;
  assert.equal(h.mapped.length + h.ignored.length, fields, "every field of the file is accounted for");
  const m = createMethod("alphaedit", h.overrides, 48);
  const p = m.params as Record<string, unknown>;
  assert.deepEqual([p["editLayers"], p["targetLayer"], p["l2"], p["lr"], p["nullspaceThreshold"]], [[13, 14, 15, 16, 17], 17, 10, 0.5, 0.02]);
});

test("the official DeltaEdit JSON: the repeated last layer marks the z-layer; var and space map to the noise monitor", () => {
  const f = write("DeltaEdit-gpt2-xl.json", OFFICIAL_DELTAEDIT_GPT2XL);
  assert.throws(() => readHparamsFile(f), configError(/no "alg_name" field.*--method/s), "the official files do not name their method");
  const h = readHparamsFile(f, "deltaedit");
  assert.deepEqual(h.overrides["editLayers"], [13, 14, 15, 16, 17]);
  assert.equal(h.overrides["targetLayer"], 17);
  assert.equal(h.overrides["varMultiplier"], 3);
  assert.equal(h.overrides["space"], 0.25);
  assert.equal(h.overrides["l2"], 1);
  assert.ok(h.ignored.some((x) => x.field === "solve_method"));
  const p = createMethod("deltaedit", h.overrides, 48).params as Record<string, unknown>;
  assert.deepEqual([p["editLayers"], p["targetLayer"], p["varMultiplier"], p["space"]], [[13, 14, 15, 16, 17], 17, 3, 0.25]);
  // the reference's Llama3-8B file has v_loss_layer 35 on a 32-block model (ODD-10): the method says so
  const llama = readHparamsFile(write("DeltaEdit-llama.json", JSON.stringify({ ...JSON.parse(OFFICIAL_DELTAEDIT_GPT2XL), layers: [4, 5, 6, 7, 8, 8], v_loss_layer: 35 })), "deltaedit");
  assert.throws(() => createMethod("deltaedit", llama.overrides, 32), configError(/lossLayer 35 .*last block 31/));
});

test("ROME, MEMIT and FT files map onto their own parameters", () => {
  const rome = readHparamsFile(
    write("ROME-gpt2-xl.yaml", `alg_name: "ROME"\nmodel_name: "gpt2-xl"\ndevice: 0\nlayers: [17]\nfact_token: "subject_last"\nv_num_grad_steps: 20\nv_lr: 5e-1\nv_loss_layer: 47\nv_weight_decay: 0.5\nclamp_norm_factor: 4\nkl_factor: 0.0625\nmom2_adjustment: false\ncontext_template_length_params: [[5, 10], [10, 10]]\nrewrite_module_tmp: "transformer.h.{}.mlp.c_proj"\nmom2_dataset: "wikipedia"\nmom2_n_samples: 100000\nmom2_dtype: "float32"\n`),
  );
  assert.equal(rome.method, "rome");
  assert.deepEqual([rome.overrides["layer"], rome.overrides["mom2Adjustment"], rome.overrides["clampNormFactor"]], [17, false, 4]);
  assert.equal((createMethod("rome", rome.overrides, 48).params as { layer: number }).layer, 17);
  const memit = readHparamsFile(write("MEMIT-gpt2-xl.json", JSON.stringify({ model_name: "gpt2-xl", layers: [13, 14, 15, 16, 17], v_lr: 0.5, mom2_update_weight: 20000, mom2_adjustment: true })), "memit");
  assert.equal(memit.overrides["mom2UpdateWeight"], 20000);
  assert.ok(memit.ignored.some((x) => x.field === "mom2_adjustment"));
  const ft = readHparamsFile(write("FT-llama.json", JSON.stringify({ layers: [21], num_steps: 25, lr: 5e-4, weight_decay: 0, kl_factor: 0, norm_constraint: false, rewrite_module_tmp: "model.layers.{}.mlp.down_proj.weight" })), "ft");
  assert.deepEqual(ft.overrides, { layers: [21], numSteps: 25, lr: 5e-4, weightDecay: 0, normConstraint: null });
  assert.equal((createMethod("ft", ft.overrides, 32).params as { normConstraint: number | null }).normConstraint, null);
});

test("bad files: unknown field with a suggestion, another method's field, a value that would change the method, mismatch, syntax", () => {
  assert.throws(() => readHparamsFile(write("typo.yaml", `alg_name: AlphaEdit\nv_lrr: 0.5\n`)), configError(/typo\.yaml: unknown field "v_lrr".*did you mean "v_lr"/s));
  assert.throws(() => readHparamsFile(write("var.yaml", `alg_name: AlphaEdit\nvar: 3\n`)), configError(/field "var" is a parameter of deltaedit, not of alphaedit/));
  assert.throws(() => readHparamsFile(write("ft.yaml", `alg_name: MEMIT\nfact_token: last\n`)), configError(/fact_token" is "last"; only "subject_last"/));
  assert.throws(() => readHparamsFile(write("attn.yaml", `alg_name: MEMIT\nrewrite_module_tmp: "transformer.h.{}.attn.c_proj"\n`)), configError(/only the MLP down projection/));
  assert.throws(() => readHparamsFile(write("mismatch.yaml", `alg_name: ROME\nlayers: [5]\n`), "memit"), configError(/"ROME" \(rome\), but the method asked for is memit/));
  assert.throws(() => readHparamsFile(write("mend.yaml", `alg_name: MEND\n`)), configError(/"MEND", a method not implemented here/));
  assert.throws(() => readHparamsFile(write("dup.json", JSON.stringify({ layers: [13, 13, 14] })), "memit"), configError(/repeats a layer other than the last entry/));
  assert.throws(() => readHparamsFile(write("rome2.json", JSON.stringify({ layers: [3, 4] })), "rome"), configError(/exactly one layer for ROME/));
  assert.throws(() => readHparamsFile(write("bad.yaml", `alg_name: [unclosed\n`)), configError(/bad\.yaml: not valid YAML/));
  assert.throws(() => readHparamsFile(write("list.yaml", `- 1\n- 2\n`)), configError(/one mapping of fields/));
  assert.throws(() => readHparamsFile(path.join(tmp, "missing.yaml")), (e: unknown) => e instanceof DeltaEditError && e.code === "E_NOT_FOUND");
});

test("docs/hparams.md lists every field of the mapping", () => {
  const doc = fs.readFileSync(path.join(repoRoot(), "docs", "hparams.md"), "utf8");
  for (const field of Object.keys(HPARAMS_RULES)) assert.ok(doc.includes("`" + field + "`"), `docs/hparams.md lists ${field}`);
});
