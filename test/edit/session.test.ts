/**
 * Sessions end to end on the stories260k fixture: rejections of malformed requests, resume after
 * kill -9 ending bit-identical to an uninterrupted run, exact undo, HF export that reloads to identical
 * logits, LoRA export whose B·A reproduces the update within the reported energy, and a 50-edit
 * DeltaEdit sequence.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { cli } from "../helpers/cli.js";
import { prepareSecondMoments } from "../../src/cli/commands/_stats.js";
import { EditSession } from "../../src/edit/session/session.js";
import { targetTokenIds } from "../../src/edit/request.js";
import { makeBatch } from "../../src/model/batch.js";
import { forward } from "../../src/model/forward.js";
import { argmax } from "../../src/model/generate.js";
import { LanguageModel } from "../../src/model/model.js";
import { SafetensorsFile } from "../../src/model/safetensors.js";
import * as ops from "../../src/kernels/ops.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-session-"));
process.env["DELTAEDIT_CACHE"] = path.join(tmp, "cache");
const MODEL = fixtureModel("stories260k");
const CORPUS = path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt");
const EDITS = path.join(repoRoot(), "test", "fixtures", "edits", "stories-64.jsonl");

const openSession = (dir: string) => EditSession.open(dir, { secondMoments: (m, layers) => prepareSecondMoments(m, layers, { corpus: CORPUS }, () => {}) });

function editArgs(session: string, limit: number, extra: string[] = []): string[] {
  return ["edit", "--model", MODEL, "--method", "deltaedit", "--edits", EDITS, "--session", session, "--stats-corpus", CORPUS, "--limit", String(limit), "--set", "warmupRequests=3", "--set", "varMultiplier=0.3", "--set", "numGradSteps=8", ...extra];
}

function editedWeights(s: EditSession): Float32Array[] {
  return [1, 2, 3].map((l) => s.model.arch.editTarget(l).W.slice());
}

test("malformed requests are rejected by index/case_id and field; the run goes on", async () => {
  const file = path.join(tmp, "bad.jsonl");
  fs.writeFileSync(
    file,
    [
      JSON.stringify({ case_id: 1, prompt: "{} went to the", subject: "Lily", target_new: "store" }),
      JSON.stringify({ case_id: 2, prompt: "went to the", subject: "Tom", target_new: "park" }),
      JSON.stringify({ case_id: 3, prompt: "{} saw a", subject: "", target_new: "dog" }),
      "{not json",
      JSON.stringify({ case_id: 5, prompt: "{} saw a", subject: "Ben", target_new: "" }),
      JSON.stringify({ case_id: 6, prompt: "{} saw a big", subject: "Sue", target_new: "tree" }),
    ].join("\n") + "\n",
  );
  const dir = path.join(tmp, "bad-session");
  const r = await cli(["edit", "--model", MODEL, "--method", "memit", "--edits", file, "--session", dir, "--stats-corpus", CORPUS, "--set", "numGradSteps=4", "--json"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /case_id 2\): field "prompt" has no "\{\}"/);
  assert.match(r.err, /case_id 3\): field "subject" is missing or empty/);
  assert.match(r.err, /bad\.jsonl:4: not valid JSON/);
  assert.match(r.err, /case_id 5\): field "target_new" is missing or empty/);
  const summary = JSON.parse(r.out) as { applied: number };
  assert.equal(summary.applied, 2);
  const journal = fs.readFileSync(path.join(dir, "journal.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { rejected: { caseId: string; field: string }[] });
  const rejected = journal.flatMap((j) => j.rejected.map((x) => `${x.caseId}:${x.field}`));
  assert.deepEqual(rejected.sort(), ["2:prompt", "3:subject", "5:target_new"].sort(), "parse-time rejections are recorded in the journal");
});

test("one DeltaEdit edit makes the new target the top prediction (stories260k)", async () => {
  const dir = path.join(tmp, "one");
  const file = path.join(tmp, "one.jsonl");
  fs.writeFileSync(file, JSON.stringify({ case_id: 0, prompt: "{} went to the", subject: "Lily", target_new: "store" }) + "\n");
  const r = await cli(["edit", "--model", MODEL, "--method", "deltaedit", "--edits", file, "--session", dir, "--stats-corpus", CORPUS]);
  assert.equal(r.code, 0, r.err);
  const s = await openSession(dir);
  const tok = s.model.tokenizer!;
  const prompt = tok.encode("Lily went to the");
  const target = targetTokenIds(tok, "store"); // " store" as it follows a prompt
  assert.deepEqual(target, tok.encode("Lily went to the store").slice(prompt.length), "target ids are the in-context continuation");
  const V = s.model.config.vocabSize;
  const before = await LanguageModel.load(MODEL);
  const lb = forward(before, makeBatch([prompt], 0), { logits: [{ row: 0, pos: prompt.length - 1 }] }).logits!;
  const la = forward(s.model, makeBatch([prompt], 0), { logits: [{ row: 0, pos: prompt.length - 1 }] }).logits!;
  assert.notEqual(argmax(lb.subarray(0, V)), target[0], "precondition: the unedited model does not already predict the target");
  assert.equal(argmax(la.subarray(0, V)), target[0], "after the edit the target's first token is the top prediction");
});

test("resume after kill -9 ends bit-identical to an uninterrupted run; undo is exact; exports reload", async () => {
  const limit = 24;
  const a = path.join(tmp, "A");
  const ra = await cli(editArgs(a, limit));
  assert.equal(ra.code, 0, ra.err);

  // B: run in a child process, kill -9 it twice mid-stream, then resume to the end
  const b = path.join(tmp, "B");
  const child = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "helpers", "cli-child.js");
  const journalLines = (): number => (fs.existsSync(path.join(b, "journal.jsonl")) ? fs.readFileSync(path.join(b, "journal.jsonl"), "utf8").split("\n").length - 1 : 0);
  for (const [killAt, extra] of [[3, []], [8, ["--resume"]]] as const) {
    const p = spawn(process.execPath, [child, ...editArgs(b, limit, [...extra])], { env: process.env, stdio: "ignore" });
    const exited = new Promise((r) => p.once("exit", r)); // attached at once: an early exit is not missed
    const t0 = Date.now();
    while (journalLines() < killAt && Date.now() - t0 < 60_000 && p.exitCode === null) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 7 * killAt)); // land somewhere inside the next batch
    p.kill("SIGKILL");
    await exited;
  }
  assert.ok(journalLines() < limit, "the child was killed before finishing");
  const rb = await cli(editArgs(b, limit, ["--resume"]));
  assert.equal(rb.code, 0, rb.err);
  const sa = await openSession(a);
  const sb = await openSession(b);
  assert.equal(sa.position, limit);
  assert.equal(sb.position, limit);
  const wa = editedWeights(sa);
  const wb = editedWeights(sb);
  wa.forEach((w, i) => assert.ok(Buffer.from(w.buffer).equals(Buffer.from(wb[i]!.buffer)), `layer ${i + 1}: resumed weights must be bit-identical`));
  const ja = fs.readFileSync(path.join(a, "journal.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { rngState: number[]; outcome: { requests: { noise?: { triggered: boolean } }[] } });
  const jb = fs.readFileSync(path.join(b, "journal.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { rngState: number[] });
  assert.deepEqual(jb.map((r) => r.rngState), ja.map((r) => r.rngState), "RNG states recorded per batch agree");
  assert.ok(ja.some((r) => r.outcome.requests.some((q) => q.noise?.triggered)), "the scripted sequence triggers DeltaEdit's projection at least once");

  // undo batch 2: W_after = W − R₂X₂ᵀ, and reopening the session (replay incl. the undo) gives the same bits
  const before = editedWeights(sa);
  const rec = sa.journal.find((r) => r.kind === "batch" && r.batch === 2)!;
  assert.equal(rec.kind, "batch");
  const ru = await cli(["undo", "--session", a, "--edit", "2", "--stats-corpus", CORPUS]);
  assert.equal(ru.code, 0, ru.err);
  const su = await openSession(a);
  const after = editedWeights(su);
  const fac = SafetensorsFile.open(path.join(a, "factors", (rec as { factors: string }).factors));
  [1, 2, 3].forEach((layer, i) => {
    const idx = (rec as { updates: { layer: number }[] }).updates.findIndex((u) => u.layer === layer);
    const R = fac.read(`u${idx}.L${layer}.influence`); // (C, 1)
    const X = fac.read(`u${idx}.L${layer}.activation`); // (F, 1)
    const C = su.model.arch.hidden;
    const F = su.model.arch.dFF;
    const expect = before[i]!.slice(); // Llama: (C, F)
    ops.gemm(R, X, expect, { m: C, n: F, k: 1, transB: true, alpha: -1, beta: 1 });
    assert.ok(Buffer.from(expect.buffer).equals(Buffer.from(after[i]!.buffer)), `layer ${layer}: undo subtracts exactly the recorded R·Xᵀ`);
  });
  fac.close();
  assert.match((await cli(["undo", "--session", a, "--edit", "2", "--stats-corpus", CORPUS])).err, /already undone/);

  // HF export reloads with identical logits
  const out = path.join(tmp, "export-hf");
  const re = await cli(["export", "--session", a, "--format", "hf", "--out", out, "--stats-corpus", CORPUS]);
  assert.equal(re.code, 0, re.err);
  const reloaded = await LanguageModel.load(out);
  const ids = su.model.tokenizer!.encode("Emma went to the park and saw a big dog.");
  const l1 = forward(su.model, makeBatch([ids], 0)).logits!;
  const l2 = forward(reloaded, makeBatch([ids], 0)).logits!;
  assert.ok(Buffer.from(l1.buffer).equals(Buffer.from(l2.buffer)), "exported checkpoint gives bit-identical logits");
  assert.ok(fs.existsSync(path.join(out, "tokenizer.json")) && fs.existsSync(path.join(out, "config.json")));

  // LoRA: exact by default; truncated to rank 1 reports its retained energy
  for (const rank of [undefined, 1]) {
    const lo = path.join(tmp, `export-lora-${rank ?? "exact"}`);
    const rl = await cli(["export", "--session", a, "--format", "lora", "--out", lo, "--json", "--stats-corpus", CORPUS, ...(rank ? ["--rank", String(rank)] : [])]);
    assert.equal(rl.code, 0, rl.err);
    const rep = JSON.parse(rl.out) as { layers: { layer: number; module: string; rank: number; retainedEnergy: number }[] };
    const cfg = JSON.parse(fs.readFileSync(path.join(lo, "adapter_config.json"), "utf8")) as { target_modules: string[]; fan_in_fan_out: boolean };
    assert.equal(cfg.fan_in_fan_out, false);
    const st = SafetensorsFile.open(path.join(lo, "adapter_model.safetensors"));
    const deltas = su.accumulatedUpdates();
    for (const l of rep.layers) {
      const A = st.read(`base_model.model.${l.module}.lora_A.weight`); // (r, F)
      const B = st.read(`base_model.model.${l.module}.lora_B.weight`); // (C, r)
      const C = su.model.arch.hidden;
      const F = su.model.arch.dFF;
      const ba = new Float32Array(C * F);
      ops.gemm(B, A, ba, { m: C, n: F, k: l.rank });
      const d = deltas.get(l.layer)!;
      let err = 0;
      let tot = 0;
      for (let i = 0; i < d.length; i++) {
        err += (d[i]! - ba[i]!) ** 2;
        tot += d[i]! ** 2;
      }
      // ‖ΔW − BA‖² / ‖ΔW‖² = 1 − retained energy (tolerance 1e-4 absolute)
      assert.ok(Math.abs(err / tot - (1 - l.retainedEnergy)) < 1e-4, `layer ${l.layer} rank ${l.rank}: residual energy ${err / tot} vs reported ${1 - l.retainedEnergy}`);
      if (rank === undefined) assert.ok(err / tot < 1e-8, `exact export of layer ${l.layer}`);
    }
    st.close();
  }
});

test("a 50-edit DeltaEdit sequence runs and records noise statistics for every request", async () => {
  const dir = path.join(tmp, "fifty");
  const r = await cli(["edit", "--model", MODEL, "--method", "deltaedit", "--edits", EDITS, "--session", dir, "--stats-corpus", CORPUS, "--limit", "50", "--set", "numGradSteps=6", "--json"]);
  assert.equal(r.code, 0, r.err);
  assert.equal((JSON.parse(r.out) as { applied: number }).applied, 50);
  const recs = fs.readFileSync(path.join(dir, "journal.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { outcome: { requests: { noise: { requestCount: number; nu: number | null; mu: number | null; variance: number | null } }[] } });
  const noise = recs.map((x) => x.outcome.requests[0]!.noise);
  assert.deepEqual(noise.map((n) => n.requestCount), Array.from({ length: 50 }, (_, i) => i + 1), "request counter counts every request");
  assert.equal(noise[0]!.nu, null, "no ΔW_acc before the first edit");
  assert.ok(noise.slice(1).every((n) => n.nu !== null && n.nu > 0), "noise measured from the 2nd request on");
  assert.equal(noise[1]!.variance, 0, "the first noise sample sets μ = ν and σ² = 0");
});
