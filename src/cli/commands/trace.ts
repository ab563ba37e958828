/**
 * deltaedit trace: causal tracing as in ROME (evaluation spec §10). Prints AIE per block for the
 * key position groups, writes trace.json (every number) and report.html (heat maps); --suggest
 * picks edit layers and writes them as a preset file the editors accept (--preset FILE.json).
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { defaultWindow, traceDefaults, type NoiseLevel } from "../../eval/trace/causalTrace.js";
import { loadTraceFacts } from "../../eval/trace/facts.js";
import { runTrace } from "../../eval/trace/runTrace.js";
import { suggestedPreset, suggestLayers, type LayerSuggestion } from "../../eval/trace/suggest.js";
import { writeTraceHtml } from "../../eval/trace/traceReport.js";
import { writeFileAtomic, writeJsonAtomic } from "../../util/fsio.js";
import { bool, num, str, type CommandSpec } from "../args.js";
import { formatDuration, ProgressLine } from "../progress.js";
import { renderTable } from "../table.js";
import { loadModel, modelOption, threadsOption } from "./_model.js";

/** "3σ", "3sigma", "3s" → 3 × σ; a plain number → a fixed ν. */
export function parseNoise(s: string): NoiseLevel {
  const t = s.trim();
  const m = /^([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(σ|sigma|s)$/i.exec(t);
  if (m) return { kind: "sigma", multiplier: Number(m[1]) };
  const v = Number(t);
  if (t.length > 0 && Number.isFinite(v) && v >= 0) return { kind: "fixed", nu: v };
  throw new DeltaEditError("E_USAGE", `trace: --noise expects a multiple of σ ("3σ", "3sigma", "3s") or a fixed ν ≥ 0 ("0.1"), got "${s}"`);
}

function positiveInt(v: number | undefined, opt: string): number | undefined {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new DeltaEditError("E_USAGE", `trace: --${opt} must be a positive integer, got ${v}`);
  return v;
}

const f3 = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? "—" : v.toFixed(3));

export const command: CommandSpec = {
  name: "trace",
  summary: "causal tracing (ROME): where the model recalls facts; AIE heat maps, edit-layer suggestion",
  usage: "deltaedit trace --model DIR --facts FILE [--n N] [--noise 3σ|x] [--samples S] [--window W] [--seed S] [--json] [--out DIR] [--suggest] [--threads T]",
  options: {
    model: modelOption,
    facts: { type: "string", description: "facts: CounterFact/MultiCounterFact JSON (requested_rewrite.target_true is the object), or JSON/JSONL {prompt, subject, object}", required: true, valueName: "FILE" },
    n: { type: "number", description: "trace the first N facts the model knows (file order; default: all)", valueName: "N" },
    noise: { type: "string", description: "noise level ν: a multiple of σ, the std of the subject embeddings (3σ, 3sigma, 3s), or a fixed value", default: "3σ", valueName: "3σ|x" },
    samples: { type: "number", description: "noise samples per fact (averaged)", default: 10, valueName: "S" },
    window: { type: "number", description: "window of the windowed MLP/attention restorations (default: round(10·L/48), at least 3)", valueName: "W" },
    seed: { type: "number", description: "seed of the noise", default: 0, valueName: "S" },
    out: { type: "string", description: "output directory (trace.json, report.html, preset.json with --suggest)", default: "runs/trace", valueName: "DIR" },
    suggest: { type: "boolean", description: "suggest ROME's layer and a MEMIT-family edit range; write them as DIR/preset.json" },
    "batch-tokens": { type: "number", description: "tokens per forward pass (memory bound)", default: 4096, valueName: "N" },
    threads: threadsOption,
    json: { type: "boolean", description: "print a JSON summary on stdout (trace.json holds every number)" },
  },
  async run(args, io) {
    const log = (m: string): void => io.err(m + "\n");
    const noise = parseNoise(str(args, "noise")!);
    const samples = positiveInt(num(args, "samples"), "samples")!;
    const n = positiveInt(num(args, "n"), "n");
    const windowArg = positiveInt(num(args, "window"), "window");
    const batchTokens = positiveInt(num(args, "batch-tokens"), "batch-tokens")!;
    const seed = num(args, "seed")!;
    if (!Number.isSafeInteger(seed) || seed < 0) throw new DeltaEditError("E_USAGE", `trace: --seed must be a non-negative integer, got ${seed}`);
    const outDir = str(args, "out")!;
    const loaded = loadTraceFacts(str(args, "facts")!);
    for (const r of loaded.rejected) log(`rejected: ${r.message}`);
    if (loaded.facts.length === 0) throw new DeltaEditError("E_REQUEST", `${loaded.file}: no usable facts (${loaded.rejected.length} rejected)`);
    const model = await loadModel(args, io);
    const L = model.config.numLayers;
    const opts = { ...traceDefaults(L), samples, noise, window: windowArg ?? defaultWindow(L), seed, maxBatchTokens: batchTokens, ...(n === undefined ? {} : { n }) };
    const progress = new ProgressLine(io, "trace");
    const t0 = performance.now();
    const result = runTrace(model, loaded.facts, opts, {
      log,
      onFact: (done, total, t) => {
        const el = (performance.now() - t0) / 1000;
        progress.update(done, total, `fact #${t.index} TE ${t.te.toFixed(3)} · ${(el / done).toFixed(2)} s/fact · ETA ${formatDuration(((total - done) * el) / done)}`);
      },
    });
    progress.done();
    for (const r of result.rejected) log(`rejected: ${r.message}`);
    result.rejected = [...loaded.rejected, ...result.rejected];
    const s = result.summary;
    let suggestion: LayerSuggestion | null = null;
    const files: Record<string, string> = { trace: path.join(outDir, "trace.json"), report: path.join(outDir, "report.html") };
    fs.mkdirSync(outDir, { recursive: true });
    if (bool(args, "suggest")) {
      suggestion = suggestLayers(s);
      const name = path.basename(path.resolve(model.dir ?? model.config.modelType));
      files["preset"] = path.join(outDir, "preset.json");
      writeJsonAtomic(files["preset"], suggestedPreset(model.config, suggestion, name));
    }
    writeFileAtomic(files["trace"]!, JSON.stringify({ ...result, suggestion }) + "\n");
    writeTraceHtml(files["report"]!, result, suggestion);

    if (bool(args, "json")) {
      const { facts: _facts, ...rest } = result;
      io.out(JSON.stringify({ ...rest, dropped: result.dropped.length, rejected: result.rejected.length, suggestion, files }) + "\n");
      return 0;
    }
    const W = result.options.window;
    const blocks = Array.from({ length: L }, (_, l) => String(l));
    const row = (label: string, xs: readonly (number | null)[]): string[] => [label, ...xs.map((x) => f3(x))];
    const rows = [
      row("residual · last subject token", s.aie.residual.lastSubject.aie),
      row("residual · last token", s.aie.residual.last.aie),
      row(`MLP (window ${W}) · last subject token`, s.aie.mlpWindow.lastSubject.aie),
      row(`MLP (window ${W}) · last token`, s.aie.mlpWindow.last.aie),
      row(`attention (window ${W}) · last subject token`, s.aie.attnWindow.lastSubject.aie),
      row(`attention (window ${W}) · last token`, s.aie.attnWindow.last.aie),
      row("residual · all subject tokens", s.subjectAll),
      row("last subject token / all subject tokens", s.lastOverAll),
    ];
    io.out(`causal trace of ${model.dir ?? model.config.modelType}: ${s.facts} facts traced (${result.dropped.length} dropped as not known, ${result.rejected.length} rejected), ` +
      `ν = ${result.nu.toPrecision(4)}${result.sigma !== null ? ` (${result.options.noise}, σ = ${result.sigma.toPrecision(4)})` : ""}, ${samples} samples, ${formatDuration(result.seconds)}\n`);
    io.out(`p(object): clean ${f3(s.meanPClean)}, corrupted ${f3(s.meanPCorrupt)}; average total effect ATE ${f3(s.ate)}\n\n`);
    io.out(renderTable(["AIE by block", ...blocks], rows) + "\n");
    if (suggestion) {
      io.out(`\nsuggestion: windowed MLP AIE at the last subject token peaks at block ${suggestion.peak} (AIE ${suggestion.peakAie.toFixed(4)}; the single-block MLP curve peaks at block ${suggestion.singlePeak})\n`);
      io.out(`  ROME layer ${suggestion.romeLayer}; MEMIT/AlphaEdit/DeltaEdit edit layers ${suggestion.editLayers.join(",")} (z-layer ${suggestion.targetLayer})\n`);
      io.out(`  rule: ${suggestion.rule}\n  preset: ${files["preset"]} (use: deltaedit edit --preset ${files["preset"]} …)\n`);
    }
    io.out(`\nwrote ${files["trace"]} and ${files["report"]}\n`);
    return 0;
  },
};
