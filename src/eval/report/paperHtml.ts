/**
 * The `paper` report: ONE self-contained HTML file (inline CSS and SVG, the bench report's look)
 * with the DeltaEdit paper's figures, in this order:
 *   1. header: model, data, stream, the checkpoint scaling rule, methods and their status
 *   2. main table: efficacy / generalization / specificity and their top-1 variants per method at
 *      every checkpoint (with the paper's edit count where it is a scaled one)
 *   3. metrics vs number of edits (the bench report's charts)
 *   4. superimposed noise vs edits, its split (activation energy, interference), efficacy vs noise
 *   5. influence / activation: mean |g_ji| and mean |h_jl| (raw and scale-free) vs edits
 *   6. representation shift: PCA of unrelated prompts' hidden states, before (grey) / after (color)
 *   7. β sweep: trigger rate and scores vs β
 *   8. case study: greedy generations
 *   9. general ability: held-out perplexity and control facts vs edits
 *  10. stages and notes
 * A multi-ordering run (`--seeds N`) adds a verdict section first (each DeltaEdit variant minus
 * AlphaEdit at the end of the stream, paired 95 % CI), shows mean ± 95 % CI half-width with the "~"
 * marks in the tables, and a CI band around every line (html.ts `ciBand`); the PCA scatter, the β
 * sweep and the case study are ordering 0's.
 */
import type { OverlapStats } from "../paper/overlap.js";
import { type BenchReport } from "./benchReport.js";
import { ciBand, methodStyles, REPORT_CSS, reportCharts, summaryCellHtml, type MethodStyle } from "./html.js";
import { OVERLAP_KEYS, paperLabel, PAPER_TABLE_METRICS, validatePaperReport, type PaperReport, type PaperVerdict } from "./paperReport.js";
import { formatSigned } from "./paperTable.js";
import { scatterChart, type ScatterSeries } from "./scatter.js";
import { escapeXml, formatTick, lineChart, type ChartSeries, type LineChartSpec } from "./svg.js";
import { formatMeanStd, formatNumber, markBestCells, type SummaryCell } from "./table.js";
import type { SeedSpread } from "./benchReport.js";

const EXTRA_CSS = `
.grid3 { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 16px; }
.grid3 svg { width: 100%; height: auto; display: block; }
table.summary tr.group td { background: #f6f8fa; font-weight: 600; text-align: left; }
table.cases td, table.cases th { white-space: normal; text-align: left; vertical-align: top; }
table.summary td.better { color: #1a7f37; font-weight: 600; } table.summary td.worse { color: #cf222e; font-weight: 600; }
table.cases td.gen { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.ok { color: #1a7f37; } .fail { color: #cf222e; }
`;

function style(styles: Map<string, MethodStyle>, id: string): MethodStyle {
  return styles.get(id) ?? { color: "#000", marker: "circle" };
}

function card(svg: string): string {
  return `<figure class="card" style="margin:0">${svg}</figure>`;
}

/** Log scale when the positive values span more than `ratio`. */
function spans(values: number[], ratio = 50): boolean {
  const v = values.filter((x) => Number.isFinite(x) && x > 0);
  return v.length > 1 && Math.max(...v) / Math.min(...v) > ratio;
}

function xTicksOf(report: PaperReport): number[] | undefined {
  const ticks = [0, ...report.schedule.checkpoints];
  const max = ticks[ticks.length - 1]!;
  return ticks.every((t, i) => i === 0 || t - ticks[i - 1]! >= 0.07 * max) ? ticks : undefined;
}

/** N, the orderings of the run (1 for a one-ordering run). */
function orderingsOf(report: PaperReport): number {
  return report.orderings?.count ?? 1;
}

/** " ± 0.12 (95 % CI over N orderings)" for a tooltip; "" without an interval. */
function ciTip(sp: SeedSpread | undefined, n: number): string {
  return n > 1 && sp !== undefined && sp.ci95 !== null ? ` ± ${formatNumber(sp.ci95)} (95 % CI over ${n} orderings)` : "";
}

