/**
 * Inline SVG line charts: no scripts, no fonts, no external references; tooltips are native
 * `<title>` elements. One chart = title, legend, axes with ticks and labels, light grid, one
 * polyline per series (broken at missing values), an optional shaded band (e.g. mean ± std) and a
 * marker at every point. Elements carry classes for tests and styling:
 *   svg.plot[data-plot]   polyline.series[data-series]   .pt[data-series] (markers)   path.band
 */

export interface ChartPoint {
  x: number;
  y: number | null; // null/NaN: a gap
  lo?: number; // band (e.g. mean − std)
  hi?: number;
  tip?: string; // tooltip text (default "series — x: y")
}

export interface ChartSeries {
  id: string; // stable key (method name or term), used in data-series
  label: string;
  color: string;
  points: ChartPoint[];
  marker?: MarkerShape;
  dashed?: boolean;
}

export type MarkerShape = "circle" | "square" | "diamond" | "triangle";
export const MARKER_SHAPES: readonly MarkerShape[] = ["circle", "square", "diamond", "triangle"];

export interface LineChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  width?: number; // default 560
  height?: number; // default 340
  yScale?: "linear" | "log"; // log drops non-positive values
  includeZero?: boolean; // y domain contains 0 (default false)
  yDomain?: [number, number]; // fixed y range (e.g. [0, 100] for rates)
  xTicks?: number[]; // default: nice ticks over [0, max x]
  formatY?: (v: number) => string;
  accent?: string; // color of a thin bar on top (e.g. the method of a per-method chart)
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

/** About `count` round tick values (1, 2, 5 × 10^k steps) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const target = Math.max(1, count - 1); // intervals wanted
  let step = mag;
  for (const s of [1, 2, 2.5, 5, 10].map((m) => m * mag)) if (Math.abs((hi - lo) / s - target) < Math.abs((hi - lo) / step - target)) step = s;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return out;
}

/** Compact tick text: 1500 → "1500", 0.25 → "0.25", 2e-5 → "2e-5", 1.2e6 → "1.2e6". */
export function formatTick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace(/\.0e/, "e").replace("e+", "e");
  return Number(v.toPrecision(4)).toString();
}

const f1 = (v: number): string => (Math.round(v * 10) / 10).toString();

function markerSvg(shape: MarkerShape, x: number, y: number, color: string): string {
  const common = `fill="${color}" stroke="#fff" stroke-width="1.2"`;
  switch (shape) {
    case "circle":
      return `<circle cx="${f1(x)}" cy="${f1(y)}" r="3.6" ${common}/>`;
    case "square":
      return `<rect x="${f1(x - 3.3)}" y="${f1(y - 3.3)}" width="6.6" height="6.6" ${common}/>`;
    case "diamond":
      return `<path d="M${f1(x)} ${f1(y - 4.4)}L${f1(x + 4.4)} ${f1(y)}L${f1(x)} ${f1(y + 4.4)}L${f1(x - 4.4)} ${f1(y)}Z" ${common}/>`;
    case "triangle":
      return `<path d="M${f1(x)} ${f1(y - 4.6)}L${f1(x + 4.4)} ${f1(y + 3.2)}L${f1(x - 4.4)} ${f1(y + 3.2)}Z" ${common}/>`;
  }
}

/** Rows of legend items: [{ series, x }] per row, wrapped to the plot width. */
function legendRows(series: readonly ChartSeries[], x0: number, width: number): { s: ChartSeries; x: number }[][] {
  const rows: { s: ChartSeries; x: number }[][] = [[]];
  let x = x0;
  for (const s of series) {
    const w = 26 + s.label.length * 6.6 + 14;
    if (x + w > x0 + width && rows[rows.length - 1]!.length > 0) {
      rows.push([]);
      x = x0;
    }
    rows[rows.length - 1]!.push({ s, x });
    x += w;
  }
  return rows;
}

