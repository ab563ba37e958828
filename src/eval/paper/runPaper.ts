/**
 * `runPaper`: the DeltaEdit paper's experiments from one call (issue #13, deliverable 3), as durable
 * stages in one output directory (stages.ts: each stage's output written atomically when it
 * completes; `resume` skips completed stages, and an interrupted bench resumes as `bench` does):
 *
 *   bench:<id>     for each method, `benchmark` (the `deltaedit bench` code path) over the same stream
 *                  with the scaled checkpoints (schedule.ts), general-ability checks on:
 *                  <out>/bench/<id>/ (its sessions, per-case records, results.json, report.html)
 *   beta:<β>       DeltaEdit (official variant) with varMultiplier β on the shorter sweep stream,
 *                  scored at its end; trigger rate = triggered / requests from its session journal
 *   overlap        mean |g_ji| and |h_jl| per method vs edits, from each final session's factors (overlap.ts)
 *   representation hidden states of unrelated prompts before / after each stream, PCA, shift (representation.ts)
 *   cases          greedy generations for a few edited subjects, unedited and per method (caseStudy.ts)
 * (the analyses and the trigger counts: finalSessions.ts), then always writes <out>/paper.json and <out>/report.html from the stages' outputs.
 *
 * With `seeds` N > 1 (`--seeds N`) the main stream's methods run on N orderings of the same records:
 * each `bench:<id>` is `bench --seeds N` (eval/bench.ts `runBenchOrderings`: ordering k = the shuffle
 * `streamOrdering(stream, k)`, in `bench/<id>/seed-<k>/`, each ordering resumable on its own), the
 * analyses run per ordering as stages `overlap:seed-<k>` and `representation:seed-<k>`, and paper.json
 * holds per-ordering values, means with 95 % confidence intervals, and the verdict (each DeltaEdit
 * variant minus AlphaEdit, paired over the orderings). The β sweep and the case study stay on
 * ordering 0 (the file order; the sweep would cost N times as many edits). `seeds` 1 is the
 * one-ordering run, stage names, layout and paper.json unchanged.
 *
 * A method whose bench fails is reported (status failed, the error) and left out of the analyses;
 * the other stages go on, and a resume retries it.
 */
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import type { MethodName } from "../../edit/methods/method.js";
import { readModelConfig } from "../../model/config.js";
import { resolveModelDir } from "../../model/hub.js";
import { loadTokenizer } from "../../model/tokenizer.js";
import { packageVersion } from "../../util/version.js";
import { writeFileAtomic, writeJsonAtomic } from "../../util/fsio.js";
import { benchmark } from "../benchmark.js";
import { ORDERING_SHUFFLE, streamOrdering } from "../bench.js";
import { CONFIDENCE } from "../report/acrossSeeds.js";
import { loadDatasetFile } from "../datasets/detect.js";
import { recordsThatFit } from "../datasets/fit.js";
import type { EvalRecord } from "../datasets/record.js";
import type { BenchMethod, BenchOrderings, BenchReport, BenchRun } from "../report/benchReport.js";
import type { ResultsFile } from "../report/json.js";
import { renderPaperHtml } from "../report/paperHtml.js";
import {
  overlapAcrossOrderings, PAPER_FORMAT, PAPER_VERSION, paperGeneral, paperNoise, paperTable, paperVerdict, representationAcrossOrderings,
  type PaperBetaPoint, type PaperMethodInfo, type PaperOverlapMethod, type PaperReport, type PaperRepresentation, type PaperStage,
} from "../report/paperReport.js";
import { casesOf, overlapOf, representationOf, triggerCounts, type FinalInputs, type FinalSession } from "./finalSessions.js";
import { DEFAULT_BETAS, defaultStreamLength, defaultSweepLength, paperSchedule, type PaperSchedule } from "./schedule.js";
import { claimOutput, StageStore } from "./stages.js";

/** One method of the reproduction: a registry method with fixed parameters, under a unique id. */
export interface PaperMethodSpec {
  id: string;
  method: MethodName;
  params: Record<string, unknown>;
  label: string;
}

