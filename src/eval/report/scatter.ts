/**
 * Inline SVG scatter charts (same look and conventions as svg.ts's line charts: no scripts, native
 * `<title>` tooltips, classes for tests): points per series, optionally joined in the given order
 * (a trajectory, e.g. efficacy against noise along the stream), linear or log axes on both x and y.
 *   svg.plot[data-plot]   circle.dot[data-series]   polyline.series[data-series]
 */
import { escapeXml, formatTick, niceTicks } from "./svg.js";

export interface ScatterPoint {
  x: number;
  y: number;
  tip?: string;
}

export interface ScatterSeries {
  id: string;
  label: string;
  color: string;
  points: ScatterPoint[];
  connect?: boolean; // join the points in order
  radius?: number; // default 3
  opacity?: number; // default 0.85
  legend?: boolean; // default true
}

export interface ScatterSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: ScatterSeries[];
  width?: number; // default 560
  height?: number; // default 340
  xScale?: "linear" | "log"; // log drops non-positive values
  yScale?: "linear" | "log";
  /** Same units per pixel on both axes (a PCA picture). */
  equalAspect?: boolean;
  accent?: string;
}

const r1 = (v: number): string => (Math.round(v * 10) / 10).toString();

interface Axis {
  lo: number;
  hi: number;
  ticks: number[];
  log: boolean;
  t: (v: number) => number; // value → [0, 1]
}

function axis(values: number[], log: boolean): Axis {
  let lo = Math.min(...values), hi = Math.max(...values);
  if (values.length === 0) [lo, hi] = log ? [1, 10] : [0, 1];
  if (log) {
    const e0 = Math.floor(Math.log10(lo)), e1 = Math.max(Math.ceil(Math.log10(hi)), e0 + 1);
    const step = Math.max(1, Math.ceil((e1 - e0) / 6));
    const ticks: number[] = [];
    for (let e = e0; e <= e1; e += step) ticks.push(10 ** e);
    const a = 10 ** e0, b = 10 ** e1;
    return { lo: a, hi: b, ticks, log, t: (v) => (Math.log10(v) - Math.log10(a)) / (Math.log10(b) - Math.log10(a)) };
  }
  if (!(hi > lo)) [lo, hi] = [lo - 1, hi + 1];
  const pad = (hi - lo) * 0.06;
  [lo, hi] = [lo - pad, hi + pad];
  const ticks = niceTicks(lo, hi, 6);
  return { lo, hi, ticks, log, t: (v) => (v - lo) / (hi - lo) };
}

/** Widen the narrower linear axis so both have the same units per pixel. */
function equalize(x: Axis, y: Axis, pw: number, ph: number): [Axis, Axis] {
  const ux = (x.hi - x.lo) / pw, uy = (y.hi - y.lo) / ph;
  const grow = (a: Axis, span: number): Axis => {
    const mid = (a.lo + a.hi) / 2, lo = mid - span / 2, hi = mid + span / 2;
    return { lo, hi, ticks: niceTicks(lo, hi, 6), log: false, t: (v) => (v - lo) / (hi - lo) };
  };
  return ux > uy ? [x, grow(y, ux * ph)] : [grow(x, uy * pw), y];
}

