/**
 * paper.json: everything the `paper` reproduction measured, in one record (format "deltaedit-paper",
 * version 1), and the derived views the HTML report and the terminal summary draw from it.
 *
 *   format, version, written, codeVersion
 *   model        { source, hash, hidden (C), dFF (F), numLayers }
 *   dataset      { file, available (usable records), stream (edits in the main stream) }
 *   schedule     PaperSchedule: hidden, stream, scaled [{paper, scaled}], extension, checkpoints, rule
 *   methods      [{ id, method, label, params, benchDir, status: done|failed, error?, seconds? }]
 *   bench        the bench results of every method, merged (a BenchReport: methods named by id)
 *   table        per checkpoint (with the paper's edit count where it is a scaled one), per method the
 *                efficacy / generalization / specificity metrics and their top-1 variants (mean, std)
 *   noise        per method, per checkpoint: noise_E and ‖N‖² split into activation energy and
 *                interference (spec §6.3, at the last edited layer), with the efficacy measured there
 *   overlap      per method: OverlapStats per checkpoint (mean |g_ji|, mean |h_jl|, …; eval/paper/overlap.ts),
 *                or available: false with the reason (FT: no factors)
 *   representation  prompts { source, count }; per layer the PCA fitted on the unedited states
 *                (variance, totalVariance, before: 2-D points); per method its layer, ShiftStats and
 *                `after` 2-D points (eval/paper/representation.ts)
 *   betaSweep    { edits, variant, points: [{ beta, requests, triggered, triggerRate, metrics, noiseE, status }] }
 *   caseStudy    { maxNewTokens, cases: [{ position, caseId, subject, targetNew, targetTrue, prompts,
 *                unedited: string[], methods: { id: string[] } }] }
 *   general      per method, per checkpoint: held-out perplexity and control-fact accuracy (%)
 *   stages       [{ name, status: done|resumed|failed, seconds, error? }]
 *   notes        string[]
 * Non-finite numbers are written as null.
 */
import type { OverlapStats } from "../paper/overlap.js";
import type { ShiftStats } from "../paper/representation.js";
import type { PaperSchedule } from "../paper/schedule.js";
import type { BenchReport, MetricStat } from "./benchReport.js";

/** The `format` field of paper.json. */
export const PAPER_FORMAT = "deltaedit-paper";
/** The `version` field of paper.json. */
export const PAPER_VERSION = 1;

/** The metrics of the paper's main table, in column order. */
export const PAPER_TABLE_METRICS: readonly { key: string; label: string }[] = Object.freeze([
  { key: "post_rewrite_success", label: "Eff." },
  { key: "post_paraphrase_success", label: "Gen." },
  { key: "post_neighborhood_success", label: "Spe." },
  { key: "post_rewrite_acc", label: "Eff.top" },
  { key: "post_paraphrase_acc", label: "Gen.top" },
  { key: "post_neighborhood_acc", label: "Spe.top" },
]);

/** One method of a paper run: its id, registry method, label, parameters, bench directory and status. */
export interface PaperMethodInfo {
  id: string; // unique in the run ("deltaedit-paper")
  method: string; // registry name ("deltaedit")
  label: string; // display name ("DeltaEdit (paper)")
  params: Record<string, unknown>;
  benchDir: string; // relative to the output directory
  status: "done" | "failed";
  error?: string;
  seconds?: number;
}

/** One method's row of the main table at one checkpoint: the paper's metrics (null where not measured). */
export interface PaperTableRow {
  method: string;
  label: string;
  metrics: Record<string, MetricStat | null>;
}

/** Superimposed noise of one method at one checkpoint, with its split and the efficacy there. */
export interface PaperNoisePoint {
  edits: number;
  noiseE: number;
  median: number;
  meanSquared: number;
  activationEnergy: number | null;
  interference: number | null;
  efficacy: number | null; // post_rewrite_success at the same checkpoint
  efficacyTop: number | null; // post_rewrite_acc
  label: string; // the noise variant
  approximate: boolean;
}

/** The activation / influence-overlap statistics of one method along the stream, or why there are none. */
export interface PaperOverlapMethod {
  method: string;
  available: boolean;
  reason?: string; // why not available
  note?: string; // e.g. PRUNE: factors before the pruning step
  layer: number | null;
  points: OverlapStats[];
}

/** Representation shift: the prompts, the PCA of the unedited states per layer, and each method's shift. */
export interface PaperRepresentation {
  prompts: { source: string; count: number };
  layers: { layer: number; variance: [number, number]; totalVariance: number; before: [number, number][] }[];
  methods: { method: string; layer: number; stats: ShiftStats; after: [number, number][] }[];
}

