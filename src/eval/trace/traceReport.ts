/**
 * The causal-tracing report: one self-contained HTML file (inline CSS and SVG, no scripts).
 *   1. header: model, facts traced / dropped / rejected, ν, samples, window, seed, time
 *   2. ROME's figure: AIE heat maps, rows = the six position groups, columns = blocks, three
 *      panels: residual (block output), MLP windowed, attention windowed; then the single-block
 *      MLP and attention panels
 *   3. the subject's last token against all subject tokens (residual restored at block l)
 *   4. the layer suggestion (when asked)
 *   5. a few facts' own heat maps (rows = tokens, subject tokens marked *), dropped facts
 */
import { writeFileAtomic } from "../../util/fsio.js";
import { escapeXml, lineChart } from "../report/svg.js";
import { VARIANT_LABELS, type FactTrace, type TraceVariant } from "./causalTrace.js";
import { GROUP_LABELS, POSITION_GROUPS, ratioToTe } from "./effects.js";
import { heatmap, type HeatPalette } from "./heatmap.js";
import type { TraceResult } from "./runTrace.js";
import type { LayerSuggestion } from "./suggest.js";

const PALETTE: Record<TraceVariant, HeatPalette> = { residual: "purples", mlp: "greens", attn: "reds", mlpWindow: "greens", attnWindow: "reds" };

const CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f8fa; color: #1f2328; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 24px; margin: 0 0 6px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 6px; border-bottom: 1px solid #d0d7de; }
.meta { color: #57606a; margin: 2px 0; } .meta b { color: #1f2328; font-weight: 600; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #eaeef2; padding: 1px 5px; border-radius: 4px; }
.row { display: grid; grid-template-columns: repeat(auto-fill, minmax(370px, 1fr)); gap: 12px; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 6px; margin: 0; }
.card svg { width: 100%; height: auto; display: block; }
.caption, .note { color: #57606a; font-size: 13px; max-width: 980px; }
.suggest { background: #fff; border: 1px solid #d0d7de; border-left: 4px solid #1a7f37; border-radius: 6px; padding: 10px 14px; }
table.t { border-collapse: collapse; background: #fff; font-variant-numeric: tabular-nums; font-size: 13px; }
table.t th, table.t td { padding: 4px 9px; border-bottom: 1px solid #eaeef2; text-align: right; white-space: nowrap; }
table.t th:first-child, table.t td:first-child { text-align: left; }
details { margin: 10px 0; } summary { cursor: pointer; color: #0969da; }
`;

function groupPanel(r: TraceResult, v: TraceVariant, range: [number, number]): string {
  const L = r.summary.numLayers;
  const e = r.summary.aie[v];
  return heatmap({
    id: `aie:${v}`,
    title: `AIE — ${VARIANT_LABELS[v]}${v.endsWith("Window") ? ` (window ${r.options.window})` : ""}`,
    rowLabels: POSITION_GROUPS.map((g) => GROUP_LABELS[g]),
    colLabels: Array.from({ length: L }, (_, l) => String(l)),
    values: POSITION_GROUPS.map((g) => e[g].aie),
    palette: PALETTE[v],
    vmin: range[0],
    vmax: range[1],
    xLabel: v === "residual" ? "block (output of)" : v.endsWith("Window") ? "block (window centre)" : "block",
    valueLabel: "AIE",
  });
}

function factPanel(t: FactTrace, v: TraceVariant, L: number, window: number): string {
  const [s0, s1] = t.subjectRange;
  return heatmap({
    id: `fact:${t.index}:${v}`,
    title: `${VARIANT_LABELS[v]}${v.endsWith("Window") ? ` (W ${window})` : ""}: IE`,
    rowLabels: t.tokens.map((tok, i) => `${JSON.stringify(tok).slice(1, -1)}${i >= s0 && i < s1 ? "*" : ""}`),
    colLabels: Array.from({ length: L }, (_, l) => String(l)),
    values: t.ie[v],
    palette: PALETTE[v],
    vmin: Math.min(0, ...t.ie[v].flat()),
    vmax: Math.max(t.te, 1e-9, ...t.ie[v].flat()),
    boldRows: t.tokens.map((_, i) => i).filter((i) => i >= s0 && i < s1),
    xLabel: "block",
    valueLabel: "IE",
  });
}

const fmt = (v: number | null, d = 3): string => (v === null || !Number.isFinite(v) ? "—" : v.toFixed(d));

export function renderTraceHtml(r: TraceResult, suggestion: LayerSuggestion | null, opts: { exampleFacts?: number } = {}): string {
  const s = r.summary;
  const L = s.numLayers;
  const o: string[] = [];
  const title = `Causal trace — ${r.model.name}`;
  o.push(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`);
  o.push(`<title>${escapeXml(title)}</title><style>${CSS}</style></head><body><main>`);
  o.push(`<h1>${escapeXml(title)}</h1>`);
  o.push(`<p class="meta"><b>Model</b> ${escapeXml(r.model.name)} (${escapeXml(r.model.family)}, ${L} blocks, width ${r.model.hidden})${r.model.hash ? ` <code>${escapeXml(r.model.hash.slice(0, 24))}</code>` : ""}</p>`);
  o.push(`<p class="meta"><b>Facts</b> ${s.facts} traced (known by the model) of ${r.examined} examined · ${r.dropped.length} dropped (not known) · ${r.rejected.length} rejected (malformed)</p>`);
  o.push(`<p class="meta"><b>Noise</b> ν = ${r.nu.toPrecision(4)}${r.sigma !== null ? ` = ${escapeXml(r.options.noise)} with σ = ${r.sigma.toPrecision(4)} (subject-token embeddings)` : " (fixed)"} · <b>samples</b> ${r.options.samples} · <b>window</b> ${r.options.window} · <b>seed</b> ${r.options.seed} · ${r.seconds.toFixed(1)} s</p>`);
  o.push(`<p class="meta"><b>p(object)</b> clean ${fmt(s.meanPClean)} · corrupted ${fmt(s.meanPCorrupt)} · <b>average total effect</b> ATE = ${fmt(s.ate)}</p>`);

  const range = (vs: TraceVariant[]): [number, number] => {
    const xs = vs.flatMap((v) => POSITION_GROUPS.flatMap((g) => s.aie[v][g].aie)).filter((x): x is number => x !== null);
    return [Math.min(0, ...xs), Math.max(1e-9, ...xs)];
  };
  o.push(`<h2>Average indirect effect by position and block</h2><div class="row">`);
  for (const v of ["residual", "mlpWindow", "attnWindow"] as const) o.push(`<figure class="card">${groupPanel(r, v, range([v]))}</figure>`);
  o.push(`</div>`);
  o.push(`<p class="caption">AIE = mean over facts of p<sub>restored</sub>(o) − p<sub>corrupt</sub>(o) when that state alone is restored to its clean value in the corrupted run (ROME §2.1). Each panel has its own color scale (white = the smaller of 0 and the smallest value, dark = the largest). Multi-token groups pool their (fact, position) pairs.</p>`);
  o.push(`<div class="row">`);
  for (const v of ["mlp", "attn"] as const) o.push(`<figure class="card">${groupPanel(r, v, range([v]))}</figure>`);
  o.push(`</div><p class="caption">Single-block restorations (no window).</p>`);

  o.push(`<h2>Subject's last token vs all subject tokens</h2>`);
  const blocks = Array.from({ length: L }, (_, l) => l);
  const last = s.aie.residual.lastSubject.aie;
  o.push(`<div class="row"><figure class="card">${lineChart({
    id: "subject-last-vs-all", title: "Residual restored at block l: last subject token vs all subject tokens", xLabel: "block", yLabel: "AIE", includeZero: true, xTicks: blocks,
    series: [
      { id: "all", label: "all subject tokens", color: "#3f007d", marker: "square", points: blocks.map((l) => ({ x: l, y: s.subjectAll[l]! })) },
      { id: "last", label: "last subject token", color: "#D55E00", marker: "circle", points: blocks.map((l) => ({ x: l, y: last[l] ?? null })) },
    ],
  })}</figure></div>`);
  o.push(`<table class="t"><thead><tr><th>block</th>${blocks.map((l) => `<th>${l}</th>`).join("")}</tr></thead><tbody>`);
  o.push(`<tr><td>AIE, all subject tokens</td>${blocks.map((l) => `<td>${fmt(s.subjectAll[l]!)}</td>`).join("")}</tr>`);
  o.push(`<tr><td>AIE, last subject token</td>${blocks.map((l) => `<td>${fmt(last[l] ?? null)}</td>`).join("")}</tr>`);
  o.push(`<tr><td>last / all</td>${blocks.map((l) => `<td>${fmt(s.lastOverAll[l] ?? null, 2)}</td>`).join("")}</tr>`);
  o.push(`<tr><td>MLP (W ${r.options.window}) at last subject token / ATE</td>${ratioToTe(s.aie.mlpWindow.lastSubject, s.ate).map((x) => `<td>${fmt(x, 2)}</td>`).join("")}</tr>`);
  o.push(`</tbody></table>`);

  if (suggestion) {
    o.push(`<h2>Layer suggestion</h2><div class="suggest"><p>Windowed MLP AIE at the last subject token peaks at <b>block ${suggestion.peak}</b> (AIE ${fmt(suggestion.peakAie, 4)}). ` +
      `ROME layer <b>${suggestion.romeLayer}</b>; MEMIT-family edit layers <b>${suggestion.editLayers.join(", ")}</b> (z-layer ${suggestion.targetLayer}). ` +
      `Single-block MLP AIE at the last subject token peaks at block ${suggestion.singlePeak}.</p><p class="note">Rule: ${escapeXml(suggestion.rule)}.</p></div>`);
  }

  const nEx = Math.min(opts.exampleFacts ?? 3, r.facts.length);
  if (nEx > 0) {
    o.push(`<h2>Example facts</h2>`);
    for (const t of r.facts.slice(0, nEx)) {
      o.push(`<p class="meta"><b>#${t.index}</b> ${escapeXml(t.prompt)} → <b>${escapeXml(t.object)}</b> · p clean ${fmt(t.pClean)}, corrupted ${fmt(t.pCorrupt)}, TE ${fmt(t.te)} (subject tokens *)</p><div class="row">`);
      for (const v of ["residual", "mlpWindow", "attnWindow"] as const) o.push(`<figure class="card">${factPanel(t, v, L, r.options.window)}</figure>`);
      o.push(`</div>`);
    }
  }
  if (r.dropped.length > 0 || r.rejected.length > 0) {
    o.push(`<details><summary>${r.dropped.length} dropped, ${r.rejected.length} rejected facts</summary><ul class="note">`);
    for (const d of r.dropped.slice(0, 200)) o.push(`<li>#${d.index} (case ${escapeXml(d.caseId)}): ${escapeXml(d.reason)}</li>`);
    for (const d of r.rejected.slice(0, 200)) o.push(`<li>${escapeXml(d.message)}</li>`);
    o.push(`</ul></details>`);
  }
  o.push(`</main></body></html>\n`);
  return o.join("\n");
}

export function writeTraceHtml(file: string, r: TraceResult, suggestion: LayerSuggestion | null): void {
  writeFileAtomic(file, renderTraceHtml(r, suggestion));
}
