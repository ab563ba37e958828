/**
 * The HTML report: ONE self-contained file (inline CSS and SVG; no scripts, fonts, images or
 * network references), readable offline and printable. Sections:
 *   1. header: title, model (+ hash), dataset, protocol, modes, seeds, code version
 *   2. summary table at the last checkpoint (best cell of each column in bold)
 *   3. one line plot per metric vs number of edits, one line per method
 *   4. superimposed noise: noise_E per method; per method ‖N‖² with its two terms (activation
 *      energy, interference); DeltaEdit's projection trigger rate
 *   5. every checkpoint's table (collapsed), runs and notes
 * A method keeps its color and marker shape in every plot and in the table. A multi-ordering bench
 * (`--seeds N`) shades a band of mean ± 95 % CI half-width around every line and marks the table
 * cells that are not significantly different from the column's best (table.ts).
 */
import fs from "node:fs";
import path from "node:path";
import { writeFileAtomic } from "../../edit/session/store.js";
import { allCheckpoints, methodLabel, reportMetrics, validateBenchReport, type BenchMethod, type BenchReport } from "./benchReport.js";
import { escapeXml, formatTick, lineChart, MARKER_SHAPES, type LineChartSpec, type MarkerShape } from "./svg.js";
import { formatNumber, noiseLabels, summaryTable, type SummaryCell } from "./table.js";

/** Okabe–Ito colors (color-blind safe); known methods keep theirs across every report. */
const KNOWN_COLORS: Record<string, string> = {
  deltaedit: "#D55E00", alphaedit: "#0072B2", memit: "#E69F00", rome: "#009E73", ft: "#CC79A7", prune: "#56B4E9", rect: "#6E6E6E",
};
const EXTRA_COLORS = ["#882255", "#117733", "#332288", "#999933", "#44AA99", "#AA4499"];
const TERM_STYLE = {
  total: { color: "#24292f", marker: "circle" as MarkerShape },
  activation: { color: "#2A9D8F", marker: "square" as MarkerShape },
  interference: { color: "#8E44AD", marker: "diamond" as MarkerShape },
};

export interface MethodStyle {
  color: string;
  marker: MarkerShape;
}

/** Color and marker of every method: fixed for known names, then the extra palette in report order. */
export function methodStyles(report: BenchReport): Map<string, MethodStyle> {
  const out = new Map<string, MethodStyle>();
  let extra = 0;
  report.methods.forEach((m, i) => {
    const color = KNOWN_COLORS[m.name] ?? EXTRA_COLORS[extra++ % EXTRA_COLORS.length]!;
    out.set(m.name, { color, marker: MARKER_SHAPES[i % MARKER_SHAPES.length]! });
  });
  return out;
}

function style(styles: Map<string, MethodStyle>, m: BenchMethod): MethodStyle {
  return styles.get(m.name) ?? { color: "#000", marker: "circle" };
}