/** The paper's methods: MEMIT, AlphaEdit, DeltaEdit in both variants, then the further baselines. */
export const PAPER_METHODS: readonly PaperMethodSpec[] = Object.freeze([
  { id: "memit", method: "memit", params: {}, label: "MEMIT" },
  { id: "alphaedit", method: "alphaedit", params: {}, label: "AlphaEdit" },
  { id: "deltaedit", method: "deltaedit", params: { variant: "official" }, label: "DeltaEdit (official)" },
  { id: "deltaedit-paper", method: "deltaedit", params: { variant: "paper" }, label: "DeltaEdit (paper)" },
  { id: "prune", method: "prune", params: {}, label: "PRUNE" },
  { id: "rect", method: "rect", params: {}, label: "RECT" },
  { id: "rome", method: "rome", params: {}, label: "ROME" },
  { id: "ft", method: "ft", params: {}, label: "FT" },
] satisfies PaperMethodSpec[]);

/** The specs of these ids (E_USAGE naming the known ids otherwise). */
export function paperMethods(ids: readonly string[]): PaperMethodSpec[] {
  return ids.map((id) => {
    const s = PAPER_METHODS.find((m) => m.id === id);
    if (!s) throw new DeltaEditError("E_USAGE", `paper: unknown method "${id}"`, { hint: `one of ${PAPER_METHODS.map((m) => m.id).join(", ")}` });
    return s;
  });
}

/** Progress of a paper run: work units (≈ edits) done of the total, the stage and a detail. */
export interface PaperProgress {
  stage: string;
  index: number; // 0-based stage index
  stages: number;
  done: number;
  total: number;
  detail: string;
}

/** Options of `runPaper` (the `paper` command's flags). */
export interface PaperOptions {
  /** Model directory (or Hub id). */
  model: string;
  /** The edit records (MultiCounterFact format, e.g. `<world>/world/edits.json`). */
  dataset: string;
  /** Held-out text, one document per line (perplexity along the stream). */
  heldOut?: string;
  /** JSONL `{prompt, subject, target}` facts never edited (accuracy along the stream; the representation prompts). */
  controlFacts?: string;
  /** Corpus for statistics the model does not ship. */
  statsCorpus?: string;
  /** Main stream length (default 8·C, capped by the records). */
  edits?: number;
  /** Explicit checkpoints instead of the scaled schedule. */
  checkpoints?: number[];
  /** Methods (default all of PAPER_METHODS). */
  methods?: readonly PaperMethodSpec[];
  /** β values of the sweep (default 0.5, 1, 2, 3, 5); empty: no sweep. */
  betas?: readonly number[];
  /** β-sweep stream length (default 2·C, capped by the main stream). */
  sweepEdits?: number;
  /** Per registry method, parameters by our names (applied under each spec's own). */
  params?: Partial<Record<MethodName, Record<string, unknown>>>;
  preset?: string;
  seed?: number;
  /**
   * Orderings of the main stream (default 1: the file order, today's run). N > 1: every method runs
   * on N orderings of the same records (ordering 0 = file order, k > 0 the seeded shuffle of `bench
   * --seeds`), the analyses per ordering, and paper.json / the report give means with 95 %
   * confidence intervals and the DeltaEdit − AlphaEdit verdict; the β sweep and case study use ordering 0.
   */
  seeds?: number;
  out: string;
  /** Continue the run in `out` (otherwise an existing run there is an error). */
  resume?: boolean;
  /** Unrelated prompts for the representation shift, at most this many (default 200). */
  representationPrompts?: number;
  /** Case-study subjects (default 4). */
  cases?: number;
  /** Tokens generated per case-study prompt (default 20; generation also stops at EOS). */
  caseTokens?: number;
  /** Progress notes and the schedule (default: discarded). */
  log?: (msg: string) => void;
  /** Called as the stages advance (work units ≈ edits; for a progress line with an ETA). */
  onProgress?: (p: PaperProgress) => void;
}

/** Everything the stages need to know about the run, fixed at its start. */
interface Plan {
  o: PaperOptions;
  modelDir: string;
  cfg: ReturnType<typeof readModelConfig>;
  records: EvalRecord[];
  schedule: PaperSchedule;
  sweep: number;
  methods: PaperMethodSpec[];
  betas: number[];
  store: StageStore;
  log: (m: string) => void;
}

