/**
 * Sessions verify themselves (format v2): every corruption class found by fuzzing is refused with
 * E_SESSION naming the file and the line or field at fault; one writer per session (E_LOCKED naming
 * the holder, stale locks of dead processes taken over); checked writes (E_IO on a full device, no
 * temporary left); export refuses unusable outputs. One small MEMIT session on stories260k is made
 * once and copied for each case.
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
import { sealed } from "../../src/edit/session/checksum.js";
import { LOCK_FILE, SessionLock } from "../../src/edit/session/lock.js";
import { EditSession, type OpenOptions } from "../../src/edit/session/session.js";
import { saveFactors } from "../../src/edit/session/store.js";
import { DeltaEditError } from "../../src/errors.js";
import { appendDurable, writeAll, writeFileAtomic } from "../../src/util/fsio.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-integrity-"));
process.env["DELTAEDIT_CACHE"] = path.join(tmp, "cache");
const MODEL = fixtureModel("stories260k");
const CORPUS = path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt");
const EDITS = path.join(repoRoot(), "test", "fixtures", "edits", "stories-64.jsonl");
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "helpers", "cli-child.js");
const TEMPLATE = path.join(tmp, "template");

function editArgs(session: string, limit: number, extra: string[] = []): string[] {
  return ["edit", "--model", MODEL, "--method", "memit", "--edits", EDITS, "--session", session, "--stats-corpus", CORPUS, "--limit", String(limit), "--set", "numGradSteps=4", ...extra];
}

const open = (dir: string, o: Partial<OpenOptions> = {}): Promise<EditSession> => EditSession.open(dir, { secondMoments: (m, layers) => prepareSecondMoments(m, layers, { corpus: CORPUS }, () => {}), ...o });

/** The template: 4 batches of one request, then an undo of batch 2 (journal lines 1..5). */
async function template(): Promise<string> {
  if (!fs.existsSync(path.join(TEMPLATE, "journal.jsonl"))) {
    const r = await cli(editArgs(TEMPLATE, 4));
    assert.equal(r.code, 0, r.err);
    const u = await cli(["undo", "--session", TEMPLATE, "--edit", "2", "--stats-corpus", CORPUS]);
    assert.equal(u.code, 0, u.err);
  }
  return TEMPLATE;
}

let counter = 0; // names the copies (tests run sequentially)
async function copy(name: string): Promise<string> {
  const dst = path.join(tmp, `${name}-${++counter}`);
  fs.cpSync(await template(), dst, { recursive: true });
  return dst;
}

const journalFile = (dir: string): string => path.join(dir, "journal.jsonl");
const readLines = (dir: string): string[] => fs.readFileSync(journalFile(dir), "utf8").split("\n").slice(0, -1);
const writeLines = (dir: string, lines: string[]): void => fs.writeFileSync(journalFile(dir), lines.map((l) => l + "\n").join(""));
const record = (dir: string, line: number): Record<string, unknown> => JSON.parse(readLines(dir)[line - 1]!) as Record<string, unknown>;
/** Replace journal line `line` (1-based) by `rec`, re-sealed (a well-formed checksum: the field checks must catch it). */
function replaceRecord(dir: string, line: number, rec: Record<string, unknown>): void {
  const lines = readLines(dir);
  lines[line - 1] = JSON.stringify(sealed(rec));
  writeLines(dir, lines);
}
const manifestFile = (dir: string): string => path.join(dir, "manifest.json");
const manifest = (dir: string): Record<string, unknown> => JSON.parse(fs.readFileSync(manifestFile(dir), "utf8")) as Record<string, unknown>;
const writeManifestRaw = (dir: string, m: unknown, seal = true): void => fs.writeFileSync(manifestFile(dir), JSON.stringify(seal ? sealed(m as object) : m, null, 2) + "\n");