/** Every chart of the report, in display order (exported so callers and tests know what is drawn). */
export function reportCharts(report: BenchReport): { section: "metrics" | "noise"; spec: LineChartSpec }[] {
  const styles = methodStyles(report);
  const xTicks = tickEdits(report);
  const out: { section: "metrics" | "noise"; spec: LineChartSpec }[] = [];
  const nOrd = report.orderings?.count ?? 1;
  // multi-ordering benches: a band mean ± CI half-width, and the CI in the tooltip
  // a band of a percentage is clipped to [0, 100] (the interval itself, in the tooltip, is not)
  const band = (y: number, ci: number | null | undefined, percent = false): { lo?: number; hi?: number } => ciBand(y, ci, nOrd, percent);
  const ciTip = (ci: number | null | undefined, fmt: (v: number) => string): string => (nOrd > 1 && typeof ci === "number" && Number.isFinite(ci) ? ` ± ${fmt(ci)} (95 % CI over ${nOrd} orderings)` : "");
  for (const info of reportMetrics(report)) {
    const series = report.methods
      .filter((m) => m.checkpoints.some((c) => c.metrics[info.key] !== undefined))
      .map((m) => ({
        id: m.name, label: methodLabel(m), ...style(styles, m),
        points: m.checkpoints.filter((c) => c.metrics[info.key] !== undefined).map((c) => {
          const s = c.metrics[info.key]!;
          const tip = nOrd > 1 ? `${s.mean.toFixed(2)}${ciTip(s.ci95, (v) => v.toFixed(2))}` : `${s.mean.toFixed(2)} ± ${s.std.toFixed(2)}`;
          return { x: c.edits, y: s.mean, ...band(s.mean, s.ci95, PERCENT_METRIC.test(info.key)), tip: `${methodLabel(m)} — ${c.edits} edits: ${info.label} ${tip}` };
        }),
      }));
    out.push({ section: "metrics", spec: { id: `metric:${info.key}`, title: `${info.title} (${info.label})`, xLabel: "number of edits", yLabel: `${info.label} (mean over cases)`, series, xTicks } });
  }
  const withNoise = report.methods.filter((m) => m.checkpoints.some((c) => c.noise?.[0] !== undefined));
  if (withNoise.length > 0) {
    const series = withNoise.map((m) => ({
      id: m.name, label: methodLabel(m), ...style(styles, m),
      points: m.checkpoints.filter((c) => c.noise?.[0] !== undefined).map((c) => {
        const n = c.noise![0]!;
        const ci = c.spread?.["noiseE"]?.ci95;
        return { x: c.edits, y: n.noiseE, ...band(n.noiseE, ci), tip: `${methodLabel(m)} — ${c.edits} edits: noise_E ${formatNumber(n.noiseE)}${ciTip(ci, formatNumber)} (median ${formatNumber(n.median)}; ${n.label})` };
      }),
    }));
    const ys = series.flatMap((s) => s.points.map((p) => p.y)).filter((y) => y > 0);
    const logScale = ys.length > 1 && Math.max(...ys) / Math.min(...ys) > 50;
    out.push({ section: "noise", spec: { id: "noise:E", title: `noise_E: mean ‖Nᵢ‖ at the last edited layer${noiseLayer(withNoise)}`, xLabel: "number of edits", yLabel: "noise_E", series, xTicks, yScale: logScale ? "log" : "linear", includeZero: true } });
  }
  for (const m of withNoise) {
    const cps = m.checkpoints.filter((c) => c.noise?.[0]?.meanActivationEnergy !== null && c.noise?.[0]?.meanActivationEnergy !== undefined);
    if (cps.length === 0) continue;
    const pts = (pick: (c: (typeof cps)[number]) => number, name: string, key: string) =>
      cps.map((c) => {
        const ci = c.spread?.[key]?.ci95;
        return { x: c.edits, y: pick(c), ...band(pick(c), ci), tip: `${methodLabel(m)} — ${c.edits} edits: ${name} ${formatNumber(pick(c))}${ciTip(ci, formatNumber)}` };
      });
    const approx = cps.some((c) => c.noise![0]!.approximate) ? " (approximate)" : "";
    out.push({
      section: "noise",
      spec: {
        id: `noise:terms:${m.name}`, title: `${methodLabel(m)}: ‖N‖² = activation energy + interference${approx}`,
        xLabel: "number of edits", yLabel: "mean over edits", includeZero: true, xTicks, accent: style(styles, m).color,
        series: [
          { id: "total", label: "‖Nᵢ‖²", ...TERM_STYLE.total, points: pts((c) => c.noise![0]!.meanSquared, "mean ‖Nᵢ‖²", "noiseMeanSquared") },
          { id: "activation", label: "activation energy", ...TERM_STYLE.activation, dashed: true, points: pts((c) => c.noise![0]!.meanActivationEnergy!, "activation energy", "noiseActivationEnergy") },
          { id: "interference", label: "interference", ...TERM_STYLE.interference, dashed: true, points: pts((c) => c.noise![0]!.meanInterference!, "interference", "noiseInterference") },
        ],
      },
    });
  }
  const withTrigger = report.methods.filter((m) => m.checkpoints.some((c) => c.triggerRate !== undefined));
  if (withTrigger.length > 0) {
    const series = withTrigger.map((m) => ({
      id: m.name, label: methodLabel(m), ...style(styles, m),
      points: m.checkpoints.filter((c) => c.triggerRate !== undefined).map((c) => {
        const ci = c.spread?.["triggerRate"]?.ci95;
        const ci100 = typeof ci === "number" ? 100 * ci : ci;
        return { x: c.edits, y: 100 * c.triggerRate!, ...band(100 * c.triggerRate!, ci100, true), tip: `${methodLabel(m)} — ${c.edits} edits: ${(100 * c.triggerRate!).toFixed(1)}%${ciTip(ci100, (v) => v.toFixed(1))} triggered` };
      }),
    }));
    out.push({ section: "noise", spec: { id: "trigger", title: "Projection trigger rate (cumulative)", xLabel: "number of edits", yLabel: "% of requests projected", series, xTicks, includeZero: true, formatY: (v) => `${formatTick(v)}%` } });
  }
  return out;
}