/** Run (or resume) the reproduction; returns what it wrote to `<out>/paper.json`. */
export async function runPaper(o: PaperOptions): Promise<PaperReport> {
  const log = o.log ?? (() => {});
  const modelDir = await resolveModelDir(o.model, { log });
  const cfg = readModelConfig(modelDir);
  const tok = loadTokenizer(modelDir);
  const loaded = loadDatasetFile(o.dataset, { tokenizer: tok });
  const fit = recordsThatFit(loaded.records, tok, cfg.maxPositions);
  const records = fit.records;
  if (records.length === 0) throw new DeltaEditError("E_ARG", `paper: ${o.dataset} has no usable records`);
  if (o.edits !== undefined && (!Number.isInteger(o.edits) || o.edits < 1)) throw new DeltaEditError("E_USAGE", `paper: edits must be a positive integer, got ${o.edits}`);
  const seeds = o.seeds ?? 1;
  if (!Number.isInteger(seeds) || seeds < 1) throw new DeltaEditError("E_USAGE", `paper: seeds (orderings of the stream) must be a positive integer, got ${o.seeds}`);
  const stream = Math.min(o.edits ?? defaultStreamLength(cfg.hiddenSize, records.length), records.length);
  if (o.edits !== undefined && o.edits > records.length) log(`paper: ${o.dataset} has ${records.length} usable records; the stream is ${stream} edits, not ${o.edits}`);
  const schedule = paperSchedule(cfg.hiddenSize, stream);
  if (o.checkpoints !== undefined) {
    schedule.checkpoints = [...new Set([...o.checkpoints.filter((c) => Number.isInteger(c) && c > 0 && c < stream), stream])].sort((a, b) => a - b);
    schedule.rule = `explicit checkpoints ${schedule.checkpoints.join(", ")} (the scaled rule would give: ${schedule.rule})`;
  }
  const sweep = Math.min(o.sweepEdits ?? defaultSweepLength(cfg.hiddenSize, stream), stream);
  const methods = [...(o.methods ?? PAPER_METHODS)];
  if (new Set(methods.map((m) => m.id)).size !== methods.length) throw new DeltaEditError("E_USAGE", `paper: a method is listed twice (${methods.map((m) => m.id).join(", ")})`);
  const betas = [...(o.betas ?? DEFAULT_BETAS)];
  for (const b of betas) if (!(Number.isFinite(b) && b > 0)) throw new DeltaEditError("E_USAGE", `paper: β values must be positive numbers, got ${b}`);
  claimOutput(o.out, {
    model: path.resolve(modelDir), dataset: path.resolve(o.dataset), stream, checkpoints: schedule.checkpoints, sweep, betas,
    methods: methods.map((m) => ({ id: m.id, method: m.method, params: m.params })), params: o.params ?? {}, preset: o.preset ?? null, seed: o.seed ?? 0,
    heldOut: o.heldOut ?? null, controlFacts: o.controlFacts ?? null, representationPrompts: o.representationPrompts ?? 200, cases: o.cases ?? 4, caseTokens: o.caseTokens ?? 20,
    ...(seeds > 1 ? { seeds } : {}), // absent for one ordering: earlier runs resume as before
  }, o.resume === true);
  const plan: Plan = { o, modelDir, cfg, records, schedule, sweep, methods, betas, store: new StageStore(o.out), log };
  log(`paper: ${stream} edits of ${records.length} usable records, model C ${cfg.hiddenSize}; ${schedule.rule}`);
  log(`paper: methods ${methods.map((m) => m.id).join(", ")}; β sweep ${betas.join(", ")} on ${sweep} edits`);
  if (seeds > 1) log(`paper: ${seeds} orderings of the stream (${ORDERING_SHUFFLE}); β sweep and case study on ordering 0`);
  // the orderings of the analyses: [null] for a one-ordering run (its stage names and layout), else 0 … N − 1
  const orderings: (number | null)[] = seeds > 1 ? Array.from({ length: seeds }, (_, k) => k) : [null];
  const suffix = (k: number | null): string => (k === null ? "" : `:seed-${k}`);

  // stages and their work units (≈ edits; an analysis ≈ 2 % of a stream per method)
  const analysisUnits = Math.max(1, Math.round(0.02 * stream * methods.length));
  const stageList: { name: string; units: number }[] = [
    ...methods.map((m) => ({ name: `bench:${m.id}`, units: stream * seeds })),
    ...betas.map((b) => ({ name: `beta:${b}`, units: sweep })),
    ...orderings.map((k) => ({ name: `overlap${suffix(k)}`, units: analysisUnits })),
    ...orderings.map((k) => ({ name: `representation${suffix(k)}`, units: analysisUnits })),
    { name: "cases", units: analysisUnits },
  ];
  const total = stageList.reduce((a, s) => a + s.units, 0);
  let before = 0;
  const stages: PaperStage[] = [];
  const progress = (name: string, frac: number, detail: string): void => {
    const i = stageList.findIndex((s) => s.name === name);
    o.onProgress?.({ stage: name, index: i, stages: stageList.length, done: before + frac * stageList[i]!.units, total, detail });
  };
  /** Run one stage unless a resume finds it done; failures are recorded and returned as null. */
  const stage = async <T>(name: string, inputs: unknown, fn: () => Promise<T>): Promise<T | null> => {
    const units = stageList.find((s) => s.name === name)!.units;
    try {
      const old = plan.store.read<T>(name, inputs);
      if (old !== null) {
        log(`paper: stage ${name}: done earlier (${old.completed}), skipped`);
        stages.push({ name, status: "resumed", seconds: old.seconds });
        return old.data;
      }
      progress(name, 0, "starting");
      const t0 = performance.now();
      const data = await fn();
      const seconds = (performance.now() - t0) / 1000;
      plan.store.write(name, inputs, data, seconds);
      stages.push({ name, status: "done", seconds });
      log(`paper: stage ${name}: done in ${seconds.toFixed(1)} s`);
      return data;
    } catch (e) {
      if (!(e instanceof DeltaEditError)) throw e; // a bug: stop
      log(`paper: stage ${name} failed: ${e.message}`);
      stages.push({ name, status: "failed", seconds: 0, error: e.message });
      return null;
    } finally {
      before += units;
    }
  };

  // 1. the bench, one method at a time
  const benchResults = new Map<string, ResultsFile>();
  const infos: PaperMethodInfo[] = [];
  for (const m of methods) {
    const benchDir = path.join("bench", m.id);
    const params = { ...(o.params?.[m.method] ?? {}), ...m.params };
    let error: string | undefined;
    const res = await stage(`bench:${m.id}`, { id: m.id, method: m.method, params, stream, checkpoints: schedule.checkpoints, ...(seeds > 1 ? { seeds } : {}) }, async () =>
      benchmark({
        ...benchInputs(plan),
        methods: [m.method], edits: stream, checkpoints: schedule.checkpoints, protocol: "checkpoints", out: path.join(o.out, benchDir), params: { [m.method]: params },
        ...(seeds > 1 ? { seeds } : {}),
        onProgress: (p) => {
          const k = p.seed ?? 0;
          const of = p.seeds !== undefined ? ` ordering ${k + 1}/${p.seeds}:` : "";
          progress(`bench:${m.id}`, (k + p.done / p.total) / (p.seeds ?? 1), `${m.id}${of} ${p.phase === "edit" ? `edit ${p.done}/${p.total}` : p.detail}`);
        },
      }),
    );
    if (res === null) error = stages[stages.length - 1]!.error;
    else benchResults.set(m.id, res);
    infos.push({ id: m.id, method: m.method, label: m.label, params, benchDir, status: res === null ? "failed" : "done", ...(error !== undefined ? { error } : {}), ...(res !== null ? { seconds: res.methods[0]?.checkpoints.at(-1)?.seconds ?? 0 } : {}) });
  }
  const done = methods.filter((m) => benchResults.has(m.id));
  // a method's final session of ordering k (null: the one-ordering layout)
  const sessionDir = (m: PaperMethodSpec, k: number | null): string => (k === null ? path.join(o.out, "bench", m.id, m.method, "session") : path.join(o.out, "bench", m.id, `seed-${k}`, m.method, "session"));

  // 2. the β sweep
  const betaPoints: PaperBetaPoint[] = [];
  for (const beta of betas) {
    const params = { ...(o.params?.deltaedit ?? {}), variant: "official", varMultiplier: beta };
    const dir = path.join(o.out, "beta", String(beta));
    const r = await stage(`beta:${beta}`, { params, sweep }, async () => {
      const res = await benchmark({
        ...benchInputs(plan), methods: ["deltaedit"], edits: sweep, protocol: "end", out: dir, params: { deltaedit: params },
        onProgress: (p) => progress(`beta:${beta}`, p.done / p.total, `β ${beta}: ${p.phase === "edit" ? `edit ${p.done}/${p.total}` : p.detail}`),
      });
      const last = res.methods[0]!.checkpoints.at(-1)!;
      const t = triggerCounts(path.join(dir, "deltaedit", "session"));
      return {
        beta, edits: sweep, requests: t.requests, triggered: t.triggered, triggerRate: t.requests > 0 ? t.triggered / t.requests : null,
        metrics: Object.fromEntries(Object.entries(last.metrics).map(([k, v]) => [k, v.mean])), noiseE: last.noise?.[0]?.noiseE ?? null, status: "done",
      } satisfies PaperBetaPoint;
    });
    betaPoints.push(r ?? { beta, edits: sweep, requests: 0, triggered: 0, triggerRate: null, metrics: {}, noiseE: null, status: "failed", error: stages[stages.length - 1]!.error ?? "failed" });
  }

  // 3. the analyses of the final sessions, per ordering (the case study: ordering 0 only)
  const doneIds = done.map((m) => m.id);
  const selected = records.slice(0, stream);
  const inputsOf = (k: number | null): FinalInputs => ({
    modelDir, hidden: cfg.hiddenSize, stream, checkpoints: schedule.checkpoints, representationPrompts: o.representationPrompts ?? 200, cases: o.cases ?? 4, caseTokens: o.caseTokens ?? 20, log,
    // the stream's records in ordering k's order (the order its bench edited them in)
    records: k === null || k === 0 ? records : [...streamOrdering(stream, k).map((i) => selected[i]!), ...records.slice(stream)],
    ...(o.statsCorpus !== undefined ? { statsCorpus: o.statsCorpus } : {}), ...(o.controlFacts !== undefined ? { controlFacts: o.controlFacts } : {}), ...(o.heldOut !== undefined ? { heldOut: o.heldOut } : {}),
  });
  const finalsOf = (k: number | null): FinalSession[] => done.map((m) => ({ id: m.id, method: m.method, dir: sessionDir(m, k) }));
  const stageInputs = (k: number | null, more: Record<string, unknown>): Record<string, unknown> => ({ methods: doneIds, ...more, ...(k !== null ? { ordering: k } : {}) });
  const overlapPer: (PaperOverlapMethod[] | null)[] = [];
  for (const k of orderings) {
    const inp = inputsOf(k);
    overlapPer.push(await stage(`overlap${suffix(k)}`, stageInputs(k, {}), async () => finalsOf(k).map((m) => overlapOf(inp, m, benchResults.get(m.id)!.model.editedLayers))));
  }
  const representationPer: (PaperRepresentation | null)[] = [];
  for (const k of orderings) {
    const inp = inputsOf(k);
    representationPer.push(await stage(`representation${suffix(k)}`, stageInputs(k, { prompts: inp.representationPrompts }), async () => representationOf(inp, finalsOf(k), (f, d) => progress(`representation${suffix(k)}`, f, d))));
  }
  const k0 = orderings[0]!;
  const inp0 = inputsOf(k0);
  const caseStudy = await stage("cases", stageInputs(k0, { cases: inp0.cases, tokens: inp0.caseTokens }), async () => casesOf(inp0, finalsOf(k0), (f, d) => progress("cases", f, d)));
  const overlap = seeds > 1 ? overlapAcrossOrderings(overlapPer) : overlapPer[0] ?? null;
  const representation = seeds > 1 ? representationAcrossOrderings(representationPer) : representationPer[0] ?? null;

  // 4. paper.json and report.html
  const ord: BenchOrderings | null = seeds > 1 ? { count: seeds, confidence: CONFIDENCE, shuffle: ORDERING_SHUFFLE, dirs: orderings.map((k) => `seed-${k}`) } : null;
  const bench = mergeBench(methods, benchResults, schedule, o.dataset, ord);
  const report: PaperReport = {
    format: PAPER_FORMAT, version: PAPER_VERSION, written: new Date().toISOString(), codeVersion: packageVersion(),
    model: { source: path.resolve(modelDir), hash: bench.model.hash, hidden: cfg.hiddenSize, dFF: cfg.intermediateSize, numLayers: cfg.numLayers },
    dataset: { file: path.resolve(o.dataset), available: records.length, stream },
    schedule, methods: infos, bench,
    table: paperTable(bench, schedule), noise: paperNoise(bench), overlap: overlap ?? [], representation: representation ?? null,
    betaSweep: { edits: sweep, variant: "official", points: betaPoints },
    caseStudy: caseStudy === null ? null : { maxNewTokens: o.caseTokens ?? 20, cases: caseStudy },
    general: paperGeneral(bench), stages,
    notes: [
      `Schedule: ${schedule.rule}.`,
      ...(ord !== null ? [`Orderings: every method ran on ${seeds} orderings of the same ${stream} records (${ORDERING_SHUFFLE}); numbers are means over the orderings with 95 % confidence intervals (Student t, ${seeds - 1} df); the overlap and representation analyses ran on each ordering's final sessions; the PCA points, the β sweep and the case study are ordering 0 (file order) only.`] : []),
      `β sweep: DeltaEdit (official variant) with varMultiplier β ∈ {${betas.join(", ")}} on the first ${sweep} edits; trigger rate = triggered requests / requests, from each session's journal.`,
      ...infos.filter((m) => m.status === "failed").map((m) => `${m.label} failed: ${m.error ?? ""}`),
    ],
  };
  if (ord !== null) {
    report.orderings = ord;
    report.verdict = paperVerdict(report);
  }
  writeJsonAtomic(path.join(o.out, "paper.json"), report);
  writeFileAtomic(path.join(o.out, "report.html"), renderPaperHtml(report));
  return report;
}

