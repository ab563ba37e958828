/**
 * Fuzz test of the CLI's inputs (seeded, bounded): mutated checkpoints (safetensors), config.json,
 * tokenizer.json, edit files and session directories. Every mutant must end in a clear error that
 * names the file, field, tensor or request at fault, or in a correct result (checked per kind) —
 * never a stack trace, a hang or runaway memory. The mutants run in a supervised child process
 * (time limit per job, RSS cap), restarted after a hang or a crash.
 *
 * FUZZ_PER_KIND (default 200) sets the number of mutants per input kind; FUZZ_SEED the seed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { main } from "../../src/cli/main.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";
import { mutateBytes, mutateJson, mutateLines, Rng, type Mutant } from "./mutate.js";
import type { FuzzJob, FuzzResult } from "./runner.js";

const PER_KIND = Number(process.env["FUZZ_PER_KIND"] ?? 200);
const SEED = Number(process.env["FUZZ_SEED"] ?? 20261206);
const JOB_TIMEOUT_MS = 20_000;
const RSS_CAP_BYTES = 1.5 * 1024 ** 3;
const CORPUS = path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt");
const EDITS_JSONL = path.join(repoRoot(), "test", "fixtures", "edits", "stories-64.jsonl");
const EDITS_MCF = path.join(repoRoot(), "test", "fixtures", "edits", "stories-mcf.json");

type Outcome = "accepted" | "clear error" | "vague error" | "silent garbage" | "crash" | "hang" | "memory";
const FAILURES: readonly Outcome[] = ["vague error", "silent garbage", "crash", "hang", "memory"];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-fuzz-"));
const cache = path.join(tmp, "cache");
process.env["DELTAEDIT_CACHE"] = cache;

function copyDir(src: string, dst: string): void {
  fs.mkdirSync(dst, { recursive: true });
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, e.name);
    const d = path.join(dst, e.name);
    if (e.isDirectory()) copyDir(s, d);
    else fs.copyFileSync(s, d);
  }
}

/** A model directory whose files are hard links of `base` except `file`, which holds `data`. */
function modelWith(base: string, dir: string, file: string, data: Buffer): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const name of fs.readdirSync(base)) if (name !== file) fs.linkSync(path.join(base, name), path.join(dir, name));
  fs.writeFileSync(path.join(dir, file), data);
}

function sha256(file: string): string {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

async function cli(argv: string[]): Promise<{ code: number; err: string }> {
  let err = "";
  const code = await main(argv, { out: () => {}, err: (s) => void (err += s) });
  return { code, err };
}

/** Runs the jobs in a supervised child; returns one result or supervision verdict per job. */
async function supervise(jobs: FuzzJob[]): Promise<Map<number, FuzzResult | "hang" | "memory" | "crash">> {
  const jobFile = path.join(tmp, "jobs.json");
  fs.writeFileSync(jobFile, JSON.stringify(jobs));
  const runner = path.join(path.dirname(fileURLToPath(import.meta.url)), "runner.js");
  const results = new Map<number, FuzzResult | "hang" | "memory" | "crash">();
  let start = 0;
  while (start < jobs.length) {
    const verdict = await new Promise<{ next: number; verdict: "hang" | "memory" | "crash" | null }>((resolve) => {
      const child = spawn(process.execPath, ["--max-old-space-size=768", runner, jobFile, String(start)], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } });
      let next = start;
      let buf = "";
      let stderr = "";
      let killedFor: "hang" | "memory" | null = null;
      let last = Date.now();
      const timer = setInterval(() => {
        if (Date.now() - last > JOB_TIMEOUT_MS) {
          killedFor = "hang";
          child.kill("SIGKILL");
          return;
        }
        try {
          const status = fs.readFileSync(`/proc/${child.pid}/status`, "utf8");
          const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
          if (kb * 1024 > RSS_CAP_BYTES) {
            killedFor = "memory";
            child.kill("SIGKILL");
          }
        } catch {
          // the child has exited
        }
      }, 100);
      child.stdout.on("data", (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.startsWith("@@FUZZ ")) continue;
          const r = JSON.parse(line.slice(7)) as FuzzResult;
          results.set(r.id, r);
          next = jobs.findIndex((j) => j.id === r.id) + 1;
          last = Date.now();
        }
      });
      child.stderr.on("data", (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)));
      child.on("exit", () => {
        clearInterval(timer);
        if (next >= jobs.length) return resolve({ next, verdict: null });
        const oom = /heap out of memory|Allocation failed/.test(stderr);
        resolve({ next, verdict: killedFor ?? (oom ? "memory" : "crash") });
      });
    });
    if (verdict.verdict && verdict.next < jobs.length) {
      results.set(jobs[verdict.next]!.id, verdict.verdict);
      start = verdict.next + 1;
    } else start = verdict.next;
  }
  return results;
}