/** Asserts that `p` rejects with a DeltaEditError of `code` whose message matches every pattern. */
async function rejectsWith(p: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<DeltaEditError> {
  let caught: unknown = null;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof DeltaEditError, `expected a DeltaEditError ${code}, got ${caught instanceof Error ? caught.stack : String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  for (const re of patterns) assert.match(caught.message, re);
  return caught;
}

/** A pid that is certainly not running: a child that has exited. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((r) => p.once("exit", r));
  return p.pid!;
}

function temporaries(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.includes(".tmp-"));
}

test("the template session reads back: seq 1..5, sums, factor checksums, absolute model source", async () => {
  const dir = await template();
  const lines = readLines(dir).map((l) => JSON.parse(l) as { seq: number; kind: string; sum: string; factors?: string; factorsSha256?: string });
  assert.deepEqual(lines.map((r) => r.seq), [1, 2, 3, 4, 5]);
  assert.deepEqual(lines.map((r) => r.kind), ["batch", "batch", "batch", "batch", "undo"]);
  assert.ok(lines.every((r) => /^[0-9a-f]{64}$/.test(r.sum)));
  assert.equal(lines[0]!.factors, "000001.safetensors", "a plain file name inside factors/");
  assert.match(lines[0]!.factorsSha256!, /^[0-9a-f]{64}$/);
  const m = manifest(dir) as { version: number; model: { source: string; hash: string } };
  assert.equal(m.version, 2);
  assert.equal(m.model.source, MODEL);
  assert.match(m.model.hash, /^[0-9a-f]{64}$/);
  const s = await open(dir);
  assert.equal(s.position, 4);
  assert.equal(fs.existsSync(path.join(dir, LOCK_FILE)), false, "no lock left behind");
});

test("journal: duplicated, swapped and deleted lines are refused naming the file and line", async () => {
  const dup = await copy("dup");
  const l = readLines(dup);
  writeLines(dup, [l[0]!, l[1]!, l[2]!, l[2]!, l[3]!, l[4]!]);
  await rejectsWith(open(dup), "E_SESSION", /journal\.jsonl: line 4: /, /field "seq" is 3, expected 4/);

  const swap = await copy("swap");
  const s = readLines(swap);
  writeLines(swap, [s[0]!, s[2]!, s[1]!, s[3]!, s[4]!]);
  await rejectsWith(open(swap), "E_SESSION", /journal\.jsonl: line 2: /, /field "seq" is 3, expected 2/);

  const del = await copy("del");
  const d = readLines(del);
  writeLines(del, [d[0]!, d[2]!, d[3]!, d[4]!]);
  await rejectsWith(open(del), "E_SESSION", /journal\.jsonl: line 2: /, /expected 2/);
});

test("journal: an altered record fails its checksum; resealed records fail their field checks", async () => {
  const alt = await copy("alter");
  const lines = readLines(alt);
  lines[2] = lines[2]!.replace(/"nextIndex":3/, '"nextIndex":4');
  assert.notEqual(lines[2], readLines(alt)[2], "precondition: the record was changed");
  writeLines(alt, lines);
  await rejectsWith(open(alt), "E_SESSION", /journal\.jsonl: line 3: checksum mismatch/);

  const cases: [string, (r: Record<string, unknown>) => void, RegExp][] = [
    ["factors null", (r) => void (r["factors"] = null), /line 2: field "factors" must be a plain file name/],
    ["updates empty", (r) => void (r["updates"] = []), /line 2: field "updates" must be a non-empty array/],
    ["outcome null", (r) => void (r["outcome"] = null), /line 2: field "outcome" must be an object/],
    ["unknown kind", (r) => void (r["kind"] = "rebase"), /line 2: unknown record kind "rebase"/],
    ["factors traversal", (r) => void (r["factors"] = "../../../etc/passwd"), /line 2: field "factors" must be a plain file name .*got "\.\.\/\.\.\/\.\.\/etc\/passwd"/],
    ["factors with a directory", (r) => void (r["factors"] = "factors/000002.safetensors"), /line 2: field "factors" must be a plain file name/],
    ["absolute factors", (r) => void (r["factors"] = "/etc/passwd"), /line 2: field "factors" must be a plain file name/],
    ["batch number", (r) => void (r["batch"] = 7), /line 2: field "batch" is 7, expected 2/],
    ["update layer", (r) => void ((r["updates"] as { layer: number }[])[0]!.layer = 99), /line 2: field "updates" \[0\]\.layer must be a block index/],
    ["rng state", (r) => void (r["rngState"] = [1, 2]), /line 2: field "rngState" must be 4 unsigned 32-bit integers/],
  ];
  for (const [name, mutate, re] of cases) {
    const dir = await copy(name.replace(/ /g, "-"));
    const r = record(dir, 2);
    mutate(r);
    replaceRecord(dir, 2, r);
    await rejectsWith(open(dir), "E_SESSION", re);
  }
  const undo = await copy("undo-target");
  const u = record(undo, 5);
  u["batch"] = 9;
  replaceRecord(undo, 5, u);
  await rejectsWith(open(undo), "E_SESSION", /line 5: undo of batch 9, which is not an earlier batch/);

  for (const [name, text, re] of [["null", "null", /line 3: not a journal record \(got null\)/], ["number", "42", /line 3: not a journal record \(got 42\)/], ["empty", "", /line 3: empty line/]] as const) {
    const dir = await copy(`line-${name}`);
    const l = readLines(dir);
    l[2] = text;
    writeLines(dir, l);
    await rejectsWith(open(dir), "E_SESSION", /journal\.jsonl: /, re);
  }
});

test("journal: a complete but corrupt last line is an error (even for export, file untouched); a torn one without newline is tolerated", async () => {
  const bad = await copy("corrupt-last");
  const l = readLines(bad);
  l[4] = l[4]!.slice(0, 20); // cut, but the newline is kept: a complete line
  writeLines(bad, l);
  const size = fs.statSync(journalFile(bad)).size;
  await rejectsWith(open(bad), "E_SESSION", /journal\.jsonl: line 5: not valid JSON/);
  await rejectsWith(open(bad, { access: "write" }), "E_SESSION", /journal\.jsonl: line 5: not valid JSON/);
  const ex = await cli(["export", "--session", bad, "--format", "lora", "--out", path.join(tmp, "never"), "--stats-corpus", CORPUS]);
  assert.equal(ex.code, 1);
  assert.match(ex.err, /journal\.jsonl: line 5: not valid JSON/);
  assert.doesNotMatch(ex.err, /internal error|\n\s+at /, "no stack trace");
  assert.equal(fs.statSync(journalFile(bad)).size, size, "nothing truncated");
  assert.equal(fs.existsSync(path.join(tmp, "never")), false);

  const torn = await copy("torn-last");
  const full = fs.readFileSync(journalFile(torn), "utf8");
  const lastStart = full.lastIndexOf("\n", full.length - 2) + 1;
  fs.writeFileSync(journalFile(torn), full.slice(0, lastStart) + full.slice(lastStart, lastStart + 30)); // no newline: torn
  const tornSize = fs.statSync(journalFile(torn)).size;
  const reader = await open(torn);
  assert.equal(reader.journal.length, 4, "the torn undo record is ignored");
  const ex2 = await cli(["export", "--session", torn, "--format", "lora", "--out", path.join(tmp, "torn-lora"), "--stats-corpus", CORPUS]);
  assert.equal(ex2.code, 0, ex2.err);
  assert.equal(fs.statSync(journalFile(torn)).size, tornSize, "a reader (export) never truncates");
  const w = await cli(editArgs(torn, 5, ["--resume"]));
  assert.equal(w.code, 0, w.err);
  const after = readLines(torn).map((x) => JSON.parse(x) as { seq: number; kind: string; batch: number });
  assert.deepEqual(after.map((r) => [r.seq, r.kind, r.batch]), [[1, "batch", 1], [2, "batch", 2], [3, "batch", 3], [4, "batch", 4], [5, "batch", 5]], "the writer truncated the fragment and went on");
});

test("factor files: a flipped byte, a swapped file and NaN factors are refused naming the file", async () => {
  const flip = await copy("flip");
  const f2 = path.join(flip, "factors", "000002.safetensors");
  const bytes = fs.readFileSync(f2);
  bytes[bytes.length - 3]! ^= 0x10;
  fs.writeFileSync(f2, bytes);
  await rejectsWith(open(flip), "E_SESSION", /factors\/000002\.safetensors: sha256 .* does not match the journal's/);

  const swap = await copy("swap-factors");
  const a = path.join(swap, "factors", "000001.safetensors");
  const b = path.join(swap, "factors", "000003.safetensors");
  const ab = fs.readFileSync(a);
  fs.writeFileSync(a, fs.readFileSync(b));
  fs.writeFileSync(b, ab);
  await rejectsWith(open(swap), "E_SESSION", /factors\/000001\.safetensors: sha256/);

  // NaN written into a factor file whose checksum is then updated consistently: the finiteness check catches it
  const nan = await copy("nan");
  const f3 = path.join(nan, "factors", "000003.safetensors");
  const buf = fs.readFileSync(f3);
  buf.writeFloatLE(NaN, buf.length - 4);
  fs.writeFileSync(f3, buf);
  const r = record(nan, 3);
  r["factorsSha256"] = (await import("../../src/edit/session/checksum.js")).sha256Hex(buf);
  replaceRecord(nan, 3, r);
  await rejectsWith(open(nan), "E_SESSION", /factors\/000003\.safetensors: tensor "u\d+\.L\d+\.\w+" holds a non-finite value \(NaN/);

  // and a non-finite update is never written
  const file = path.join(tmp, "nan-write", "000001.safetensors");
  const dense = new Float32Array(6);
  dense[4] = Infinity;
  await rejectsWith(Promise.resolve().then(() => saveFactors(file, [{ layer: 0, n: 1, keys: null, influence: null, activation: null, dense }], 2, 3)), "E_SESSION", /u0\.L0\.dense holds a non-finite value \(Infinity at 4\)/);
  assert.equal(fs.existsSync(file), false);
});

test("manifest: null, truncated, altered, bad fields and an old version are refused naming the file and field", async () => {
  const cases: [string, (dir: string) => void, RegExp][] = [
    ["null", (d) => fs.writeFileSync(manifestFile(d), "null\n"), /manifest\.json: is not a session manifest/],
    ["truncated", (d) => fs.writeFileSync(manifestFile(d), fs.readFileSync(manifestFile(d), "utf8").slice(0, 100)), /manifest\.json: not valid JSON/],
    ["altered", (d) => writeManifestRaw(d, { ...manifest(d), batchSize: 2 }, false), /manifest\.json: field "sum" does not match/],
    ["batch 0", (d) => writeManifestRaw(d, { ...manifest(d), batchSize: 0 }), /manifest\.json: field "batchSize" must be a positive integer, got 0/],
    ["batch x", (d) => writeManifestRaw(d, { ...manifest(d), batchSize: "x" }), /manifest\.json: field "batchSize" must be a positive integer, got "x"/],
    ["method", (d) => writeManifestRaw(d, { ...manifest(d), method: "magic" }), /manifest\.json: field "method" must be one of/],
    ["params", (d) => writeManifestRaw(d, { ...manifest(d), params: null }), /manifest\.json: field "params" must be an object/],
    ["version 1", (d) => writeManifestRaw(d, { ...manifest(d), version: 1 }, false), /manifest\.json: field "version" is 1: session format version 1 is not supported/],
  ];
  for (const [name, mutate, re] of cases) {
    const dir = await copy(`manifest-${name.replace(/ /g, "-")}`);
    mutate(dir);
    await rejectsWith(open(dir), "E_SESSION", re);
  }
  // a resume refuses it through the CLI too, with exit 1 and no stack trace
  const dir = await copy("manifest-cli");
  writeManifestRaw(dir, { ...manifest(dir), batchSize: 0 });
  const r = await cli(editArgs(dir, 8, ["--resume"]));
  assert.equal(r.code, 1);
  assert.match(r.err, /field "batchSize" must be a positive integer/);
  assert.doesNotMatch(r.err, /internal error/);
  assert.equal(readLines(dir).length, 5, "nothing appended");
});

test("model pinning: another model's content, an empty hash, and --skip-model-check", async () => {
  // a copy of the model with one weight byte changed is not the session's model
  const other = path.join(tmp, "model-copy");
  fs.cpSync(MODEL, other, { recursive: true, dereference: true });
  const w = path.join(other, "model.safetensors");
  const bytes = fs.readFileSync(w);
  bytes[bytes.length - 2]! ^= 0x01;
  fs.writeFileSync(w, bytes);
  const dir = await copy("model");
  await rejectsWith(open(dir, { modelSource: other }), "E_SESSION", /model-copy is not the one this session was started with: content hash/, /manifest\.json/);

  // an empty hash: refused unless the user says so explicitly
  const empty = await copy("model-empty-hash");
  const m = manifest(empty) as { model: Record<string, unknown> };
  m.model["hash"] = "";
  writeManifestRaw(empty, m);
  await rejectsWith(open(empty), "E_SESSION", /manifest\.json: field "model\.hash" is empty/);
  const r = await cli(editArgs(empty, 4, ["--resume"]));
  assert.equal(r.code, 1);
  assert.match(r.err, /field "model\.hash" is empty/);
  assert.match(r.err, /--skip-model-check/);
  const ok = await cli(editArgs(empty, 4, ["--resume", "--skip-model-check"]));
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.err, /not verified/);

  // a relative --model is recorded absolute, so the session reopens from another directory
  const rel = path.join(tmp, "relative");
  const cwd = process.cwd();
  const r2 = await cli(["edit", "--model", path.relative(cwd, MODEL), "--method", "memit", "--edits", EDITS, "--session", rel, "--stats-corpus", CORPUS, "--limit", "1", "--set", "numGradSteps=2"]);
  assert.equal(r2.code, 0, r2.err);
  assert.equal((manifest(rel) as { model: { source: string } }).model.source, MODEL);
  process.chdir(os.tmpdir());
  try {
    const s = await open(rel);
    assert.equal(s.position, 1);
  } finally {
    process.chdir(cwd);
  }
});

test("one writer per session: a second writer gets E_LOCKED naming the holder; a dead holder's lock is taken over", async () => {
  const dir = await copy("lock");
  const p = spawn(process.execPath, [CHILD, ...editArgs(dir, 40, ["--resume"])], { env: process.env, stdio: "ignore" });
  const exited = new Promise((r) => p.once("exit", r));
  const lockFile = path.join(dir, LOCK_FILE);
  const t0 = Date.now();
  while (!fs.existsSync(lockFile) && p.exitCode === null && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 5));
  assert.ok(fs.existsSync(lockFile), "the child took the lock");
  p.kill("SIGSTOP"); // frozen while holding the lock (alive): the checks below do not race its progress
  const holder = JSON.parse(fs.readFileSync(lockFile, "utf8")) as { pid: number; host: string };
  assert.equal(holder.pid, p.pid);
  assert.equal(holder.host, os.hostname());
  await rejectsWith(open(dir, { access: "write" }), "E_LOCKED", new RegExp(`locked by pid ${p.pid} on host `));
  const second = await cli(editArgs(dir, 40, ["--resume"]));
  assert.equal(second.code, 1);
  assert.match(second.err, new RegExp(`locked by pid ${p.pid}`));
  const ex = await cli(["export", "--session", dir, "--format", "lora", "--out", path.join(tmp, "lock-lora"), "--stats-corpus", CORPUS]);
  assert.equal(ex.code, 1, "export takes the lock too");
  assert.match(ex.err, new RegExp(`locked by pid ${p.pid}`));
  const reader = await open(dir); // readers run concurrently
  assert.ok(reader.position >= 4);
  p.kill("SIGKILL");
  await exited;
  assert.ok(fs.existsSync(lockFile), "a killed writer leaves its lock");

  const logs: string[] = [];
  const s = await open(dir, { access: "write", log: (m) => logs.push(m) });
  assert.ok(logs.some((m) => m.includes(`took over the stale lock of pid ${p.pid}`)), logs.join("\n"));
  assert.equal((JSON.parse(fs.readFileSync(lockFile, "utf8")) as { pid: number }).pid, process.pid);
  s.close();
  assert.equal(fs.existsSync(lockFile), false, "released on close");
  const seqs = readLines(dir).map((l) => (JSON.parse(l) as { seq: number }).seq);
  assert.deepEqual(seqs, seqs.map((_, i) => i + 1), "one writer at a time: the journal is 1, 2, 3, …");
});

test("locks: two new sessions in one directory, a foreign host's lock, a stale lock file from a dead pid", async () => {
  const dir = path.join(tmp, "new-locked");
  fs.mkdirSync(dir);
  const held = SessionLock.acquire(dir, "test");
  const r = await cli(editArgs(dir, 2));
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`locked by pid ${process.pid} on host ${os.hostname().replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(test, since `));
  assert.equal(fs.existsSync(path.join(dir, "manifest.json")), false, "the second writer wrote nothing");
  held.release();
  assert.equal(fs.existsSync(path.join(dir, LOCK_FILE)), false);

  const foreign = await copy("foreign");
  const pid = await deadPid();
  fs.writeFileSync(path.join(foreign, LOCK_FILE), JSON.stringify({ pid, host: "elsewhere.example", since: "2020-01-01T00:00:00.000Z", command: "edit", token: "x" }));
  const e = await rejectsWith(open(foreign, { access: "write" }), "E_LOCKED", new RegExp(`locked by pid ${pid} on host elsewhere\\.example \\(edit, since 2020-01-01`));
  assert.match(e.hint ?? "", /another host.*delete .*session\.lock/);

  const stale = await copy("stale");
  fs.writeFileSync(path.join(stale, LOCK_FILE), JSON.stringify({ pid, host: os.hostname(), since: "2020-01-01T00:00:00.000Z", command: "edit", token: "y" }));
  fs.writeFileSync(path.join(stale, `manifest.json.tmp-${pid}`), "left by a killed process");
  const r2 = await cli(editArgs(stale, 5, ["--resume"]));
  assert.equal(r2.code, 0, r2.err);
  assert.match(r2.err, new RegExp(`took over the stale lock of pid ${pid}`));
  assert.equal(fs.existsSync(path.join(stale, LOCK_FILE)), false, "released at exit");
  assert.deepEqual(temporaries(stale), [], "stale temporaries removed");
});

test("checked writes: a full device gives E_IO naming the file; short writes are completed; no temporary survives", () => {
  const fd = fs.openSync("/dev/full", "w");
  try {
    assert.throws(() => writeAll(fd, "x".repeat(1000), "/dev/full"), (e: unknown) => e instanceof DeltaEditError && e.code === "E_IO" && /\/dev\/full: write failed: no space left on device/.test(e.message));
  } finally {
    fs.closeSync(fd);
  }
  assert.throws(() => appendDurable("/dev/full", "record\n"), (e: unknown) => e instanceof DeltaEditError && e.code === "E_IO" && /\/dev\/full/.test(e.message));

  // a writeSync that writes at most 3 bytes per call: the loop completes the write
  const dir = fs.mkdtempSync(path.join(tmp, "short-"));
  const file = path.join(dir, "f.json");
  const real = fs.writeSync;
  const patched = ((fdArg: number, buf: Uint8Array, off?: number, len?: number, pos?: number | null) => real(fdArg, buf, off ?? 0, Math.min(len ?? buf.length, 3), pos ?? null)) as typeof fs.writeSync;
  fs.writeSync = patched;
  try {
    writeFileAtomic(file, '{"a": "bcdefghijklmnop"}\n');
  } finally {
    fs.writeSync = real;
  }
  assert.equal(fs.readFileSync(file, "utf8"), '{"a": "bcdefghijklmnop"}\n');
  // a write that makes no progress fails with E_IO, and the atomic write leaves no temporary
  fs.writeSync = (() => 0) as unknown as typeof fs.writeSync;
  try {
    assert.throws(() => writeFileAtomic(path.join(dir, "g.json"), "data"), (e: unknown) => e instanceof DeltaEditError && e.code === "E_IO" && /g\.json\.tmp-\d+: write made no progress/.test(e.message));
  } finally {
    fs.writeSync = real;
  }
  // a rename onto a directory fails: E_IO, temporary removed
  fs.mkdirSync(path.join(dir, "sub", "inner"), { recursive: true });
  assert.throws(() => writeFileAtomic(path.join(dir, "sub"), "data"), (e: unknown) => e instanceof DeltaEditError && e.code === "E_IO");
  assert.deepEqual(temporaries(dir), []);
});

test("export: --out empty, an existing file or a non-empty directory are usage errors; a dead export's temporary is removed", async () => {
  const dir = await template();
  const base = ["export", "--session", dir, "--format", "lora", "--stats-corpus", CORPUS];
  const e1 = await cli([...base, "--out", ""]);
  assert.equal(e1.code, 2);
  assert.match(e1.err, /--out must name a directory, got an empty string/);
  const file = path.join(tmp, "a-file");
  fs.writeFileSync(file, "keep me");
  const e2 = await cli([...base, "--out", file]);
  assert.equal(e2.code, 2);
  assert.match(e2.err, /a-file is an existing file/);
  assert.equal(fs.readFileSync(file, "utf8"), "keep me");
  const full = path.join(tmp, "full-dir");
  fs.mkdirSync(full);
  fs.writeFileSync(path.join(full, "x"), "");
  const e3 = await cli([...base, "--out", full]);
  assert.equal(e3.code, 2);
  assert.match(e3.err, /full-dir exists and is not empty/);
  for (const r of [e1, e2, e3]) assert.doesNotMatch(r.err, /internal error/);
  assert.deepEqual(temporaries(tmp), [], "no temporary directory left");

  const out = path.join(tmp, "exported");
  const pid = await deadPid();
  fs.mkdirSync(`${out}.tmp-${pid}`); // left by a killed export
  const ok = await cli([...base, "--out", out]);
  assert.equal(ok.code, 0, ok.err);
  assert.ok(fs.existsSync(path.join(out, "adapter_model.safetensors")));
  assert.deepEqual(temporaries(tmp), []);

  // a full disk while the HF export copies the model: E_IO naming the output, no temporary left, nothing at --out
  const realCopy = fs.copyFileSync;
  let copies = 0;
  fs.copyFileSync = ((src: fs.PathLike, dst: fs.PathLike, mode?: number) => {
    if (++copies > 1) throw Object.assign(new Error(`ENOSPC: no space left on device, copyfile '${String(src)}'`), { code: "ENOSPC" });
    realCopy(src, dst, mode);
  }) as typeof fs.copyFileSync;
  const hfOut = path.join(tmp, "hf-full-disk");
  let full1: Awaited<ReturnType<typeof cli>>;
  try {
    full1 = await cli(["export", "--session", dir, "--format", "hf", "--out", hfOut, "--stats-corpus", CORPUS]);
  } finally {
    fs.copyFileSync = realCopy;
  }
  assert.equal(full1.code, 1, full1.err);
  assert.match(full1.err, /export to .*hf-full-disk failed: no space left on device/);
  assert.doesNotMatch(full1.err, /internal error/);
  assert.ok(copies > 1, "precondition: the copy failed mid-way");
  assert.equal(fs.existsSync(hfOut), false);
  assert.deepEqual(temporaries(tmp), []);
  assert.equal(fs.existsSync(path.join(dir, LOCK_FILE)), false, "the lock is released on errors");

  for (const cmd of [["edit", "--model", MODEL, "--method", "memit", "--edits", EDITS, "--session", ""], ["undo", "--session", "", "--edit", "1"], ["export", "--session", "", "--format", "hf", "--out", path.join(tmp, "x")]]) {
    const r = await cli(cmd);
    assert.equal(r.code, 2, `${cmd[0]} --session ""`);
    assert.match(r.err, /--session must name a directory, got an empty string/);
  }
});
