/**
 * Editing benchmark (part of `npm run bench`), side by side in one run:
 *  1. per-edit time of DeltaEdit and AlphaEdit (batch 1, all optimisation steps run) on random
 *     GPT-2-small- and GPT-2-medium-shaped models with GPT-2's tokenizer, with its breakdown
 *     (target optimisation, keys, solve, projection), fast path (prefix caching + incremental exact
 *     solve) vs the reference formulation in our own code (full rerun + dense d_in × d_in solve);
 *  2. the per-edit solve at d_in = 6400 (gpt2-xl's width) after 0, 1000 and 3000 edits: incremental
 *     exact solve vs the dense reference solve.
 * Environment: BENCH_QUICK=1 skips GPT-2-medium; BENCH_EDITS=n edits per configuration (default 4);
 * BENCH_XL=1 adds the GPT2-XL shape (fast path only; ~6 GB of memory and minutes of set-up).
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as ops from "../src/kernels/ops.js";
import { corpusFromDocuments } from "../src/edit/corpus.js";
import { computeStats } from "../src/edit/covariance.js";
import { secondMomentMatrix } from "../src/edit/secondMoment.js";
import { AlphaEdit } from "../src/edit/methods/alphaedit.js";
import { DeltaEdit } from "../src/edit/methods/deltaedit.js";
import type { EditContext, EditMethod } from "../src/edit/methods/method.js";
import { NullSpaceProjector } from "../src/edit/projector.js";
import type { EditRequest } from "../src/edit/request.js";
import { AlphaEditSolver, denseAlphaEditSolve } from "../src/edit/solve.js";
import { generateContextTemplates } from "../src/edit/templates.js";
import { parseModelConfig, type ModelConfig } from "../src/model/config.js";
import { LanguageModel } from "../src/model/model.js";
import { loadTokenizer } from "../src/model/tokenizer.js";
import { Rng } from "../src/util/rng.js";

const threads = Number(process.env["BENCH_THREADS"] ?? 2);
ops.setThreads(threads);
const info = ops.blasInfo();
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
console.log("# deltaedit editing benchmark");
console.log(`blas: ${info.config} | kernel ${info.coreName} (OPENBLAS_CORETYPE source: ${info.coreTypeSource}) | threads ${info.threads}\n`);

function gemmPeak(): number {
  const n = 1024;
  const a = new Float32Array(n * n).fill(0.5);
  const c = new Float32Array(n * n);
  ops.gemm(a, a, c, { m: n, n, k: n });
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    ops.gemm(a, a, c, { m: n, n, k: n });
    best = Math.min(best, performance.now() - t);
  }
  return (2 * n ** 3) / (best / 1000) / 1e9;
}
const peak = gemmPeak();
console.log(`GEMM peak (1024³, best of 5): ${peak.toFixed(1)} GFLOP/s\n`);

const gpt2Shape = (layers: number, C: number, heads: number): ModelConfig =>
  parseModelConfig({ model_type: "gpt2", vocab_size: 50257, n_embd: C, n_layer: layers, n_head: heads, n_positions: 1024, layer_norm_epsilon: 1e-5, activation_function: "gelu_new" }, `gpt2 ${layers}x${C}`);

const SUBJECTS = ["Danielle Darrieux", "Edwin of Northumbria", "Toko Yasuda", "Autonomous University of Madrid", "Thomas Joannes Stieltjes", "Anaal Nathrakh", "Apple A5", "Go Hyeon-jeong"];
const PROMPTS = ["The mother tongue of {} is", "{} is a native speaker of", "{} was born in", "{} is affiliated with the religion", "The headquarters of {} is in"];
const TARGETS = ["English", "French", "Paris", "Christianity", "Sweden"];

function requests(n: number): EditRequest[] {
  return Array.from({ length: n }, (_, i) => ({ caseId: String(i), index: i, prompt: PROMPTS[i % PROMPTS.length]!, subject: SUBJECTS[i % SUBJECTS.length]!, targetNew: TARGETS[(i * 3) % TARGETS.length]!, targetTrue: null, relationId: null }));
}

async function editBench(label: string, cfg: ModelConfig, layers: number[], edits: number, fastOnly = false): Promise<void> {
  const tok = loadTokenizer(path.join(root, "test", "fixtures", "models", "tiny-gpt2-random"));
  const base = LanguageModel.random(cfg, 1, 0.02, "uniform");
  const model = new LanguageModel(cfg, base.params, tok, null, null);
  const docs = Array.from({ length: 300 }, (_, i) => `${SUBJECTS[i % 8]} said that ${PROMPTS[i % 5]!.replace("{}", "the city")} ${TARGETS[i % 5]} in ${1900 + i}.`);
  const stats = await computeStats(model, corpusFromDocuments(docs), { layers, cacheDir: null });
  const c0 = new Map([...stats].map(([l, m]) => [l, secondMomentMatrix(m)]));
  const templates = generateContextTemplates(model, new Rng(0));
  const z = Math.max(...layers);
  const common = { editLayers: layers, targetLayer: z, lossLayer: cfg.numLayers - 1, numGradSteps: 20, lr: 0.5 };
  console.log(`## ${label}: ${(model.params.count() / 1e6).toFixed(0)} M parameters, edit layers ${layers.join(",")}, z-layer ${z}, ${edits} edits per row (batch 1, 20 steps, no early stop)`);
  console.log("| method | formulation | s / edit | target opt. | keys | solve | projection | steps run | target-opt GFLOP/s | % of GEMM peak |");
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  const totals = new Map<string, number>();
  for (const name of ["deltaedit", "alphaedit"] as const) {
    for (const fast of fastOnly ? [true] : [true, false]) {
      // fresh weights for every row: same starting model, same stream
      const fresh = new LanguageModel(cfg, base.params.zerosLike(), tok, null, null);
      for (const n of base.params.names()) fresh.params.get(n).set(base.params.get(n));
      const ctx: EditContext = { model: fresh, templates, secondMoment: (l) => c0.get(l)!, rng: new Rng(1), log: () => {} };
      const over = { ...common, prefixCache: fast, solver: fast ? "fast" : "dense", ...(name === "deltaedit" ? { warmupRequests: 1, varMultiplier: 0.01, earlyStopAvgProb: 2 } : {}) };
      const m: EditMethod = name === "deltaedit" ? new DeltaEdit(over, cfg.numLayers) : new AlphaEdit(over, cfg.numLayers);
      const acc = { total: 0, target: 0, keys: 0, solve: 0, projection: 0, steps: 0, fwd: 0 };
      const reqs = requests(edits + 1);
      m.applyBatch(ctx, [reqs[0]!]); // warm-up edit (projector construction, first ΔW_acc) not timed
      for (let i = 1; i <= edits; i++) {
        const o = m.applyBatch(ctx, [reqs[i]!]);
        const t = o.timings as typeof o.timings & { projection?: number };
        acc.total += t.total;
        acc.target += t.target;
        acc.keys += t.keys;
        acc.solve += t.solve;
        acc.projection += t.projection ?? 0;
        acc.steps += o.requests[0]!.steps;
      }
      const per = (x: number): string => (x / edits).toFixed(3);
      // matmul flops of the target optimisation: ~7 rows × ~14 tokens, blocks z+1..L−1 (prefix) or all (full), fwd + bwd (dX only)
      const C = cfg.hiddenSize;
      const blockFlops = 2 * (12 * C * C) * 98;
      const blocks = fast ? cfg.numLayers - z - 1 : cfg.numLayers;
      const head = 2 * 2 * 13 * C * cfg.vocabSize;
      const flops = (acc.steps / edits + 1) * (2 * blocks * blockFlops + head) * (fast ? 1 : 0.75 + 0.25);
      const gf = flops / (acc.target / edits) / 1e9;
      totals.set(`${name}-${fast}`, acc.total / edits);
      console.log(`| ${name} | ${fast ? "fast (prefix cache + incremental solve)" : "reference (full rerun + dense solve)"} | ${per(acc.total)} | ${per(acc.target)} | ${per(acc.keys)} | ${per(acc.solve)} | ${per(acc.projection)} | ${(acc.steps / edits).toFixed(0)} | ${gf.toFixed(1)} | ${((100 * gf) / peak).toFixed(0)} % |`);
    }
  }
  for (const name of fastOnly ? [] : ["deltaedit", "alphaedit"]) {
    console.log(`speed-up ${name}: ${(totals.get(`${name}-false`)! / totals.get(`${name}-true`)!).toFixed(2)}× (whole edit, reference / fast)`);
  }
  console.log("");
}

function solveBench(): void {
  const dIn = 6400;
  console.log(`## Per-edit solve at d_in = ${dIn} (one key, λ = 1, null space of rank ${dIn / 2})`);
  // C0 = diag(λ): half the eigenvalues below the 2e-2 threshold → P of rank dIn/2
  const c0 = new Float32Array(dIn * dIn);
  for (let i = 0; i < dIn; i++) c0[i * dIn + i] = i % 2 === 0 ? 1e-3 : 1 + (i % 7);
  let t = performance.now();
  const proj = NullSpaceProjector.fromSecondMoment(c0, dIn, { keepNullBasis: true });
  console.log(`projector (eigendecomposition of C0): ${((performance.now() - t) / 1000).toFixed(1)} s, rank ${proj.rank}`);
  const rng = new Rng(3);
  const key = (): Float32Array => Float32Array.from({ length: dIn }, () => rng.normal() * 0.05);
  const solver = new AlphaEditSolver(proj, { l2: 1 });
  console.log("| edits so far | fast exact solve (ms) | formulation | dense reference solve (ms) | ratio |");
  console.log("|---|---|---|---|---|");
  let dense: number | null = null;
  const denseP = proj.toDense();
  const pastCov = new Float32Array(dIn * dIn);
  for (const target of [0, 1000, 3000]) {
    while (solver.pastKeyCount < target) {
      const n = Math.min(100, target - solver.pastKeyCount);
      const K = new Float32Array(dIn * n);
      for (let i = 0; i < K.length; i++) K[i] = rng.normal() * 0.05;
      solver.solveAndAppend(K, n);
    }
    const k = key();
    const times: number[] = [];
    for (let r = 0; r < 5; r++) {
      t = performance.now();
      solver.solve(k, 1);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const fast = times[2]!;
    if (dense === null) {
      t = performance.now();
      denseAlphaEditSolve({ projector: denseP, pastCov, keys: k, dIn, n: 1, l2: 1 });
      dense = performance.now() - t; // O(d_in³) whatever the number of past keys
    }
    console.log(`| ${target} | ${fast.toFixed(2)} | ${solver.currentFormulation} | ${dense.toFixed(0)} | ${(dense / fast).toFixed(0)}× |`);
  }
  console.log("");
}

const edits = Number(process.env["BENCH_EDITS"] ?? 4);
await editBench("GPT-2-small shape (12 × 768, d_ff 3072)", gpt2Shape(12, 768, 12), [3, 4, 5, 6, 7], edits);
if (process.env["BENCH_QUICK"] !== "1") await editBench("GPT-2-medium shape (24 × 1024, d_ff 4096)", gpt2Shape(24, 1024, 16), [6, 7, 8, 9, 10], edits);
if (process.env["BENCH_XL"] === "1") await editBench("GPT2-XL shape (48 × 1600, d_ff 6400), fast path only", gpt2Shape(48, 1600, 25), [13, 14, 15, 16, 17], Math.min(edits, 2), true);
solveBench();
