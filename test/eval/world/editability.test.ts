/**
 * The shipped worlds' editability as a regression test: single edits (each from the unedited
 * weights, the world's own default preset) on a fixed sample of the world's edit records. A
 * regression anywhere in the runtime, the statistics, the target search or the solve shows up here.
 *
 * Bars: AlphaEdit edited 6 of these 10 on worlds/factworld-v1; on worlds/factworld-v2 ROME, MEMIT and
 * AlphaEdit each edited 10 of 10 (the whole-world single-edit numbers are in docs/world.md). The
 * test asks for one fewer, leaving one request of slack for kernel-dependent rounding of a request
 * that sits at the p(new) = p(true) boundary. Each world's own default preset (v2: the
 * deltaedit-preset.json it ships).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { prepareSecondMoments } from "../../../src/cli/commands/_stats.js";
import { EditSession } from "../../../src/edit/session/session.js";
import { counterfactRecords } from "../../../src/eval/datasets/counterfact.js";
import { evaluateCounterfactCase } from "../../../src/eval/metrics/counterfact.js";
import { singleEdit } from "../../../src/eval/singleEdit.js";
import { repoRoot } from "../../helpers/paths.js";

const SAMPLE = 10;

const CASES = [
  ["factworld-v1", "alphaedit", 5],
  ["factworld-v2", "rome", 9],
  ["factworld-v2", "memit", 9],
  ["factworld-v2", "alphaedit", 9],
] as const;

for (const [world, method, bar] of CASES) {
  const WORLD = path.join(repoRoot(), "worlds", world);
  test(`${world}: ${method} single edits succeed on ≥ ${bar} of the first ${SAMPLE} edit records`, async () => {
    const raw = JSON.parse(fs.readFileSync(path.join(WORLD, "world", "edits.json"), "utf8")) as unknown[];
    const { records } = counterfactRecords(raw.slice(0, SAMPLE), "mcf");
    assert.equal(records.length, SAMPLE);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-editability-"));
    const s = await EditSession.create({ dir: path.join(dir, "s"), modelSource: WORLD, method, codeVersion: "test", secondMoments: (m, l) => prepareSecondMoments(m, l, {}, () => {}) });
    try {
      let ok = 0;
      const outcome: string[] = [];
      records.forEach((r, i) => {
        const one = singleEdit(s, { ...r.request, index: i }, r.caseId, (m) => evaluateCounterfactCase(m, r));
        assert.equal(one.rejected, null, `case ${r.caseId} rejected: ${one.rejected}`);
        const p = one.result!.post.rewrite_prompts_probs[0]!;
        const success = p.target_new < p.target_true; // NLLs: p(new) > p(true)
        if (success) ok++;
        outcome.push(`${r.caseId}:${success ? "ok" : "no"}`);
      });
      assert.ok(ok >= bar, `${ok}/${SAMPLE} single edits succeeded (${outcome.join(" ")})`);
      if (world === "factworld-v2") assert.equal(s.manifest.preset, "factworld-v2", "the world's own preset file is the default");
    } finally {
      s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