/** The benchmark options every bench stage shares. */
function benchInputs(plan: Plan): Omit<Parameters<typeof benchmark>[0], "methods" | "edits" | "out"> {
  const o = plan.o;
  return {
    // the records as loaded here (not the file): every stage edits exactly the stream the case study picks from
    model: o.model, dataset: plan.records, seed: o.seed ?? 0, neighborhood: "standard", batchSize: 1,
    ...(o.preset !== undefined ? { preset: o.preset } : {}),
    stats: o.statsCorpus !== undefined ? { corpus: o.statsCorpus } : {},
    ...(o.heldOut !== undefined ? { heldOut: o.heldOut } : {}),
    ...(o.controlFacts !== undefined ? { controlFacts: o.controlFacts } : {}),
    log: plan.log,
  };
}

/** One BenchReport over every method's bench (methods named by their ids and labelled; with `orderings`, their runs and the orderings). */
function mergeBench(methods: readonly PaperMethodSpec[], results: ReadonlyMap<string, ResultsFile>, schedule: PaperSchedule, dataset: string, orderings: BenchOrderings | null): BenchReport {
  const first = [...results.values()][0];
  const merged: BenchMethod[] = methods.filter((m) => results.has(m.id)).map((m) => ({ ...results.get(m.id)!.methods[0]!, name: m.id, label: m.label }));
  const selection = `first ${schedule.stream} usable records in file order`;
  const report: BenchReport = {
    title: `DeltaEdit paper reproduction on ${path.basename(dataset)}`,
    codeVersion: first?.codeVersion ?? packageVersion(),
    ...(first?.created !== undefined ? { created: first.created } : {}),
    model: first?.model ?? { name: "", hash: "" },
    dataset: { name: path.basename(dataset), records: schedule.stream, selection: orderings === null ? selection : `${selection}; ${orderings.count} orderings of them (${orderings.shuffle})` },
    protocol: { name: "checkpoints", batchSize: 1, totalEdits: schedule.stream, checkpoints: schedule.checkpoints, description: `every record edited so far is scored at each checkpoint; ${schedule.rule}` },
    modes: first?.modes ?? {},
    seeds: first?.seeds ?? {},
    methods: merged,
  };
  if (orderings === null) return report;
  // each method's runs (one per ordering), named by id, sessions relative to the paper's output directory
  report.runs = methods.flatMap((m) => (results.get(m.id)?.runs ?? []).map((r): BenchRun => ({ ...r, method: m.id, ...(r.sessionDir !== undefined ? { sessionDir: `bench/${m.id}/${r.sessionDir}` } : {}) })));
  report.seeds = { ...report.seeds, orderings: orderings.count };
  report.orderings = orderings;
  return report;
}
