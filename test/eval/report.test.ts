/**
 * Reports: terminal table, results.json (atomic, schema-checked), inline SVG charts, and the
 * self-contained HTML report rendered by headless Chromium (DOM dump + screenshot), and the same for a
 * multi-ordering bench (`--seeds N`: CI bands around every line, non-significant cells marked).
 * Without Chromium the browser test fails when CI is set and is skipped otherwise.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import type { NoiseSummary } from "../../src/eval/noise.js";
import type { BenchReport } from "../../src/eval/report/benchReport.js";
import { renderHtmlReport, reportCharts, writeHtmlReport } from "../../src/eval/report/html.js";
import { readResultsJson, resultsJson, writeResultsJson } from "../../src/eval/report/json.js";
import { escapeXml, lineChart, niceTicks } from "../../src/eval/report/svg.js";
import { formatMeanStd, renderSummaryTable, summaryTable } from "../../src/eval/report/table.js";
import { aggregateOrderings } from "../../src/eval/report/acrossSeeds.js";
import { assertBandPerLine, chromiumArgs, chromiumOrSkip, screenshotReport } from "../helpers/chromium.js";

const CHECKPOINTS = [200, 500, 1000, 1500, 2000, 2500, 3000];
const METRICS = ["post_rewrite_success", "post_paraphrase_success", "post_neighborhood_success", "post_ngram_entropy", "post_reference_score"];

function noise(edits: number, scale: number, decomposed: boolean): NoiseSummary {
  const act = scale * scale * (0.6 + edits / 4000), inter = scale * scale * (edits / 6000 - 0.1);
  const sq = act + inter;
  return {
    edits, layer: 17, variant: "final", level: decomposed ? "request" : "step", key: "solver",
    route: decomposed ? "factors" : "step-level, no decomposition", approximate: false,
    label: decomposed ? "final, key=solver, request-level, factors, layer 17" : "final, key=solver, step-level, no decomposition, layer 17",
    noiseE: Math.sqrt(sq) * 0.95, median: Math.sqrt(sq) * 0.9, meanSquared: sq, meanRelative: 0.1 * edits / 1000,
    meanProjection: -0.05 * scale, negativeProjectionFraction: 0.4, meanDrift: sq * 0.9,
    meanActivationEnergy: decomposed ? act : null, meanInterference: decomposed ? inter : null,
  };
}

/** A plausible 4-method, 7-checkpoint report (DeltaEdit with triggers, FT with step-level noise only). */
function syntheticReport(): BenchReport {
  const shape: Record<string, { decay: number; noise: number }> = { deltaedit: { decay: 0.02, noise: 1 }, alphaedit: { decay: 0.05, noise: 1.6 }, memit: { decay: 0.35, noise: 9 }, ft: { decay: 0.25, noise: 4 } };
  return {
    title: "Sequential editing, GPT2-XL, MCF",
    codeVersion: "0.1.0+test",
    created: "2025-06-01T12:00:00Z",
    model: { name: "gpt2-xl", hash: "sha256:0123456789abcdef0123456789abcdef", editedLayers: [13, 14, 15, 16, 17] },
    dataset: { name: "mcf", records: 3000, selection: "first N in file order" },
    protocol: { name: "deltaedit", batchSize: 1, totalEdits: 3000, checkpoints: CHECKPOINTS },
    modes: { neighborhood: "deltaedit", success: "larger", noise: "final, key=solver, request-level" },
    seeds: { templates: 1, fluency: 2 },
    methods: Object.entries(shape).map(([name, s], mi) => ({
      name,
      checkpoints: CHECKPOINTS.map((edits) => {
        const t = edits / 3000;
        const metrics: BenchReport["methods"][number]["checkpoints"][number]["metrics"] = {};
        METRICS.forEach((k, ki) => {
          const base = k === "post_ngram_entropy" ? 620 : k === "post_reference_score" ? 35 : 99 - 8 * ki;
          metrics[k] = { mean: base * (1 - s.decay * t) - mi * 0.5, std: k === "post_ngram_entropy" ? 12 : 10 + ki };
        });
        return {
          edits, metrics,
          noise: [noise(edits, s.noise * (1 + 3 * t * s.decay * 4), name !== "ft")],
          ...(name === "deltaedit" ? { triggerRate: 0.02 + 0.06 * t } : {}),
        };
      }),
    })),
    runs: [{ method: "deltaedit", seed: 1, status: "done", seconds: 5400 }],
    notes: ["synthetic numbers for the report test"],
  };
}

