/**
 * Keys: the batched insertion-loop inputs (blocks below l_0 cached, then each call starting at the
 * previous call's layer) equal the direct formulation (computeKeys + bareBlockOutputs) on the same
 * model — also when, as in the insertion loop, the weights of each layer change after its call;
 * template averaging weighs the bare prompt as much as all generated templates (§3.5).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { bareBlockOutputs, computeKeys, InsertionInputs } from "../../src/edit/keys.js";
import type { EditRequest } from "../../src/edit/request.js";
import { LanguageModel } from "../../src/model/model.js";
import { fixtureModel } from "../helpers/paths.js";

const reqs: EditRequest[] = [
  { caseId: "a", index: 0, prompt: "{} went to the", subject: "Lily", targetNew: "park", targetTrue: null, relationId: null },
  { caseId: "b", index: 1, prompt: "One day, {} saw a", subject: "Tom", targetNew: "dog", targetTrue: null, relationId: null },
];
const groups = [["{}"], ["Once upon a time. {}", "The sun was warm. {}", "She smiled. {}"]];

function maxRel(a: Float32Array, b: Float32Array): number {
  let m = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return m / s;
}

for (const name of ["stories260k", "tiny-gpt2-random"]) {
  test(`insertion-loop inputs equal the direct keys and Cur: ${name}`, async () => {
    const model = await LanguageModel.load(fixtureModel(name));
    const L = model.config.numLayers;
    const first = L > 2 ? 1 : 0;
    const target = L - 1;
    const inputs = new InsertionInputs(model, reqs, groups, first);
    for (let layer = first; layer <= target; layer++) {
      const { keys, cur } = inputs.at(layer, target);
      const k = computeKeys(model, reqs, layer, groups);
      const c = bareBlockOutputs(model, reqs, target);
      // same math, different padding widths in the batches: agreement to float32 rounding (1e-5 relative)
      assert.ok(maxRel(keys, k) < 1e-5, `${name} layer ${layer}: keys differ by ${maxRel(keys, k)}`);
      assert.ok(maxRel(cur, c) < 1e-5, `${name}: Cur differs by ${maxRel(cur, c)}`);
    }
    assert.throws(() => inputs.at(first, target), /ascending order/);
    // the insertion loop's pattern: update block l's down projection right after its keys
    const edited = await LanguageModel.load(fixtureModel(name));
    const loop = new InsertionInputs(edited, reqs, groups, first);
    for (let layer = first; layer <= target; layer++) {
      const { keys, cur } = loop.at(layer, target);
      const k = computeKeys(edited, reqs, layer, groups);
      const c = bareBlockOutputs(edited, reqs, target);
      assert.ok(maxRel(keys, k) < 1e-5, `${name} edited, layer ${layer}: keys differ by ${maxRel(keys, k)}`);
      assert.ok(maxRel(cur, c) < 1e-5, `${name} edited, layer ${layer}: Cur differs by ${maxRel(cur, c)}`);
      const W = edited.arch.editTarget(layer).W;
      for (let i = 0; i < W.length; i++) W[i]! += 0.3 * Math.sin(0.7 * i + layer) * Math.abs(W[i]!) + 0.01 * Math.cos(i);
    }
    // group means: K = ½ k(bare) + ½ mean(k(templates))
    const F = model.arch.dFF;
    const bare = computeKeys(model, reqs, target, [["{}"]]);
    const tmpl = computeKeys(model, reqs, target, [groups[1]!]);
    const both = computeKeys(model, reqs, target, groups);
    for (let i = 0; i < F * 2; i++) assert.ok(Math.abs(both[i]! - 0.5 * (bare[i]! + tmpl[i]!)) < 1e-5, "group-mean weighting");
  });
}