/**
 * The band of a chart point of a multi-ordering run (`orderings` > 1): mean `y` ± the CI half-width
 * `ci`, clipped to [0, 100] for a percentage (the interval itself, in the tooltip, is not); no band
 * (an empty object) with one ordering or no finite half-width.
 */
export function ciBand(y: number, ci: number | null | undefined, orderings: number, percent = false): { lo?: number; hi?: number } {
  return orderings > 1 && typeof ci === "number" && Number.isFinite(ci) ? { lo: percent ? Math.max(0, y - ci) : y - ci, hi: percent ? Math.min(100, y + ci) : y + ci } : {};
}

/** Metrics that are percentages of cases (success rates, accuracies, the harmonic-mean score): their bands stay within [0, 100]. */
export const PERCENT_METRIC = /(_success|_acc|_accuracy|^post_score)$/;

function noiseLayer(methods: readonly BenchMethod[]): string {
  const layers = new Set(methods.flatMap((m) => m.checkpoints.map((c) => c.noise?.[0]?.layer).filter((l) => l !== undefined)));
  return layers.size === 1 ? ` (layer ${[...layers][0]})` : "";
}

/** x ticks: 0 and the checkpoints when they are few and not crowded (gap ≥ 7% of the axis), else round numbers. */
function tickEdits(report: BenchReport): number[] | undefined {
  const ticks = [0, ...allCheckpoints(report).filter((c) => c > 0)];
  const max = ticks[ticks.length - 1]!;
  const crowded = ticks.some((t, i) => i > 0 && t - ticks[i - 1]! < 0.07 * max);
  return ticks.length > 1 && ticks.length <= 9 && !crowded ? ticks : undefined;
}

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f8fa; color: #1f2328; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 24px; margin: 0 0 6px; }
h2 { font-size: 18px; margin: 32px 0 12px; padding-bottom: 6px; border-bottom: 1px solid #d0d7de; }
.meta { color: #57606a; margin: 2px 0; }
.meta b { color: #1f2328; font-weight: 600; }
.pill { display: inline-block; padding: 1px 9px; margin: 2px 4px 2px 0; border-radius: 10px; background: #ddf4ff; color: #0a3069; font-size: 12px; }
.pill.seed { background: #fff8c5; color: #4d2d00; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #eaeef2; padding: 1px 5px; border-radius: 4px; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 8px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 16px; }
.grid svg { width: 100%; height: auto; display: block; }
table.summary { border-collapse: collapse; width: 100%; background: #fff; font-variant-numeric: tabular-nums; }
table.summary th, table.summary td { padding: 6px 10px; border-bottom: 1px solid #eaeef2; text-align: right; white-space: nowrap; }
table.summary th { background: #f6f8fa; font-weight: 600; border-bottom: 1px solid #d0d7de; }
table.summary th:first-child, table.summary td:first-child { text-align: left; }
table.summary td.best { font-weight: 700; }
table.summary td.ns .mark { color: #57606a; margin-left: 3px; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 3px; margin-right: 7px; vertical-align: -1px; }
.caption { color: #57606a; font-size: 12px; margin: 6px 2px 0; }
details { margin: 10px 0; } summary { cursor: pointer; color: #0969da; }
.note { color: #57606a; font-size: 13px; max-width: 900px; }
`;

/** A table cell: bold when best, "~" after it when not significantly different from the best (multi-ordering runs). */
export function summaryCellHtml(c: SummaryCell): string {
  return c.notSignificant === true ? `<td class="ns">${escapeXml(c.text)}<span class="mark" title="not significantly different from the best">~</span></td>` : `<td${c.best ? ' class="best"' : ""}>${escapeXml(c.text)}</td>`;
}

function htmlTable(report: BenchReport, edits: number | "last", styles: Map<string, MethodStyle>): string {
  const t = summaryTable(report, { edits });
  const o: string[] = [`<table class="summary" data-edits="${escapeXml(String(edits))}"><thead><tr>`];
  for (const h of t.header) o.push(`<th>${escapeXml(h)}</th>`);
  o.push(`</tr></thead><tbody>`);
  for (const r of t.rows) {
    const st = styles.get(r.method);
    o.push(`<tr data-method="${escapeXml(r.method)}"><td><span class="swatch" style="background:${st?.color ?? "#000"}"></span>${escapeXml(r.label)}${r.edits !== null && edits === "last" ? ` <span class="caption">(${r.edits})</span>` : ""}</td>`);
    for (const c of r.cells) o.push(summaryCellHtml(c));
    o.push(`</tr>`);
  }
  o.push(`</tbody></table>`);
  return o.join("");
}

export function renderHtmlReport(report: BenchReport): string {
  validateBenchReport(report);
  const styles = methodStyles(report);
  const charts = reportCharts(report);
  const p = report.protocol;
  const o: string[] = [];
  o.push(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`);
  o.push(`<title>${escapeXml(report.title)}</title><style>${CSS}</style></head><body><main>`);
  o.push(`<h1>${escapeXml(report.title)}</h1>`);
  o.push(`<p class="meta"><b>Model</b> ${escapeXml(report.model.name)} <code>${escapeXml(report.model.hash.slice(0, 24))}</code>` +
    (report.model.editedLayers !== undefined ? ` · edited layers ${escapeXml(report.model.editedLayers.join(", "))}` : "") +
    (report.dataset !== undefined ? ` · <b>Data</b> ${escapeXml(report.dataset.name)}, ${report.dataset.records} records${report.dataset.selection !== undefined ? ` (${escapeXml(report.dataset.selection)})` : ""}` : "") + `</p>`);
  o.push(`<p class="meta"><b>Protocol</b> ${escapeXml(p.name)}: ${p.totalEdits} edits, batch ${p.batchSize}, checkpoints ${escapeXml(p.checkpoints.join(", "))}` +
    (p.description !== undefined ? ` — ${escapeXml(p.description)}` : "") + `</p>`);
  o.push(`<p class="meta"><b>Modes</b> ${Object.entries(report.modes).map(([k, v]) => `<span class="pill">${escapeXml(k)} = ${escapeXml(v)}</span>`).join("")}` +
    ` <b>Seeds</b> ${Object.entries(report.seeds).map(([k, v]) => `<span class="pill seed">${escapeXml(k)} ${v}</span>`).join("")}</p>`);
  o.push(`<p class="meta"><b>Code</b> <code>${escapeXml(report.codeVersion)}</code>${report.created !== undefined ? ` · started ${escapeXml(report.created)}` : ""}</p>`);

  o.push(`<h2>Summary</h2>`, htmlTable(report, "last", styles));
  const nOrd = report.orderings?.count ?? 1;
  const cells = nOrd > 1
    ? `Cells: mean over ${nOrd} orderings of the edit stream ± half-width of its 95 % confidence interval (Student t, ${nOrd - 1} df; ×100 where the summariser scales). Bold: best in column (lowest for perplexity and noise_E); ~: not significantly different from the best (two-sided paired t-test over the same ${nOrd} orderings, 95 %).`
    : `Cells: mean ± population std over cases (evaluation spec §3.4; ×100 where the summariser scales). Bold: best in column (lowest for perplexity and noise_E).`;
  o.push(`<p class="caption">${cells} Trigger %: share of requests whose DeltaEdit projection fired.</p>`);

  const metricCharts = charts.filter((c) => c.section === "metrics");
  if (metricCharts.length > 0) {
    o.push(`<h2>Metrics vs number of edits</h2><div class="grid">`);
    for (const c of metricCharts) o.push(`<figure class="card" style="margin:0">${lineChart(c.spec)}</figure>`);
    o.push(nOrd > 1
      ? `</div><p class="caption">Lines: mean over ${nOrd} orderings of the edit stream; shaded bands: its 95 % confidence interval (Student t, ${nOrd - 1} df; clipped to 0–100 for rates). Hover a marker for the value and its interval.</p>`
      : `</div><p class="caption">Hover a marker for the value and its std.</p>`);
  }
  const noiseCharts = charts.filter((c) => c.section === "noise");
  if (noiseCharts.length > 0) {
    o.push(`<h2>Superimposed noise</h2>`);
    o.push(`<p class="note">For edit <i>i</i> after <i>n</i> edits, the noise N<sub>i</sub> = Σ<sub>j≠i</sub> α<sub>j</sub>(β<sub>j</sub>·k<sub>i</sub>) is what the other edits add to the edited layer's answer to key k<sub>i</sub>. ` +
      `‖N<sub>i</sub>‖² splits into <b>activation energy</b> Σ g<sub>ji</sub>² ‖α<sub>j</sub>‖² (unrelated edits switched on by k<sub>i</sub>) and <b>interference</b> Σ<sub>j≠l</sub> g<sub>ji</sub> g<sub>li</sub> α<sub>j</sub>·α<sub>l</sub> (switched-on edits adding up or cancelling).</p>`);
    o.push(`<div class="grid">`);
    for (const c of noiseCharts) o.push(`<figure class="card" style="margin:0">${lineChart(c.spec)}</figure>`);
    o.push(`</div>`);
    const labels = noiseLabels(report).map((l) => `${l.method}: ${l.label}`);
    if (labels.length > 0) o.push(`<p class="caption">Variants: ${labels.map(escapeXml).join(" · ")}</p>`);
  }

  const cps = allCheckpoints(report);
  if (cps.length > 1) {
    o.push(`<h2>Every checkpoint</h2>`);
    for (const e of cps) o.push(`<details><summary>after ${e} edits</summary>${htmlTable(report, e, styles)}</details>`);
  }
  if ((report.runs?.length ?? 0) > 0) {
    o.push(`<h2>Runs</h2><table class="summary"><thead><tr><th>Method</th><th>${nOrd > 1 ? "Ordering" : "Seed"}</th><th>Status</th><th>Seconds</th><th>Session</th></tr></thead><tbody>`);
    for (const r of report.runs!) {
      o.push(`<tr><td>${escapeXml(r.method)}</td><td>${r.seed}</td><td>${escapeXml(r.status ?? "")}${r.error !== undefined ? `: ${escapeXml(r.error)}` : ""}</td>` +
        `<td>${r.seconds !== undefined ? r.seconds.toFixed(1) : ""}</td><td>${escapeXml(r.sessionDir ?? "")}</td></tr>`);
    }
    o.push(`</tbody></table>`);
  }
  if ((report.notes?.length ?? 0) > 0) o.push(`<h2>Notes</h2><ul class="note">${report.notes!.map((n) => `<li>${escapeXml(n)}</li>`).join("")}</ul>`);
  o.push(`</main></body></html>\n`);
  return o.join("\n");
}

/** Write the report atomically (temp + rename); creates the directory. */
export function writeHtmlReport(file: string, report: BenchReport): void {
  const html = renderHtmlReport(report);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, html);
}

/** The report's stylesheet, shared by other pages in the same look (the `paper` report). */
export const REPORT_CSS = CSS;
