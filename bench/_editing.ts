/**
 * Editing sections of the benchmark: per-edit time (batch 1) fast vs reference formulation with
 * the target search's FLOPs counted from its actual work, and per-request time in batches.
 *
 * Dimension legend: C = hidden width, F = d_ff, V = vocabulary, L = blocks, z = the z-layer,
 * P = scored positions of a target search.
 */
import { corpusFromDocuments } from "../src/edit/corpus.js";
import { computeStats } from "../src/edit/covariance.js";
import { AlphaEdit } from "../src/edit/methods/alphaedit.js";
import { DeltaEdit } from "../src/edit/methods/deltaedit.js";
import type { BatchOutcome, EditContext, EditMethod } from "../src/edit/methods/method.js";
import { familyDefaults, targetParams } from "../src/edit/methods/memitFamily.js";
import { secondMomentMatrix } from "../src/edit/secondMoment.js";
import { computeTarget, targetWork, type TargetWork } from "../src/edit/target.js";
import { generateContextTemplates, type ContextTemplates } from "../src/edit/templates.js";
import type { ModelConfig } from "../src/model/config.js";
import type { LanguageModel } from "../src/model/model.js";
import { Rng } from "../src/util/rng.js";
import { blockFlopsPerToken, fmt, PROMPTS, request, requests, SUBJECTS, TARGETS } from "./_common.js";

/** A model ready to edit: C0 of the edit layers, context templates, and a way back to its unedited weights. */
export interface EditSetup {
  label: string;
  model: LanguageModel;
  layers: number[]; // edit layers, ascending; z = the last
  c0: Map<number, Float32Array>; // layer → (F, F) C0
  templates: ContextTemplates;
  /** Puts the unedited edit-layer weights (and biases) back. */
  restore: () => void;
}

export async function prepareEditing(label: string, model: LanguageModel, layers: number[]): Promise<EditSetup> {
  const docs = Array.from({ length: 300 }, (_, i) => `${SUBJECTS[i % 8]} said that ${PROMPTS[i % 5]!.replace("{}", "the city")} ${TARGETS[i % 5]} in ${1900 + i}.`);
  const stats = await computeStats(model, corpusFromDocuments(docs), { layers, cacheDir: null });
  const c0 = new Map([...stats].map(([l, m]) => [l, secondMomentMatrix(m)]));
  const templates = generateContextTemplates(model, new Rng(0));
  // edits change only the edit layers' down projections (and, for some methods, their biases)
  const saved = layers.map((l) => {
    const t = model.arch.editTarget(l);
    return { w: t.W, w0: t.W.slice(), b: t.biasName ? model.params.get(t.biasName) : null, b0: t.biasName ? model.params.get(t.biasName).slice() : null };
  });
  const restore = (): void => {
    for (const s of saved) {
      s.w.set(s.w0);
      if (s.b && s.b0) s.b.set(s.b0);
    }
  };
  return { label, model, layers, c0, templates, restore };
}

type MethodName = "deltaedit" | "alphaedit";

function makeMethod(name: MethodName, s: EditSetup, fast: boolean, steps: number): { m: EditMethod; ctx: EditContext } {
  const cfg = s.model.config;
  const z = Math.max(...s.layers);
  const common = { editLayers: s.layers, targetLayer: z, lossLayer: cfg.numLayers - 1, numGradSteps: steps, lr: 0.5, prefixCache: fast, solver: fast ? "fast" : "dense" };
  // DeltaEdit: a trigger is possible from the 2nd request on and almost always fires, so the projection runs; no early stop
  const over = name === "deltaedit" ? { ...common, warmupRequests: 1, varMultiplier: 0.01, earlyStopAvgProb: 2 } : common;
  const m: EditMethod = name === "deltaedit" ? new DeltaEdit(over, cfg.numLayers) : new AlphaEdit(over, cfg.numLayers);
  const ctx: EditContext = { model: s.model, templates: s.templates, secondMoment: (l) => s.c0.get(l)!, rng: new Rng(1), log: () => {} };
  return { m, ctx };
}

/** FLOPs of one target search (matmuls: blocks and the vocabulary head), split as the table prints them. */
interface TargetFlops {
  once: number; // blocks 0..z over every token (both), + the prefixes through blocks z+1..L−1 (fast)
  blocksStep: number; // one step's blocks above z (fast) or all blocks (reference), forward + dX backward
  headStep: number; // one step's head: 2·P·C·V forward + 2·P·C·V backward
  total: number; // once + forwards × forward parts + (forwards − 1) × backward parts
}

function targetFlops(cfg: ModelConfig, w: TargetWork, z: number, fast: boolean, forwards: number): TargetFlops {
  const bf = blockFlopsPerToken(cfg);
  const above = cfg.numLayers - 1 - z; // blocks z+1..L−1: the only ones the backward runs through
  const head = 2 * w.scored * cfg.hiddenSize * cfg.vocabSize; // one direction
  const once = (z + 1) * w.fullTokens * bf + (fast ? above * w.prefixTokens * bf : 0);
  const fwd = (fast ? above * w.suffixTokens : cfg.numLayers * w.fullTokens) * bf;
  const bwd = above * (fast ? w.suffixTokens : w.fullTokens) * bf;
  return { once, blocksStep: fwd + bwd, headStep: 2 * head, total: once + forwards * (fwd + head) + (forwards - 1) * (bwd + head) };
}

