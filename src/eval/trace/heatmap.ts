/**
 * Inline SVG heat maps (ROME's causal-tracing figure): rows × columns of cells colored from white
 * (vmin) to a dark hue (vmax), row labels on the left, column ticks below, a color bar on the
 * right; cells may print their value. No scripts or external references; each cell has a native
 * `<title>` tooltip. Elements: svg.heatmap[data-plot], rect.cell[data-row][data-col].
 */
import { escapeXml, formatTick } from "../report/svg.js";

export type HeatPalette = "purples" | "greens" | "reds" | "blues";

/** Dark end of each palette (ROME: Purples for the residual, Greens for MLP, Reds for attention). */
const DARK: Record<HeatPalette, [number, number, number]> = {
  purples: [63, 0, 125],
  greens: [0, 68, 27],
  reds: [103, 0, 13],
  blues: [8, 48, 107],
};

export interface HeatmapSpec {
  id: string;
  title: string;
  rowLabels: string[];
  colLabels: string[];
  values: (number | null)[][]; // (rows, cols); null: no value (hatched grey)
  palette: HeatPalette;
  vmin?: number; // default min of values
  vmax?: number; // default max of values
  xLabel?: string;
  valueLabel?: string; // color-bar caption
  showValues?: boolean; // default: when there are few columns
  boldRows?: number[]; // rows whose label is bold (e.g. subject tokens)
  width?: number;
}

/** White → palette's dark color at t ∈ [0, 1]. */
export function heatColor(palette: HeatPalette, t: number): string {
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  const [r, g, b] = DARK[palette];
  const mix = (c: number): number => Math.round(255 + (c - 255) * u);
  return `rgb(${mix(r)},${mix(g)},${mix(b)})`;
}

const f1 = (v: number): string => (Math.round(v * 10) / 10).toString();

export function heatmap(spec: HeatmapSpec): string {
  const rows = spec.rowLabels.length;
  const cols = spec.colLabels.length;
  const finite = spec.values.flat().filter((v): v is number => v !== null && Number.isFinite(v));
  let vmin = spec.vmin ?? Math.min(0, ...finite);
  let vmax = spec.vmax ?? Math.max(...finite, vmin + 1e-12);
  if (!(vmax > vmin)) [vmin, vmax] = [vmin, vmin + 1e-12];
  const labelW = Math.min(230, 18 + 6.6 * Math.max(4, ...spec.rowLabels.map((l) => l.length)));
  const W = spec.width ?? Math.max(360, labelW + cols * 34 + 90);
  const cellW = (W - labelW - 90) / Math.max(1, cols);
  const cellH = rows > 12 ? 18 : 26;
  const top = 34;
  const H = top + rows * cellH + 52;
  const show = spec.showValues ?? cols <= 16;
  const o: string[] = [];
  o.push(`<svg class="heatmap" data-plot="${escapeXml(spec.id)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${f1(W)} ${H}" width="${f1(W)}" height="${H}" role="img" aria-label="${escapeXml(spec.title)}">`);
  o.push(`<title>${escapeXml(spec.title)}</title><rect x="0" y="0" width="${f1(W)}" height="${H}" fill="#fff"/>`);
  o.push(`<text x="12" y="21" font-size="${f1(Math.min(14, (W - 24) / (0.56 * Math.max(1, spec.title.length))))}" font-weight="600" fill="#1f2328">${escapeXml(spec.title)}</text>`);
  const bold = new Set(spec.boldRows ?? []);
  for (let r = 0; r < rows; r++) {
    const y = top + r * cellH;
    o.push(`<text x="${f1(labelW - 8)}" y="${f1(y + cellH / 2 + 4)}" text-anchor="end" font-size="12" fill="#1f2328"${bold.has(r) ? ' font-weight="700"' : ""}>${escapeXml(spec.rowLabels[r]!)}</text>`);
    for (let c = 0; c < cols; c++) {
      const v = spec.values[r]?.[c] ?? null;
      const x = labelW + c * cellW;
      const tip = `${spec.rowLabels[r]} · ${spec.colLabels[c]}: ${v === null ? "—" : v.toFixed(4)}`;
      if (v === null || !Number.isFinite(v)) {
        o.push(`<rect class="cell" data-row="${r}" data-col="${c}" x="${f1(x)}" y="${f1(y)}" width="${f1(cellW)}" height="${cellH}" fill="#eaeef2" stroke="#fff" stroke-width="1"><title>${escapeXml(tip)}</title></rect>`);
        continue;
      }
      const t = (v - vmin) / (vmax - vmin);
      o.push(`<rect class="cell" data-row="${r}" data-col="${c}" x="${f1(x)}" y="${f1(y)}" width="${f1(cellW)}" height="${cellH}" fill="${heatColor(spec.palette, t)}" stroke="#fff" stroke-width="1"><title>${escapeXml(tip)}</title></rect>`);
      if (show && cellW >= 26) {
        o.push(`<text x="${f1(x + cellW / 2)}" y="${f1(y + cellH / 2 + 4)}" text-anchor="middle" font-size="${cellW >= 40 ? 11 : 9}" fill="${t > 0.55 ? "#fff" : "#1f2328"}" pointer-events="none">${escapeXml(cellText(v))}</text>`);
      }
    }
  }
  // column ticks (every one when they fit, else about 12)
  const every = Math.max(1, Math.ceil(cols / Math.max(1, Math.floor((W - labelW - 90) / 22))));
  for (let c = 0; c < cols; c += every) {
    o.push(`<text x="${f1(labelW + (c + 0.5) * cellW)}" y="${f1(top + rows * cellH + 15)}" text-anchor="middle" font-size="11" fill="#57606a">${escapeXml(spec.colLabels[c]!)}</text>`);
  }
  if (spec.xLabel !== undefined) o.push(`<text x="${f1(labelW + (cols * cellW) / 2)}" y="${f1(top + rows * cellH + 36)}" text-anchor="middle" font-size="12" fill="#1f2328">${escapeXml(spec.xLabel)}</text>`);
  // color bar
  const bx = W - 70;
  const bh = rows * cellH;
  const steps = 24;
  for (let i = 0; i < steps; i++) {
    o.push(`<rect x="${f1(bx)}" y="${f1(top + (bh * i) / steps)}" width="12" height="${f1(bh / steps + 0.5)}" fill="${heatColor(spec.palette, 1 - (i + 0.5) / steps)}"/>`);
  }
  o.push(`<rect x="${f1(bx)}" y="${top}" width="12" height="${f1(bh)}" fill="none" stroke="#8c959f"/>`);
  o.push(`<text x="${f1(bx + 16)}" y="${top + 9}" font-size="10" fill="#57606a">${escapeXml(formatTick(Number(vmax.toPrecision(3))))}</text>`);
  o.push(`<text x="${f1(bx + 16)}" y="${f1(top + bh)}" font-size="10" fill="#57606a">${escapeXml(formatTick(Number(vmin.toPrecision(3))))}</text>`);
  if (spec.valueLabel !== undefined) o.push(`<text x="${f1(bx + 6)}" y="${f1(top + bh + 15)}" text-anchor="middle" font-size="10" fill="#57606a">${escapeXml(spec.valueLabel)}</text>`);
  o.push(`</svg>`);
  return o.join("\n");
}

function cellText(v: number): string {
  const a = Math.abs(v);
  if (a >= 0.995) return v.toFixed(1);
  if (a < 0.005) return "0";
  return v.toFixed(2).replace(/^(-?)0\./, "$1.");
}
