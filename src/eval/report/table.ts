/**
 * The summary table: one row per method, one column per metric at one checkpoint (default: the
 * last one), cells "mean ± std", plus noise_E (headline noise summary) and DeltaEdit's trigger rate.
 * `summaryTable` builds the cells (shared by the terminal and the HTML report); `renderSummaryTable`
 * lays them out for a terminal, aligned on the "±", under a title naming protocol and modes.
 * A multi-ordering bench (`--seeds N`) shows "mean ± 95 % CI half-width" across orderings instead,
 * and marks the cells whose difference from the column's best is not significant (paired t-test
 * over the orderings, acrossSeeds.ts).
 */
import { pairedTest } from "./acrossSeeds.js";
import { methodLabel, reportMetrics, type BenchCheckpoint, type BenchReport } from "./benchReport.js";

export interface SummaryCell {
  text: string; // "98.90 ± 10.43", "-" when absent
  mean: number | null; // for ranking
  best: boolean; // the best mean of its column
  /** Multi-ordering benches: not the best, but its difference from the best is not significant (paired t-test, 95 %). */
  notSignificant?: boolean;
}

export interface SummaryTable {
  title: string;
  subtitle: string;
  header: string[]; // "Method", metric labels…, "noise_E", "Trigger"
  columnKeys: string[]; // same length as header, "method" first
  rows: { method: string; label: string; edits: number | null; cells: SummaryCell[] }[];
}

/** "12.35 ± 1.20" with `digits` decimals; "-" for a missing or non-finite mean. */
export function formatMeanStd(mean: number | null | undefined, std?: number | null, digits = 2): string {
  if (mean === null || mean === undefined || !Number.isFinite(mean)) return "-";
  const m = mean.toFixed(digits);
  return std === null || std === undefined || !Number.isFinite(std) ? m : `${m} ± ${std.toFixed(digits)}`;
}

/** Significant-figure formatting for noise magnitudes that span decades ("0.0123", "1.23e+4"). */
export function formatNumber(x: number | null | undefined, sig = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "-";
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e5 || a < 1e-3 ? x.toExponential(sig - 1) : Number(x.toPrecision(sig)).toString();
}

/**
 * Mark the cells of a table (`rows[r][c]`, columns with a `direction` each: +1 higher is better, −1
 * lower, 0 unmarked; columns past `directions` are left alone): `best` on the best mean of each column (ties: all
 * of them; none when every row has the same mean or fewer than 2 have one). With `perSeed` (a
 * multi-ordering run: `perSeed[r][c]` = that cell's per-ordering values, the same orderings for every
 * row), `notSignificant` on each other cell whose paired t-test against the (first) best row over the
 * orderings is not significant (acrossSeeds.ts `pairedTest`).
 */
export function markBestCells(rows: readonly SummaryCell[][], directions: readonly number[], perSeed: readonly (readonly ((readonly (number | null)[]) | undefined)[])[] | null): void {
  directions.forEach((dir, c) => {
    if (dir === 0) return; // a column without a better direction
    const vals = rows.map((r) => r[c]?.mean ?? null).filter((v): v is number => v !== null);
    if (vals.length < 2) return;
    const best = dir > 0 ? Math.max(...vals) : Math.min(...vals);
    if (vals.every((v) => v === best)) return; // nothing to single out
    for (const r of rows) if (r[c] !== undefined && r[c]!.mean === best) r[c]!.best = true;
    if (perSeed === null) return;
    // the same orderings for every row: paired t-test of each other row against the (first) best one
    const b = rows.findIndex((r) => r[c]?.best === true);
    const bestSeeds = perSeed[b]?.[c];
    if (bestSeeds === undefined) return;
    rows.forEach((r, i) => {
      const mine = perSeed[i]?.[c];
      const cell = r[c];
      if (cell === undefined || cell.best || cell.mean === null || mine === undefined) return;
      if (pairedTest(mine, bestSeeds).significant === false) cell.notSignificant = true;
    });
  });
}

/** "protocol deltaedit, batch 1, 3000 edits · model gpt2-xl · neighborhood=deltaedit, success=larger". */
export function reportSubtitle(r: BenchReport): string {
  const modes = Object.entries(r.modes).map(([k, v]) => `${k}=${v}`).join(", ");
  return `protocol ${r.protocol.name}, batch ${r.protocol.batchSize}, ${r.protocol.totalEdits} edits · model ${r.model.name} · ${modes || "no modes"}`;
}

function checkpointAt(cps: readonly BenchCheckpoint[], edits: number | "last"): BenchCheckpoint | undefined {
  return edits === "last" ? cps[cps.length - 1] : cps.find((c) => c.edits === edits);
}

