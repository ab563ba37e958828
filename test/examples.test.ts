/**
 * The programs in examples/ run as a user would run them, importing only from "deltaedit" (resolved
 * to the compiled sources by a module hook), on the tiny stories260k fixture with statistics from
 * the fixture corpus and few optimisation steps.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { fixtureModel, repoRoot } from "./helpers/paths.js";

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-examples-"));
const dist = path.join(repoRoot(), "dist-test");
const env = { ...process.env, DELTAEDIT_CACHE: path.join(tmp, "cache") };
const common = ["--model", fixtureModel("stories260k"), "--edits", path.join(repoRoot(), "test", "fixtures", "edits", "stories-mcf.json"), "--stats-corpus", path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt"), "--steps", "5"];

async function example(name: string, extra: string[] = []): Promise<string> {
  const file = path.join(dist, "examples", `${name}.js`);
  const { stdout } = await run(process.execPath, ["--import", path.join(dist, "test", "helpers", "deltaedit-alias.js"), file, ...common, "--out", path.join(tmp, name), ...extra], { env, cwd: tmp, maxBuffer: 16 << 20 });
  return stdout;
}

test("the examples import only from the package entry", () => {
  for (const f of fs.readdirSync(path.join(repoRoot(), "examples")).filter((x) => x.endsWith(".ts"))) {
    const text = fs.readFileSync(path.join(repoRoot(), "examples", f), "utf8");
    for (const m of text.matchAll(/from\s+"([^"]+)"/g)) assert.ok(m[1] === "deltaedit" || m[1]!.startsWith("node:") || m[1]!.startsWith("./"), `${f} imports ${m[1]}`);
  }
});

test("examples/edit-and-generate: edit, generate, close, reopen", async () => {
  const out = await example("edit-and-generate");
  assert.match(out, /^before: /m);
  assert.match(out, /^edited case \d+ in batch 1: /m);
  assert.match(out, /^reopened: 1 request\(s\) applied/m);
});

test("examples/sequential-stream: scores after each chunk of the stream", async () => {
  const out = await example("sequential-stream", ["--n", "6"]);
  assert.match(out, /^unedited: efficacy [\d.]+/m);
  assert.equal(out.match(/^after \d+ edits: efficacy/gm)?.length, 3);
});

test("examples/export: HF checkpoint and LoRA adapter written, undo and reopen", async () => {
  const out = await example("export");
  assert.match(out, /^applied 3 edit\(s\) in batches 1, 2, 3$/m);
  assert.ok(fs.existsSync(path.join(tmp, "export", "hf", "config.json")));
  assert.ok(fs.existsSync(path.join(tmp, "export", "lora", "adapter_config.json")));
  const session = /^session: (.*)$/m.exec(out)?.[1];
  const exported = /^export: {2}(.*)$/m.exec(out)?.[1];
  assert.equal(exported, session, "the exported checkpoint generates what the session's weights generate");
  assert.match(out, /^reopened: 1 undo record\(s\) in the journal$/m);
});
