/**
 * The `paper` run's terminal summary: at the last of the paper's scaled checkpoints and at the end of
 * the stream, one line per method with the main table's metrics (means), noise_E, the activation /
 * overlap means, the representation shift and the general-ability checks; then the β sweep.
 *
 * A multi-ordering run (`--seeds N`) shows each of those as mean ± 95 % CI half-width across the
 * orderings, in two tables per checkpoint (the paper's metrics; noise, overlaps, shift and general
 * ability), with the bench table's marks (* best, ~ not significantly different from the best:
 * table.ts `markBestCells`), then the verdict: each DeltaEdit variant minus AlphaEdit at the end of
 * the stream, mean difference ± paired 95 % CI, and whether it is significant (paperReport.ts `paperVerdict`).
 */
import type { SeedSpread } from "./benchReport.js";
import { paperLabel, PAPER_TABLE_METRICS, type PaperReport, type PaperVerdict, type PaperVerdictRow } from "./paperReport.js";
import { alignPm, cellLegend, formatMeanStd, formatNumber, markBestCells, type SummaryCell } from "./table.js";

function render(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string => r.map((s, c) => (c === 0 ? s.padEnd(widths[c]!) : s.padStart(widths[c]!))).join("  ").trimEnd();
  return [line(rows[0]!), widths.map((w) => "─".repeat(w)).join("  "), ...rows.slice(1).map(line)];
}

export function renderPaperSummary(r: PaperReport): string {
  if ((r.orderings?.count ?? 1) > 1) return renderMultiOrdering(r);
  const out: string[] = [];
  const lastPaper = Math.max(...r.schedule.scaled.map((s) => s.scaled));
  const at = [...new Set([lastPaper, r.schedule.stream])];
  const f1 = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(1));
  for (const e of at) {
    const block = r.table.find((b) => b.edits === e);
    if (block === undefined) continue;
    const paper = block.paper !== null ? ` (the paper's ${block.paper} on GPT2-XL)` : "";
    out.push(`${r.bench.title} — after ${e} edits${paper}`, "");
    const rows: string[][] = [["Method", ...PAPER_TABLE_METRICS.map((t) => t.label), "noise_E", "|g|", "|h|", "shift", "ppl", "facts %"]];
    for (const row of block.rows) {
      const noise = r.noise.find((n) => n.method === row.method)?.points.find((p) => p.edits === e);
      const ov = r.overlap.find((o) => o.method === row.method)?.points.find((p) => p.edits === e);
      const shift = e === r.schedule.stream ? r.representation?.methods.find((m) => m.method === row.method)?.stats.relativeShift : undefined;
      const gen = r.general.find((g) => g.method === row.method)?.points.find((p) => p.edits === e);
      rows.push([
        paperLabel(r, row.method), ...PAPER_TABLE_METRICS.map((t) => f1(row.metrics[t.key]?.mean)),
        formatNumber(noise?.noiseE), formatNumber(ov?.meanAbsActivation), formatNumber(ov?.meanAbsOverlap), formatNumber(shift),
        formatNumber(gen?.perplexity), f1(gen?.factAccuracy),
      ]);
    }
    out.push(...render(rows), "");
  }
  const beta = r.betaSweep.points;
  if (beta.length > 0) {
    out.push(`β sweep: DeltaEdit (${r.betaSweep.variant}), ${r.betaSweep.edits} edits`, "");
    out.push(...render([["β", "trigger %", "Eff.", "Gen.", "Spe.", "noise_E"], ...beta.map((p) => [String(p.beta), p.triggerRate === null ? (p.status === "failed" ? "failed" : "-") : (100 * p.triggerRate).toFixed(1), f1(p.metrics["post_rewrite_success"]), f1(p.metrics["post_paraphrase_success"]), f1(p.metrics["post_neighborhood_success"]), formatNumber(p.noiseE)])]), "");
  }
  out.push("means over the records edited so far (×100); |g| = mean |β_j·k_i|, |h| = mean |α_j·α_l| over pairs i ≠ j at the last edited layer; shift = mean distance moved by unrelated prompts' hidden states / their spread (end of stream)");
  const failed = r.methods.filter((m) => m.status === "failed");
  for (const m of failed) out.push(`${m.label}: failed: ${m.error ?? ""}`);
  return out.join("\n");
}