interface Acc {
  total: number;
  target: number;
  keys: number;
  solve: number;
  projection: number;
  apply: number;
  forwards: number;
  requests: number;
  projected: number;
  flops: number; // target searches, every part
}

function newAcc(): Acc {
  return { total: 0, target: 0, keys: 0, solve: 0, projection: 0, apply: 0, forwards: 0, requests: 0, projected: 0, flops: 0 };
}

function add(acc: Acc, o: BatchOutcome, flops: TargetFlops | null): void {
  const t = o.timings as BatchOutcome["timings"] & { projection?: number };
  acc.total += t.total;
  acc.target += t.target;
  acc.keys += t.keys;
  acc.solve += t.solve;
  acc.apply += t.apply;
  acc.projection += t.projection ?? 0;
  for (const r of o.requests) {
    acc.forwards += r.steps + 1; // a search runs one forward more than it takes Adam steps
    acc.requests += 1;
    if (r.noise?.triggered) acc.projected += 1;
  }
  if (flops) acc.flops += flops.total;
}

/**
 * Section 1: batch 1, every step run (no early stop), fast vs reference formulation (or fast only).
 * One untimed warm-up edit per row (projector construction, first ΔW_acc), then `edits` timed edits.
 */
export function editBench(s: EditSetup, edits: number, steps: number, peak: number, fastOnly: boolean): void {
  const cfg = s.model.config;
  const z = Math.max(...s.layers);
  const flat = s.templates.memit.flat();
  const timed = requests(1, edits);
  const work = timed.map((r) => targetWork(s.model, r, flat));
  console.log(`### ${s.label}: ${(s.model.params.count() / 1e6).toFixed(0)} M parameters, edit layers ${s.layers.join(",")}, z-layer ${z}, ${edits} timed edit${edits === 1 ? "" : "s"} per row after one warm-up edit (batch 1, ${steps} steps, no early stop)`);
  console.log("| method | formulation | s / edit | target opt. | keys | solve | projection | steps run | target-opt. GFLOP/s | % of GEMM peak |");
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  const totals = new Map<string, number>();
  for (const name of ["deltaedit", "alphaedit"] as const) {
    for (const fast of fastOnly ? [true] : [true, false]) {
      s.restore(); // every row starts from the same unedited weights and edits the same stream
      const { m, ctx } = makeMethod(name, s, fast, steps);
      m.applyBatch(ctx, [request(0)]);
      const acc = newAcc();
      timed.forEach((r, i) => {
        const o = m.applyBatch(ctx, [r]);
        add(acc, o, targetFlops(cfg, work[i]!, z, fast, o.requests[0]!.steps + 1));
      });
      const adamSteps = acc.forwards - acc.requests;
      const per = (x: number): string => fmt(x / edits);
      const gf = acc.flops / acc.target / 1e9;
      totals.set(`${name}-${fast}`, acc.total / edits);
      console.log(
        `| ${name} | ${fast ? "fast (suffix cache + incremental solve)" : "reference (full rerun + dense solve)"} | ${per(acc.total)} | ${per(acc.target)} | ${per(acc.keys)} | ${per(acc.solve)} | ${per(acc.projection)} | ${(adamSteps / edits).toFixed(0)} | ${gf.toFixed(1)} | ${((100 * gf) / peak).toFixed(0)} % |`,
      );
    }
  }
  for (const name of fastOnly ? [] : ["deltaedit", "alphaedit"]) {
    console.log(`speed-up ${name}: ${(totals.get(`${name}-false`)! / totals.get(`${name}-true`)!).toFixed(2)}× (whole edit, reference / fast)`);
  }
  // the target loop alone: computeTarget on the unedited model, timed from the end of its first forward (the hook) to its return
  s.restore();
  const probe = timed.slice(0, Math.min(2, edits));
  const mean = (f: (w: TargetWork) => number): number => work.reduce((a, w) => a + f(w), 0) / work.length;
  console.log("");
  console.log(`Target search, per edit (work: mean over the ${edits} timed requests; ${work[0]!.rows} rows = ${work[0]!.rows - 1} templated + the KL row; matmul FLOPs: forward ${(blockFlopsPerToken(cfg) / 1e6).toFixed(1)} MFLOP per token per block, backward = dX only, the same again):`);
  console.log("| formulation | tokens through the blocks per step (real / padded) | blocks | scored positions P | blocks GFLOP / step (fwd + bwd) | head GFLOP / step (2·P·C·V each way) | one-time GFLOP | loop s / step (fwd + bwd) | loop GFLOP/s | loop % of GEMM peak |");
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  for (const fast of fastOnly ? [true] : [true, false]) {
    const f = (w: TargetWork): TargetFlops => targetFlops(cfg, w, z, fast, 2);
    const tp = targetParams({ ...familyDefaults, editLayers: s.layers, targetLayer: z, lossLayer: cfg.numLayers - 1, numGradSteps: steps, prefixCache: fast }, null);
    let loop = 0;
    let loopSteps = 0;
    let loopFlops = 0;
    probe.forEach((r, i) => {
      let first = 0;
      const res = computeTarget(s.model, r, flat, tp, () => {
        first = performance.now();
        return null;
      });
      loop += (performance.now() - first) / 1000; // (steps) × (backward + forward), the last forward included
      loopSteps += res.steps;
      loopFlops += res.steps * (f(work[i]!).blocksStep + f(work[i]!).headStep);
    });
    const gfLoop = loopFlops / loop / 1e9;
    const tokens = fast ? `${mean((w) => w.suffixTokens).toFixed(1)} / ${mean((w) => w.paddedSuffixTokens).toFixed(1)} (from each row's subject-last token)` : `${mean((w) => w.fullTokens).toFixed(1)} / ${mean((w) => w.paddedFullTokens).toFixed(1)} (whole rows)`;
    const blocks = fast ? `fwd ${z + 1}..${cfg.numLayers - 1}, bwd ${z + 1}..${cfg.numLayers - 1}` : `fwd 0..${cfg.numLayers - 1}, bwd ${z + 1}..${cfg.numLayers - 1}`;
    const once = fast ? "blocks 0..z + prefixes" : "blocks 0..z";
    console.log(
      `| ${fast ? "fast" : "reference"} | ${tokens} | ${blocks} | ${mean((w) => w.scored).toFixed(1)} | ${(mean((w) => f(w).blocksStep) / 1e9).toFixed(2)} | ${(mean((w) => f(w).headStep) / 1e9).toFixed(2)} | ${(mean((w) => f(w).once) / 1e9).toFixed(2)} (${once}) | ${loopSteps > 0 ? fmt(loop / loopSteps) : "–"} | ${gfLoop.toFixed(1)} | ${((100 * gfLoop) / peak).toFixed(0)} % |`,
    );
  }
  console.log(
    `FLOPs are counted at real (unpadded) tokens; attention's own products are not counted. Target-opt. GFLOP/s (table above): every forward and backward the searches ran (the last forward has no backward) plus the one-time part, over the target-optimisation time. ` +
      `Loop: ${probe.length} of the searches rerun alone on the unedited model (no DeltaEdit projection), timed from the end of the first forward to the end, over the Adam steps taken.`,
  );
  console.log("");
}