export function scatterChart(spec: ScatterSpec): string {
  const W = spec.width ?? 560, H = spec.height ?? 340;
  const xlog = spec.xScale === "log", ylog = spec.yScale === "log";
  const ok = (v: number, log: boolean): boolean => Number.isFinite(v) && (!log || v > 0);
  const series = spec.series.map((s) => ({ ...s, points: s.points.filter((p) => ok(p.x, xlog) && ok(p.y, ylog)) }));
  const legendItems = series.filter((s) => s.legend !== false);
  // legend rows wrapped to the width
  const rows: { s: ScatterSeries; x: number }[][] = [[]];
  let lx = 16;
  for (const s of legendItems) {
    const w = 22 + s.label.length * 6.6 + 14;
    if (lx + w > W - 16 && rows[rows.length - 1]!.length > 0) {
      rows.push([]);
      lx = 16;
    }
    rows[rows.length - 1]!.push({ s, x: lx });
    lx += w;
  }
  const top = 34 + (legendItems.length > 0 ? rows.length * 18 : 0) + 8, left = 64, right = 18, bottom = 46;
  const pw = W - left - right, ph = H - top - bottom;
  let xa = axis(series.flatMap((s) => s.points.map((p) => p.x)), xlog);
  let ya = axis(series.flatMap((s) => s.points.map((p) => p.y)), ylog);
  if (spec.equalAspect === true && !xlog && !ylog) [xa, ya] = equalize(xa, ya, pw, ph);
  const sx = (v: number): number => left + xa.t(v) * pw;
  const sy = (v: number): number => top + ph - ya.t(v) * ph;

  const o: string[] = [];
  o.push(`<svg class="plot" data-plot="${escapeXml(spec.id)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(spec.title)}">`);
  o.push(`<title>${escapeXml(spec.title)}</title>`);
  o.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`);
  if (spec.accent !== undefined) o.push(`<rect class="accent" x="0" y="0" width="${W}" height="4" fill="${spec.accent}"/>`);
  const titleSize = Math.min(15, (W - 32) / (0.56 * Math.max(1, spec.title.length)));
  o.push(`<text x="16" y="22" class="ctitle" font-size="${r1(titleSize)}" font-weight="600" fill="#1f2328">${escapeXml(spec.title)}</text>`);
  rows.forEach((row, r) => {
    for (const { s, x } of row) {
      const y = 42 + r * 18;
      o.push(`<g class="legend-item" data-series="${escapeXml(s.id)}">`);
      if (s.connect === true) o.push(`<line x1="${r1(x)}" y1="${y}" x2="${r1(x + 16)}" y2="${y}" stroke="${s.color}" stroke-width="2"/>`);
      o.push(`<circle cx="${r1(x + 8)}" cy="${y}" r="4" fill="${s.color}" fill-opacity="${s.opacity ?? 0.85}"/>`);
      o.push(`<text x="${r1(x + 22)}" y="${y + 4}" font-size="12" fill="#1f2328">${escapeXml(s.label)}</text></g>`);
    }
  });
  o.push(`<g class="axis y" font-size="11" fill="#57606a">`);
  for (const t of ya.ticks) {
    if (t < ya.lo - 1e-12 * Math.abs(ya.hi) || t > ya.hi + 1e-12 * Math.abs(ya.hi)) continue;
    o.push(`<line x1="${left}" y1="${r1(sy(t))}" x2="${left + pw}" y2="${r1(sy(t))}" stroke="${t === 0 && !ylog ? "#8c959f" : "#eaeef2"}"/>`);
    o.push(`<text x="${left - 7}" y="${r1(sy(t) + 3.8)}" text-anchor="end">${escapeXml(formatTick(t))}</text>`);
  }
  o.push(`</g><g class="axis x" font-size="11" fill="#57606a">`);
  for (const t of xa.ticks) {
    if (t < xa.lo - 1e-12 * Math.abs(xa.hi) || t > xa.hi + 1e-12 * Math.abs(xa.hi)) continue;
    o.push(`<line x1="${r1(sx(t))}" y1="${top}" x2="${r1(sx(t))}" y2="${top + ph}" stroke="${t === 0 && !xlog ? "#8c959f" : "#eaeef2"}"/>`);
    o.push(`<text x="${r1(sx(t))}" y="${top + ph + 18}" text-anchor="middle">${escapeXml(formatTick(t))}</text>`);
  }
  o.push(`</g>`);
  o.push(`<line x1="${left}" y1="${top + ph}" x2="${left + pw}" y2="${top + ph}" stroke="#57606a"/>`);
  o.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + ph}" stroke="#57606a"/>`);
  o.push(`<text x="${left + pw / 2}" y="${H - 8}" text-anchor="middle" font-size="12" fill="#1f2328">${escapeXml(spec.xLabel)}${xlog ? " (log)" : ""}</text>`);
  o.push(`<text transform="translate(16 ${r1(top + ph / 2)}) rotate(-90)" text-anchor="middle" font-size="12" fill="#1f2328">${escapeXml(spec.yLabel)}${ylog ? " (log)" : ""}</text>`);
  for (const s of series) {
    if (s.connect === true && s.points.length > 1) {
      o.push(`<polyline class="series" data-series="${escapeXml(s.id)}" points="${s.points.map((p) => `${r1(sx(p.x))},${r1(sy(p.y))}`).join(" ")}" fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round"/>`);
    }
  }
  for (const s of series) {
    for (const p of s.points) {
      const tip = p.tip !== undefined ? `<title>${escapeXml(p.tip)}</title>` : "";
      o.push(`<circle class="dot" data-series="${escapeXml(s.id)}" cx="${r1(sx(p.x))}" cy="${r1(sy(p.y))}" r="${s.radius ?? 3}" fill="${s.color}" fill-opacity="${s.opacity ?? 0.85}">${tip}</circle>`);
    }
  }
  o.push(`</svg>`);
  return o.join("\n");
}
