/**
 * The benchmark orchestrator: runs several editing methods over the same stream of records from the
 * same starting weights, each in its own durable session (so an interrupted bench resumes), and
 * scores them under a named protocol:
 *   - "checkpoints" (DeltaEdit's): after 200 edits, every 500, and at the end, score every record
 *     edited so far on the current model;
 *   - "end" (AlphaEdit's): score every record once after the whole stream;
 *   - "immediate" (EasyEdit's): score each batch's records right after that batch is applied
 *     (summarised at the same checkpoints as "checkpoints").
 * At each checkpoint it also records the superimposed noise at the last edited layer (every method
 * with low-rank factors), DeltaEdit's cumulative projection trigger rate, and general capability
 * (held-out perplexity, accuracy on facts never edited) when those inputs are given.
 * Output: per-case records (reference-compatible fields), results.json, report.html.
 *
 * `runBenchOrderings` repeats the whole bench on N orderings of the same records (`--seeds N`):
 * ordering k in `<out>/seed-<k>/` (a complete one-ordering bench, resumable on its own), then
 * `<out>/results.json` and `report.html` with means and 95 % confidence intervals across orderings
 * (report/acrossSeeds.ts).
 */
import { editedBlocks, singleEdit } from "./singleEdit.js";
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import type { MethodName } from "../edit/methods/method.js";
import type { SecondMomentFactory } from "../edit/session/session.js";
import { EditSession, type BatchRecord } from "../edit/session/session.js";
import { writeJsonAtomic } from "../edit/session/store.js";
import { aggregateOrderings } from "./report/acrossSeeds.js";
import { readResultsJson } from "./report/json.js";
import { LanguageModel } from "../model/model.js";
import type { EvalRecord } from "./datasets/record.js";
import { evaluateCounterfactCase, neighborhoodReference, type CounterfactCaseResult, type NeighborhoodMode, type NeighborhoodReference } from "./metrics/counterfact.js";
import type { AttributeSnippets, TfidfModel } from "./metrics/consistency.js";
import { factAccuracy, perplexity, type Fact } from "./metrics/general.js";
import { Rng } from "../util/rng.js";
import { summarize } from "./metrics/summary.js";
import { evaluateZsreCase, type ZsreCaseResult } from "./metrics/zsre.js";
import { summarizeNoise } from "./noise.js";
import { noiseFactorsFromSession } from "./noiseSession.js";
import type { BenchCheckpoint, BenchMethod, BenchReport, MetricStat } from "./report/benchReport.js";
import { writeHtmlReport } from "./report/html.js";
import { writeResultsJson } from "./report/json.js";

/** How a bench scores the stream (see `checkpointSchedule`). */
export type Protocol = "checkpoints" | "end" | "immediate" | "single";

export interface BenchOptions {
  modelSource: string;
  records: readonly EvalRecord[];
  datasetName: string;
  methods: readonly MethodName[];
  edits: number;
  batchSize: number;
  protocol: Protocol;
  /** Explicit checkpoint counts (default per protocol). */
  checkpoints?: number[];
  outDir: string;
  /** Where files that do not depend on the order live (the neighborhood reference tokens); default `outDir`. */
  sharedDir?: string;
  /** Text for the report's `dataset.selection` (default "first N records in file order"). */
  selection?: string;
  seed: number;
  neighborhoodMode: NeighborhoodMode;
  preset?: string;
  overrides?: Partial<Record<MethodName, Record<string, unknown>>>;
  secondMoments: SecondMomentFactory;
  /** Fluency (n-gram entropy of seeded top-k generations) and, with TF-IDF files, consistency (§3.7–3.8). */
  generation?: { seed: number; tfidf?: TfidfModel; snippets?: AttributeSnippets };
  /** General capability inputs (optional). */
  heldOutText?: string[];
  controlFacts?: Fact[];
  codeVersion: string;
  /** Extra scores of a method's model at a checkpoint (e.g. the GLUE-style tasks), reported as metrics (mean, std 0); `outDir` is this bench's. */
  checkpointMetrics?: (model: LanguageModel, edits: number, method: MethodName, outDir: string) => Record<string, number>;
  /** Lines for the report's notes. */
  notes?: string[];
  log: (msg: string) => void;
  onProgress?: (p: BenchProgress) => void;
}

