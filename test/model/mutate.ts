/** Mutated copies of fixture models in temp directories, for the robustness tests of model loading. */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after } from "node:test";
import { DeltaEditError } from "../../src/errors.js";
import { openCheckpoint } from "../../src/model/checkpoint.js";
import { writeSafetensors, type TensorToWrite } from "../../src/model/safetensors.js";
import { fixtureModel } from "../helpers/paths.js";

const created: string[] = [];
after(() => {
  for (const d of created) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh temp dir, removed when the test file's tests are done. */
export function tmpDir(prefix = "deltaedit-mut-"): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(d);
  return d;
}

/** A copy of fixture `name` in a fresh temp dir. */
export function copyFixture(name: string): string {
  const dir = tmpDir();
  const src = fixtureModel(name);
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  return dir;
}

export function readJson(file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
}

/** Rewrites `<dir>/<file>` (JSON) through `edit`. */
export function editJson(dir: string, file: string, edit: (j: Record<string, unknown>) => void): void {
  const p = path.join(dir, file);
  const j = readJson(p);
  edit(j);
  fs.writeFileSync(p, JSON.stringify(j));
}

/** Rewrites `<dir>/model.safetensors` (single-file checkpoints) through `edit` on its tensor list. */
export function editWeights(dir: string, edit: (tensors: TensorToWrite[]) => TensorToWrite[] | void): void {
  const ck = openCheckpoint(dir);
  const tensors: TensorToWrite[] = ck.names().map((n) => ({ name: n, shape: ck.info(n).shape, data: ck.read(n) }));
  ck.close();
  const out = edit(tensors) ?? tensors;
  writeSafetensors(path.join(dir, "model.safetensors"), out);
}

/** Predicate for assert.throws / rejects: a DeltaEditError with `code` whose message contains every part. */
export function isErr(code: string, ...parts: string[]) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof DeltaEditError, `expected DeltaEditError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message.slice(0, 500))} should contain ${JSON.stringify(p)}`);
    return true;
  };
}