/** "0.123 ± 0.045", or the mean alone (one ordering, or no interval). */
function meanCiText(mean: number | null | undefined, sp: SeedSpread | undefined): string {
  return sp !== undefined && sp.ci95 !== null ? `${formatNumber(mean)} ± ${formatNumber(sp.ci95)}` : formatNumber(mean);
}

function mainTable(report: PaperReport, styles: Map<string, MethodStyle>): string {
  const o: string[] = [`<table class="summary" data-table="paper"><thead><tr><th>Method</th>`];
  for (const m of PAPER_TABLE_METRICS) o.push(`<th>${escapeXml(m.label)}</th>`);
  o.push(`</tr></thead><tbody>`);
  for (const block of report.table) {
    const paper = block.paper !== null ? ` (the paper's ${block.paper} on GPT2-XL)` : report.schedule.extension.includes(block.edits) ? " (past the paper's range)" : "";
    o.push(`<tr class="group" data-edits="${block.edits}"><td colspan="${PAPER_TABLE_METRICS.length + 1}">after ${block.edits} edits${escapeXml(paper)}</td></tr>`);
    if (orderingsOf(report) > 1) {
      // mean ± 95 % CI half-width across orderings; best of the block bold, "~" not significantly different from it
      const cells: SummaryCell[][] = block.rows.map((r) => PAPER_TABLE_METRICS.map((t) => {
        const s = r.metrics[t.key];
        return { text: formatMeanStd(s?.mean, s?.ci95), mean: s !== null && s !== undefined && Number.isFinite(s.mean) ? s.mean : null, best: false };
      }));
      markBestCells(cells, PAPER_TABLE_METRICS.map(() => 1), block.rows.map((r) => PAPER_TABLE_METRICS.map((t) => r.metrics[t.key]?.perSeed)));
      block.rows.forEach((r, i) => o.push(`<tr data-method="${escapeXml(r.method)}"><td><span class="swatch" style="background:${style(styles, r.method).color}"></span>${escapeXml(paperLabel(report, r.method))}</td>${cells[i]!.map(summaryCellHtml).join("")}</tr>`));
      continue;
    }
    const best = PAPER_TABLE_METRICS.map((t) => Math.max(...block.rows.map((r) => r.metrics[t.key]?.mean ?? -Infinity)));
    for (const r of block.rows) {
      o.push(`<tr data-method="${escapeXml(r.method)}"><td><span class="swatch" style="background:${style(styles, r.method).color}"></span>${escapeXml(paperLabel(report, r.method))}</td>`);
      PAPER_TABLE_METRICS.forEach((t, c) => {
        const s = r.metrics[t.key];
        const allSame = block.rows.every((x) => x.metrics[t.key]?.mean === s?.mean);
        const isBest = s !== null && s !== undefined && block.rows.length > 1 && !allSame && s.mean === best[c];
        o.push(`<td${isBest ? ' class="best"' : ""}>${escapeXml(formatMeanStd(s?.mean, s?.std))}</td>`);
      });
      o.push(`</tr>`);
    }
  }
  o.push(`</tbody></table>`);
  return o.join("");
}

function overlapCharts(report: PaperReport, styles: Map<string, MethodStyle>, xTicks: number[] | undefined): string[] {
  const avail = report.overlap.filter((m) => m.available && m.points.length > 0);
  if (avail.length === 0) return [];
  const make = (id: string, title: string, yLabel: string, key: (typeof OVERLAP_KEYS)[number]): string => {
    const pick = (s: OverlapStats): number | null => s[key];
    const n = orderingsOf(report);
    const series: ChartSeries[] = avail.map((m) => ({
      id: m.method, label: paperLabel(report, m.method), ...style(styles, m.method),
      points: m.points.map((s, i) => {
        const y = pick(s);
        const sp = m.acrossOrderings?.[i]?.[key];
        return { x: s.edits, y, ...(y !== null ? ciBand(y, sp?.ci95, n) : {}), tip: `${paperLabel(report, m.method)} — ${s.edits} edits: ${formatNumber(y)}${ciTip(sp, n)} (layer ${s.layer})` };
      }),
    }));
    const ys = series.flatMap((s) => s.points.map((p) => p.y ?? NaN));
    const spec: LineChartSpec = { id, title, xLabel: "number of edits", yLabel, series, yScale: spans(ys) ? "log" : "linear", includeZero: true, ...(xTicks ? { xTicks } : {}) };
    return lineChart(spec);
  };
  return [
    make("overlap:activation", "Wrong activation: mean |g_ji| = |β_j·k_i|, i ≠ j", "mean |g_ji|", "meanAbsActivation"),
    make("overlap:influence", "Influence overlap: mean |h_jl| = |α_j·α_l|, j ≠ l", "mean |h_jl|", "meanAbsOverlap"),
    make("overlap:relative", "Relative activation: mean |g_ji| / |g_jj|", "mean |g_ji|/|g_jj|", "meanRelativeActivation"),
    make("overlap:cosine", "Influence overlap, scale-free: mean |cos(α_j, α_l)|", "mean |cos|", "meanAbsCosine"),
  ];
}

