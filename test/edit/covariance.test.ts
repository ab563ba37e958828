/**
 * Key second-moment statistics (src/edit/covariance.ts and its helpers corpus.ts, secondMoment.ts,
 * npz.ts, util/mt19937.ts, cli/commands/stats.ts).
 *
 * Tolerances: batched statistics vs a naive float64 recomputation (one document at a time, sum of
 * outer products of the taps): max |Δ| ≤ 1e-5 · max |C0| (float32 accumulation over a few
 * thousand tokens). Resumed vs uninterrupted runs and cache hits: bit-identical.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { parseArgs, type CliIO } from "../../src/cli/args.js";
import { command as statsCommand } from "../../src/cli/commands/stats.js";
import { corpusFromDocuments, openCorpus, sampleIndices, type CorpusSource } from "../../src/edit/corpus.js";
import {
  computeStats,
  loadCachedStats,
  mergeStats,
  planSubBatches,
  readStatsFile,
  secondMomentMatrix,
  statsCacheFiles,
  type SecondMoment,
  type StatsParams,
} from "../../src/edit/covariance.js";
import { importNpzStats, readNpz } from "../../src/edit/npz.js";
import { DeltaEditError } from "../../src/errors.js";
import { makeBatch, realPositions } from "../../src/model/batch.js";
import { forward } from "../../src/model/forward.js";
import { LanguageModel } from "../../src/model/model.js";
import { MersenneTwister, pythonShuffledSample } from "../../src/util/mt19937.js";
import { Rng } from "../../src/util/rng.js";
import { fixtureModel } from "../helpers/paths.js";

const WORDS = "once upon a time there was little girl named lily she loved to play outside with her dog in the park one day sun was shining and they ran happy big tree friend said hello mom went home ate cake".split(" ");

/** n deterministic sentences of 3..40 words. */
function sentences(n: number, seed: number): string[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const len = 3 + rng.int(38);
    const w = Array.from({ length: len }, () => WORDS[rng.int(WORDS.length)]!);
    return w.join(" ").replace(/^./, (c) => c.toUpperCase()) + ".";
  });
}

function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `deltaedit-cov-${tag}-`));
}