/**
 * Section 2: per-request time of one batch of N requests (fast path), for each N, continuing one
 * method instance after an untimed warm-up batch of 1 (projector construction, first ΔW_acc).
 */
export function batchBench(s: EditSetup, sizes: readonly number[], steps: number, section1Steps: number): void {
  console.log(`### ${s.label}, fast path: per-request time in a batch (one batch of each size, run once; ${steps} target step${steps === 1 ? "" : "s"} per request, no early stop)`);
  console.log("| method | batch size | s / request | target opt. | keys | solve | projection | apply | solve share | requests projected (DeltaEdit) |");
  console.log("|---|---|---|---|---|---|---|---|---|---|");
  const warmUp = 8; // request ids after section 1's; both methods edit the same stream
  for (const name of ["deltaedit", "alphaedit"] as const) {
    s.restore();
    const { m, ctx } = makeMethod(name, s, true, steps);
    m.applyBatch(ctx, [request(warmUp)]);
    let first = warmUp + 1;
    for (const N of sizes) {
      const acc = newAcc();
      add(acc, m.applyBatch(ctx, requests(first, N)), null);
      first += N;
      const per = (x: number): string => fmt(x / N);
      console.log(`| ${name} | ${N} | ${per(acc.total)} | ${per(acc.target)} | ${per(acc.keys)} | ${per(acc.solve)} | ${per(acc.projection)} | ${per(acc.apply)} | ${((100 * acc.solve) / acc.total).toFixed(2)} % | ${name === "deltaedit" ? `${acc.projected} / ${N}` : "–"} |`);
    }
  }
  s.restore();
  console.log(
    `Each batch of N is one applyBatch call with N distinct requests, timed once (batch ${Math.max(...sizes)} is a single batch, not an average). The solve is exact at every batch size (the same equations as batch 1: ` +
      "one dual/primal Cholesky extension per layer, no approximation); its share is the solve column over the total. " +
      "Each request's target search runs on its own (the requests of a batch share no steps), so the target time per request does not depend on N" +
      (steps < section1Steps ? `; at section 1's ${section1Steps} steps it is larger by ${section1Steps - steps} × the loop s / step of section 1 (BENCH_BATCH_STEPS=${section1Steps} runs it, many times slower).` : "."),
  );
  console.log("");
}