/** One β of the DeltaEdit sweep: trigger counts from the journal, scores and noise at the end of the sweep stream. */
export interface PaperBetaPoint {
  beta: number;
  edits: number;
  requests: number; // requests the monitor saw (applied)
  triggered: number;
  triggerRate: number | null; // triggered / requests
  metrics: Record<string, number>; // means at the end of the sweep stream
  noiseE: number | null;
  status: "done" | "failed";
  error?: string;
}

/** One case-study subject: the edit, its prompts, and the greedy continuations of the unedited and each edited model. */
export interface PaperCase {
  position: number;
  caseId: number;
  subject: string;
  targetNew: string;
  targetTrue: string;
  prompts: string[];
  unedited: string[];
  methods: Record<string, string[]>;
}

/** A stage of the paper run and what happened to it in this invocation. */
export interface PaperStage {
  name: string;
  status: "done" | "resumed" | "failed";
  seconds: number;
  error?: string;
}

/** paper.json: everything a paper run measured (see the module header for each field). */
export interface PaperReport {
  format: typeof PAPER_FORMAT;
  version: number;
  written: string;
  codeVersion: string;
  model: { source: string; hash: string; hidden: number; dFF: number; numLayers: number };
  dataset: { file: string; available: number; stream: number };
  schedule: PaperSchedule;
  methods: PaperMethodInfo[];
  bench: BenchReport;
  table: { edits: number; paper: number | null; rows: PaperTableRow[] }[];
  noise: { method: string; points: PaperNoisePoint[] }[];
  overlap: PaperOverlapMethod[];
  representation: PaperRepresentation | null;
  betaSweep: { edits: number; variant: string; points: PaperBetaPoint[] };
  caseStudy: { maxNewTokens: number; cases: PaperCase[] } | null;
  general: { method: string; points: { edits: number; perplexity: number | null; factAccuracy: number | null }[] }[];
  stages: PaperStage[];
  notes: string[];
}

/** The main table: per checkpoint of the merged bench, per method, the paper's metrics. */
export function paperTable(bench: BenchReport, schedule: PaperSchedule): PaperReport["table"] {
  const edits = [...new Set(bench.methods.flatMap((m) => m.checkpoints.map((c) => c.edits)))].sort((a, b) => a - b);
  return edits.map((e) => ({
    edits: e,
    paper: schedule.scaled.filter((s) => s.scaled === e).at(-1)?.paper ?? null, // the largest paper count that maps here
    rows: bench.methods
      .filter((m) => m.checkpoints.some((c) => c.edits === e))
      .map((m) => {
        const cp = m.checkpoints.find((c) => c.edits === e)!;
        return { method: m.name, label: m.label ?? m.name, metrics: Object.fromEntries(PAPER_TABLE_METRICS.map((t) => [t.key, cp.metrics[t.key] ?? null])) };
      }),
  }));
}

/** Noise per checkpoint with its split and the efficacy at the same point (methods with a headline noise summary). */
export function paperNoise(bench: BenchReport): PaperReport["noise"] {
  return bench.methods
    .map((m) => ({
      method: m.name,
      points: m.checkpoints
        .filter((c) => c.noise?.[0] !== undefined)
        .map((c) => {
          const n = c.noise![0]!;
          return {
            edits: c.edits, noiseE: n.noiseE, median: n.median, meanSquared: n.meanSquared,
            activationEnergy: n.meanActivationEnergy, interference: n.meanInterference,
            efficacy: c.metrics["post_rewrite_success"]?.mean ?? null, efficacyTop: c.metrics["post_rewrite_acc"]?.mean ?? null,
            label: n.label, approximate: n.approximate,
          };
        }),
    }))
    .filter((m) => m.points.length > 0);
}

/** Held-out perplexity and control-fact accuracy along the stream, per method. */
export function paperGeneral(bench: BenchReport): PaperReport["general"] {
  return bench.methods.map((m) => ({
    method: m.name,
    points: m.checkpoints.map((c) => ({ edits: c.edits, perplexity: c.metrics["general_perplexity"]?.mean ?? null, factAccuracy: c.metrics["general_fact_accuracy"]?.mean ?? null })),
  }));
}

/** The display label of a method id (its PaperMethodInfo label, else the id). */
export function paperLabel(report: Pick<PaperReport, "methods">, id: string): string {
  return report.methods.find((m) => m.id === id)?.label ?? id;
}
