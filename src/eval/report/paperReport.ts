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
 *
 * A run on N > 1 orderings of the stream (`--seeds N`; each method's bench is `bench --seeds N`,
 * eval/bench.ts `runBenchOrderings`) has the same fields, holding means over the orderings, plus:
 *   orderings         { count N, confidence 0.95, shuffle (how ordering k is drawn), dirs ["seed-0", …]
 *                     (inside each bench/<id>/) }
 *   bench, table      every MetricStat with `ci95` (95 % CI half-width, Student t, N − 1 df) and
 *                     `perSeed` (one value per ordering, ordering 0 first); bench checkpoints' `spread`
 *   noise, general    each point's `acrossOrderings`: per number a SeedSpread { mean, ci95, perSeed }
 *   overlap           `acrossOrderings[i]` for `points[i]` (each statistic's SeedSpread)
 *   representation    each method's `stats` are means, `acrossOrderings` their SeedSpreads; the 2-D
 *                     points (`before`, `after`) are those of ordering `pointsOrdering` (0)
 *   verdict           each DeltaEdit variant minus AlphaEdit at the end of the stream, per metric:
 *                     mean difference, paired 95 % CI, significance (`paperVerdict`)
 * The β sweep and the case study run on ordering 0 (the file order) only. Files without these fields
 * (one ordering, or written before they existed) are valid version-1 files (`validatePaperReport`).
 */
import fs from "node:fs";
import { DeltaEditError } from "../../errors.js";
import type { OverlapStats } from "../paper/overlap.js";
import type { ShiftStats } from "../paper/representation.js";
import type { PaperSchedule } from "../paper/schedule.js";
import { CONFIDENCE, meanCi, pairedTest, spreadOf } from "./acrossSeeds.js";
import { reportMetrics, validateBenchReport, type BenchOrderings, type BenchReport, type MetricStat, type SeedSpread } from "./benchReport.js";

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
  /** Multi-ordering runs: `noiseE`, `meanSquared`, `activationEnergy`, `interference`, `efficacy`, `efficacyTop` across the orderings (the fields above are their means). */
  acrossOrderings?: Record<string, SeedSpread>;
}

/** The activation / influence-overlap statistics of one method along the stream, or why there are none. */
export interface PaperOverlapMethod {
  method: string;
  available: boolean;
  reason?: string; // why not available
  note?: string; // e.g. PRUNE: factors before the pruning step
  layer: number | null;
  /** Per checkpoint; in a multi-ordering run each statistic is the mean over the orderings. */
  points: OverlapStats[];
  /** Multi-ordering runs: for `points[i]`, each statistic (`OVERLAP_KEYS`) across the orderings. */
  acrossOrderings?: Record<string, SeedSpread>[];
}

/** Representation shift: the prompts, the PCA of the unedited states per layer, and each method's shift. */
export interface PaperRepresentation {
  prompts: { source: string; count: number };
  layers: { layer: number; variance: [number, number]; totalVariance: number; before: [number, number][] }[];
  /**
   * Per method: the shift statistics (multi-ordering runs: means over the orderings, with each one's
   * SeedSpread in `acrossOrderings`: relativeShift, meanShift, centroidShift, spread) and the 2-D
   * points after the stream.
   */
  methods: { method: string; layer: number; stats: ShiftStats; after: [number, number][]; acrossOrderings?: Record<string, SeedSpread> }[];
  /** Multi-ordering runs: the ordering whose states the PCA points (`before`, `after`) are (0 unless its analysis failed). */
  pointsOrdering?: number;
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
  general: { method: string; points: { edits: number; perplexity: number | null; factAccuracy: number | null; acrossOrderings?: Record<string, SeedSpread> }[] }[];
  stages: PaperStage[];
  notes: string[];
  /** Multi-ordering runs (`--seeds N`, N > 1): the orderings; `dirs` are inside each `bench/<id>/`. */
  orderings?: BenchOrderings;
  /** Multi-ordering runs: each DeltaEdit variant minus AlphaEdit at the end of the stream (null when either is missing). */
  verdict?: PaperVerdict | null;
}