function representationCharts(report: PaperReport, styles: Map<string, MethodStyle>): string[] {
  const rep = report.representation;
  if (rep === null) return [];
  return rep.methods.map((m) => {
    const layer = rep.layers.find((l) => l.layer === m.layer)!;
    const st = style(styles, m.method);
    const series: ScatterSeries[] = [
      { id: "before", label: "unedited", color: "#8c959f", opacity: 0.55, points: layer.before.map(([x, y]) => ({ x, y })) },
      { id: "after", label: "after the stream", color: st.color, opacity: 0.75, points: m.after.map(([x, y], p) => ({ x, y, tip: `prompt ${p}: (${formatNumber(layer.before[p]![0])}, ${formatNumber(layer.before[p]![1])}) → (${formatNumber(x)}, ${formatNumber(y)})` })) },
    ];
    const explained = layer.totalVariance > 0 ? ` · PCs explain ${(100 * (layer.variance[0] + layer.variance[1]) / layer.totalVariance).toFixed(0)} %` : "";
    // multi-ordering runs: the points (and this shift) are ordering `pointsOrdering`'s
    const k = rep.pointsOrdering;
    const shift = k !== undefined ? m.acrossOrderings?.["relativeShift"]?.perSeed[k] ?? null : m.stats.relativeShift;
    return scatterChart({
      id: `repr:${m.method}`, title: `${paperLabel(report, m.method)}: shift ${formatNumber(shift)} × spread (layer ${m.layer}${k !== undefined ? `, ordering ${k}` : ""})`,
      xLabel: `PC1 of the unedited states${explained}`, yLabel: "PC2", series, equalAspect: true, accent: st.color, width: 420, height: 380,
    });
  });
}

function betaCharts(report: PaperReport): string[] {
  const pts = report.betaSweep.points.filter((p) => p.status === "done");
  if (pts.length === 0) return [];
  const xTicks = [0, ...pts.map((p) => p.beta)];
  const trig: LineChartSpec = {
    id: "beta:trigger", title: `DeltaEdit trigger rate vs β (${report.betaSweep.edits} edits)`, xLabel: "β (varMultiplier)", yLabel: "% of requests projected", includeZero: true, xTicks,
    formatY: (v) => `${formatTick(v)}%`,
    series: [{ id: "trigger", label: "trigger rate", color: "#D55E00", points: pts.map((p) => ({ x: p.beta, y: p.triggerRate === null ? null : 100 * p.triggerRate, tip: `β ${p.beta}: ${p.triggered}/${p.requests} requests projected` })) }],
  };
  const colors = ["#0072B2", "#009E73", "#CC79A7", "#E69F00"];
  const keys = [["post_rewrite_success", "efficacy"], ["post_paraphrase_success", "generalization"], ["post_neighborhood_success", "specificity"], ["post_rewrite_acc", "efficacy (top)"]] as const;
  const scores: LineChartSpec = {
    id: "beta:scores", title: `DeltaEdit scores vs β (after ${report.betaSweep.edits} edits)`, xLabel: "β (varMultiplier)", yLabel: "mean over cases", xTicks,
    series: keys.filter(([k]) => pts.some((p) => p.metrics[k] !== undefined)).map(([k, label], i) => ({ id: k, label, color: colors[i]!, points: pts.map((p) => ({ x: p.beta, y: p.metrics[k] ?? null })) })),
  };
  return [lineChart(trig), lineChart(scores)];
}