/** The synthetic report run on 3 orderings: each ordering's numbers shifted by its own offsets (a multi-ordering bench). */
function syntheticOrderings(): BenchReport {
  const shift = [[-1.5, 0.4, 1.3], [0.8, -0.2, -0.9], [0.3, -1.1, 0.6], [-0.6, 1.2, -0.4]]; // (method, ordering)
  const runs = [0, 1, 2].map((k) => {
    const r = syntheticReport();
    r.methods.forEach((m, mi) => {
      for (const c of m.checkpoints) {
        const d = shift[mi]![k]! * (1 + c.edits / 1000);
        for (const s of Object.values(c.metrics)) s.mean += d;
        for (const n of c.noise ?? []) n.noiseE *= 1 + 0.05 * shift[mi]![k]!;
        if (c.triggerRate !== undefined) c.triggerRate = Math.max(0, c.triggerRate + 0.01 * shift[mi]![k]!);
      }
    });
    return r;
  });
  return aggregateOrderings(runs, { dirs: ["seed-0", "seed-1", "seed-2"], shuffle: "ordering 0 = file order; ordering k > 0 = Fisher–Yates shuffle with Rng(k)", selection: "first 3000 records in file order" });
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-report-"));
}

test("summary table: title with protocol and modes, aligned mean ± std cells, best marked", () => {
  const r = syntheticReport();
  const text = renderSummaryTable(r);
  const lines = text.split("\n");
  assert.match(lines[0]!, /Sequential editing, GPT2-XL, MCF — after 3000 edits/);
  assert.match(lines[1]!, /protocol deltaedit, batch 1, 3000 edits · model gpt2-xl · neighborhood=deltaedit, success=larger/);
  const header = lines[3]!;
  for (const h of ["Method", "Eff.", "Gen.", "Spe.", "Flu.", "Consis.", "noise_E", "Trigger %"]) assert.ok(header.includes(h), `header lacks ${h}: ${header}`);
  const rows = lines.slice(5, 9);
  assert.deepEqual(rows.map((l) => l.split(/\s{2,}/)[0]), ["DeltaEdit", "AlphaEdit", "MEMIT", "FT"]);
  // the first "±" of every row is in the same column; all lines of the table body have equal width
  const pm = rows.map((l) => l.indexOf("±"));
  assert.ok(pm.every((x) => x === pm[0] && x > 0), `± not aligned: ${pm.join(",")}`);
  assert.ok(rows[0]!.includes("*"), "DeltaEdit has the best efficacy and is marked");
  assert.ok(rows[3]!.trimEnd().endsWith("-"), "FT has no trigger rate: '-'");
  const t = summaryTable(r, { edits: 200 });
  assert.equal(t.title, "Sequential editing, GPT2-XL, MCF — after 200 edits");
  assert.equal(t.rows[0]!.cells[0]!.text, formatMeanStd(r.methods[0]!.checkpoints[0]!.metrics["post_rewrite_success"]!.mean, 10));
  assert.equal(formatMeanStd(98.904, 10.4312), "98.90 ± 10.43");
  assert.equal(formatMeanStd(Number.NaN, 1), "-");
  assert.equal(summaryTable(r, { edits: 777 }).rows[0]!.cells[0]!.text, "-", "a checkpoint a method lacks shows '-'");
});