/** Naive C0: each document alone, Σ k kᵀ in float64 over its taps. */
function naiveStats(model: LanguageModel, docs: readonly string[], layers: number[], maxTokens: number): Map<number, { sum: Float64Array; count: number }> {
  const F = model.arch.dFF;
  const out = new Map(layers.map((l) => [l, { sum: new Float64Array(F * F), count: 0 }]));
  for (const d of docs) {
    const ids = model.tokenizer!.encode(d).slice(0, maxTokens);
    const batch = makeBatch([ids], 0);
    const at = realPositions(batch);
    const res = forward(model, batch, { taps: { layers, at, key: true }, logits: "none", stopAfterLayer: Math.max(...layers) });
    for (const l of layers) {
      const k = res.taps.key.get(l)!; // (P, F)
      const acc = out.get(l)!;
      for (let p = 0; p < at.length; p++) {
        for (let i = 0; i < F; i++) {
          const ki = k[p * F + i]!;
          for (let j = 0; j < F; j++) acc.sum[i * F + j]! += ki * k[p * F + j]!;
        }
      }
      acc.count += at.length;
    }
  }
  return out;
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

function assertBitIdentical(a: Map<number, SecondMoment>, b: Map<number, SecondMoment>, what: string): void {
  assert.deepEqual([...a.keys()], [...b.keys()], `${what}: layers`);
  for (const [l, m] of a) {
    const o = b.get(l)!;
    assert.equal(m.count, o.count, `${what}: layer ${l} count`);
    assert.ok(Buffer.from(m.sum.buffer, m.sum.byteOffset, m.sum.byteLength).equals(Buffer.from(o.sum.buffer, o.sum.byteOffset, o.sum.byteLength)), `${what}: layer ${l} sums differ bitwise`);
  }
}

const silent = { log: () => {} };
const llama = await LanguageModel.load(fixtureModel("stories260k"));
const gpt2 = await LanguageModel.load(fixtureModel("tiny-gpt2-random"));

test("MT19937: Python random.Random shuffle / getrandbits / randbelow values", () => {
  // python3 -c "import random; r=random.Random(1); x=list(range(20)); r.shuffle(x); print(x)"
  assert.deepEqual(pythonShuffledSample(20, 20, 1), [11, 5, 17, 19, 9, 0, 16, 1, 15, 6, 10, 13, 14, 12, 7, 3, 8, 2, 18, 4]);
  // x=list(range(1000)); random.Random(1).shuffle(x); x[:10]
  assert.deepEqual(pythonShuffledSample(1000, 10, 1), [852, 836, 280, 575, 208, 609, 932, 725, 47, 985]);
  const r = new MersenneTwister(1);
  assert.deepEqual([r.getrandbits(32), r.getrandbits(32), r.getrandbits(32), r.getrandbits(40)], [577090037, 2444712010, 3639700191, 840964324912]);
  // multi-word seed: random.Random(2**40+5)
  const r2 = new MersenneTwister(2 ** 40 + 5);
  assert.deepEqual([r2.getrandbits(32), r2.getrandbits(32)], [2166296868, 2220160828]);
  // random.Random(0).randrange(10**12) (randbelow with a 40-bit draw)
  assert.equal(new MersenneTwister(0).randbelow(1e12), 424533559245);
  assert.deepEqual(sampleIndices(5, 3, null), [0, 1, 2]);
  assert.deepEqual(sampleIndices(20, 4, 1), [11, 5, 17, 19]);
});

test("corpus: txt (line / paragraph), jsonl, directory order, hash", () => {
  const dir = tmpDir("corpus");
  try {
    fs.writeFileSync(path.join(dir, "b.txt"), "first line\r\n\nsecond line\n   \nthird\nfourth\n");
    fs.writeFileSync(path.join(dir, "a.jsonl"), '{"text":"json one"}\n\n{"text":"json two","id":3}\n{"text":""}\n');
    fs.writeFileSync(path.join(dir, "ignored.bin"), "xx");
    const lines = openCorpus(path.join(dir, "b.txt"));
    assert.deepEqual(Array.from({ length: lines.size }, (_, i) => lines.document(i)), ["first line", "second line", "third", "fourth"]);
    const paras = openCorpus(path.join(dir, "b.txt"), { split: "paragraph" });
    assert.deepEqual(Array.from({ length: paras.size }, (_, i) => paras.document(i)), ["first line", "second line", "third\nfourth"]);
    assert.notEqual(lines.hash, paras.hash, "the split mode is part of the corpus hash");
    const all = openCorpus(dir);
    assert.deepEqual(Array.from({ length: all.size }, (_, i) => all.document(i)), ["json one", "json two", "first line", "second line", "third", "fourth"]);
    const h0 = all.hash;
    fs.writeFileSync(path.join(dir, "b.txt"), "first line\n");
    assert.notEqual(openCorpus(dir).hash, h0, "editing a file changes the hash");
    fs.writeFileSync(path.join(dir, "c.jsonl"), '{"txt":"wrong field"}\n');
    assert.throws(() => openCorpus(dir), (e: unknown) => e instanceof DeltaEditError && /c\.jsonl:1: .*"text"/.test(e.message));
    assert.throws(() => openCorpus(path.join(dir, "missing")), (e: unknown) => e instanceof DeltaEditError && e.code === "E_NOT_FOUND");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("planSubBatches: longest first, width × rows within the budget, lone long row allowed", () => {
  const plan = planSubBatches([5, 50, 20, 20, 3, 100], 60);
  assert.deepEqual(plan, [[5], [1], [2, 3, 0], [4]]);
});

for (const [name, model, layers] of [["stories260k", llama, [0, 2, 4]], ["tiny-gpt2-random", gpt2, [0, 1]]] as const) {
  test(`${name}: batched statistics equal a naive per-document recomputation (1e-5 relative); token budget only changes rounding`, async () => {
    const docs = sentences(60, 7);
    const corpus = corpusFromDocuments(docs);
    const maxTokens = 24; // some documents get truncated
    const base: StatsParams = { layers: [...layers], samples: 1000, maxTokens, cacheDir: null, groupSize: 16 };
    const st = await computeStats(model, corpus, base, silent);
    const naive = naiveStats(model, docs, [...layers], maxTokens);
    const F = model.arch.dFF;
    for (const l of layers) {
      const m = st.get(l)!;
      const ref = naive.get(l)!;
      assert.equal(m.dIn, F);
      assert.equal(m.count, ref.count, `layer ${l}: token count`);
      assert.equal(m.provenance.docsDone, docs.length);
      const rel = maxRelDiff(m.sum, ref.sum);
      assert.ok(rel <= 1e-5, `layer ${l}: max rel diff ${rel} > 1e-5 vs naive`);
      const c0 = secondMomentMatrix(m);
      assert.ok(Math.abs(c0[5]! - ref.sum[5]! / ref.count) <= 1e-5 * Math.abs(ref.sum[5]! / ref.count) + 1e-9, "C0 = sum / count");
    }
    for (const tokenBudget of [1, 64, 100000]) {
      const other = await computeStats(model, corpus, { ...base, tokenBudget, groupSize: 7 }, silent);
      for (const l of layers) {
        assert.equal(other.get(l)!.count, st.get(l)!.count);
        const rel = maxRelDiff(other.get(l)!.sum, st.get(l)!.sum);
        assert.ok(rel <= 1e-5, `layer ${l}, tokenBudget ${tokenBudget}: rel diff ${rel} > 1e-5`);
      }
    }
  });
}

test("BOS counts (Llama): one key per token including BOS", async () => {
  const docs = ["Lily went home."];
  const n = llama.tokenizer!.encode(docs[0]!).length;
  assert.equal(llama.tokenizer!.addsBos, true);
  const st = await computeStats(llama, corpusFromDocuments(docs), { layers: [1], cacheDir: null }, silent);
  assert.equal(st.get(1)!.count, n);
});

test("cache hit returns the same sums; resume after an interrupted run is bit-identical", async () => {
  const dir = tmpDir("cache");
  try {
    const corpus = corpusFromDocuments(sentences(90, 11));
    const params: StatsParams = { layers: [1, 3], samples: 80, maxTokens: 32, groupSize: 10, checkpointEvery: 20, tokenBudget: 96 };
    // uninterrupted reference (own cache dir)
    const whole = await computeStats(llama, corpus, { ...params, cacheDir: path.join(dir, "a") }, silent);
    assert.equal(whole.get(1)!.provenance.docsDone, 80);
    // cache hit: no progress (= no computation), same bits
    let progressed = 0;
    const hit = await computeStats(llama, corpus, { ...params, cacheDir: path.join(dir, "a") }, { log: () => {}, onProgress: () => progressed++ });
    assert.equal(progressed, 0, "a complete cache entry must not recompute");
    assertBitIdentical(hit, whole, "cache hit");
    assertBitIdentical(loadCachedStats(llama, corpus, { ...params, cacheDir: path.join(dir, "a") }), whole, "loadCachedStats");

    // interrupted: throw after the first checkpoint (simulates kill -9 after an atomic write)
    const cacheB = path.join(dir, "b");
    await assert.rejects(
      computeStats(llama, corpus, { ...params, cacheDir: cacheB }, { log: () => {}, onCheckpoint: (d) => { throw new Error(`crash after ${d}`); } }),
      /crash after 20/,
    );
    const files = statsCacheFiles(llama, corpus, { ...params, cacheDir: cacheB })!;
    const partial = readStatsFile(files.get(1)!);
    assert.equal(partial.provenance.docsDone, 20);
    assert.ok(partial.count > 0 && partial.count < whole.get(1)!.count);
    assert.equal(loadCachedStats(llama, corpus, { ...params, cacheDir: cacheB }).size, 0, "a partial entry is not a cache hit");
    const logs: string[] = [];
    const resumed = await computeStats(llama, corpus, { ...params, cacheDir: cacheB }, { log: (m) => logs.push(m) });
    assert.ok(logs.some((m) => /resuming from 20\/80/.test(m)), `expected a resume message, got ${JSON.stringify(logs)}`);
    assertBitIdentical(resumed, whole, "resumed vs uninterrupted");

    // layers at different resume points (a crash between two layer files): still bit-identical
    const cacheC = path.join(dir, "c");
    let n = 0;
    await assert.rejects(computeStats(llama, corpus, { ...params, cacheDir: cacheC }, { onCheckpoint: () => { if (++n === 2) throw new Error("crash"); } }), /crash/);
    const cacheD = path.join(dir, "d");
    await assert.rejects(computeStats(llama, corpus, { ...params, cacheDir: cacheD }, { onCheckpoint: () => { throw new Error("crash"); } }), /crash/);
    const filesC = statsCacheFiles(llama, corpus, { ...params, cacheDir: cacheC })!;
    fs.copyFileSync(path.join(cacheD, path.basename(files.get(3)!)), filesC.get(3)!); // layer 1 at 40 documents, layer 3 at 20
    assert.equal(readStatsFile(filesC.get(1)!).provenance.docsDone, 40);
    assert.equal(readStatsFile(filesC.get(3)!).provenance.docsDone, 20);
    const mixed = await computeStats(llama, corpus, { ...params, cacheDir: cacheC }, silent);
    assertBitIdentical(mixed, whole, "mixed resume points");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("merge of two halves equals the whole (rounding); directory corpus; merge refuses other layers", async () => {
  const dir = tmpDir("merge");
  try {
    const docs = sentences(40, 3);
    fs.mkdirSync(path.join(dir, "corpus"));
    fs.writeFileSync(path.join(dir, "corpus", "part1.txt"), docs.slice(0, 25).join("\n") + "\n");
    fs.writeFileSync(path.join(dir, "corpus", "part2.jsonl"), docs.slice(25).map((t) => JSON.stringify({ text: t })).join("\n") + "\n");
    const p: StatsParams = { layers: [2], maxTokens: 40, cacheDir: null };
    const a = (await computeStats(llama, openCorpus(path.join(dir, "corpus", "part1.txt")), p, silent)).get(2)!;
    const b = (await computeStats(llama, openCorpus(path.join(dir, "corpus", "part2.jsonl")), p, silent)).get(2)!;
    const all = (await computeStats(llama, openCorpus(path.join(dir, "corpus")), p, silent)).get(2)!;
    const merged = mergeStats(a, b);
    assert.equal(merged.count, all.count);
    assert.equal(merged.provenance.docsDone, 40);
    const rel = maxRelDiff(merged.sum, all.sum);
    assert.ok(rel <= 1e-5, `merged vs whole: rel diff ${rel} > 1e-5`);
    const other = (await computeStats(llama, corpusFromDocuments(docs.slice(0, 3)), { ...p, layers: [3] }, silent)).get(3)!;
    assert.throws(() => mergeStats(a, other), (e: unknown) => e instanceof DeltaEditError && /layers differ/.test(e.message));
    const g = (await computeStats(gpt2, corpusFromDocuments(docs.slice(0, 3)), { layers: [1], cacheDir: null }, silent)).get(1)!;
    assert.throws(() => mergeStats({ ...a, provenance: { ...a.provenance, layer: 1 } }, g), (e: unknown) => e instanceof DeltaEditError);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function hasNumpy(): boolean {
  try {
    execFileSync("python3", ["-c", "import numpy"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

test("npz import: np.savez (mom2.mom2 f4 + mom2.count) and np.savez_compressed (mom2 f8 + count, Fortran order)", (t) => {
  if (!hasNumpy()) {
    t.skip("python3 with numpy is not available: cannot create reference .npz files");
    return;
  }
  const dir = tmpDir("npz");
  try {
    const script = `
import numpy as np, sys
d = sys.argv[1]
rng = np.random.default_rng(0)
k = rng.standard_normal((50, 7)).astype(np.float32)
s = k.T @ k
np.savez(d + "/plain.npz", **{"mom2.constructor": np.array("SecondMoment()"), "mom2.count": np.array(50), "mom2.mom2": s})
np.savez_compressed(d + "/comp.npz", mom2=np.asfortranarray(s.astype(np.float64) + np.arange(49).reshape(7, 7)), count=np.array(50, dtype=np.int64))
s.tofile(d + "/sum.f32")
`;
    execFileSync("python3", ["-c", script, dir]);
    const ref = new Float32Array(new Uint8Array(fs.readFileSync(path.join(dir, "sum.f32"))).buffer); // (7, 7)
    const m = importNpzStats(path.join(dir, "plain.npz"), { layer: 3 });
    assert.equal(m.count, 50);
    assert.equal(m.dIn, 7);
    assert.equal(m.provenance.layer, 3);
    assert.deepEqual(Array.from(m.sum), Array.from(ref), "stored f4 mom2 must round-trip exactly");
    const c = importNpzStats(path.join(dir, "comp.npz"), { layer: 0 });
    assert.equal(c.count, 50);
    for (let i = 0; i < 7; i++) for (let j = 0; j < 7; j++) {
      const want = Math.fround(ref[i * 7 + j]! + (i * 7 + j)); // f8 → f32, row-major after the Fortran transpose
      assert.ok(Math.abs(c.sum[i * 7 + j]! - want) <= 1e-6 * Math.abs(want) + 1e-6, `comp.npz (${i},${j}): ${c.sum[i * 7 + j]} vs ${want}`);
    }
    assert.ok(readNpz(path.join(dir, "plain.npz"), ["mom2.count"]).has("mom2.count"));
    fs.writeFileSync(path.join(dir, "bad.npz"), "not a zip");
    assert.throws(() => importNpzStats(path.join(dir, "bad.npz"), { layer: 0 }), (e: unknown) => e instanceof DeltaEditError && /not a zip/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function captureIO(): CliIO & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [], stderr: string[] = [];
  return { stdout, stderr, out: (s) => void stdout.push(s), err: (s) => void stderr.push(s) };
}

async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIO();
  const args = parseArgs(statsCommand, argv);
  assert.notEqual(args, "help");
  const code = await statsCommand.run(args as Exclude<typeof args, "help">, io);
  return { code, out: io.stdout.join(""), err: io.stderr.join("") };
}

test("CLI stats: compute (--json, table), cache, merge", async () => {
  const dir = tmpDir("cli");
  try {
    const corpusFile = path.join(dir, "docs.txt");
    fs.writeFileSync(corpusFile, sentences(30, 5).join("\n") + "\n");
    const cache = path.join(dir, "cache");
    const base = ["--model", fixtureModel("stories260k"), "--corpus", corpusFile, "--layers", "1,3", "--max-tokens", "32", "--cache-dir", cache];
    const r1 = await runCli([...base, "--json", "--eig"]);
    assert.equal(r1.code, 0);
    const j = JSON.parse(r1.out) as { layers: { layer: number; count: number; trace: number; topEigenvalue: number; file: string; docsDone: number }[] };
    assert.deepEqual(j.layers.map((l) => l.layer), [1, 3]);
    assert.ok(j.layers.every((l) => l.count > 0 && l.trace > 0 && l.topEigenvalue > 0 && l.topEigenvalue <= l.trace * (1 + 1e-5) && l.docsDone === 30 && fs.existsSync(l.file)));
    assert.match(r1.err, /stats \[#+\] 30\/30 docs/);
    const direct = (await computeStats(llama, openCorpus(corpusFile), { layers: [1], maxTokens: 32, cacheDir: cache }, silent)).get(1)!;
    assert.equal(direct.count, j.layers[0]!.count, "CLI and API share the cache entry");
    const r2 = await runCli(base);
    assert.match(r2.out, /^ *layer +F +count +docs +trace\(C0\) +file\n/);
    assert.match(r2.err, /loaded from the cache/);
    const out = path.join(dir, "merged.safetensors");
    const r3 = await runCli(["--merge", j.layers[0]!.file, "--merge", j.layers[0]!.file, "--out", out, "--json"]);
    assert.equal(r3.code, 0);
    assert.equal(readStatsFile(out).count, 2 * j.layers[0]!.count);
    await assert.rejects(runCli(["--merge", j.layers[0]!.file, "--merge", j.layers[1]!.file, "--out", out]), /layers differ/);
    await assert.rejects(runCli(["--corpus", corpusFile]), (e: unknown) => e instanceof DeltaEditError && e.code === "E_USAGE");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("corpus smaller than samples: all documents, logged", async () => {
  const logs: string[] = [];
  const corpus: CorpusSource = corpusFromDocuments(["a b c", "d e f"]);
  const st = await computeStats(gpt2, corpus, { layers: [0], samples: 10, cacheDir: null }, { log: (m) => logs.push(m) });
  assert.equal(st.get(0)!.provenance.docsTotal, 2);
  assert.ok(logs.some((m) => /fewer than samples/.test(m)));
});