/** The verdict table: one block per DeltaEdit variant; per number AlphaEdit's mean, the variant's, the paired difference with its CI, and the outcome. */
function verdictTable(report: PaperReport, v: PaperVerdict): string {
  const variants = [...new Set(v.rows.map((x) => x.method))];
  const base = paperLabel(report, v.baseline);
  const o: string[] = [`<table class="summary" data-table="verdict"><thead><tr><th>Number</th><th>${escapeXml(base)}</th><th>DeltaEdit</th><th>difference ± 95 % CI</th><th>outcome</th></tr></thead><tbody>`];
  for (const m of variants) {
    o.push(`<tr class="group" data-method="${escapeXml(m)}"><td colspan="5">${escapeXml(paperLabel(report, m))} − ${escapeXml(base)}</td></tr>`);
    for (const x of v.rows.filter((y) => y.method === m)) {
      const cls = x.outcome === "better" || x.outcome === "worse" ? ` class="${x.outcome}"` : "";
      o.push(`<tr data-method="${escapeXml(m)}" data-key="${escapeXml(x.key)}"><td>${escapeXml(x.label)}${x.edits !== v.edits ? ` <span class="caption">(after ${x.edits})</span>` : ""}${x.higherIsBetter ? "" : ` <span class="caption">(lower is better)</span>`}</td>` +
        `<td>${formatNumber(x.baselineMean)}</td><td>${formatNumber(x.mean)}</td><td${cls}>${formatSigned(x.meanDiff)}${x.ci95 !== null ? ` ± ${formatNumber(x.ci95)}` : ""}</td><td${cls}>${escapeXml(x.outcome)}</td></tr>`);
    }
  }
  o.push(`</tbody></table>`);
  return o.join("");
}

function caseTable(report: PaperReport): string {
  const cs = report.caseStudy;
  if (cs === null || cs.cases.length === 0) return "";
  const ids = report.methods.filter((m) => cs.cases.some((c) => c.methods[m.id] !== undefined)).map((m) => m.id);
  const o: string[] = [];
  for (const c of cs.cases) {
    o.push(`<h3 style="font-size:15px;margin:18px 0 6px">${escapeXml(c.subject)}: ${escapeXml(c.targetTrue)} → <b>${escapeXml(c.targetNew)}</b> <span class="caption">(edit ${c.position + 1} of the stream, case ${c.caseId})</span></h3>`);
    o.push(`<table class="summary cases" data-case="${c.caseId}"><thead><tr><th>Model</th>${c.prompts.map((p) => `<th>${escapeXml(p)} …</th>`).join("")}</tr></thead><tbody>`);
    o.push(`<tr><td>unedited</td>${c.unedited.map((g) => `<td class="gen">${escapeXml(g)}</td>`).join("")}</tr>`);
    for (const id of ids) o.push(`<tr data-method="${escapeXml(id)}"><td>${escapeXml(paperLabel(report, id))}</td>${(c.methods[id] ?? []).map((g) => `<td class="gen">${escapeXml(g)}</td>`).join("")}</tr>`);
    o.push(`</tbody></table>`);
  }
  return o.join("");
}

