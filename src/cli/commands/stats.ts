/**
 * `deltaedit stats`: compute (or load from the cache, or resume) the key second moments
 * C0_l = Σ k kᵀ / count of chosen layers over a text corpus; merge partial statistics files;
 * import the reference's .npz statistics.
 */
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import * as ops from "../../kernels/ops.js";
import { openCorpus, type TextSplit } from "../../edit/corpus.js";
import {
  computeStats,
  defaultStatsCacheDir,
  mergeStats,
  readStatsFile,
  secondMomentMatrix,
  statsCacheFiles,
  writeStatsFile,
  type SecondMoment,
  type StatsParams,
  type StatsProgress,
} from "../../edit/covariance.js";
import { importNpzStats } from "../../edit/npz.js";
import { bool, intList, num, str, type CliIO, type CommandSpec, type ParsedArgs } from "../args.js";
import { loadModel, modelOption, threadsOption } from "./_model.js";

/** Above this many bytes of F×F sums a warning is printed (Llama-8B: 14336² floats = 822 MB per layer). */
const BIG_STATS_BYTES = 256 * 1024 * 1024;

export const command: CommandSpec = {
  name: "stats",
  summary: "compute, merge or import key second-moment statistics C0 = Σ k kᵀ / n (cached, resumable)",
  usage:
    "deltaedit stats --model DIR --corpus FILE|DIR [--layers 4,5,6] [--samples N] [--max-tokens T] [--token-budget N] [--cache-dir DIR] [--json]\n" +
    "       deltaedit stats --merge A.safetensors --merge B.safetensors --out F.safetensors\n" +
    "       deltaedit stats --import-npz FILE.npz --layer L [--model DIR] [--out F.safetensors]",
  options: {
    model: { ...modelOption, required: false },
    corpus: { type: "string", description: "text file (one document per non-empty line, see --split), JSONL file with a \"text\" field, or a directory of them", valueName: "FILE|DIR" },
    layers: { type: "string", description: "comma-separated layers (default: every layer; each costs F² floats)", valueName: "L,L,…" },
    samples: { type: "number", description: "documents in the sample", default: 100000, valueName: "N" },
    "max-tokens": { type: "number", description: "truncate documents to T tokens (default: the model's maximum positions)", valueName: "T" },
    "token-budget": { type: "number", description: "max padded width × rows per forward (default: 3 × max-tokens)", valueName: "N" },
    "group-size": { type: "number", description: "documents per length-sorted group", default: 100, valueName: "N" },
    "shuffle-seed": { type: "number", description: "take the reference's random.Random(S) sample instead of the first N documents (the reference uses 1)", valueName: "S" },
    split: { type: "string", description: "plain-text documents: \"line\" (each non-empty line) or \"paragraph\" (blocks between blank lines)", default: "line", valueName: "MODE" },
    "text-field": { type: "string", description: "JSONL field holding the text", default: "text", valueName: "NAME" },
    "cache-dir": { type: "string", description: "statistics cache (default: $DELTAEDIT_CACHE/stats or ~/.cache/deltaedit/stats)", valueName: "DIR" },
    "no-cache": { type: "boolean", description: "neither read nor write the cache (no checkpoints)" },
    "checkpoint-every": { type: "number", description: "checkpoint the partial sums every N documents", default: 1000, valueName: "N" },
    merge: { type: "list", description: "a statistics file to merge (repeat, or comma-separate); needs --out", valueName: "FILE" },
    "import-npz": { type: "string", description: "import a reference layer_stats .npz (mom2.mom2 + mom2.count); needs --layer", valueName: "FILE" },
    layer: { type: "number", description: "layer of the --import-npz file", valueName: "L" },
    out: { type: "string", description: "write the merged / imported statistics to this file", valueName: "FILE" },
    eig: { type: "boolean", description: "also print the largest eigenvalue of each C0 (a full eigendecomposition)" },
    json: { type: "boolean", description: "print a JSON object instead of the table" },
    threads: threadsOption,
  },
  async run(args, io) {
    const mergeList = (Array.isArray(args["merge"]) ? args["merge"] : []).flatMap((s) => s.split(",")).filter((s) => s.length > 0);
    const npz = str(args, "import-npz");
    if (mergeList.length > 0 && npz !== undefined) throw new DeltaEditError("E_USAGE", "stats: --merge and --import-npz are mutually exclusive");
    if (mergeList.length > 0) return runMerge(mergeList, args, io);
    if (npz !== undefined) return runImport(npz, args, io);
    return runCompute(args, io);
  },
};

