/**
 * results.json: the machine-readable record of a bench run, written atomically (temp + fsync +
 * rename, so a reader never sees a torn file).
 *
 * Schema, format "deltaedit-results", version 1 (a BenchReport plus a header; see benchReport.ts):
 *   format        "deltaedit-results"
 *   version       1
 *   written       ISO 8601 time of this write
 *   title         string
 *   codeVersion   deltaedit version (+ git commit when known)
 *   created       ISO 8601 time the bench started (optional)
 *   model         { name, hash (model hash of the unedited weights), editedLayers? }
 *   dataset       { name, records, selection? } (optional)
 *   protocol      { name, batchSize, totalEdits, checkpoints: number[], description? }
 *   modes         { [switch]: value }  e.g. neighborhood = "standard" | "deltaedit", success = "larger" | "top",
 *                 noise = the headline noise variant, projector = "reference" | "exact"
 *   seeds         { [purpose]: seed }  e.g. templates, fluency, order
 *   metrics?      [{ key, label, title, higherIsBetter }] display order
 *   methods       [{ name, label?, preset?, params?, checkpoints: [{
 *                    edits,                       requests edited so far
 *                    metrics: { [summariser key]: { mean, std, count? } }   (§3.4: population std, ×100 scaled keys)
 *                    noise?: [NoiseSummary]       first = headline (noise_E at L*); each carries
 *                                                 edits, layer, variant (final|prefix), level (request|step),
 *                                                 key (solver|bare-prompt|recomputed-on-final-model),
 *                                                 route (factors | "step-level, no decomposition"),
 *                                                 approximate, label, noiseE, median, meanSquared,
 *                                                 meanRelative, meanProjection, negativeProjectionFraction,
 *                                                 meanDrift, meanActivationEnergy, meanInterference
 *                                                 (null where the route has no decomposition)
 *                    triggerRate?: cumulative fraction of requests whose DeltaEdit projection fired
 *                    deviation?: { mean, median, meanRelative }  model-level D_i(n) (§6.6)
 *                    seconds?: editing wall time so far,
 *                    spread?: { [noiseE|noiseMeanSquared|noiseActivationEnergy|noiseInterference|triggerRate|seconds]:
 *                               { mean, ci95, perSeed } }   multi-ordering benches only }] }]
 *   runs?         [{ method, seed, sessionDir?, seconds?, status?, error? }]   (multi-ordering: seed = ordering k)
 *   orderings?    { count: N ≥ 2, confidence: 0.95, shuffle, dirs: ["seed-0", …] }   multi-ordering benches only
 *   notes?        string[]
 * Multi-ordering benches (`bench --seeds N`, N > 1) also give every metric `perSeed` (each ordering's
 * run-level mean, ordering 0 first, null where absent) and `ci95` (half-width of the 95 % Student-t
 * confidence interval of `mean` across orderings, null with fewer than 2 values); `mean` is then the
 * mean over orderings and `std` the RMS of their stds over cases. One-ordering files have none of
 * these fields, so every version-1 reader reads both (docs/formats.md, "Bench output").
 * Non-finite numbers (NaN, ±Infinity) are written as null.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { writeFileAtomic } from "../../edit/session/store.js";
import { validateBenchReport, type BenchReport } from "./benchReport.js";

export const RESULTS_FORMAT = "deltaedit-results";
export const RESULTS_VERSION = 1;

/** results.json: a bench report with its format header. */
export interface ResultsFile extends BenchReport {
  format: typeof RESULTS_FORMAT;
  version: number;
  written: string;
}

/** The results.json text of a report (validated; `written` defaults to now). */
export function resultsJson(report: BenchReport, written: string = new Date().toISOString()): string {
  validateBenchReport(report);
  const file: ResultsFile = { format: RESULTS_FORMAT, version: RESULTS_VERSION, written, ...report };
  return JSON.stringify(file, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2) + "\n";
}

/** Write results.json atomically (temp + fsync + rename); creates the directory. */
export function writeResultsJson(file: string, report: BenchReport, written?: string): void {
  const text = resultsJson(report, written);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, text);
}

/** Read and check a results.json (format, version, BenchReport shape). */
export function readResultsJson(file: string): ResultsFile {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `${file}: cannot read results (${(e as Error).message})`, { cause: e });
  }
  const r = raw as Partial<ResultsFile>;
  if (r.format !== RESULTS_FORMAT) throw new DeltaEditError("E_ARG", `${file}: format is ${JSON.stringify(r.format)}, expected "${RESULTS_FORMAT}"`);
  if (r.version !== RESULTS_VERSION) throw new DeltaEditError("E_ARG", `${file}: version ${String(r.version)} is not supported (expected ${RESULTS_VERSION})`);
  try {
    validateBenchReport(raw);
  } catch (e) {
    throw new DeltaEditError("E_ARG", `${file}: ${(e as Error).message}`, { cause: e });
  }
  return raw as ResultsFile;
}