/** One row of the verdict: a DeltaEdit variant minus the baseline on one number, paired over the orderings. */
export interface PaperVerdictRow {
  /** The DeltaEdit variant's method id ("deltaedit", "deltaedit-paper"). */
  method: string;
  /** A bench metric key ("post_rewrite_success", "general_perplexity", …), "noiseE", "overlap:meanAbsActivation", "overlap:meanAbsOverlap" or "shift". */
  key: string;
  label: string;
  higherIsBetter: boolean;
  /** At this many edits (the end of the stream; overlaps: the last checkpoint they have). */
  edits: number;
  /** The variant's and the baseline's means over the orderings. */
  mean: number | null;
  baselineMean: number | null;
  /** Orderings where both have a value. */
  n: number;
  /** Mean over the orderings of (variant − baseline). */
  meanDiff: number | null;
  /** Half-width of its 95 % confidence interval (paired Student t, n − 1 df); null with fewer than 2 pairs. */
  ci95: number | null;
  /** The interval excludes 0 (two-sided paired t-test at 95 %); null with fewer than 2 pairs. */
  significant: boolean | null;
  /** "better" / "worse": significant, in the metric's good / bad direction; "not significant"; "undetermined" (fewer than 2 pairs). */
  outcome: "better" | "worse" | "not significant" | "undetermined";
}