export function summaryTable(report: BenchReport, opts: { edits?: number | "last"; metrics?: string[] } = {}): SummaryTable {
  const edits = opts.edits ?? "last";
  const infos = reportMetrics(report).filter((m) => opts.metrics === undefined || opts.metrics.includes(m.key));
  const anyNoise = report.methods.some((m) => m.checkpoints.some((c) => (c.noise?.length ?? 0) > 0));
  const anyTrigger = report.methods.some((m) => m.checkpoints.some((c) => c.triggerRate !== undefined));
  const header = ["Method", ...infos.map((i) => i.label), ...(anyNoise ? ["noise_E"] : []), ...(anyTrigger ? ["Trigger %"] : [])];
  const columnKeys = ["method", ...infos.map((i) => i.key), ...(anyNoise ? ["noise_E"] : []), ...(anyTrigger ? ["triggerRate"] : [])];
  const multi = (report.orderings?.count ?? 1) > 1;
  const perSeed: ((number | null)[] | undefined)[][] = []; // (row, column): per-ordering values for the paired test
  const rows = report.methods.map((m) => {
    const cp = checkpointAt(m.checkpoints, edits);
    const seeds: ((number | null)[] | undefined)[] = [];
    const cells: SummaryCell[] = infos.map((i) => {
      const s = cp?.metrics[i.key];
      seeds.push(s?.perSeed);
      return { text: formatMeanStd(s?.mean, multi ? s?.ci95 : s?.std), mean: s !== undefined && Number.isFinite(s.mean) ? s.mean : null, best: false };
    });
    if (anyNoise) {
      const n = cp?.noise?.[0];
      const sp = cp?.spread?.["noiseE"];
      seeds.push(sp?.perSeed);
      const ci = multi && sp?.ci95 !== null && sp?.ci95 !== undefined && n !== undefined ? ` ± ${formatNumber(sp.ci95)}` : "";
      cells.push({ text: formatNumber(n?.noiseE) + ci, mean: n?.noiseE ?? null, best: false });
    }
    if (anyTrigger) {
      const t = cp?.triggerRate;
      const ci = cp?.spread?.["triggerRate"]?.ci95;
      cells.push({ text: t === undefined ? "-" : formatMeanStd(100 * t, multi && ci !== null && ci !== undefined ? 100 * ci : null, 1), mean: null, best: false });
    }
    perSeed.push(seeds);
    return { method: m.name, label: methodLabel(m), edits: cp?.edits ?? null, cells };
  });
  // mark the best mean of each metric column (ties: all of them), and the lowest noise_E
  const directions = [...infos.map((i) => (i.higherIsBetter ? 1 : -1)), ...(anyNoise ? [-1] : [])];
  markBestCells(rows.map((r) => r.cells), directions, multi ? perSeed : null);
  const shown = rows.map((r) => r.edits).filter((e): e is number => e !== null);
  const at = edits === "last" ? (shown.length > 0 && shown.every((e) => e === shown[0]) ? `after ${shown[0]} edits` : "at each method's last checkpoint") : `after ${edits} edits`;
  const title = `${report.title} — ${at}`;
  return { title, subtitle: reportSubtitle(report), header, columnKeys, rows };
}

/** Pad the "mean ± std" cells of a column so that their "±" line up. */
export function alignPm(cells: readonly string[]): string[] {
  const parts = cells.map((c) => c.split(" ± "));
  const wl = Math.max(...parts.map((p) => p[0]!.length));
  const wr = Math.max(0, ...parts.map((p) => (p[1] ?? "").length));
  return parts.map((p) => (p.length === 2 ? `${p[0]!.padStart(wl)} ± ${p[1]!.padEnd(wr)}` : wr > 0 ? `${p[0]!.padStart(wl)}${" ".repeat(wr + 3)}` : p[0]!.padStart(wl)));
}

/** Plain-text table: title, subtitle, header, rule, one line per method (best cells marked with "*"). */
export function renderSummaryTable(report: BenchReport, opts: { edits?: number | "last"; metrics?: string[] } = {}): string {
  const t = summaryTable(report, opts);
  const ncol = t.header.length;
  const columns: string[][] = [];
  for (let c = 0; c < ncol; c++) {
    const body = c === 0 ? t.rows.map((r) => r.label) : alignPm(t.rows.map((r) => r.cells[c - 1]!.text + (r.cells[c - 1]!.best ? "*" : r.cells[c - 1]!.notSignificant === true ? "~" : " ")));
    columns.push([t.header[c]!, ...body]);
  }
  const widths = columns.map((col) => Math.max(...col.map((s) => s.length)));
  const line = (row: number): string => columns.map((col, c) => (c === 0 ? col[row]!.padEnd(widths[c]!) : col[row]!.padStart(widths[c]!))).join("  ").trimEnd();
  const rule = widths.map((w) => "─".repeat(w)).join("  ");
  const out = [t.title, t.subtitle, "", line(0), rule];
  for (let r = 1; r <= t.rows.length; r++) out.push(line(r));
  out.push("", ...cellLegend(report));
  const labels = noiseLabels(report);
  const distinct = new Set(labels.map((l) => l.label));
  if (distinct.size === 1) out.push(`noise_E: ${labels[0]!.label}`);
  else for (const l of labels) out.push(`noise_E ${l.method}: ${l.label}`);
  return out.join("\n");
}

/** What the cells and marks of the table mean (one line; two for a multi-ordering bench). */
export function cellLegend(report: BenchReport): string[] {
  const n = report.orderings?.count ?? 1;
  if (n <= 1) return ["cells: mean ± population std over cases (×100 where the summariser scales); * best in column"];
  const pct = Math.round(100 * (report.orderings?.confidence ?? 0.95));
  return [
    `cells: mean over ${n} orderings of the edit stream ± half-width of its ${pct} % confidence interval (Student t, ${n - 1} df; ×100 where the summariser scales); * best in column`,
    `~ not significantly different from the column's best (two-sided paired t-test over the same ${n} orderings, ${pct} %)`,
  ];
}

/** The headline noise label of each method that has one. */
export function noiseLabels(r: BenchReport): { method: string; label: string }[] {
  const out: { method: string; label: string }[] = [];
  for (const m of r.methods) {
    const label = m.checkpoints.map((c) => c.noise?.[0]?.label).find((x) => x !== undefined);
    if (label !== undefined) out.push({ method: methodLabel(m), label });
  }
  return out;
}
