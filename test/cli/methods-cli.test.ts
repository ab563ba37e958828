/**
 * Every method edits both fixture models from the CLI (a short stream, few optimisation steps), and
 * the edited weights differ from the original only in the method's edited matrices.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/main.js";
import { prepareSecondMoments } from "../../src/cli/commands/_stats.js";
import { METHOD_NAMES } from "../../src/edit/methods/method.js";
import { EditSession } from "../../src/edit/session/session.js";
import { LanguageModel } from "../../src/model/model.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-methods-cli-"));
process.env["DELTAEDIT_CACHE"] = path.join(tmp, "cache");
const CORPUS = path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt");
const EDITS = path.join(repoRoot(), "test", "fixtures", "edits", "stories-64.jsonl");

for (const modelName of ["stories260k", "tiny-gpt2-random"]) {
  for (const method of METHOD_NAMES) {
    test(`deltaedit edit --method ${method} on ${modelName}`, async () => {
      const dir = path.join(tmp, `${modelName}-${method}`);
      let err = "";
      const steps = method === "ft" ? ["--set", "numSteps=3"] : ["--set", "numGradSteps=3"];
      const code = await main(["edit", "--model", fixtureModel(modelName), "--method", method, "--edits", EDITS, "--session", dir, "--stats-corpus", CORPUS, "--limit", "3", ...steps], { out: () => {}, err: (s) => void (err += s) });
      assert.equal(code, 0, err);
      const s = await EditSession.open(dir, { secondMoments: (m, l) => prepareSecondMoments(m, l, { corpus: CORPUS }, () => {}) });
      assert.equal(s.position, 3);
      const base = await LanguageModel.load(fixtureModel(modelName));
      const changed = s.model.params.names().filter((n) => {
        const a = s.model.params.get(n);
        const b = base.params.get(n);
        for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return true;
        return false;
      });
      assert.ok(changed.length > 0, `${method} changed no weight`);
      for (const n of changed) assert.match(n, /(mlp\.c_proj|mlp\.down_proj)\.(weight|bias)$/, `${method} changed ${n}, which is not an edited down projection`);
    });
  }
}
