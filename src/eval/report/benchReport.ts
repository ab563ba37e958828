/**
 * BenchReport: the one input of every report writer (terminal table, results.json, HTML). The
 * bench orchestrator produces it: one entry per method, one checkpoint per evaluation point
 * (number of edits done), each holding run-level metric aggregates (evaluation spec §3.4: mean and
 * population std over cases, already ×100 where the summariser scales), the superimposed-noise
 * summaries (§6.3, labelled variants) and DeltaEdit's projection trigger rate.
 *
 * Example (abridged):
 *   { title: "Sequential editing, GPT2-XL, MCF 3,000 × 1",
 *     codeVersion: "0.1.0+7bc0c54", created: "2025-06-01T12:00:00Z",
 *     model: { name: "gpt2-xl", hash: "sha256:…" },
 *     dataset: { name: "mcf", records: 3000, selection: "first N in file order" },
 *     protocol: { name: "deltaedit", batchSize: 1, totalEdits: 3000, checkpoints: [200, 500, …, 3000] },
 *     modes: { neighborhood: "deltaedit", success: "larger", noise: "final, key=solver, request-level" },
 *     seeds: { templates: 1, fluency: 2 },
 *     methods: [{ name: "deltaedit", label: "DeltaEdit", checkpoints: [
 *       { edits: 200, metrics: { post_rewrite_success: { mean: 99.5, std: 7.05 } }, noise: [ … ], triggerRate: 0.04 } ] }] }
 *
 * A multi-ordering bench (`--seeds N`, N > 1; eval/report/acrossSeeds.ts) has the same shape with
 * every number averaged over the N orderings, plus `orderings`, each metric's `perSeed` values and
 * `ci95` half-width, and each checkpoint's `spread` of the non-metric numbers (noise_E, trigger rate …).
 */
import { DeltaEditError } from "../../errors.js";
import { methodVariant } from "../../edit/methods/method.js";
import type { NoiseSummary } from "../noise.js";

/**
 * Run-level aggregate of one metric: mean and population std over the cases scored (§3.4). In a
 * multi-ordering bench: `mean` is the mean over orderings of each ordering's run-level mean, `std`
 * the root mean square of the orderings' stds, and `perSeed` / `ci95` are present.
 */
export interface MetricStat {
  mean: number;
  std: number;
  /** Number of cases aggregated (optional; in a multi-ordering bench only when every ordering scored the same number). */
  count?: number;
  /** Multi-ordering benches: half-width of the 95 % confidence interval of `mean` across orderings (Student t, N − 1 df); null when fewer than 2 orderings have a value. */
  ci95?: number | null;
  /** Multi-ordering benches: each ordering's run-level mean, ordering 0 first (null where that ordering has none). */
  perSeed?: (number | null)[];
}

/** A number of a checkpoint across the orderings of a multi-ordering bench: mean, 95 % CI half-width, per-ordering values. */
export interface SeedSpread {
  mean: number;
  /** Half-width of the 95 % confidence interval (Student t, N − 1 df); null when fewer than 2 orderings have a value. */
  ci95: number | null;
  /** One value per ordering, ordering 0 first (null where that ordering has none). */
  perSeed: (number | null)[];
}

/** Keys of `BenchCheckpoint.spread`: the headline noise summary's numbers, DeltaEdit's trigger rate, editing seconds. */
export const SPREAD_KEYS = ["noiseE", "noiseMeanSquared", "noiseActivationEnergy", "noiseInterference", "triggerRate", "seconds"] as const;

/** Display information of a metric key; unknown keys get their key as label. */
export interface MetricInfo {
  key: string; // summariser key, e.g. "post_rewrite_success"
  label: string; // short column name, e.g. "Eff."
  title: string; // plot title, e.g. "Efficacy"
  higherIsBetter: boolean;
}