/** A progress event: a method's edits or scoring; in a multi-ordering bench also which ordering (`seed` of `seeds`). */
export interface BenchProgress {
  method: string;
  done: number;
  total: number;
  phase: "edit" | "eval";
  detail: string;
  /** Multi-ordering benches: the ordering k (0-based) this event belongs to. */
  seed?: number;
  /** Multi-ordering benches: the number of orderings N. */
  seeds?: number;
}

/** How ordering k of a multi-ordering bench is drawn (recorded in the report). */
export const ORDERING_SHUFFLE = "ordering 0 = file order; ordering k > 0 = Fisher–Yates shuffle of the selected records with Rng(k)";

/**
 * Ordering k of a stream of n records as positions into the selection: k = 0 is the file order
 * (0, 1, …, n − 1), k > 0 a Fisher–Yates shuffle drawn from `new Rng(k)`. The same k gives the same
 * permutation on every machine; it does not depend on the bench's session `seed`.
 */
export function streamOrdering(n: number, k: number): number[] {
  if (!Number.isInteger(n) || n < 0) throw new DeltaEditError("E_ARG", `streamOrdering: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(k) || k < 0) throw new DeltaEditError("E_ARG", `streamOrdering: ordering must be a non-negative integer, got ${k}`);
  const order = Array.from({ length: n }, (_, i) => i);
  return k === 0 ? order : new Rng(k).shuffle(order);
}

/** DeltaEdit's schedule: 200, every multiple of 500, and the end. */
export function checkpointSchedule(protocol: Protocol, edits: number, explicit?: number[]): number[] {
  if (explicit && explicit.length > 0) return [...new Set(explicit.filter((n) => n > 0 && n <= edits).concat([edits]))].sort((a, b) => a - b);
  if (protocol === "end" || protocol === "single") return [edits];
  const out: number[] = [];
  if (edits > 200) out.push(200);
  for (let n = 500; n < edits; n += 500) out.push(n);
  out.push(edits);
  return out;
}

type CaseResult = CounterfactCaseResult | ZsreCaseResult;

interface MethodState {
  checkpoints: BenchCheckpoint[];
  immediate: Record<string, CaseResult>; // case id → result right after its batch (protocol "immediate")
  seconds: number;
}

export async function runBench(o: BenchOptions): Promise<BenchReport> {
  if (o.records.length === 0) throw new DeltaEditError("E_ARG", `bench: the dataset ${o.datasetName} has no usable records (see the rejections above)`);
  if (o.records.length < o.edits) throw new DeltaEditError("E_ARG", `bench: the dataset has ${o.records.length} usable records, fewer than --edits ${o.edits}`);
  const records = o.records.slice(0, o.edits);
  // the session's stream positions are positions in this selection (records rejected at load time leave no gap)
  const stream = records.map((r, i) => ({ ...r.request, index: i }));
  const schedule = checkpointSchedule(o.protocol, o.edits, o.checkpoints);
  fs.mkdirSync(o.outDir, { recursive: true });
  const kind = records[0]!.kind;
  // neighborhood reference tokens from the UNEDITED model (deltaedit modes, MCF only)
  let neighborhoodTrue: NeighborhoodReference | undefined;
  if (kind !== "zsre" && o.neighborhoodMode !== "standard") {
    const file = path.join(o.sharedDir ?? o.outDir, "neighborhood_true.json");
    if (fs.existsSync(file)) neighborhoodTrue = JSON.parse(fs.readFileSync(file, "utf8")) as NeighborhoodReference;
    else {
      o.log("bench: computing neighborhood reference tokens with the unedited model");
      const base = await LanguageModel.load(o.modelSource);
      neighborhoodTrue = neighborhoodReference(base, records);
      writeJsonAtomic(file, neighborhoodTrue);
    }
  }
  const methods: BenchMethod[] = [];
  let modelInfo: BenchReport["model"] = { name: o.modelSource, hash: "" };
  for (const name of o.methods) {
    const statePath = path.join(o.outDir, name, "bench-state.json");
    const state: MethodState = fs.existsSync(statePath) ? (JSON.parse(fs.readFileSync(statePath, "utf8")) as MethodState) : { checkpoints: [], immediate: {}, seconds: 0 };
    const sessionDir = path.join(o.outDir, name, "session");
    const session = fs.existsSync(path.join(sessionDir, "manifest.json"))
      ? await EditSession.open(sessionDir, { secondMoments: o.secondMoments, log: o.log, access: "write", command: "bench" })
      : await EditSession.create({ dir: sessionDir, modelSource: o.modelSource, method: name, ...(o.preset ? { preset: o.preset } : {}), overrides: o.overrides?.[name] ?? {}, batchSize: o.batchSize, seed: o.seed, codeVersion: o.codeVersion, secondMoments: o.secondMoments, log: o.log, command: "bench" });
    try {
      modelInfo = { name: o.modelSource, hash: session.manifest.model.hash, editedLayers: editedLayers(session) };
      const editTime = (index: number): number => {
        for (const r of session.journal) if (r.kind === "batch" && r.requests.some((q) => q.index === index)) return r.outcome?.timings.total ?? 0;
        return 0;
      };
      const evalCase = (r: EvalRecord, numEdits: number): CaseResult => {
        const time = editTime(records.indexOf(r)); // seconds of the edit step that applied this record
        return r.kind === "zsre"
          ? evaluateZsreCase(session.model, r, { numEdits, time })
          : evaluateCounterfactCase(session.model, r, {
              numEdits,
              time,
              neighborhoodMode: o.neighborhoodMode,
              ...(neighborhoodTrue ? { neighborhoodTrue } : {}),
              // one seeded generator per case, so a score does not depend on which other cases were scored
              ...(o.generation && r.generationPrompts.length > 0 ? { generation: { rng: new Rng(o.generation.seed * 1_000_003 + r.caseId), tfidf: o.generation.tfidf ?? null, snippets: o.generation.snippets ?? null } } : {}),
            });
      };
      if (o.protocol === "single" && !state.checkpoints.some((c) => c.edits === o.edits)) {
        // every record from the unedited weights: nothing is journaled, the weights are restored after each
        const t0 = performance.now();
        const results: CaseResult[] = [];
        records.forEach((r, i) => {
          const one = singleEdit(session, { ...r.request, index: i }, o.seed * 1_000_003 + r.caseId, () => evalCase(r, 1)); // seeded by case: independent of the order
          if (one.rejected) o.log(`rejected: ${one.rejected}`);
          else results.push({ ...one.result!, time: one.seconds });
          o.onProgress?.({ method: name, done: i + 1, total: o.edits, phase: "edit", detail: `single edit ${i + 1}` });
        });
        state.seconds += (performance.now() - t0) / 1000;
        writeCaseRecords(path.join(o.outDir, name, "single"), results);
        // general measures of the unedited model say nothing about an edit: not reported for single edits
        state.checkpoints.push(checkpointOf(session, results, o.edits, state.seconds, { ...o, heldOutText: [], controlFacts: [] }));
        writeJsonAtomic(statePath, state);
        o.log(`bench: ${name}: ${results.length} single edits scored`);
      }
      for (const target of o.protocol === "single" ? [] : schedule) {
        if (state.checkpoints.some((c) => c.edits === target)) continue; // done in an earlier (interrupted) run
        const t0 = performance.now();
        session.run(
          stream,
          {
            limit: target,
            onBatch: (p) => {
              if (o.protocol === "immediate") {
                for (const q of p.record.requests) {
                  const rec = records[q.index]!;
                  state.immediate[String(rec.caseId)] = evalCase(rec, o.batchSize);
                }
              }
              o.onProgress?.({ method: name, done: p.done, total: o.edits, phase: "edit", detail: `batch ${p.batch}` });
            },
          },
        );
        // the method's final step (PRUNE's restraint) belongs to the end of the stream, before it is scored
        if (target >= o.edits) session.finish();
        state.seconds += (performance.now() - t0) / 1000;
        if (session.position < target) throw new DeltaEditError("E_SESSION", `bench: session ${sessionDir} stopped at ${session.position} < ${target}`);
        const edited = editedRecords(session, records, target);
        o.onProgress?.({ method: name, done: target, total: o.edits, phase: "eval", detail: `scoring ${edited.length} records after ${target} edits` });
        const results = o.protocol === "immediate" ? edited.map((r) => state.immediate[String(r.caseId)]!).filter(Boolean) : edited.map((r) => evalCase(r, o.batchSize));
        writeCaseRecords(path.join(o.outDir, name, String(target)), results);
        state.checkpoints.push(checkpointOf(session, results, target, state.seconds, o));
        state.checkpoints.sort((a, b) => a.edits - b.edits);
        writeJsonAtomic(statePath, state);
        o.log(`bench: ${name}: checkpoint ${target} scored (${edited.length} records)`);
      }
      methods.push({ name, preset: session.manifest.preset, params: session.manifest.params, checkpoints: state.checkpoints });
    } finally {
      session.close(); // the writer lock (bench is the session's writer while it runs)
    }
  }
  const report: BenchReport = {
    title: `Sequential editing on ${o.datasetName}`,
    codeVersion: o.codeVersion,
    created: new Date().toISOString(),
    model: modelInfo,
    dataset: { name: o.datasetName, records: records.length, selection: o.selection ?? `first ${records.length} records in file order` },
    protocol: { name: o.protocol, batchSize: o.batchSize, totalEdits: o.edits, checkpoints: schedule, description: protocolDescription(o.protocol, o.checkpoints !== undefined) },
    modes: { ...(o.generation ? { fluency: "top-k 5, 100 tokens, one seeded generator per case", consistency: o.generation.tfidf ? "TF-IDF (reference vocabulary and idf)" : "off (no TF-IDF files)" } : {}), neighborhood: kind === "zsre" ? "ground truth (ZsRE)" : o.neighborhoodMode, success: "larger = p(new) > p(true); top = argmax", noise: "final, solver keys, request level, last edited layer" },
    seeds: { session: o.seed, ...(o.generation ? { generation: o.generation.seed } : {}) },
    methods,
    ...(o.notes && o.notes.length > 0 ? { notes: o.notes } : {}),
  };
  writeResultsJson(path.join(o.outDir, "results.json"), report);
  writeHtmlReport(path.join(o.outDir, "report.html"), report);
  return report;
}

/**
 * The bench on `orderings` orderings of the same selected records (`streamOrdering`): ordering k runs
 * every method in `<outDir>/seed-<k>/` exactly as `runBench` does for one ordering (sessions,
 * bench-state.json, case records, its own results.json and report.html; `ordering.json` lists its
 * case ids), then `<outDir>/results.json` and `report.html` aggregate them (means, 95 % CIs,
 * per-ordering values). A rerun resumes: an ordering whose results.json covers every method and
 * checkpoint is read back, not rerun; an unfinished one resumes like `runBench`. `orderings` = 1 is
 * `runBench` itself (the one-ordering layout, no `seed-0/`).
 */
export async function runBenchOrderings(o: BenchOptions, orderings: number): Promise<BenchReport> {
  if (!Number.isInteger(orderings) || orderings < 1) throw new DeltaEditError("E_ARG", `bench: seeds (orderings of the edit stream) must be a positive integer, got ${orderings}`);
  if (orderings === 1) return runBench(o);
  if (o.protocol === "single") throw new DeltaEditError("E_ARG", "bench: protocol single edits each record alone into the unedited model, so the order of the stream changes nothing", { hint: "use --seeds 1 with --protocol single" });
  if (o.records.length < o.edits) throw new DeltaEditError("E_ARG", `bench: the dataset has ${o.records.length} usable records, fewer than --edits ${o.edits}`);
  const selected = o.records.slice(0, o.edits);
  const schedule = checkpointSchedule(o.protocol, o.edits, o.checkpoints);
  fs.mkdirSync(o.outDir, { recursive: true });
  const dirs: string[] = [];
  const reports: BenchReport[] = [];
  for (let k = 0; k < orderings; k++) {
    const dirName = `seed-${k}`;
    const dir = path.join(o.outDir, dirName);
    dirs.push(dirName);
    const records = streamOrdering(selected.length, k).map((i) => selected[i]!);
    checkOrderingFile(path.join(dir, "ordering.json"), k, records);
    const done = finishedOrdering(path.join(dir, "results.json"), o, schedule);
    if (done) {
      o.log(`bench: ordering ${k} of ${orderings} finished in an earlier run (${path.join(dir, "results.json")})`);
      for (const name of o.methods) o.onProgress?.({ method: name, done: o.edits, total: o.edits, phase: "eval", detail: "finished earlier", seed: k, seeds: orderings });
      reports.push(done);
      continue;
    }
    reports.push(
      await runBench({
        ...o,
        records,
        outDir: dir,
        sharedDir: o.sharedDir ?? o.outDir,
        selection: `first ${selected.length} records in file order, ordering ${k} (${k === 0 ? "file order" : `shuffled with Rng(${k})`})`,
        log: (m) => o.log(`[ordering ${k}] ${m}`),
        onProgress: (p) => o.onProgress?.({ ...p, seed: k, seeds: orderings }),
      }),
    );
  }
  const report = aggregateOrderings(reports, { dirs, shuffle: ORDERING_SHUFFLE, selection: `first ${selected.length} records in file order` });
  writeResultsJson(path.join(o.outDir, "results.json"), report);
  writeHtmlReport(path.join(o.outDir, "report.html"), report);
  return report;
}

/** Write `<seed-k>/ordering.json` (the case ids in stream order), or check that an earlier run's matches. */
function checkOrderingFile(file: string, k: number, records: readonly EvalRecord[]): void {
  const caseIds = records.map((r) => r.caseId);
  if (fs.existsSync(file)) {
    const prev = JSON.parse(fs.readFileSync(file, "utf8")) as { ordering?: number; caseIds?: unknown[] };
    const same = prev.ordering === k && Array.isArray(prev.caseIds) && prev.caseIds.length === caseIds.length && prev.caseIds.every((c, i) => c === caseIds[i]);
    if (!same) throw new DeltaEditError("E_ARG", `bench: ${file} lists other records than ordering ${k} of this run (the dataset or --edits changed since it was written)`, { hint: `use a new --out directory, or remove ${path.dirname(file)}`, context: { file } });
    return;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeJsonAtomic(file, { format: "deltaedit-ordering", version: 1, ordering: k, shuffle: ORDERING_SHUFFLE, caseIds });
}

/** An ordering's results.json when it covers every method at every checkpoint of this run (methods in run order), else null. */
function finishedOrdering(file: string, o: BenchOptions, schedule: readonly number[]): BenchReport | null {
  if (!fs.existsSync(file)) return null;
  const r = readResultsJson(file);
  if (r.protocol.name !== o.protocol || r.protocol.totalEdits !== o.edits || r.protocol.batchSize !== o.batchSize) return null;
  const methods: BenchMethod[] = [];
  for (const name of o.methods) {
    const m = r.methods.find((x) => x.name === name);
    if (!m || !schedule.every((e) => m.checkpoints.some((c) => c.edits === e))) return null;
    methods.push(m);
  }
  return { ...r, methods };
}

function protocolDescription(p: Protocol, explicit: boolean): string {
  return p === "checkpoints"
    ? explicit
      ? "every record edited so far is scored at each checkpoint (DeltaEdit's protocol, with these checkpoints)"
      : "every record edited so far is scored after 200 edits, every 500, and at the end (DeltaEdit's protocol)"
    : p === "end"
      ? "every record is scored once after the whole stream (AlphaEdit's protocol)"
      : p === "single"
        ? "each record is edited alone into the unedited model and scored (the ROME / MEMIT papers' single edits)"
        : "each record is scored right after its batch was applied (EasyEdit's protocol)";
}

function editedLayers(s: EditSession): number[] | undefined {
  return editedBlocks(s.method);
}

/** Records whose request was applied (not rejected) among the first `n` of the stream. */
function editedRecords(s: EditSession, records: readonly EvalRecord[], n: number): EvalRecord[] {
  const applied = new Set<number>();
  for (const r of s.journal) if (r.kind === "batch") for (const q of r.requests) applied.add(q.index);
  return records.filter((_, i) => i < n && applied.has(i));
}

function writeCaseRecords(dir: string, results: readonly CaseResult[]): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const r of results) writeJsonAtomic(path.join(dir, `${r.num_edits}_edits-case_${r.case_id}.json`), r);
}

function checkpointOf(s: EditSession, results: readonly CaseResult[], edits: number, seconds: number, o: BenchOptions): BenchCheckpoint {
  const metrics: Record<string, MetricStat> = {};
  if (results.length > 0) {
    const sum = summarize(results as CaseResult[]);
    // edit-step time is in the per-case records and the checkpoint's `seconds`, not a quality metric
    for (const [k, v] of Object.entries(sum.values)) if (!k.endsWith("_time")) metrics[k] = { mean: v[0], std: v[1], count: results.length };
    if ("score" in sum && sum.score !== null) metrics["post_score"] = { mean: sum.score, std: 0 };
  }
  if (o.heldOutText && o.heldOutText.length > 0) metrics["general_perplexity"] = { mean: perplexity(s.model, o.heldOutText).perplexity, std: 0 };
  if (o.controlFacts && o.controlFacts.length > 0) metrics["general_fact_accuracy"] = { mean: 100 * factAccuracy(s.model, o.controlFacts).accuracy, std: 0 };
  if (o.checkpointMetrics) for (const [k, v] of Object.entries(o.checkpointMetrics(s.model, edits, s.manifest.method, o.outDir))) metrics[k] = { mean: v, std: 0 };
  const cp: BenchCheckpoint = { edits, metrics, seconds };
  const layers = editedLayers(s);
  const hasFactors = s.journal.some((r) => r.kind === "batch" && r.updates.some((u) => u.tensors.includes("influence")));
  if (layers && hasFactors) {
    try {
      const factors = noiseFactorsFromSession(s.dir, [Math.max(...layers)]);
      cp.noise = summarizeNoise(factors, [Math.min(edits, factors.layer(Math.max(...layers)).n)]);
    } catch (e) {
      o.log(`bench: noise measurement skipped for ${s.manifest.method}: ${(e as Error).message}`);
    }
  }
  if (s.manifest.method === "deltaedit") {
    let trig = 0;
    let tot = 0;
    for (const r of s.journal) if (r.kind === "batch") for (const q of (r as BatchRecord).outcome?.requests ?? []) {
      tot++;
      if (q.noise?.triggered) trig++;
    }
    cp.triggerRate = tot > 0 ? trig / tot : 0;
  }
  return cp;
}
