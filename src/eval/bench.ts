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
 */
import { editedBlocks, singleEdit } from "./singleEdit.js";
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import type { MethodName } from "../edit/methods/method.js";
import type { SecondMomentFactory } from "../edit/session/session.js";
import { EditSession, type BatchRecord } from "../edit/session/session.js";
import { writeJsonAtomic } from "../edit/session/store.js";
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
  /** Extra scores of a method's model at a checkpoint (e.g. the GLUE-style tasks), reported as metrics (mean, std 0). */
  checkpointMetrics?: (model: LanguageModel, edits: number, method: MethodName) => Record<string, number>;
  /** Lines for the report's notes. */
  notes?: string[];
  log: (msg: string) => void;
  onProgress?: (p: { method: string; done: number; total: number; phase: "edit" | "eval"; detail: string }) => void;
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
    const file = path.join(o.outDir, "neighborhood_true.json");
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
    dataset: { name: o.datasetName, records: records.length, selection: `first ${records.length} records in file order` },
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
  if (o.checkpointMetrics) for (const [k, v] of Object.entries(o.checkpointMetrics(s.model, edits, s.manifest.method))) metrics[k] = { mean: v, std: 0 };
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