function classify(job: FuzzJob, r: FuzzResult | "hang" | "memory" | "crash" | undefined): { outcome: Outcome; detail: string } {
  if (r === undefined) return { outcome: "crash", detail: "no result" };
  if (typeof r === "string") return { outcome: r, detail: r };
  if (r.code === 0) return r.checkFailure ? { outcome: "silent garbage", detail: r.checkFailure } : { outcome: "accepted", detail: "" };
  if (r.code === 70 || !/deltaedit: error:|rejected: /.test(r.err)) return { outcome: "crash", detail: r.err.slice(0, 600) };
  const named = job.culprit.some((c) => r.err.includes(c));
  return named ? { outcome: "clear error", detail: "" } : { outcome: "vague error", detail: r.err.slice(0, 600) };
}

test(`fuzz: ${PER_KIND} mutants per input kind end in a clear error or a correct result`, { timeout: 15 * 60_000 }, async (t) => {
  const rng = new Rng(SEED);
  const base = path.join(tmp, "base");
  copyDir(fixtureModel("stories260k"), base);
  const jobs: FuzzJob[] = [];
  const add = (kind: string, m: Mutant, argv: string[], culprit: string[], check: FuzzJob["check"]): void => {
    jobs.push({ id: jobs.length, kind, what: m.what, argv, culprit, check });
  };

  // ── checkpoints, configs, tokenizers: mutate one file of the model directory, then run the runtime
  const st = fs.readFileSync(path.join(base, "model.safetensors"));
  const headerEnd = 8 + Number(st.readBigUInt64LE(0));
  for (let i = 0; i < PER_KIND; i++) {
    const u = rng.uniform();
    const m = u < 0.45 ? mutateBytes(st, rng, { start: 0, end: headerEnd }) : u < 0.7 ? mutateBytes(st, rng, { start: headerEnd, end: st.length }) : mutateHeader(st, headerEnd, rng);
    const dir = path.join(tmp, `st-${i}`);
    modelWith(base, dir, "model.safetensors", m.data);
    add("safetensors", m, ["logits", "--model", dir, "--text", "Lily went to the", "--json"], ["model.safetensors"], { type: "finite-logits" });
  }
  const config = fs.readFileSync(path.join(base, "config.json"), "utf8");
  for (let i = 0; i < PER_KIND; i++) {
    const m = rng.uniform() < 0.8 ? mutateJson(config, rng) : mutateBytes(Buffer.from(config), rng);
    const dir = path.join(tmp, `cfg-${i}`);
    modelWith(base, dir, "config.json", m.data);
    // a config that contradicts the checkpoint may be reported as the tensor that does not match it
    add("config", m, ["logits", "--model", dir, "--text", "Lily went to the", "--json"], ["config.json", "model.safetensors"], { type: "finite-logits" });
  }
  const tokenizer = fs.readFileSync(path.join(base, "tokenizer.json"), "utf8");
  for (let i = 0; i < PER_KIND; i++) {
    const m = rng.uniform() < 0.8 ? mutateJson(tokenizer, rng) : mutateBytes(Buffer.from(tokenizer), rng);
    const dir = path.join(tmp, `tok-${i}`);
    modelWith(base, dir, "tokenizer.json", m.data);
    add("tokenizer", m, ["tokenize", "--model", dir, "--text", "Lily went to the park", "--json"], ["tokenizer.json"], { type: "none" });
  }

  // ── edit files: a 3-record JSONL stream and a 3-record MultiCounterFact array
  const jsonl = fs.readFileSync(EDITS_JSONL, "utf8").split("\n").slice(0, 3).join("\n") + "\n";
  const mcf = JSON.stringify((JSON.parse(fs.readFileSync(EDITS_MCF, "utf8")) as unknown[]).slice(0, 3));
  for (let i = 0; i < PER_KIND; i++) {
    const asJsonl = i % 2 === 0;
    const u = rng.uniform();
    const m = asJsonl ? (u < 0.8 ? mutateLines(jsonl, rng) : mutateBytes(Buffer.from(jsonl), rng)) : u < 0.8 ? mutateJson(mcf, rng) : mutateBytes(Buffer.from(mcf), rng);
    const file = path.join(tmp, `edits-${i}.${asJsonl ? "jsonl" : "json"}`);
    fs.writeFileSync(file, m.data);
    add("edit file", m, ["edit", "--model", base, "--method", "memit", "--edits", file, "--session", path.join(tmp, `edit-session-${i}`), "--stats-corpus", CORPUS, "--set", "numGradSteps=1", "--limit", "3"], [file, "request #", "request ", "case_id"], { type: "no-garbage-ids" });
  }

  // ── session directories: a 3-batch MEMIT session; a mutated copy is exported
  const session = path.join(tmp, "session");
  const made = await cli(["edit", "--model", base, "--method", "memit", "--edits", EDITS_JSONL, "--session", session, "--stats-corpus", CORPUS, "--set", "numGradSteps=2", "--limit", "3"]);
  assert.equal(made.code, 0, made.err);
  // the exports of every journal prefix are the correct results (a torn last line may drop one batch)
  const journal = fs.readFileSync(path.join(session, "journal.jsonl"), "utf8");
  const jl = journal.split("\n").filter((l) => l.length > 0);
  const prefixHashes: string[] = [];
  for (let k = 0; k <= jl.length; k++) {
    const dir = path.join(tmp, `prefix-${k}`);
    copyDir(session, dir);
    fs.writeFileSync(path.join(dir, "journal.jsonl"), jl.slice(0, k).map((l) => l + "\n").join(""));
    const out = path.join(tmp, `prefix-${k}-out`);
    const r = await cli(["export", "--session", dir, "--format", "hf", "--out", out, "--stats-corpus", CORPUS]);
    if (r.code === 0) prefixHashes.push(sha256(path.join(out, "model.safetensors")));
  }
  assert.ok(prefixHashes.length >= 2, "the unmutated session's prefixes do not export");
  const files = fs.readdirSync(session, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.relative(session, path.join(e.parentPath, e.name)));
  const factorFiles = files.filter((f) => f.endsWith(".safetensors"));
  for (let i = 0; i < PER_KIND; i++) {
    const dir = path.join(tmp, `sess-${i}`);
    copyDir(session, dir);
    const u = rng.uniform();
    let target: string;
    let m: Mutant;
    if (u < 0.5) {
      target = "journal.jsonl";
      m = rng.uniform() < 0.75 ? mutateLines(journal, rng) : mutateBytes(Buffer.from(journal), rng);
    } else if (u < 0.75) {
      target = "manifest.json";
      const text = fs.readFileSync(path.join(session, target), "utf8");
      m = rng.uniform() < 0.8 ? mutateJson(text, rng) : mutateBytes(Buffer.from(text), rng);
    } else {
      target = factorFiles[rng.int(factorFiles.length)]!;
      m = mutateBytes(fs.readFileSync(path.join(session, target)), rng);
    }
    fs.writeFileSync(path.join(dir, target), m.data);
    const out = path.join(tmp, `sess-${i}-out`);
    add("session", { data: m.data, what: `${target}: ${m.what}` }, ["export", "--session", dir, "--format", "hf", "--out", out, "--stats-corpus", CORPUS], [path.basename(target), dir], { type: "export-in", out, sha256: prefixHashes });
  }

  const results = await supervise(jobs);
  const counts = new Map<string, Map<Outcome, number>>();
  const bad: string[] = [];
  for (const job of jobs) {
    const { outcome, detail } = classify(job, results.get(job.id));
    const byKind = counts.get(job.kind) ?? new Map<Outcome, number>();
    byKind.set(outcome, (byKind.get(outcome) ?? 0) + 1);
    counts.set(job.kind, byKind);
    if (FAILURES.includes(outcome)) bad.push(`[${job.kind} #${job.id}] ${outcome}: ${job.what}\n    ${detail.replace(/\n/g, "\n    ")}`);
  }
  const outcomes: Outcome[] = ["accepted", "clear error", "vague error", "silent garbage", "crash", "hang", "memory"];
  t.diagnostic(`fuzz seed ${SEED}, ${PER_KIND} mutants per kind; outcomes: kind | ${outcomes.join(" | ")}`);
  for (const [kind, byKind] of counts) t.diagnostic(`${kind} | ${outcomes.map((o) => byKind.get(o) ?? 0).join(" | ")}`);
  if (process.env["FUZZ_REPORT"]) fs.writeFileSync(process.env["FUZZ_REPORT"], JSON.stringify({ seed: SEED, perKind: PER_KIND, counts: Object.fromEntries([...counts].map(([k, v]) => [k, Object.fromEntries(v)])), failures: bad }, null, 2));
  assert.deepEqual(bad.slice(0, 25), [], `${bad.length} mutants failed`);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A structural mutation of the safetensors JSON header, re-framed with a correct length prefix. */
function mutateHeader(st: Buffer, headerEnd: number, rng: Rng): Mutant {
  const header = st.subarray(8, headerEnd).toString("utf8");
  const m = mutateJson(header, rng);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(m.data.length));
  return { data: Buffer.concat([len, m.data, st.subarray(headerEnd)]), what: `header: ${m.what}` };
}