async function runCompute(args: ParsedArgs, io: CliIO): Promise<number> {
  const corpusPath = str(args, "corpus");
  if (str(args, "model") === undefined || corpusPath === undefined) throw new DeltaEditError("E_USAGE", "stats: give --model and --corpus (or --merge / --import-npz)", { hint: "see: deltaedit stats --help" });
  const split = str(args, "split") as TextSplit;
  if (split !== "line" && split !== "paragraph") throw new DeltaEditError("E_USAGE", `stats: --split must be "line" or "paragraph", got "${split}"`);
  const model = await loadModel(args, io);
  const corpus = openCorpus(corpusPath, { split, textField: str(args, "text-field")! });
  const layersArg = str(args, "layers");
  const layers = layersArg === undefined ? Array.from({ length: model.arch.numLayers }, (_, i) => i) : intList(layersArg, "layers");
  const F = model.arch.dFF;
  const bytes = layers.length * F * F * 4;
  if (bytes > BIG_STATS_BYTES) io.err(`stats: warning: ${layers.length} layer(s) × F² (F = ${F}) = ${(bytes / 2 ** 20).toFixed(0)} MiB of sums in memory and on disk\n`);
  const params: StatsParams = { layers, samples: num(args, "samples")!, groupSize: num(args, "group-size")!, checkpointEvery: num(args, "checkpoint-every")!, shuffleSeed: num(args, "shuffle-seed") ?? null };
  const mt = num(args, "max-tokens");
  if (mt !== undefined) params.maxTokens = mt;
  const tb = num(args, "token-budget");
  if (tb !== undefined) params.tokenBudget = tb;
  params.cacheDir = bool(args, "no-cache") ? null : (str(args, "cache-dir") ?? defaultStatsCacheDir());
  io.err(`stats: corpus ${corpus.description}: ${corpus.size} documents (sha256 ${corpus.hash.slice(0, 12)}); layers ${layers.join(",")}\n`);
  const result = await computeStats(model, corpus, params, { log: (m) => io.err(m + "\n"), onProgress: progressBar(io) });
  const files = statsCacheFiles(model, corpus, params);
  report(result, files, args, io);
  return 0;
}

function runMerge(files: string[], args: ParsedArgs, io: CliIO): number {
  const out = str(args, "out");
  if (out === undefined) throw new DeltaEditError("E_USAGE", "stats: --merge needs --out FILE");
  if (files.length < 2) throw new DeltaEditError("E_USAGE", `stats: --merge needs at least two files, got ${files.length}`);
  let acc = readStatsFile(files[0]!);
  for (const f of files.slice(1)) acc = mergeStats(acc, readStatsFile(f));
  writeStatsFile(out, acc);
  report(new Map([[acc.provenance.layer, acc]]), new Map([[acc.provenance.layer, path.resolve(out)]]), args, io);
  return 0;
}

async function runImport(file: string, args: ParsedArgs, io: CliIO): Promise<number> {
  const layer = num(args, "layer");
  if (layer === undefined) throw new DeltaEditError("E_USAGE", "stats: --import-npz needs --layer L (the layer the file belongs to)");
  let modelHash = "";
  if (str(args, "model") !== undefined) {
    const model = await loadModel(args, io, { noTokenizer: true });
    modelHash = model.identity?.hash ?? "";
  }
  const m = importNpzStats(file, { layer, modelHash });
  const out = str(args, "out");
  if (out !== undefined) writeStatsFile(out, m);
  report(new Map([[layer, m]]), out === undefined ? null : new Map([[layer, path.resolve(out)]]), args, io);
  return 0;
}

interface LayerSummary {
  layer: number;
  dIn: number;
  count: number;
  docsDone: number;
  docsTotal: number;
  trace: number; // tr(C0)
  topEigenvalue?: number; // λmax(C0), with --eig
  file: string | null;
  source: string;
  modelHash: string;
  corpusHash: string;
}

function report(stats: Map<number, SecondMoment>, files: Map<number, string> | null, args: ParsedArgs, io: CliIO): void {
  const rows: LayerSummary[] = [];
  for (const [layer, m] of [...stats].sort((a, b) => a[0] - b[0])) {
    const F = m.dIn;
    let trace = 0;
    for (let i = 0; i < F; i++) trace += m.sum[i * F + i]!;
    const row: LayerSummary = {
      layer, dIn: F, count: m.count, docsDone: m.provenance.docsDone, docsTotal: m.provenance.docsTotal, trace: trace / m.count,
      file: files?.get(layer) ?? null, source: m.provenance.source, modelHash: m.provenance.modelHash, corpusHash: m.provenance.corpusHash,
    };
    if (bool(args, "eig")) {
      const { values } = ops.eigh(secondMomentMatrix(m), F); // ascending
      row.topEigenvalue = values[F - 1]!;
    }
    rows.push(row);
  }
  if (bool(args, "json")) {
    io.out(JSON.stringify({ layers: rows }, null, 2) + "\n");
    return;
  }
  const eig = bool(args, "eig");
  const head = ["layer", "F", "count", "docs", "trace(C0)", ...(eig ? ["λmax(C0)"] : []), "file"];
  const body = rows.map((r) => [String(r.layer), String(r.dIn), String(r.count), `${r.docsDone}/${r.docsTotal}`, r.trace.toPrecision(6), ...(eig ? [r.topEigenvalue!.toPrecision(6)] : []), r.file ?? "-"]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padStart(w[i]!))).join("  ");
  io.out([line(head), ...body.map(line)].join("\n") + "\n");
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const t = Math.round(s);
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

/** A progress renderer for stderr: `\r` updates on a TTY, a plain line every 5 s otherwise. */
export function progressBar(io: CliIO, isTTY = process.stderr.isTTY === true): (p: StatsProgress) => void {
  let last = -Infinity;
  return (p) => {
    const now = performance.now();
    const done = p.docsDone >= p.docsTotal;
    if (!done && now - last < (isTTY ? 200 : 5000)) return;
    last = now;
    const frac = p.docsTotal > 0 ? p.docsDone / p.docsTotal : 1;
    const width = 24;
    const fill = Math.round(frac * width);
    const text = `stats [${"#".repeat(fill)}${".".repeat(width - fill)}] ${p.docsDone}/${p.docsTotal} docs  ${p.docsPerS.toFixed(1)} docs/s  ${Math.round(p.tokensPerS)} tok/s  ETA ${fmtTime(p.etaS)}`;
    if (isTTY) io.err(`\r${text}${done ? "\n" : ""}`);
    else io.err(text + "\n");
  };
}