/** DeltaEdit (each variant) against AlphaEdit at the end of the stream, across the orderings of a multi-ordering run. */
export interface PaperVerdict {
  baseline: string; // "alphaedit"
  edits: number; // the stream's length
  orderings: number; // N
  confidence: number; // 0.95
  rows: PaperVerdictRow[];
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

/** A metric's SeedSpread in a multi-ordering run (undefined without per-ordering values). */
function metricSpread(s: MetricStat | undefined): SeedSpread | undefined {
  return s?.perSeed !== undefined ? { mean: s.mean, ci95: s.ci95 ?? null, perSeed: s.perSeed } : undefined;
}

/** The defined entries of `o` (undefined when none). */
function defined(o: Record<string, SeedSpread | undefined>): Record<string, SeedSpread> | undefined {
  const out = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Record<string, SeedSpread>;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Noise per checkpoint with its split and the efficacy at the same point (methods with a headline noise summary). */
export function paperNoise(bench: BenchReport): PaperReport["noise"] {
  const multi = (bench.orderings?.count ?? 1) > 1;
  return bench.methods
    .map((m) => ({
      method: m.name,
      points: m.checkpoints
        .filter((c) => c.noise?.[0] !== undefined)
        .map((c) => {
          const n = c.noise![0]!;
          const p: PaperNoisePoint = {
            edits: c.edits, noiseE: n.noiseE, median: n.median, meanSquared: n.meanSquared,
            activationEnergy: n.meanActivationEnergy, interference: n.meanInterference,
            efficacy: c.metrics["post_rewrite_success"]?.mean ?? null, efficacyTop: c.metrics["post_rewrite_acc"]?.mean ?? null,
            label: n.label, approximate: n.approximate,
          };
          const across = multi
            ? defined({
                noiseE: c.spread?.["noiseE"], meanSquared: c.spread?.["noiseMeanSquared"], activationEnergy: c.spread?.["noiseActivationEnergy"], interference: c.spread?.["noiseInterference"],
                efficacy: metricSpread(c.metrics["post_rewrite_success"]), efficacyTop: metricSpread(c.metrics["post_rewrite_acc"]),
              })
            : undefined;
          if (across !== undefined) p.acrossOrderings = across;
          return p;
        }),
    }))
    .filter((m) => m.points.length > 0);
}

/** Held-out perplexity and control-fact accuracy along the stream, per method. */
export function paperGeneral(bench: BenchReport): PaperReport["general"] {
  const multi = (bench.orderings?.count ?? 1) > 1;
  return bench.methods.map((m) => ({
    method: m.name,
    points: m.checkpoints.map((c) => {
      const across = multi ? defined({ perplexity: metricSpread(c.metrics["general_perplexity"]), factAccuracy: metricSpread(c.metrics["general_fact_accuracy"]) }) : undefined;
      return { edits: c.edits, perplexity: c.metrics["general_perplexity"]?.mean ?? null, factAccuracy: c.metrics["general_fact_accuracy"]?.mean ?? null, ...(across !== undefined ? { acrossOrderings: across } : {}) };
    }),
  }));
}

/** The statistics of OverlapStats averaged across orderings (and given a SeedSpread each). */
export const OVERLAP_KEYS = ["meanAbsActivation", "meanAbsOverlap", "meanRelativeActivation", "meanAbsCosine", "meanOwnActivation", "meanInfluenceNorm"] as const;

/**
 * The overlap analysis of a multi-ordering run from each ordering's (`per[k]`, null where that
 * ordering's analysis failed): per method and checkpoint, each statistic's mean over the orderings
 * (null where no ordering has one) and its SeedSpread. A method is unavailable when it is in the
 * first ordering that has it.
 */
export function overlapAcrossOrderings(per: readonly (readonly PaperOverlapMethod[] | null)[]): PaperOverlapMethod[] {
  const ref = per.find((p) => p !== null);
  if (ref === undefined) return [];
  return ref.map((m0) => {
    if (!m0.available) return { ...m0 };
    const mine = per.map((p) => p?.find((m) => m.method === m0.method && m.available) ?? null);
    const across: Record<string, SeedSpread>[] = [];
    const points = m0.points.map((p0) => {
      const at = mine.map((m) => m?.points.find((q) => q.edits === p0.edits) ?? null);
      const out: OverlapStats = { ...p0, approximate: at.some((q) => q?.approximate === true) };
      const a: Record<string, SeedSpread> = {};
      for (const k of OVERLAP_KEYS) {
        const sp = spreadOf(at.map((q) => (q === null ? null : q[k])));
        a[k] = sp;
        (out as unknown as Record<string, number | null>)[k] = Number.isFinite(sp.mean) ? sp.mean : null;
      }
      across.push(a);
      return out;
    });
    return { ...m0, points, acrossOrderings: across };
  });
}

const SHIFT_KEYS = ["relativeShift", "meanShift", "centroidShift", "spread"] as const;

/**
 * The representation analysis of a multi-ordering run from each ordering's (null where it failed):
 * per method the shift statistics' means over the orderings and their SeedSpreads; the PCA and the
 * 2-D points of the first ordering that has them (`pointsOrdering`).
 */
export function representationAcrossOrderings(per: readonly (PaperRepresentation | null)[]): PaperRepresentation | null {
  const k0 = per.findIndex((p) => p !== null);
  if (k0 < 0) return null;
  const ref = per[k0]!;
  return {
    ...ref,
    pointsOrdering: k0,
    methods: ref.methods.map((m0) => {
      const at = per.map((p) => p?.methods.find((m) => m.method === m0.method)?.stats ?? null);
      const stats: ShiftStats = { ...m0.stats };
      const across: Record<string, SeedSpread> = {};
      for (const k of SHIFT_KEYS) {
        const sp = spreadOf(at.map((s) => (s === null ? null : s[k])));
        across[k] = sp;
        stats[k] = sp.mean;
      }
      return { ...m0, stats, acrossOrderings: across };
    }),
  };
}

/**
 * The verdict of a multi-ordering run: for each DeltaEdit variant (methods with registry name
 * "deltaedit") and each number at the end of the stream — every bench metric, noise_E, the mean
 * |g| and |h| overlaps (at their last checkpoint) and the representation shift — the variant minus
 * `baseline` (default AlphaEdit) paired over the orderings: d_k = variant_k − baseline_k, mean d̄,
 * half-width t_{0.975, n−1} · s_d / √n, significant when |d̄| exceeds it (acrossSeeds.ts
 * `pairedTest`). Null with one ordering, or when the baseline or every variant is missing.
 */
export function paperVerdict(r: Pick<PaperReport, "bench" | "methods" | "schedule" | "overlap" | "representation">, baseline = "alphaedit"): PaperVerdict | null {
  const n = r.bench.orderings?.count ?? 1;
  if (n < 2) return null;
  const base = r.bench.methods.find((m) => m.name === baseline);
  const variants = r.methods.filter((m) => m.method === "deltaedit" && m.status === "done" && r.bench.methods.some((b) => b.name === m.id)).map((m) => m.id);
  if (base === undefined || variants.length === 0) return null;
  const end = r.schedule.stream;
  type Num = { key: string; label: string; higherIsBetter: boolean; edits: number; perSeed: (id: string) => readonly (number | null)[] | undefined };
  const cpOf = (id: string) => r.bench.methods.find((m) => m.name === id)?.checkpoints.find((c) => c.edits === end);
  const lastOverlap = (id: string) => {
    const o = r.overlap.find((x) => x.method === id && x.available);
    const i = o === undefined ? -1 : o.points.length - 1;
    return i < 0 ? undefined : { edits: o!.points[i]!.edits, across: o!.acrossOrderings?.[i] };
  };
  const nums: Num[] = reportMetrics(r.bench).map((info) => ({ key: info.key, label: info.title, higherIsBetter: info.higherIsBetter, edits: end, perSeed: (id: string) => cpOf(id)?.metrics[info.key]?.perSeed }));
  nums.push({ key: "noiseE", label: "noise_E", higherIsBetter: false, edits: end, perSeed: (id) => cpOf(id)?.spread?.["noiseE"]?.perSeed });
  for (const [k, label] of [["meanAbsActivation", "mean |g| (wrong activation)"], ["meanAbsOverlap", "mean |h| (influence overlap)"]] as const) {
    const e = lastOverlap(baseline)?.edits;
    if (e !== undefined) nums.push({ key: `overlap:${k}`, label, higherIsBetter: false, edits: e, perSeed: (id) => { const l = lastOverlap(id); return l?.edits === e ? l.across?.[k]?.perSeed : undefined; } });
  }
  if (r.representation !== null) nums.push({ key: "shift", label: "representation shift", higherIsBetter: false, edits: end, perSeed: (id) => r.representation?.methods.find((m) => m.method === id)?.acrossOrderings?.["relativeShift"]?.perSeed });
  const rows: PaperVerdictRow[] = [];
  for (const v of variants) {
    for (const x of nums) {
      const a = x.perSeed(v), b = x.perSeed(baseline);
      if (a === undefined && b === undefined) continue;
      const t = pairedTest(a ?? [], b ?? []);
      const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);
      const outcome: PaperVerdictRow["outcome"] = t.significant === null ? "undetermined" : !t.significant ? "not significant" : (t.meanDiff > 0) === x.higherIsBetter ? "better" : "worse";
      rows.push({
        method: v, key: x.key, label: x.label, higherIsBetter: x.higherIsBetter, edits: x.edits,
        mean: finite(meanCi(a ?? []).mean), baselineMean: finite(meanCi(b ?? []).mean),
        n: t.n, meanDiff: finite(t.meanDiff), ci95: t.halfWidth, significant: t.significant, outcome,
      });
    }
  }
  return { baseline, edits: end, orderings: n, confidence: CONFIDENCE, rows };
}

/** The display label of a method id (its PaperMethodInfo label, else the id). */
export function paperLabel(report: Pick<PaperReport, "methods">, id: string): string {
  return report.methods.find((m) => m.id === id)?.label ?? id;
}

/**
 * Throws E_ARG naming the first malformed field of a paper.json (e.g. `noise[0].points[1].acrossOrderings.noiseE.perSeed`).
 * Accepts every version-1 file: the multi-ordering fields are optional and checked only when present
 * (SeedSpreads: one value or null per ordering, a non-negative half-width or null).
 */
export function validatePaperReport(r: unknown): asserts r is PaperReport {
  const fail = (field: string, msg: string): never => {
    throw new DeltaEditError("E_ARG", `paper.json: ${field} ${msg}`, { context: { field } });
  };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  const num = (v: unknown): boolean => v === null || typeof v === "number"; // non-finite numbers are written as null
  if (!isObj(r)) return fail("(root)", "must be an object");
  if (r["format"] !== PAPER_FORMAT) fail("format", `must be "${PAPER_FORMAT}", got ${JSON.stringify(r["format"])}`);
  if (!Number.isInteger(r["version"]) || (r["version"] as number) < 1 || (r["version"] as number) > PAPER_VERSION) fail("version", `must be an integer in [1, ${PAPER_VERSION}], got ${String(r["version"])}`);
  for (const k of ["written", "codeVersion"]) if (typeof r[k] !== "string") fail(k, "must be a string");
  const model = r["model"];
  if (!isObj(model) || typeof model["hash"] !== "string" || !Number.isInteger(model["hidden"])) fail("model", "must be { source, hash, hidden, dFF, numLayers }");
  const ds = r["dataset"];
  if (!isObj(ds) || !Number.isInteger(ds["stream"])) fail("dataset", "must be { file, available, stream }");
  const sch = r["schedule"];
  if (!isObj(sch) || !Array.isArray(sch["checkpoints"]) || !sch["checkpoints"].every((c) => Number.isInteger(c))) fail("schedule", "must be a PaperSchedule with integer checkpoints");
  const arr = (k: string): unknown[] => (Array.isArray(r[k]) ? (r[k] as unknown[]) : fail(k, "must be an array"));
  arr("methods").forEach((m, i) => {
    if (!isObj(m) || typeof m["id"] !== "string" || (m["status"] !== "done" && m["status"] !== "failed")) fail(`methods[${i}]`, "must be { id, method, label, params, benchDir, status: done|failed }");
  });
  validateBenchReport(r["bench"]);
  const ord = r["orderings"];
  let count: number | undefined;
  if (ord !== undefined) {
    if (!isObj(ord) || !Number.isInteger(ord["count"]) || (ord["count"] as number) < 2) return fail("orderings", "must be { count ≥ 2, confidence, shuffle, dirs }");
    count = ord["count"] as number;
    if (typeof ord["confidence"] !== "number" || !(ord["confidence"] > 0 && ord["confidence"] < 1)) fail("orderings.confidence", "must be a level in (0, 1)");
    if (!Array.isArray(ord["dirs"]) || ord["dirs"].length !== count || !ord["dirs"].every((d) => typeof d === "string")) fail("orderings.dirs", `must be ${count} directory names`);
  }
  const spreads = (at: string, v: unknown): void => {
    if (v === undefined) return;
    if (count === undefined) fail(at, "is only written by a multi-ordering run (no `orderings`)");
    if (!isObj(v)) return fail(at, "must be an object of { mean, ci95, perSeed }");
    for (const [k, s] of Object.entries(v)) {
      if (!isObj(s) || !num(s["mean"])) return fail(`${at}.${k}`, "must be { mean, ci95, perSeed }");
      const ci = s["ci95"];
      if (ci !== null && (typeof ci !== "number" || ci < 0)) fail(`${at}.${k}.ci95`, `must be a non-negative half-width or null, got ${String(ci)}`);
      const ps = s["perSeed"];
      if (!Array.isArray(ps) || ps.length !== count || !ps.every(num)) fail(`${at}.${k}.perSeed`, `must be ${count} numbers or nulls (one per ordering)`);
    }
  };
  arr("table").forEach((b, i) => {
    if (!isObj(b) || !Number.isInteger(b["edits"]) || !Array.isArray(b["rows"])) fail(`table[${i}]`, "must be { edits, paper, rows: [] }");
  });
  arr("noise").forEach((m, i) => {
    if (!isObj(m) || !Array.isArray(m["points"])) return fail(`noise[${i}]`, "must be { method, points: [] }");
    m["points"].forEach((p: unknown, j) => {
      if (!isObj(p) || !Number.isInteger(p["edits"]) || !num(p["noiseE"])) return fail(`noise[${i}].points[${j}]`, "must be a PaperNoisePoint");
      spreads(`noise[${i}].points[${j}].acrossOrderings`, p["acrossOrderings"]);
    });
  });
  arr("overlap").forEach((m, i) => {
    if (!isObj(m) || typeof m["available"] !== "boolean" || !Array.isArray(m["points"])) return fail(`overlap[${i}]`, "must be { method, available, layer, points: [] }");
    const a = m["acrossOrderings"];
    if (a !== undefined) {
      if (!Array.isArray(a) || a.length !== m["points"].length) fail(`overlap[${i}].acrossOrderings`, "must have one entry per point");
      (a as unknown[]).forEach((x, j) => spreads(`overlap[${i}].acrossOrderings[${j}]`, x));
    }
  });
  const rep = r["representation"];
  if (rep !== null) {
    if (!isObj(rep) || !Array.isArray(rep["layers"]) || !Array.isArray(rep["methods"])) return fail("representation", "must be null or { prompts, layers, methods }");
    rep["methods"].forEach((m: unknown, i) => {
      if (!isObj(m) || !isObj(m["stats"]) || !Array.isArray(m["after"])) return fail(`representation.methods[${i}]`, "must be { method, layer, stats, after }");
      spreads(`representation.methods[${i}].acrossOrderings`, m["acrossOrderings"]);
    });
  }
  const beta = r["betaSweep"];
  if (!isObj(beta) || !Array.isArray(beta["points"])) fail("betaSweep", "must be { edits, variant, points: [] }");
  if (r["caseStudy"] !== null && !(isObj(r["caseStudy"]) && Array.isArray(r["caseStudy"]["cases"]))) fail("caseStudy", "must be null or { maxNewTokens, cases: [] }");
  arr("general").forEach((m, i) => {
    if (!isObj(m) || !Array.isArray(m["points"])) return fail(`general[${i}]`, "must be { method, points: [] }");
    m["points"].forEach((p: unknown, j) => spreads(`general[${i}].points[${j}].acrossOrderings`, isObj(p) ? p["acrossOrderings"] : fail(`general[${i}].points[${j}]`, "must be an object")));
  });
  arr("stages");
  arr("notes");
  const v = r["verdict"];
  if (v !== undefined && v !== null) {
    if (count === undefined) fail("verdict", "is only written by a multi-ordering run (no `orderings`)");
    if (!isObj(v) || typeof v["baseline"] !== "string" || !Number.isInteger(v["edits"]) || v["orderings"] !== count || !Array.isArray(v["rows"])) return fail("verdict", `must be { baseline, edits, orderings: ${count}, confidence, rows: [] }`);
    const outcomes = ["better", "worse", "not significant", "undetermined"];
    v["rows"].forEach((x: unknown, i) => {
      if (!isObj(x) || typeof x["method"] !== "string" || typeof x["key"] !== "string" || !num(x["meanDiff"]) || !num(x["ci95"]) || !outcomes.includes(x["outcome"] as string)) fail(`verdict.rows[${i}]`, "must be a PaperVerdictRow");
    });
  }
}

/** Read and validate a paper.json file (E_NOT_FOUND when it cannot be read, E_ARG when it is malformed). */
export function readPaperJson(file: string): PaperReport {
  let r: unknown;
  try {
    r = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `${file}: cannot read paper.json (${(e as Error).message})`, { cause: e });
  }
  try {
    validatePaperReport(r);
  } catch (e) {
    if (e instanceof DeltaEditError) throw new DeltaEditError("E_ARG", `${file}: ${e.message}`, { context: { file } });
    throw e;
  }
  return r;
}