/** A "mean ± CI" cell of a number across orderings (`fmt` for both), "-" when absent. */
function spreadCell(sp: SeedSpread | undefined, fmt: (v: number) => string): SummaryCell {
  if (sp === undefined || sp.mean === null || !Number.isFinite(sp.mean)) return { text: "-", mean: null, best: false };
  return { text: sp.ci95 === null ? fmt(sp.mean) : `${fmt(sp.mean)} ± ${fmt(sp.ci95)}`, mean: sp.mean, best: false };
}

/** Rows of cells (with their per-ordering values for the marks) as aligned "±" columns under a header. */
function renderCells(header: string[], labels: string[], cells: SummaryCell[][]): string[] {
  const body = header.slice(1).map((_, c) => alignPm(cells.map((row) => row[c]!.text + (row[c]!.best ? "*" : row[c]!.notSignificant === true ? "~" : " "))));
  return render([header, ...labels.map((l, i) => [l, ...body.map((col) => col[i]!)])]);
}

/** The tables of a paper run on N > 1 orderings (mean ± 95 % CI, marks), the β sweep (ordering 0) and the verdict. */
function renderMultiOrdering(r: PaperReport): string {
  const n = r.orderings!.count;
  const out: string[] = [];
  const lastPaper = Math.max(...r.schedule.scaled.map((s) => s.scaled));
  const f1 = (v: number): string => v.toFixed(1);
  for (const e of [...new Set([lastPaper, r.schedule.stream])]) {
    const block = r.table.find((b) => b.edits === e);
    if (block === undefined) continue;
    const paper = block.paper !== null ? ` (the paper's ${block.paper} on GPT2-XL)` : "";
    out.push(`${r.bench.title} — after ${e} edits${paper}, mean ± 95 % CI over ${n} orderings`, "");
    const labels = block.rows.map((row) => paperLabel(r, row.method));
    // the paper's metrics
    const metricCells = block.rows.map((row) => PAPER_TABLE_METRICS.map((t) => {
      const s = row.metrics[t.key];
      return { text: formatMeanStd(s?.mean, s?.ci95, 1), mean: s !== null && s !== undefined && Number.isFinite(s.mean) ? s.mean : null, best: false } as SummaryCell;
    }));
    markBestCells(metricCells, PAPER_TABLE_METRICS.map(() => 1), block.rows.map((row) => PAPER_TABLE_METRICS.map((t) => row.metrics[t.key]?.perSeed)));
    out.push(...renderCells(["Method", ...PAPER_TABLE_METRICS.map((t) => t.label)], labels, metricCells), "");
    // noise, overlaps, shift, general ability
    const spreads = block.rows.map((row) => {
      const noise = r.noise.find((x) => x.method === row.method)?.points.find((p) => p.edits === e);
      const ov = r.overlap.find((o) => o.method === row.method);
      const oi = ov?.points.findIndex((p) => p.edits === e) ?? -1;
      const shift = e === r.schedule.stream ? r.representation?.methods.find((m) => m.method === row.method)?.acrossOrderings?.["relativeShift"] : undefined;
      const gen = r.general.find((g) => g.method === row.method)?.points.find((p) => p.edits === e);
      return [noise?.acrossOrderings?.["noiseE"], oi >= 0 ? ov!.acrossOrderings?.[oi]?.["meanAbsActivation"] : undefined, oi >= 0 ? ov!.acrossOrderings?.[oi]?.["meanAbsOverlap"] : undefined, shift, gen?.acrossOrderings?.["perplexity"], gen?.acrossOrderings?.["factAccuracy"]];
    });
    const fmts = [formatNumber, formatNumber, formatNumber, formatNumber, formatNumber, f1];
    const analysisCells = spreads.map((row) => row.map((sp, c) => spreadCell(sp, fmts[c]!)));
    // lower is better for noise_E, shift and perplexity, higher for control facts; |g| and |h| are not ranked
    markBestCells(analysisCells, [-1, 0, 0, -1, -1, 1], spreads.map((row) => row.map((sp) => sp?.perSeed)));
    out.push(...renderCells(["Method", "noise_E", "|g|", "|h|", "shift", "ppl", "facts %"], labels, analysisCells), "");
  }
  const beta = r.betaSweep.points;
  if (beta.length > 0) {
    out.push(`β sweep: DeltaEdit (${r.betaSweep.variant}), ${r.betaSweep.edits} edits, ordering 0 (file order) only`, "");
    out.push(...render([["β", "trigger %", "Eff.", "Gen.", "Spe.", "noise_E"], ...beta.map((p) => [String(p.beta), p.triggerRate === null ? (p.status === "failed" ? "failed" : "-") : (100 * p.triggerRate).toFixed(1), fmt1(p.metrics["post_rewrite_success"]), fmt1(p.metrics["post_paraphrase_success"]), fmt1(p.metrics["post_neighborhood_success"]), formatNumber(p.noiseE)])]), "");
  }
  if (r.verdict !== undefined && r.verdict !== null) out.push(...renderVerdict(r, r.verdict), "");
  else out.push(`verdict: needs AlphaEdit and a DeltaEdit variant among the methods that finished`, "");
  out.push(...cellLegend(r.bench));
  out.push("numbers: each ordering's mean over the records edited so far (×100); |g| = mean |β_j·k_i|, |h| = mean |α_j·α_l| over pairs i ≠ j at the last edited layer (not ranked); shift = mean distance moved by unrelated prompts' hidden states / their spread (end of stream)");
  for (const m of r.methods.filter((x) => x.status === "failed")) out.push(`${m.label}: failed: ${m.error ?? ""}`);
  return out.join("\n");
}

