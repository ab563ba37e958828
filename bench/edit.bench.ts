/**
 * Editing benchmark (part of `npm run bench`); every ratio is measured side by side in one run.
 *  1. Per-edit time of DeltaEdit and AlphaEdit (batch 1, all target steps run) on a random
 *     GPT-2-small-shaped model with GPT-2's tokenizer: fast path (suffix cache + incremental exact
 *     solve) vs the reference formulation in our own code (full rerun + dense d_in × d_in solve),
 *     with the breakdown (target optimisation, keys, solve, projection), and the target search's
 *     FLOPs counted from the work it does (src/edit/target.ts `targetWork`) and its loop's s/step.
 *  2. Per-request time in batches of 1, 10 and 100 requests (fast path, one batch of each size).
 *  3. One-time jobs: (a) the second-moment statistics, ours vs the reference's one pass per layer;
 *     (b) the null-space projector, our eigh vs the reference's SVD + dense P; then the per-edit
 *     solve at d_in = 6400 after 0, 1000 and 3000 edits, incremental exact vs dense.
 *  4. Memory: the DeltaEdit state after 0 and 1000 edits (child process, peak RSS).
 *
 * Environment (defaults in brackets):
 *   BENCH_SECTIONS [1,2,3,4]      sections to run; BENCH_QUICK=1 means BENCH_SECTIONS=1
 *   BENCH_THREADS [2]             BLAS / kernel threads
 *   BENCH_EDITS [3]               timed edits per row of section 1 (after one warm-up edit)
 *   BENCH_STEPS [20]              target steps per edit in section 1
 *   BENCH_BATCH_SIZES [1,10,100]  batch sizes of section 2
 *   BENCH_BATCH_STEPS [2]         target steps per request in section 2
 *   BENCH_STATS_DOCS [2]          documents (1024 tokens each) for 3a; 0 skips 3a
 *   BENCH_DIN [6400]              d_in of 3b and the per-edit solve (1600 for a quick check); 0 skips them
 *   BENCH_MEM_EDITS [1000]        synthetic edits of section 4, fed in batches of BENCH_MEM_BATCH [10]
 *   BENCH_MEDIUM=1                adds the GPT-2-medium shape (24 × 1024) to section 1
 *   BENCH_XL=1                    adds the GPT2-XL shape (48 × 1600, d_ff 6400) to sections 1 (fast
 *                                 path only, min(BENCH_EDITS, 2) edits), 3a and 4 (~8 GB of memory, many minutes)
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as ops from "../src/kernels/ops.js";
import { benchModel, envFlag, envInt, envInts, gemmPeak, gpt2Shape } from "./_common.js";
import { batchBench, editBench, prepareEditing } from "./_editing.js";
import { memoryBench, memoryHeader } from "./_memory.js";
import { projectorBench, solveBench, statsBench, statsHeader } from "./_onetime.js";

const threads = envInt("BENCH_THREADS", 2);
ops.setThreads(threads);
const info = ops.blasInfo();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const sections = new Set(envInts("BENCH_SECTIONS", envFlag("BENCH_QUICK") ? [1] : [1, 2, 3, 4]));
const xl = envFlag("BENCH_XL");
const edits = Math.max(1, envInt("BENCH_EDITS", 3));
const steps = Math.max(1, envInt("BENCH_STEPS", 20));
const batchSizes = envInts("BENCH_BATCH_SIZES", [1, 10, 100]);
const batchSteps = Math.max(1, envInt("BENCH_BATCH_STEPS", 2));
const statsDocs = envInt("BENCH_STATS_DOCS", 2);
const dIn = envInt("BENCH_DIN", 6400);
const memEdits = envInt("BENCH_MEM_EDITS", 1000);
const memBatch = Math.max(1, envInt("BENCH_MEM_BATCH", 10));
const maxTokens = 1024; // statistics: the reference truncates documents to the model's context

console.log("# deltaedit editing benchmark");
console.log(`blas: ${info.config} | kernel ${info.coreName} (OPENBLAS_CORETYPE source: ${info.coreTypeSource}) | threads ${info.threads}\n`);
const peak = gemmPeak();
console.log(`GEMM peak (1024³, best of 5): ${peak.toFixed(1)} GFLOP/s\n`);
const t0 = performance.now();
const mark = (what: string): void => console.log(`(${what} done ${((performance.now() - t0) / 1000).toFixed(0)} s into this benchmark)\n`);

const smallLayers = [3, 4, 5, 6, 7];
const needSmall = sections.has(1) || sections.has(2) || (sections.has(3) && statsDocs > 0);
const small = needSmall ? await prepareEditing("GPT-2-small shape (12 × 768, d_ff 3072)", benchModel(root, gpt2Shape(12, 768, 12)), smallLayers) : null;
const xlSetup = xl && (sections.has(1) || (sections.has(3) && statsDocs > 0)) ? await prepareEditing("GPT2-XL shape (48 × 1600, d_ff 6400), fast path only", benchModel(root, gpt2Shape(48, 1600, 25)), [13, 14, 15, 16, 17]) : null;
if (needSmall || xlSetup) mark("set-up (random models, statistics for C0, templates)");

if (sections.has(1)) {
  console.log("## 1. Per-edit time, batch 1\n");
  editBench(small!, edits, steps, peak, false);
  if (envFlag("BENCH_MEDIUM")) {
    const medium = await prepareEditing("GPT-2-medium shape (24 × 1024, d_ff 4096)", benchModel(root, gpt2Shape(24, 1024, 16)), [6, 7, 8, 9, 10]);
    editBench(medium, edits, steps, peak, false);
  }
  if (xlSetup) editBench(xlSetup, Math.min(edits, 2), steps, peak, true);
  mark("section 1");
}

if (sections.has(2)) {
  console.log("## 2. Batch editing: per-request time\n");
  batchBench(small!, batchSizes, batchSteps, steps);
  mark("section 2");
}

if (sections.has(3) && (statsDocs > 0 || dIn > 0)) {
  console.log("## 3. One-time jobs\n");
  if (statsDocs > 0) {
    statsHeader(peak, maxTokens);
    const notes = [await statsBench("GPT-2 small, layers 3–7", small!.model, smallLayers, statsDocs, maxTokens, peak)];
    if (xlSetup) notes.push(await statsBench("GPT2-XL, layers 13–17", xlSetup.model, xlSetup.layers, statsDocs, maxTokens, peak));
    for (const n of notes) console.log(n);
    console.log(
      "The reference (rome/layer_stats.py, used by AlphaEdit and DeltaEdit) also stops its forward at the traced layer, but computes one layer per call, so its passes cost blocks 0..l for each layer l; " +
        "our emulation of it runs each pass through its whole block l (the reference stops at the down projection's input: a few % less work). Its accumulation is a full float32 GEMM Kᵀ·K (2·F² per token); ours and this emulation use a syrk (F²).\n",
    );
    mark("section 3a");
  }
  if (dIn > 0) {
    const proj = projectorBench(dIn);
    mark("section 3b");
    solveBench(proj);
    mark("per-edit solve");
  }
}

if (sections.has(4) && memEdits > 0) {
  console.log("## 4. Memory of the DeltaEdit state\n");
  memoryHeader();
  const notes = [memoryBench("GPT-2 small (d_in 3072)", { C: 768, dIn: 3072, layers: 5, edits: memEdits, batch: memBatch, threads })];
  if (xl) notes.push(memoryBench("GPT2-XL (d_in 6400)", { C: 1600, dIn: 6400, layers: 5, edits: memEdits, batch: memBatch, threads }));
  for (const n of notes) console.log(n);
  console.log("");
  mark("section 4");
}