/** Scores of one method after a number of edits. */
export interface BenchCheckpoint {
  edits: number; // requests edited so far (all of them are evaluated)
  metrics: Record<string, MetricStat>;
  /** Superimposed-noise summaries at this checkpoint; the FIRST is the headline (noise_E at L*). */
  noise?: NoiseSummary[];
  /** DeltaEdit: cumulative fraction in [0, 1] of the requests so far whose projection was triggered. */
  triggerRate?: number;
  /** Model-level deviation D_i(n) = ‖h_{L*} − z*_i‖ aggregated over the edited requests (§6.6). */
  deviation?: { mean: number; median: number; meanRelative: number };
  /** Wall-clock seconds of editing so far. */
  seconds?: number;
  /**
   * Multi-ordering benches: the non-metric numbers across orderings, keyed by `SPREAD_KEYS`
   * (`noiseE` … of `noise[0]`, `triggerRate` as a fraction, `seconds`); the fields above hold their means.
   */
  spread?: Record<string, SeedSpread>;
}

/** One method of a bench run and its checkpoints. */
export interface BenchMethod {
  name: string; // registry name: "deltaedit", "alphaedit", "memit", "rome", "ft", "prune", "rect", or a custom one
  label?: string; // display name, default from the name and a non-default params.variant ("DeltaEdit", "DeltaEdit (paper)")
  preset?: string;
  params?: Record<string, unknown>;
  checkpoints: BenchCheckpoint[]; // ascending in `edits`
}

/** One editing run (a method with a seed) behind the aggregates. */
export interface BenchRun {
  method: string;
  /** The seed that distinguishes this run; in a multi-ordering bench, the ordering k (0 = file order). */
  seed: number;
  sessionDir?: string;
  seconds?: number;
  status?: "done" | "failed" | "interrupted";
  error?: string;
}

/** A bench run's results: model, dataset, protocol, modes, seeds, and per method its checkpoints. */
export interface BenchReport {
  title: string;
  codeVersion: string;
  created?: string; // ISO 8601
  model: { name: string; hash: string; editedLayers?: number[] };
  dataset?: { name: string; records: number; selection?: string };
  protocol: { name: string; batchSize: number; totalEdits: number; checkpoints: number[]; description?: string };
  /** Every switch that changes a number: neighborhood reference, success style, noise variant, projector mode … */
  modes: Record<string, string>;
  seeds: Record<string, number>;
  /** Metric order and labels; default: the known keys present, in catalog order, then the rest sorted. */
  metrics?: MetricInfo[];
  methods: BenchMethod[];
  runs?: BenchRun[];
  /**
   * Multi-ordering benches (`--seeds N`, N > 1): N orderings of the same records, every method run
   * on each; the numbers above are means over orderings with 95 % confidence intervals.
   */
  orderings?: BenchOrderings;
  notes?: string[];
}

/** How the orderings of a multi-ordering bench were made and where each one's own output lies. */
export interface BenchOrderings {
  /** N, the number of orderings (≥ 2). */
  count: number;
  /** Confidence level of every `ci95` (0.95). */
  confidence: number;
  /** How ordering k was drawn, e.g. "ordering 0 = file order; k > 0: Fisher–Yates shuffle with Rng(k)". */
  shuffle: string;
  /** Per ordering, its output directory relative to the bench directory ("seed-0", …): sessions, case records, its own results.json. */
  dirs: string[];
}