export function lineChart(spec: LineChartSpec): string {
  const W = spec.width ?? 560, H = spec.height ?? 340;
  const log = spec.yScale === "log";
  const ok = (y: number | null | undefined): y is number => y !== null && y !== undefined && Number.isFinite(y) && (!log || y > 0);
  const legend = legendRows(spec.series, 16, W - 32);
  const top = 34 + legend.length * 18 + 8, left = 64, right = 18, bottom = 46;
  const pw = W - left - right, ph = H - top - bottom;

  // domains
  const xs = spec.series.flatMap((s) => s.points.map((p) => p.x));
  const xMax = Math.max(1, ...xs);
  const xTicks = spec.xTicks ?? niceTicks(0, xMax, 6);
  const x1 = Math.max(xMax, ...xTicks);
  const ys = spec.series.flatMap((s) => s.points.flatMap((p) => [p.y, p.lo, p.hi].filter(ok)));
  let [y0, y1] = spec.yDomain ?? [Math.min(...ys), Math.max(...ys)];
  if (ys.length === 0 && spec.yDomain === undefined) [y0, y1] = log ? [1, 10] : [0, 1];
  if (spec.includeZero === true && !log) [y0, y1] = [Math.min(y0, 0), Math.max(y1, 0)];
  let yTicks: number[];
  if (log) {
    const e0 = Math.floor(Math.log10(y0)), e1 = Math.ceil(Math.log10(y1));
    [y0, y1] = [10 ** e0, 10 ** Math.max(e1, e0 + 1)];
    const step = Math.max(1, Math.ceil((e1 - e0) / 6));
    yTicks = [];
    for (let e = e0; e <= Math.max(e1, e0 + 1); e += step) yTicks.push(10 ** e);
  } else {
    if (!(y1 > y0)) [y0, y1] = [y0 - 1, y1 + 1];
    if (spec.yDomain === undefined) {
      const pad = (y1 - y0) * 0.06;
      [y0, y1] = [y0 === 0 ? 0 : y0 - pad, y1 + pad];
    }
    yTicks = niceTicks(y0, y1, 6);
    if (spec.yDomain === undefined) [y0, y1] = [Math.min(y0, yTicks[0]!), Math.max(y1, yTicks[yTicks.length - 1]!)];
  }
  const sx = (x: number): number => left + (x / x1) * pw;
  const sy = (y: number): number => {
    const t = log ? (Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0)) : (y - y0) / (y1 - y0);
    return top + ph - t * ph;
  };
  const fmtY = spec.formatY ?? formatTick;

  const o: string[] = [];
  o.push(`<svg class="plot" data-plot="${escapeXml(spec.id)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(spec.title)}">`);
  o.push(`<title>${escapeXml(spec.title)}</title>`);
  o.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`);
  if (spec.accent !== undefined) o.push(`<rect class="accent" x="0" y="0" width="${W}" height="4" fill="${spec.accent}"/>`);
  const titleSize = Math.min(15, (W - 32) / (0.56 * Math.max(1, spec.title.length))); // shrink long titles to fit
  o.push(`<text x="16" y="22" class="ctitle" font-size="${f1(titleSize)}" font-weight="600" fill="#1f2328">${escapeXml(spec.title)}</text>`);
  // legend
  legend.forEach((row, r) => {
    for (const { s, x } of row) {
      const y = 42 + r * 18;
      o.push(`<g class="legend-item" data-series="${escapeXml(s.id)}">`);
      o.push(`<line x1="${f1(x)}" y1="${y}" x2="${f1(x + 20)}" y2="${y}" stroke="${s.color}" stroke-width="2.4"${s.dashed === true ? ' stroke-dasharray="5 3"' : ""}/>`);
      o.push(markerSvg(s.marker ?? "circle", x + 10, y, s.color));
      o.push(`<text x="${f1(x + 26)}" y="${y + 4}" font-size="12" fill="#1f2328">${escapeXml(s.label)}</text></g>`);
    }
  });
  // grid, ticks, axes
  o.push(`<g class="axis y" font-size="11" fill="#57606a">`);
  for (const t of yTicks) {
    if (t < y0 - 1e-12 * Math.abs(y1) || t > y1 + 1e-12 * Math.abs(y1)) continue;
    const y = f1(sy(t));
    o.push(`<line x1="${left}" y1="${y}" x2="${left + pw}" y2="${y}" stroke="${t === 0 && !log ? "#8c959f" : "#eaeef2"}" stroke-width="1"/>`);
    o.push(`<text x="${left - 7}" y="${f1(sy(t) + 3.8)}" text-anchor="end">${escapeXml(fmtY(t))}</text>`);
  }
  o.push(`</g><g class="axis x" font-size="11" fill="#57606a">`);
  for (const t of xTicks) {
    const x = f1(sx(t));
    o.push(`<line x1="${x}" y1="${top + ph}" x2="${x}" y2="${top + ph + 5}" stroke="#8c959f"/>`);
    o.push(`<text x="${x}" y="${top + ph + 18}" text-anchor="middle">${escapeXml(formatTick(t))}</text>`);
  }
  o.push(`</g>`);
  o.push(`<line x1="${left}" y1="${top + ph}" x2="${left + pw}" y2="${top + ph}" stroke="#57606a"/>`);
  o.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + ph}" stroke="#57606a"/>`);
  o.push(`<text x="${left + pw / 2}" y="${H - 8}" text-anchor="middle" font-size="12" fill="#1f2328">${escapeXml(spec.xLabel)}</text>`);
  o.push(`<text transform="translate(16 ${f1(top + ph / 2)}) rotate(-90)" text-anchor="middle" font-size="12" fill="#1f2328">${escapeXml(spec.yLabel)}${log ? " (log)" : ""}</text>`);

  // bands, lines, markers (series in order; later series drawn on top)
  const clampY = (y: number): number => Math.min(top + ph, Math.max(top, sy(y)));
  for (const s of spec.series) {
    // on a log axis a band reaching 0 or below runs to the bottom of the plot
    const banded = s.points.filter((p) => ok(p.hi) && (ok(p.lo) || (log && typeof p.lo === "number" && p.lo <= 0)));
    if (banded.length >= 2) {
      const upper = banded.map((p) => `${f1(sx(p.x))} ${f1(clampY(p.hi!))}`);
      const lower = banded.map((p) => `${f1(sx(p.x))} ${f1(ok(p.lo) ? clampY(p.lo) : top + ph)}`).reverse();
      o.push(`<path class="band" data-series="${escapeXml(s.id)}" d="M${upper.join("L")}L${lower.join("L")}Z" fill="${s.color}" fill-opacity="0.10" stroke="none"/>`);
    }
  }
  for (const s of spec.series) {
    const segments: ChartPoint[][] = [[]];
    for (const p of s.points) {
      if (ok(p.y)) segments[segments.length - 1]!.push(p);
      else if (segments[segments.length - 1]!.length > 0) segments.push([]);
    }
    for (const seg of segments) {
      if (seg.length === 0) continue;
      const pts = seg.map((p) => `${f1(sx(p.x))},${f1(sy(p.y!))}`).join(" ");
      o.push(`<polyline class="series" data-series="${escapeXml(s.id)}" points="${pts}" fill="none" stroke="${s.color}" stroke-width="2.2" stroke-linejoin="round" stroke-linecap="round"${s.dashed === true ? ' stroke-dasharray="6 4"' : ""}/>`);
    }
  }
  for (const s of spec.series) {
    for (const p of s.points) {
      if (!ok(p.y)) continue;
      const tip = p.tip ?? `${s.label} — ${formatTick(p.x)}: ${fmtY(p.y)}`;
      o.push(`<g class="pt" data-series="${escapeXml(s.id)}"><title>${escapeXml(tip)}</title>${markerSvg(s.marker ?? "circle", sx(p.x), sy(p.y), s.color)}</g>`);
    }
  }
  o.push(`</svg>`);
  return o.join("\n");
}
