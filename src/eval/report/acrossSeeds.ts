/**
 * Uncertainty across the orderings of a multi-ordering bench (`deltaedit bench --seeds N`): every
 * method runs on N orderings of the same records, so each metric at each checkpoint has N run-level
 * values x_1 … x_N (one per ordering), and the same orderings are shared by every method.
 *
 *   mean        x̄ = Σ x_k / N
 *   ci95        half-width t_{0.975, N−1} · s / √N,  s² = Σ (x_k − x̄)² / (N − 1)   (Student t, util/studentT.ts)
 *   paired test method a vs method b on the same orderings: d_k = a_k − b_k; the difference is
 *               significant at 95 % when the interval d̄ ± t_{0.975, N−1} · s_d / √N excludes 0
 *               (two-sided paired t-test); all d_k equal to 0 is "not significant", a constant d ≠ 0 is significant.
 *
 * `aggregateOrderings` turns the N per-ordering BenchReports into one (means, `ci95`, `perSeed`,
 * `spread`), the input of every report writer.
 */
import { studentTQuantile } from "../../util/studentT.js";
import type { NoiseSummary } from "../noise.js";
import type { BenchCheckpoint, BenchMethod, BenchReport, BenchRun, MetricStat, SeedSpread } from "./benchReport.js";

/** Confidence level of every interval and test of a multi-ordering bench. */
export const CONFIDENCE = 0.95;

const finite = (v: number | null | undefined): v is number => typeof v === "number" && Number.isFinite(v);

/** Mean of the finite values, the half-width of their confidence interval (null with fewer than 2) and how many there were. */
export function meanCi(values: readonly (number | null | undefined)[], confidence = CONFIDENCE): { mean: number; halfWidth: number | null; n: number } {
  const xs = values.filter(finite);
  const n = xs.length;
  if (n === 0) return { mean: Number.NaN, halfWidth: null, n };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, halfWidth: null, n };
  const ss = xs.reduce((a, x) => a + (x - mean) * (x - mean), 0);
  const s = Math.sqrt(ss / (n - 1));
  return { mean, halfWidth: (studentTQuantile((1 + confidence) / 2, n - 1) * s) / Math.sqrt(n), n };
}

/**
 * Two-sided paired t-test of a − b over the orderings where both have a value: the mean
 * difference, its confidence half-width, and whether it is significant (null with fewer than 2 pairs).
 */
export function pairedTest(a: readonly (number | null)[], b: readonly (number | null)[], confidence = CONFIDENCE): { n: number; meanDiff: number; halfWidth: number | null; significant: boolean | null } {
  const d: number[] = [];
  for (let k = 0; k < Math.min(a.length, b.length); k++) if (finite(a[k]) && finite(b[k])) d.push(a[k]! - b[k]!);
  const { mean, halfWidth, n } = meanCi(d, confidence);
  if (halfWidth === null) return { n, meanDiff: mean, halfWidth, significant: null };
  return { n, meanDiff: mean, halfWidth, significant: Math.abs(mean) > halfWidth };
}

/** The mean, 95 % CI half-width and per-ordering values of one number across the orderings (null where an ordering has none). */
export function spreadOf(values: readonly (number | null)[]): SeedSpread {
  const { mean, halfWidth } = meanCi(values);
  return { mean, ci95: halfWidth, perSeed: [...values] };
}

const NOISE_MEANS = ["noiseE", "median", "meanSquared", "meanRelative", "meanProjection", "negativeProjectionFraction", "meanDrift", "meanActivationEnergy", "meanInterference"] as const;

/** Noise summaries averaged field by field over the orderings that have a summary with the same label at index i. */
function meanNoise(per: readonly (NoiseSummary[] | undefined)[]): NoiseSummary[] | undefined {
  const first = per.find((n) => n !== undefined && n.length > 0);
  if (first === undefined) return undefined;
  return first.map((head, i) => {
    const same = per.map((n) => n?.[i]).filter((s): s is NoiseSummary => s !== undefined && s.label === head.label);
    const out: NoiseSummary = { ...head, approximate: same.some((s) => s.approximate) };
    for (const k of NOISE_MEANS) {
      const vals = same.map((s) => s[k]);
      (out as unknown as Record<string, number | null>)[k] = vals.some((v) => v === null) ? null : meanCi(vals).mean;
    }
    return out;
  });
}