function fmt1(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "-" : v.toFixed(1);
}

/** "+1.23", "-0.0456": a signed difference with 3 significant figures ("-" when absent). */
export function formatSigned(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "-";
  return x > 0 ? `+${formatNumber(x)}` : formatNumber(x);
}

/** A verdict cell: "+12.5 ± 3.1 better", "−0.8 ± 2.0 n.s.", "+1.1 (1 ordering) ?". */
export function verdictCell(v: PaperVerdictRow): string {
  const mark = v.outcome === "not significant" ? "n.s." : v.outcome === "undetermined" ? "?" : v.outcome;
  return `${formatSigned(v.meanDiff)}${v.ci95 !== null ? ` ± ${formatNumber(v.ci95)}` : ""} ${mark}`;
}

/** The verdict block: one line per number, one column per DeltaEdit variant (variant − AlphaEdit, paired 95 % CI). */
export function renderVerdict(r: PaperReport, v: PaperVerdict): string[] {
  const variants = [...new Set(v.rows.map((x) => x.method))];
  const keys = [...new Set(v.rows.map((x) => x.key))];
  const base = paperLabel(r, v.baseline);
  const rows: string[][] = [["Number", `${base}`, ...variants.flatMap((m) => [paperLabel(r, m), `− ${base}`])]];
  for (const k of keys) {
    const first = v.rows.find((x) => x.key === k)!;
    const line = [`${first.label}${first.edits !== v.edits ? ` (after ${first.edits})` : ""}`, formatNumber(first.baselineMean)];
    for (const m of variants) {
      const x = v.rows.find((y) => y.key === k && y.method === m);
      line.push(formatNumber(x?.mean), x === undefined ? "-" : verdictCell(x));
    }
    rows.push(line);
  }
  const pct = Math.round(100 * v.confidence);
  return [
    `Verdict after ${v.edits} edits: DeltaEdit minus ${base}, mean difference over ${v.orderings} orderings ± half-width of its ${pct} % CI (paired t, ${v.orderings - 1} df)`,
    "",
    ...render(rows),
    "",
    `better / worse: the interval excludes 0, in the number's good / bad direction (lower is better for perplexity, noise_E, |g|, |h|, shift); n.s.: not significant at ${pct} %; ?: fewer than 2 orderings with both values`,
  ];
}