export function renderPaperHtml(report: PaperReport): string {
  validatePaperReport(report);
  const bench: BenchReport = report.bench;
  const styles = methodStyles(bench);
  const xTicks = xTicksOf(report);
  const charts = bench.methods.length > 0 ? reportCharts(bench) : [];
  const o: string[] = [];
  o.push(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`);
  o.push(`<title>${escapeXml(bench.title)}</title><style>${REPORT_CSS}${EXTRA_CSS}</style></head><body><main>`);
  o.push(`<h1>${escapeXml(bench.title)}</h1>`);
  o.push(`<p class="meta"><b>Model</b> ${escapeXml(report.model.source)} <code>${escapeXml(report.model.hash.slice(0, 24))}</code> · C ${report.model.hidden}, F ${report.model.dFF}, ${report.model.numLayers} blocks</p>`);
  const nOrd = orderingsOf(report);
  const ordText = report.orderings !== undefined ? `; <b>${nOrd} orderings</b> of them (${escapeXml(report.orderings.shuffle)})` : "";
  o.push(`<p class="meta"><b>Data</b> ${escapeXml(report.dataset.file)}: ${report.dataset.available} usable records; stream of <b>${report.dataset.stream}</b> edits (batch 1, first records in file order)${ordText}, ${(report.dataset.stream / report.model.hidden).toFixed(2)} × C</p>`);
  o.push(`<p class="meta"><b>Checkpoints</b> ${escapeXml(report.schedule.rule)}</p>`);
  o.push(`<p class="meta"><b>Methods</b> ${report.methods.map((m) => `<span class="pill">${escapeXml(m.label)}: <span class="${m.status === "done" ? "ok" : "fail"}">${m.status}</span></span>`).join("")}</p>`);
  o.push(`<p class="meta"><b>Code</b> <code>${escapeXml(report.codeVersion)}</code> · written ${escapeXml(report.written)}</p>`);

  // multi-ordering runs: what the lines and bands are (no caption for one ordering)
  const bandCaption = nOrd > 1 ? [`<p class="caption">Lines: means over ${nOrd} orderings of the stream; shaded bands: their 95 % confidence intervals (Student t, ${nOrd - 1} df; clipped to 0–100 for rates). Hover a marker for the value and its interval.</p>`] : [];
  if (report.verdict !== undefined) {
    o.push(`<h2>Verdict: DeltaEdit vs AlphaEdit</h2>`);
    if (report.verdict === null) o.push(`<p class="note">No verdict: it needs AlphaEdit and a DeltaEdit variant among the methods that finished.</p>`);
    else {
      const v = report.verdict;
      o.push(`<p class="note">After the whole stream (${v.edits} edits): each DeltaEdit variant minus ${escapeXml(paperLabel(report, v.baseline))}, mean over the ${v.orderings} orderings of d<sub>k</sub> = variant<sub>k</sub> − ${escapeXml(paperLabel(report, v.baseline))}<sub>k</sub> (the same orderings for both) ± half-width of its ${Math.round(100 * v.confidence)} % confidence interval (paired Student t, ${v.orderings - 1} df). <b>better</b> / <b>worse</b>: the interval excludes 0, in the number's good / bad direction; <b>not significant</b>: it contains 0; <b>undetermined</b>: fewer than 2 orderings with both values. Metrics ×100 as in the tables; |g|, |h| at the last overlap checkpoint; shift as in the representation section.</p>`);
      o.push(verdictTable(report, v));
    }
  }

  o.push(`<h2>Editing performance</h2>`, mainTable(report, styles));
  o.push(nOrd > 1
    ? `<p class="caption">Mean over ${nOrd} orderings of the stream of each ordering's mean over all records edited so far (×100) ± half-width of its 95 % confidence interval (Student t, ${nOrd - 1} df). Eff./Gen./Spe.: p(new) &gt; p(true) on the edit, paraphrase and neighborhood prompts; .top: the target is the top-1 token. Bold: best in its block (none when all are equal); ~: not significantly different from the best (two-sided paired t-test over the same ${nOrd} orderings, 95 %).</p>`
    : `<p class="caption">Mean ± population std over all records edited so far (×100). Eff./Gen./Spe.: p(new) &gt; p(true) on the edit, paraphrase and neighborhood prompts; .top: the target is the top-1 token. Bold: best in its block (none when all are equal).</p>`);
  const metricCharts = charts.filter((c) => c.section === "metrics" && !c.spec.id.startsWith("metric:general_"));
  if (metricCharts.length > 0) o.push(`<div class="grid">${metricCharts.map((c) => card(lineChart({ ...c.spec, ...(xTicks ? { xTicks } : {}) }))).join("")}</div>`, ...bandCaption);

  o.push(`<h2>Superimposed noise</h2>`);
  o.push(`<p class="note">For edit <i>i</i> after <i>n</i> edits, N<sub>i</sub> = Σ<sub>j≠i</sub> α<sub>j</sub>(β<sub>j</sub>·k<sub>i</sub>) at the last edited layer (evaluation spec §6.3); noise_E = mean ‖N<sub>i</sub>‖. ‖N<sub>i</sub>‖² = <b>activation energy</b> Σ g<sub>ji</sub>² ‖α<sub>j</sub>‖² + <b>interference</b> Σ<sub>j≠l</sub> g<sub>ji</sub> g<sub>li</sub> α<sub>j</sub>·α<sub>l</sub>. FT has no factors and no noise here.</p>`);
  const noiseCharts = charts.filter((c) => c.section === "noise").map((c) => card(lineChart({ ...c.spec, ...(xTicks ? { xTicks } : {}) })));
  const effNoise = report.noise.filter((m) => m.points.some((p) => p.efficacy !== null));
  if (effNoise.length > 0) {
    const series: ScatterSeries[] = effNoise.map((m) => ({
      id: m.method, label: paperLabel(report, m.method), color: style(styles, m.method).color, connect: true,
      points: m.points.filter((p) => p.efficacy !== null).map((p) => ({ x: p.noiseE, y: p.efficacy!, tip: `${paperLabel(report, m.method)} — ${p.edits} edits: noise_E ${formatNumber(p.noiseE)}, efficacy ${p.efficacy!.toFixed(1)}` })),
    }));
    noiseCharts.push(card(scatterChart({ id: "noise:efficacy", title: "Efficacy vs superimposed noise (along the stream)", xLabel: "noise_E", yLabel: "efficacy (Eff.)", series, xScale: spans(series.flatMap((s) => s.points.map((p) => p.x)), 20) ? "log" : "linear" })));
  }
  if (noiseCharts.length > 0) o.push(`<div class="grid">${noiseCharts.join("")}</div>`, ...bandCaption.map((c) => c.replace("</p>", " The efficacy-vs-noise plot joins the means (no bands).</p>")));

  o.push(`<h2>Influence and activation</h2>`);
  o.push(`<p class="note">g<sub>ji</sub> = β<sub>j</sub>·k<sub>i</sub> (i ≠ j): how strongly the key of edit <i>i</i> switches on edit <i>j</i> (wrong activation); h<sub>jl</sub> = α<sub>j</sub>·α<sub>l</sub> (j ≠ l): how much two edits write along the same output direction (influence overlap); both over all pairs among the first <i>n</i> edits, at the last edited layer (spec §6.3; eval/paper/overlap.ts). The paper finds DeltaEdit's activations not lower than AlphaEdit's but its influence overlaps lower. The raw means depend on how a method splits its rank-one update between α and β (MEMIT, AlphaEdit, DeltaEdit, PRUNE, RECT split it alike; ROME does not): compare across families with the scale-free plots.</p>`);
  const ov = overlapCharts(report, styles, xTicks);
  if (ov.length > 0) o.push(`<div class="grid">${ov.map(card).join("")}</div>`, ...bandCaption.map((c) => c.replace("Lines: means over", "Lines: means over the final sessions of").replace("; clipped to 0–100 for rates", "")));
  const missing = report.overlap.filter((m) => !m.available || m.note !== undefined);
  if (missing.length > 0) o.push(`<p class="caption">${missing.map((m) => `${escapeXml(paperLabel(report, m.method))}: ${escapeXml(m.available ? m.note! : m.reason ?? "not available")}`).join(" · ")}</p>`);

  const rep = report.representation;
  if (rep !== null) {
    o.push(`<h2>Representation shift</h2>`);
    o.push(`<p class="note">Hidden states (residual stream after the last edited layer, last token) of ${rep.prompts.count} unrelated prompts — ${escapeXml(rep.prompts.source)} — from the unedited model (grey) and after each method's stream (color), projected on the 2 principal components of the unedited states. Shift = mean ‖h<sub>after</sub> − h<sub>before</sub>‖ / RMS distance of the unedited states to their mean.</p>`);
    if (nOrd > 1) o.push(`<p class="note">Table: mean over the ${nOrd} orderings' final models ± half-width of its 95 % confidence interval (Student t, ${nOrd - 1} df). Scatter plots: ordering ${rep.pointsOrdering ?? 0} only${rep.pointsOrdering === 0 || rep.pointsOrdering === undefined ? " (the file order)" : ""}, with its own shift in the title.</p>`);
    o.push(`<table class="summary" data-table="shift"><thead><tr><th>Method</th><th>layer</th><th>shift / spread</th><th>mean shift</th><th>spread</th><th>centroid shift / spread</th></tr></thead><tbody>`);
    for (const m of rep.methods) {
      const a = m.acrossOrderings;
      o.push(`<tr data-method="${escapeXml(m.method)}"><td><span class="swatch" style="background:${style(styles, m.method).color}"></span>${escapeXml(paperLabel(report, m.method))}</td><td>${m.layer}</td><td>${meanCiText(m.stats.relativeShift, a?.["relativeShift"])}</td><td>${meanCiText(m.stats.meanShift, a?.["meanShift"])}</td><td>${meanCiText(m.stats.spread, a?.["spread"])}</td><td>${meanCiText(m.stats.centroidShift, a?.["centroidShift"])}</td></tr>`);
    }
    o.push(`</tbody></table><div class="grid3" style="margin-top:12px">${representationCharts(report, styles).map(card).join("")}</div>`);
  }

  o.push(`<h2>β sweep (DeltaEdit, ${escapeXml(report.betaSweep.variant)} variant)</h2>`);
  o.push(`<p class="note">β = varMultiplier: a request is projected when its noise norm leaves μ ± β·σ of the running statistics. Each β runs the first ${report.betaSweep.edits} edits from the unedited model; scores after the whole sweep stream.${nOrd > 1 ? " On ordering 0 (the file order) only." : ""}</p>`);
  const bc = betaCharts(report);
  if (bc.length > 0) o.push(`<div class="grid">${bc.map(card).join("")}</div>`);
  o.push(`<table class="summary" data-table="beta"><thead><tr><th>β</th><th>triggered</th><th>trigger %</th>${PAPER_TABLE_METRICS.map((t) => `<th>${t.label}</th>`).join("")}<th>noise_E</th></tr></thead><tbody>`);
  for (const p of report.betaSweep.points) {
    o.push(`<tr><td>${p.beta}</td><td>${p.status === "done" ? `${p.triggered}/${p.requests}` : `<span class="fail">failed</span>`}</td><td>${p.triggerRate === null ? "-" : (100 * p.triggerRate).toFixed(1)}</td>${PAPER_TABLE_METRICS.map((t) => `<td>${formatMeanStd(p.metrics[t.key])}</td>`).join("")}<td>${formatNumber(p.noiseE)}</td></tr>`);
  }
  o.push(`</tbody></table>`);

  if (report.caseStudy !== null) {
    o.push(`<h2>Case study</h2><p class="note">Greedy continuations (${report.caseStudy.maxNewTokens} tokens) after the whole stream, for edits spread over the stream${nOrd > 1 ? "; ordering 0 (the file order) only" : ""}.</p>`, caseTable(report));
  }

  const general = charts.filter((c) => c.spec.id.startsWith("metric:general_"));
  if (general.length > 0) {
    o.push(`<h2>General ability along the stream</h2><div class="grid">${general.map((c) => card(lineChart({ ...c.spec, ...(xTicks ? { xTicks } : {}) }))).join("")}</div>`, ...bandCaption);
  }

  o.push(`<h2>Stages</h2><table class="summary"><thead><tr><th>Stage</th><th>Status</th><th>Seconds</th></tr></thead><tbody>`);
  for (const s of report.stages) o.push(`<tr><td>${escapeXml(s.name)}</td><td class="${s.status === "failed" ? "fail" : "ok"}">${escapeXml(s.status)}${s.error !== undefined ? `: ${escapeXml(s.error)}` : ""}</td><td>${s.seconds.toFixed(1)}</td></tr>`);
  o.push(`</tbody></table>`);
  if (report.notes.length > 0) o.push(`<h2>Notes</h2><ul class="note">${report.notes.map((n) => `<li>${escapeXml(n)}</li>`).join("")}</ul>`);
  o.push(`</main></body></html>\n`);
  return o.join("\n");
}