/** The summariser keys of evaluation §3.4 and ZsRE, in the papers' column order. */
export const METRIC_CATALOG: readonly MetricInfo[] = [
  { key: "post_rewrite_success", label: "Eff.", title: "Efficacy", higherIsBetter: true },
  { key: "post_paraphrase_success", label: "Gen.", title: "Generalization", higherIsBetter: true },
  { key: "post_neighborhood_success", label: "Spe.", title: "Specificity", higherIsBetter: true },
  { key: "post_ngram_entropy", label: "Flu.", title: "Fluency", higherIsBetter: true },
  { key: "post_reference_score", label: "Consis.", title: "Consistency", higherIsBetter: true },
  { key: "post_score", label: "Score", title: "Score (harmonic mean)", higherIsBetter: true },
  { key: "post_rewrite_acc", label: "Eff.top", title: "Efficacy (top)", higherIsBetter: true },
  { key: "post_paraphrase_acc", label: "Gen.top", title: "Generalization (top)", higherIsBetter: true },
  { key: "post_neighborhood_acc", label: "Spe.top", title: "Specificity (top)", higherIsBetter: true },
  { key: "post_rewrite_diff", label: "EM", title: "Efficacy magnitude", higherIsBetter: true },
  { key: "post_paraphrase_diff", label: "PM", title: "Paraphrase magnitude", higherIsBetter: true },
  { key: "post_neighborhood_diff", label: "NM", title: "Neighborhood magnitude", higherIsBetter: true },
  // KnowEdit records (metrics/knowedit.ts): token accuracy of portability and locality answers
  { key: "post_portability_acc", label: "Port.", title: "Portability (KnowEdit)", higherIsBetter: true },
  { key: "post_locality_acc", label: "Loc.", title: "Locality (KnowEdit)", higherIsBetter: true },
  // the bench's general-capability checks (bench.ts): control facts still answered, held-out perplexity
  { key: "general_fact_accuracy", label: "general_fact_accuracy", title: "Control facts right (%)", higherIsBetter: true },
  { key: "general_perplexity", label: "general_perplexity", title: "Held-out perplexity", higherIsBetter: false },
];

const METHOD_LABELS: Record<string, string> = {
  deltaedit: "DeltaEdit", alphaedit: "AlphaEdit", memit: "MEMIT", rome: "ROME", ft: "FT", prune: "PRUNE", rect: "RECT",
};

/** Display name: `label`, else the known name ("DeltaEdit") with a non-default variant from `params` ("DeltaEdit (paper)"). */
export function methodLabel(m: BenchMethod): string {
  if (m.label !== undefined) return m.label;
  const base = METHOD_LABELS[m.name] ?? m.name;
  const variant = methodVariant(m.name, m.params);
  return variant === null ? base : `${base} (${variant})`;
}

/** The metrics to show, in order: `report.metrics` when given, else catalog order then the rest sorted. */
export function reportMetrics(report: BenchReport): MetricInfo[] {
  if (report.metrics !== undefined) return report.metrics;
  const present = new Set(report.methods.flatMap((m) => m.checkpoints.flatMap((c) => Object.keys(c.metrics))));
  const known = METRIC_CATALOG.filter((i) => present.has(i.key));
  const rest = [...present].filter((k) => !METRIC_CATALOG.some((i) => i.key === k)).sort();
  return [...known, ...rest.map((key) => ({ key, label: key.replace(/^post_/, ""), title: key, higherIsBetter: true }))];
}

/** All checkpoint edit counts over all methods, ascending. */
export function allCheckpoints(report: BenchReport): number[] {
  return [...new Set(report.methods.flatMap((m) => m.checkpoints.map((c) => c.edits)))].sort((a, b) => a - b);
}