test("summary table: the lowest held-out perplexity is the best one, the highest control-fact accuracy too", () => {
  const r = syntheticReport();
  const ppl = [9.95, 11.13, 6.39, 8.0]; // DeltaEdit, AlphaEdit, MEMIT, FT
  const facts = [28.75, 25.0, 26.25, 20.0];
  r.methods.forEach((m, i) => {
    const last = m.checkpoints[m.checkpoints.length - 1]!;
    last.metrics["general_perplexity"] = { mean: ppl[i]!, std: 0 };
    last.metrics["general_fact_accuracy"] = { mean: facts[i]!, std: 0 };
  });
  const t = summaryTable(r);
  const col = (key: string): number => t.columnKeys.indexOf(key) - 1; // cells skip the "method" column
  assert.ok(col("general_perplexity") >= 0 && col("general_fact_accuracy") >= 0, `columns: ${t.columnKeys.join(", ")}`);
  const marked = (key: string): string[] => t.rows.filter((row) => row.cells[col(key)]!.best).map((row) => row.method);
  assert.deepEqual(marked("general_perplexity"), ["memit"], "lowest perplexity marked");
  assert.deepEqual(marked("general_fact_accuracy"), ["deltaedit"], "highest control-fact accuracy marked");
});

test("results.json: atomic write, round trip, header, NaN → null, schema errors name the field", () => {
  const dir = tmpDir();
  const r = syntheticReport();
  r.methods[0]!.checkpoints[0]!.noise![0]!.meanRelative = Number.NaN;
  const file = path.join(dir, "sub", "results.json");
  writeResultsJson(file, r, "2025-06-02T00:00:00Z");
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ["results.json"], "no temp file is left behind");
  const back = readResultsJson(file);
  assert.equal(back.format, "deltaedit-results");
  assert.equal(back.version, 1);
  assert.equal(back.written, "2025-06-02T00:00:00Z");
  assert.equal(back.methods[0]!.checkpoints[0]!.noise![0]!.meanRelative, null);
  assert.deepEqual(back.methods[2]!.checkpoints[6]!.metrics, r.methods[2]!.checkpoints[6]!.metrics);
  assert.equal(back.methods[0]!.checkpoints[3]!.triggerRate, r.methods[0]!.checkpoints[3]!.triggerRate);
  assert.deepEqual(back.seeds, r.seeds);
  assert.deepEqual(back.protocol, r.protocol);

  const bad = syntheticReport();
  bad.methods[1]!.checkpoints[2]!.edits = 100;
  assert.throws(() => resultsJson(bad), /methods\[1\]\.checkpoints\[2\]\.edits must be ascending/);
  const bad2 = syntheticReport();
  bad2.methods[0]!.checkpoints[0]!.triggerRate = 3;
  assert.throws(() => resultsJson(bad2), /triggerRate must be a fraction/);
  fs.writeFileSync(path.join(dir, "other.json"), JSON.stringify({ format: "something-else" }));
  assert.throws(() => readResultsJson(path.join(dir, "other.json")), /format is "something-else"/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("svg line chart: ticks, escaping, gaps break the line, log scale", () => {
  assert.deepEqual(niceTicks(0, 3000, 6), [0, 500, 1000, 1500, 2000, 2500, 3000]);
  assert.deepEqual(niceTicks(0.1, 0.95, 5), [0.2, 0.4, 0.6, 0.8]);
  assert.equal(escapeXml(`a<b & "c"`), "a&lt;b &amp; &quot;c&quot;");
  const svg = lineChart({
    id: "t", title: "T <1>", xLabel: "edits", yLabel: "y",
    series: [{ id: "a", label: "A", color: "#000", points: [{ x: 1, y: 1 }, { x: 2, y: null }, { x: 3, y: 3 }, { x: 4, y: 4 }] }],
  });
  assert.equal(svg.match(/<polyline /g)?.length, 2, "a gap splits the line");
  assert.equal(svg.match(/class="pt"/g)?.length, 3, "one marker per finite point");
  assert.ok(svg.includes("T &lt;1&gt;"));
  const logSvg = lineChart({ id: "l", title: "L", xLabel: "x", yLabel: "y", yScale: "log", series: [{ id: "a", label: "A", color: "#000", points: [{ x: 1, y: 0.01 }, { x: 2, y: 100 }] }] });
  assert.ok(logSvg.includes("(log)") && logSvg.includes(">0.01<") && logSvg.includes(">0.1<") && logSvg.includes(">100<"), "log axis with decade ticks");
});

test("HTML report is self-contained and has the expected plots (string level)", () => {
  const r = syntheticReport();
  const html = renderHtmlReport(r);
  assert.ok(!/<script|<link|<img|@import|url\(/i.test(html), "no scripts, stylesheets, images or url() references");
  const urls = (html.match(/https?:\/\/[^\s"'<>]+/g) ?? []).filter((u) => u !== "http://www.w3.org/2000/svg");
  assert.deepEqual(urls, [], "only the SVG namespace URI may appear");
  const charts = reportCharts(r);
  // 5 metrics + noise_E + 3 decompositions (FT has none: step-level route) + trigger rate
  assert.equal(charts.length, 10);
  assert.deepEqual(charts.filter((c) => c.spec.id.startsWith("noise:terms:")).map((c) => c.spec.id), ["noise:terms:deltaedit", "noise:terms:alphaedit", "noise:terms:memit"]);
  assert.equal(charts.find((c) => c.spec.id === "noise:E")!.spec.yScale, "log", "noise_E spanning > 50× uses a log axis");
  assert.equal(html.match(/<svg class="plot"/g)?.length, 10);
});

test("multi-ordering report: mean ± CI cells, not-significant cells marked, a CI band around every line (string level)", () => {
  const r = syntheticOrderings();
  const text = renderSummaryTable(r);
  assert.match(text, /cells: mean over 3 orderings of the edit stream ± half-width of its 95 % confidence interval \(Student t, 2 df/);
  const t = summaryTable(r);
  const eff = r.methods[0]!.checkpoints[6]!.metrics["post_rewrite_success"]!;
  assert.equal(t.rows[0]!.cells[0]!.text, formatMeanStd(eff.mean, eff.ci95), "cell = mean ± CI half-width");
  // DeltaEdit vs AlphaEdit: a 0.5 offset with ordering noise of ±2: not significant; FT (decay 0.25) is far below
  const effCol = t.columnKeys.indexOf("post_rewrite_success") - 1;
  assert.equal(t.rows[0]!.cells[effCol]!.best, true);
  assert.equal(t.rows[1]!.cells[effCol]!.notSignificant, true, "AlphaEdit ~ DeltaEdit");
  assert.notEqual(t.rows[3]!.cells[effCol]!.notSignificant, true, "FT differs significantly");
  assert.ok(text.split("\n").find((l) => l.startsWith("AlphaEdit"))!.includes("~"));
  const html = renderHtmlReport(r);
  const charts = reportCharts(r);
  for (const c of charts) {
    const svg = lineChart(c.spec);
    const bands = [...svg.matchAll(/<path class="band" data-series="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(bands, c.spec.series.map((x) => x.id), `${c.spec.id}: one band per line`);
  }
  assert.ok(html.includes("shaded bands: its 95 % confidence interval"));
  assert.ok(html.includes('<td class="ns">'), "non-significant cells marked in the HTML table");
  assert.ok(html.includes("<th>Ordering</th>"), "runs table per ordering");
  // one ordering: no bands, no marks (today's report)
  const one = renderHtmlReport(syntheticReport());
  assert.ok(!one.includes('class="band"') && !one.includes('class="ns"'));
});

test("HTML report renders in headless Chromium: plots, lines and markers per method, screenshot", (t) => {
  const chromium = chromiumOrSkip(t);
  if (chromium === null) return;
  const dir = tmpDir();
  try {
    const r = syntheticReport();
    const file = path.join(dir, "report.html");
    writeHtmlReport(file, r);
    const url = `file://${file}`;
    const dump = spawnSync(chromium, [...chromiumArgs(path.join(dir, "profile1")), "--dump-dom", url], { encoding: "utf8", timeout: 60_000, maxBuffer: 64 << 20 });
    assert.equal(dump.status, 0, `chromium --dump-dom failed (status ${dump.status}, signal ${dump.signal}): ${dump.stderr.slice(-2000)}`);
    const dom = dump.stdout;
    const plots = dom.split(/<svg class="plot"/).slice(1);
    assert.equal(plots.length, 10, "10 SVG plots in the rendered DOM");
    const methods = r.methods.map((m) => m.name);
    const plotId = (chunk: string): string => /data-plot="([^"]+)"/.exec(chunk)?.[1] ?? "?";
    for (const chunk of plots) {
      const id = plotId(chunk);
      const lines = [...chunk.matchAll(/<polyline class="series" data-series="([^"]+)"/g)].map((m) => m[1]!);
      const pts = [...chunk.matchAll(/<g class="pt" data-series="([^"]+)"/g)].map((m) => m[1]!);
      assert.ok(lines.length > 0, `plot ${id} has no line`);
      if (id.startsWith("metric:")) {
        for (const m of methods) {
          assert.ok(lines.includes(m), `plot ${id} lacks the line of ${m}`);
          assert.equal(pts.filter((p) => p === m).length, CHECKPOINTS.length, `plot ${id}: ${m} should have a marker at each of ${CHECKPOINTS.length} checkpoints`);
        }
      } else if (id === "noise:E") {
        for (const m of methods) assert.equal(pts.filter((p) => p === m).length, CHECKPOINTS.length, `noise_E plot: markers of ${m}`);
      } else if (id.startsWith("noise:terms:")) {
        for (const term of ["total", "activation", "interference"]) assert.equal(pts.filter((p) => p === term).length, CHECKPOINTS.length, `${id}: markers of ${term}`);
      } else if (id === "trigger") {
        assert.deepEqual([...new Set(pts)], ["deltaedit"], "trigger plot shows DeltaEdit only");
      } else assert.fail(`unexpected plot ${id}`);
      assert.ok(/<text[^>]*>number of edits<\/text>/.test(chunk), `plot ${id} lacks its x-axis label`);
    }
    assert.equal((dom.match(/<tr data-method=/g) ?? []).length, 4 * (1 + CHECKPOINTS.length), "summary + per-checkpoint tables have one row per method");

    screenshotReport(chromium, url, { profile: path.join(dir, "profile2"), shot: path.join(dir, "shot.png"), height: 2000, report: file, keepAs: "report" });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("multi-ordering HTML report renders in headless Chromium: a CI band around every method's line, screenshot", (t) => {
  const chromium = chromiumOrSkip(t);
  if (chromium === null) return;
  const dir = tmpDir();
  try {
    const r = syntheticOrderings();
    const file = path.join(dir, "report.html");
    writeHtmlReport(file, r);
    const url = `file://${file}`;
    const dump = spawnSync(chromium, [...chromiumArgs(path.join(dir, "profile1")), "--dump-dom", url], { encoding: "utf8", timeout: 60_000, maxBuffer: 64 << 20 });
    assert.equal(dump.status, 0, `chromium --dump-dom failed (status ${dump.status}, signal ${dump.signal}): ${dump.stderr.slice(-2000)}`);
    const plots = dump.stdout.split(/<svg class="plot"/).slice(1);
    assert.equal(plots.length, 10, "10 SVG plots in the rendered DOM");
    for (const chunk of plots) assertBandPerLine(chunk, /data-plot="([^"]+)"/.exec(chunk)?.[1] ?? "?");
    assert.ok((dump.stdout.match(/<td class="ns">/g) ?? []).length > 0, "non-significant cells marked");
    screenshotReport(chromium, url, { profile: path.join(dir, "profile2"), shot: path.join(dir, "shot.png"), height: 2000, report: file, keepAs: "report-orderings" });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
