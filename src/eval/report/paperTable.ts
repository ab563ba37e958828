/**
 * The `paper` run's terminal summary: at the last of the paper's scaled checkpoints and at the end of
 * the stream, one line per method with the main table's metrics (means), noise_E, the activation /
 * overlap means, the representation shift and the general-ability checks; then the β sweep.
 */
import { paperLabel, PAPER_TABLE_METRICS, type PaperReport } from "./paperReport.js";
import { formatNumber } from "./table.js";

function render(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string => r.map((s, c) => (c === 0 ? s.padEnd(widths[c]!) : s.padStart(widths[c]!))).join("  ").trimEnd();
  return [line(rows[0]!), widths.map((w) => "─".repeat(w)).join("  "), ...rows.slice(1).map(line)];
}

export function renderPaperSummary(r: PaperReport): string {
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