/** Throws E_ARG naming the first malformed field (e.g. `methods[1].checkpoints[2].edits`). */
export function validateBenchReport(r: unknown): asserts r is BenchReport {
  const fail = (field: string, msg: string): never => {
    throw new DeltaEditError("E_ARG", `BenchReport: ${field} ${msg}`, { context: { field } });
  };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObj(r)) return fail("(root)", "must be an object");
  for (const k of ["title", "codeVersion"]) if (typeof r[k] !== "string") fail(k, `must be a string, got ${typeof r[k]}`);
  if (!isObj(r["model"]) || typeof r["model"]["name"] !== "string" || typeof r["model"]["hash"] !== "string") fail("model", "must be { name: string, hash: string }");
  const p = r["protocol"];
  if (!isObj(p)) return fail("protocol", "must be an object");
  if (typeof p["name"] !== "string") fail("protocol.name", "must be a string");
  for (const k of ["batchSize", "totalEdits"]) if (!Number.isInteger(p[k])) fail(`protocol.${k}`, `must be an integer, got ${String(p[k])}`);
  if (!Array.isArray(p["checkpoints"])) fail("protocol.checkpoints", "must be an array of edit counts");
  if (!isObj(r["modes"])) fail("modes", "must be an object of strings");
  if (!isObj(r["seeds"])) fail("seeds", "must be an object of numbers");
  const ord = r["orderings"];
  let nOrd: number | undefined;
  if (ord !== undefined) {
    if (!isObj(ord)) return fail("orderings", "must be { count, confidence, shuffle, dirs }");
    if (!Number.isInteger(ord["count"]) || (ord["count"] as number) < 2) fail("orderings.count", `must be an integer ≥ 2, got ${String(ord["count"])}`);
    nOrd = ord["count"] as number;
    if (typeof ord["confidence"] !== "number" || !(ord["confidence"] > 0 && ord["confidence"] < 1)) fail("orderings.confidence", `must be a level in (0, 1), got ${String(ord["confidence"])}`);
    if (!Array.isArray(ord["dirs"]) || ord["dirs"].length !== nOrd || !ord["dirs"].every((d) => typeof d === "string")) fail("orderings.dirs", `must be ${nOrd} directory names`);
  }
  // perSeed: one value (or null) per ordering; ci95: a non-negative half-width or null
  const checkSpread = (at: string, s: Record<string, unknown>): void => {
    const ps = s["perSeed"];
    if (ps !== undefined && (!Array.isArray(ps) || !ps.every((v) => v === null || typeof v === "number") || (nOrd !== undefined && ps.length !== nOrd))) fail(`${at}.perSeed`, `must be an array of ${nOrd ?? "N"} numbers or nulls (one per ordering)`);
    const ci = s["ci95"];
    if (ci !== undefined && ci !== null && (typeof ci !== "number" || ci < 0)) fail(`${at}.ci95`, `must be a non-negative half-width or null, got ${String(ci)}`);
  };
  const methods = r["methods"];
  if (!Array.isArray(methods)) return fail("methods", "must be an array");
  methods.forEach((m: unknown, i) => {
    const at = `methods[${i}]`;
    if (!isObj(m)) return fail(at, "must be an object");
    if (typeof m["name"] !== "string") fail(`${at}.name`, "must be a string");
    const cps = m["checkpoints"];
    if (!Array.isArray(cps)) return fail(`${at}.checkpoints`, "must be an array");
    let last = -1;
    cps.forEach((c: unknown, j) => {
      const cat = `${at}.checkpoints[${j}]`;
      if (!isObj(c)) return fail(cat, "must be an object");
      const e = c["edits"];
      if (typeof e !== "number" || !Number.isInteger(e) || e < 0) fail(`${cat}.edits`, `must be a non-negative integer, got ${String(e)}`);
      if ((e as number) <= last) fail(`${cat}.edits`, `must be ascending (got ${String(e)} after ${last})`);
      last = e as number;
      if (!isObj(c["metrics"])) return fail(`${cat}.metrics`, "must be an object of { mean, std }");
      for (const [k, s] of Object.entries(c["metrics"])) {
        if (!isObj(s) || typeof s["mean"] !== "number" || typeof s["std"] !== "number") return fail(`${cat}.metrics.${k}`, "must be { mean: number, std: number }");
        checkSpread(`${cat}.metrics.${k}`, s);
      }
      const spread = c["spread"];
      if (spread !== undefined) {
        if (!isObj(spread)) return fail(`${cat}.spread`, "must be an object of { mean, ci95, perSeed }");
        for (const [k, s] of Object.entries(spread)) {
          if (!isObj(s) || !Array.isArray(s["perSeed"])) return fail(`${cat}.spread.${k}`, "must be { mean, ci95, perSeed: [] }");
          checkSpread(`${cat}.spread.${k}`, s);
        }
      }
      const tr = c["triggerRate"];
      if (tr !== undefined && (typeof tr !== "number" || tr < 0 || tr > 1)) fail(`${cat}.triggerRate`, `must be a fraction in [0, 1], got ${String(tr)}`);
      if (c["noise"] !== undefined && !Array.isArray(c["noise"])) fail(`${cat}.noise`, "must be an array of NoiseSummary (first = headline)");
    });
  });
}
