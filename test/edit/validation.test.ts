/**
 * Impossible configurations and bad requests are errors that name the parameter, field or request:
 * layer choices that cannot reach the loss, a target search whose gradient is structurally zero,
 * case ids that are not ids, duplicated cases, empty streams and requests too long for the model.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/main.js";
import { DeltaEditError } from "../../src/errors.js";
import { METHOD_NAMES, type MethodName } from "../../src/edit/methods/method.js";
import { createMethod } from "../../src/edit/methods/registry.js";
import { genericPreset, presetByName } from "../../src/edit/presets.js";
import { parseRequests, readRequestsFile } from "../../src/edit/request.js";
import { REQUEST_LIMITS } from "../../src/edit/requestLimits.js";
import { computeTarget } from "../../src/edit/target.js";
import { makeBatch } from "../../src/model/batch.js";
import { forward } from "../../src/model/forward.js";
import { LanguageModel } from "../../src/model/model.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-validation-"));
process.env["DELTAEDIT_CACHE"] = path.join(tmp, "cache");
const CORPUS = path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt");
const FAMILY: MethodName[] = ["memit", "alphaedit", "deltaedit", "prune", "rect"];

function configError(fn: () => unknown, field: string, mentions: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DeltaEditError, `expected a DeltaEditError, got ${String(e)}`);
    assert.equal(e.code, "E_CONFIG");
    assert.equal(e.context["field"], field, e.message);
    assert.match(e.message, mentions);
    return true;
  });
}

test("every MEMIT-family method rejects a z-layer at the last block, edit layers above the z-layer, and a 1-block model", () => {
  for (const m of FAMILY) {
    configError(() => createMethod(m, { editLayers: [0, 1], targetLayer: 1, lossLayer: 1 }, 2), "targetLayer", /last block/);
    configError(() => createMethod(m, { editLayers: [0, 1, 2], targetLayer: 1, lossLayer: 3 }, 4), "editLayers", /above the z-layer/);
    configError(() => createMethod(m, { editLayers: [0], targetLayer: 0, lossLayer: 0 }, 1), "editLayers", /1-block model/);
    configError(() => createMethod(m, { editLayers: [1], targetLayer: 1, lossLayer: 2 }, 4), "lossLayer", /last block 3/);
  }
  configError(() => createMethod("rome", { layer: 1, lossLayer: 1 }, 2), "layer", /last block/);
});

test("every preset's layers are valid for its own shape (z-layer strictly before the last block)", () => {
  for (const name of ["gpt2-xl", "llama3-8b", "gpt2", "gpt2-medium", "stories260k", "tiny-gpt2-random", "factworld"]) {
    const p = presetByName(name);
    for (const m of METHOD_NAMES) {
      const o = p.methods[m];
      if (o) assert.doesNotThrow(() => createMethod(m, o, p.numLayers), `${name}/${m}`);
    }
  }
  for (const L of [2, 3, 6, 12, 48]) {
    const g = genericPreset({ numLayers: L, hiddenSize: 64 } as Parameters<typeof genericPreset>[0]);
    for (const m of METHOD_NAMES) assert.doesNotThrow(() => createMethod(m, g.methods[m]!, L), `generic-${L}/${m}`);
  }
});

test("a target search whose gradient is structurally zero is an error naming the request, not a silent zero update", async () => {
  const model = await LanguageModel.load(fixtureModel("tiny-gpt2-random"));
  // block 1's attention output projection is zero: nothing at the subject's position reaches a later position
  const name = model.params.names().find((n) => /h\.1\.attn\.c_proj\.weight$/.test(n));
  assert.ok(name, "no h.1.attn.c_proj.weight in the fixture");
  model.params.get(name).fill(0);
  const req = { caseId: "c7", index: 0, prompt: "{} went to the", subject: "Emma", targetNew: "school", targetTrue: null, relationId: null };
  const params = { layer: 0, lossLayer: 1, numGradSteps: 5, lr: 0.5, weightDecay: 0.5, klFactor: 0, clampNormFactor: 4, lossStop: 0, earlyStopAvgProb: null, t0Source: "block" as const, prefixCache: true };
  assert.throws(
    () => computeTarget(model, req, ["{}"], params),
    (e: unknown) => e instanceof DeltaEditError && e.code === "E_CONFIG" && /request c7/.test(e.message) && /identically zero/.test(e.message),
  );
  // the same search on the intact model moves δ (the path exists)
  const intact = await LanguageModel.load(fixtureModel("tiny-gpt2-random"));
  const r = computeTarget(intact, req, ["{}"], params);
  assert.ok(r.steps > 0 && r.delta.some((x) => x !== 0));
});

test("case ids: objects, floats and null are rejected by record; duplicates keep the first", () => {
  const ok = { prompt: "{} went to the", subject: "Emma", target_new: "school" };
  const res = parseRequests([
    { ...ok, case_id: 1 },
    { ...ok, case_id: { a: 1 } },
    { ...ok, case_id: 2.5 },
    { ...ok, case_id: null },
    { ...ok, case_id: 1 },
    { ...ok, case_id: "x-3" },
    { ...ok },
  ]);
  assert.deepEqual(res.requests.map((r) => r.caseId), ["1", "x-3", "6"]);
  assert.deepEqual(res.rejected.map((r) => [r.index, r.field]), [[1, "case_id"], [2, "case_id"], [3, "case_id"], [4, "case_id"]]);
  assert.ok(res.rejected.every((r) => !r.message.includes("[object Object]")));
  assert.match(res.rejected[3]!.message, /duplicates record #0/);
});

test("an oversized field is rejected by case id before any tokenization", () => {
  const big = "x".repeat(REQUEST_LIMITS.maxFieldChars + 1);
  const res = parseRequests([{ case_id: 9, prompt: "{} went to the " + big, subject: "Emma", target_new: "school" }]);
  assert.equal(res.requests.length, 0);
  assert.equal(res.rejected[0]!.field, "prompt");
  assert.match(res.rejected[0]!.message, /case_id 9.*characters/);
});

test("an empty edits file, a blank JSONL and [] are errors naming the file", () => {
  for (const [name, text] of [["empty.jsonl", ""], ["blank.jsonl", "\n\n  \n"], ["empty.json", "[]"], ["obj.json", "[{}"]] as const) {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, text);
    assert.throws(() => readRequestsFile(f), (e: unknown) => e instanceof DeltaEditError && e.code === "E_REQUEST" && e.message.includes(f));
  }
});

test("a row longer than the model's positions is E_LIMIT in forward", async () => {
  const model = await LanguageModel.load(fixtureModel("tiny-gpt2-random"));
  const T = model.config.maxPositions + 1;
  const batch = makeBatch([new Array<number>(T).fill(1)], 0, model.config.vocabSize);
  assert.throws(() => forward(model, batch), (e: unknown) => e instanceof DeltaEditError && e.code === "E_LIMIT" && /positions/.test(e.message));
});

test("CLI edit: a request too long for the model is rejected by case id and the stream goes on; an all-rejected or empty stream exits non-zero", async () => {
  const model = fixtureModel("tiny-gpt2-random");
  const maxPos = (await LanguageModel.load(model)).config.maxPositions;
  const long = Array.from({ length: maxPos }, (_, i) => `word${i}`).join(" ");
  const edits = path.join(tmp, "long.jsonl");
  fs.writeFileSync(edits, [
    JSON.stringify({ case_id: 1, prompt: "{} went to the", subject: "Emma", target_new: "school" }),
    JSON.stringify({ case_id: 2, prompt: `{} said ${long} and went to the`, subject: "Jack", target_new: "park" }),
    JSON.stringify({ case_id: 3, prompt: "{} saw a big", subject: "Mia", target_new: "boat" }),
  ].join("\n") + "\n");
  let err = "";
  let out = "";
  const dir = path.join(tmp, "session-long");
  const code = await main(["edit", "--model", model, "--method", "memit", "--edits", edits, "--session", dir, "--stats-corpus", CORPUS, "--set", "numGradSteps=2", "--json"], { out: (s) => void (out += s), err: (s) => void (err += s) });
  assert.equal(code, 0, err);
  assert.match(err, /request 2: its longest prompt row .* more than the model's \d+ positions/);
  const summary = JSON.parse(out) as { applied: number; rejected: number };
  assert.deepEqual([summary.applied, summary.rejected], [2, 1]);

  const onlyLong = path.join(tmp, "only-long.jsonl");
  fs.writeFileSync(onlyLong, JSON.stringify({ case_id: 5, prompt: `{} said ${long}`, subject: "Jack", target_new: "park" }) + "\n");
  err = "";
  const code2 = await main(["edit", "--model", model, "--method", "memit", "--edits", onlyLong, "--session", path.join(tmp, "session-only-long"), "--stats-corpus", CORPUS, "--set", "numGradSteps=2"], { out: () => {}, err: (s) => void (err += s) });
  assert.equal(code2, 1, err);
  assert.match(err, /none of the 1 request/);

  const empty = path.join(tmp, "empty-stream.json");
  fs.writeFileSync(empty, "[]");
  err = "";
  const emptyDir = path.join(tmp, "session-empty");
  const code3 = await main(["edit", "--model", model, "--method", "memit", "--edits", empty, "--session", emptyDir, "--stats-corpus", CORPUS], { out: () => {}, err: (s) => void (err += s) });
  assert.equal(code3, 1);
  assert.match(err, /holds no edit records/);
  assert.ok(!fs.existsSync(path.join(emptyDir, "manifest.json")), "a session was created for an empty stream");
});