function aggregateCheckpoint(edits: number, cps: readonly (BenchCheckpoint | undefined)[]): BenchCheckpoint {
  const keys = [...new Set(cps.flatMap((c) => (c ? Object.keys(c.metrics) : [])))];
  const metrics: Record<string, MetricStat> = {};
  for (const k of keys) {
    const stats = cps.map((c) => c?.metrics[k]);
    const perSeed = stats.map((s) => (finite(s?.mean) ? s!.mean : null));
    const stds = stats.map((s) => s?.std).filter(finite);
    const counts = stats.map((s) => s?.count);
    const { mean, halfWidth } = meanCi(perSeed);
    const m: MetricStat = { mean, std: stds.length > 0 ? Math.sqrt(stds.reduce((a, x) => a + x * x, 0) / stds.length) : Number.NaN };
    if (counts[0] !== undefined && counts.every((c) => c === counts[0])) m.count = counts[0];
    m.ci95 = halfWidth;
    m.perSeed = perSeed;
    metrics[k] = m;
  }
  const cp: BenchCheckpoint = { edits, metrics };
  const noise = meanNoise(cps.map((c) => c?.noise));
  if (noise !== undefined) cp.noise = noise;
  const spread: Record<string, SeedSpread> = {};
  const pick = (f: (c: BenchCheckpoint) => number | null | undefined): (number | null)[] => cps.map((c) => (c !== undefined && finite(f(c)) ? f(c)! : null));
  const put = (key: string, vals: (number | null)[]): void => {
    if (vals.some((v) => v !== null)) spread[key] = spreadOf(vals);
  };
  put("noiseE", pick((c) => c.noise?.[0]?.noiseE));
  put("noiseMeanSquared", pick((c) => c.noise?.[0]?.meanSquared));
  put("noiseActivationEnergy", pick((c) => c.noise?.[0]?.meanActivationEnergy));
  put("noiseInterference", pick((c) => c.noise?.[0]?.meanInterference));
  const trig = pick((c) => c.triggerRate);
  put("triggerRate", trig);
  if (spread["triggerRate"]) cp.triggerRate = spread["triggerRate"].mean;
  const devs = cps.map((c) => c?.deviation);
  if (devs.every((d) => d !== undefined)) {
    const dv = devs as { mean: number; median: number; meanRelative: number }[];
    cp.deviation = { mean: meanCi(dv.map((d) => d.mean)).mean, median: meanCi(dv.map((d) => d.median)).mean, meanRelative: meanCi(dv.map((d) => d.meanRelative)).mean };
  }
  const secs = pick((c) => c.seconds);
  put("seconds", secs);
  if (spread["seconds"]) cp.seconds = spread["seconds"].mean;
  if (Object.keys(spread).length > 0) cp.spread = spread;
  return cp;
}

/**
 * One report from the per-ordering reports of a multi-ordering bench (ordering k = `runs[k]`, all over
 * the same records, methods and schedule): per method and checkpoint the means over orderings, each
 * metric's `ci95` and `perSeed`, the checkpoint's `spread`, one `runs` entry per (method, ordering),
 * and `orderings`. Methods follow the first report's order; a checkpoint an ordering lacks is null there.
 * `info.selection` says which records all orderings share (default "the selected records").
 */
export function aggregateOrderings(runs: readonly BenchReport[], info: { dirs: readonly string[]; shuffle: string; selection?: string }): BenchReport {
  const n = runs.length;
  const first = runs[0];
  if (first === undefined || n < 2) throw new RangeError(`aggregateOrderings: need at least 2 orderings, got ${n}`);
  if (info.dirs.length !== n) throw new RangeError(`aggregateOrderings: ${n} reports but ${info.dirs.length} directories`);
  const methods: BenchMethod[] = first.methods.map((m0) => {
    const per = runs.map((r) => r.methods.find((m) => m.name === m0.name));
    const edits = [...new Set(per.flatMap((m) => m?.checkpoints.map((c) => c.edits) ?? []))].sort((a, b) => a - b);
    return { ...m0, checkpoints: edits.map((e) => aggregateCheckpoint(e, per.map((m) => m?.checkpoints.find((c) => c.edits === e)))) };
  });
  const runList: BenchRun[] = [];
  runs.forEach((r, k) => {
    for (const m of r.methods) {
      const last = m.checkpoints[m.checkpoints.length - 1];
      runList.push({ method: m.name, seed: k, sessionDir: `${info.dirs[k]}/${m.name}/session`, ...(last?.seconds !== undefined ? { seconds: last.seconds } : {}), status: "done" });
    }
  });
  return {
    title: first.title,
    codeVersion: first.codeVersion,
    ...(first.created !== undefined ? { created: first.created } : {}),
    model: first.model,
    ...(first.dataset ? { dataset: { ...first.dataset, selection: `${info.selection ?? "the selected records"}; ${n} orderings of them (${info.shuffle})` } } : {}),
    protocol: first.protocol,
    modes: first.modes,
    seeds: { ...first.seeds, orderings: n },
    ...(first.metrics ? { metrics: first.metrics } : {}),
    methods,
    runs: runList,
    orderings: { count: n, confidence: CONFIDENCE, shuffle: info.shuffle, dirs: [...info.dirs] },
    ...(first.notes ? { notes: first.notes } : {}),
  };
}
