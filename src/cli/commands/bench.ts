import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { METHOD_NAMES, type MethodName } from "../../edit/methods/method.js";
import { runBench, type Protocol } from "../../eval/bench.js";
import { datasetFileName, ensureDataset } from "../../eval/datasets/download.js";
import { loadDataset } from "../../eval/datasets/load.js";
import type { DatasetKind } from "../../eval/datasets/record.js";
import type { NeighborhoodMode } from "../../eval/metrics/counterfact.js";
import type { Fact } from "../../eval/metrics/general.js";
import { loadAttributeSnippets, loadTfidf, type AttributeSnippets, type TfidfModel } from "../../eval/metrics/consistency.js";
import { renderSummaryTable } from "../../eval/report/table.js";
import { resolveModelDir } from "../../model/hub.js";
import { loadTokenizer } from "../../model/tokenizer.js";
import { readModelConfig } from "../../model/config.js";
import { recordsThatFit } from "../../eval/datasets/fit.js";
import * as ops from "../../kernels/ops.js";
import { bool, intList, num, str, type CliIO, type CommandSpec, type ParsedArgs } from "../args.js";
import { ProgressLine, formatDuration } from "../progress.js";
import { packageVersion } from "../version.js";
import { prepareSecondMoments } from "./_stats.js";

export interface BenchInvocation {
  model: string;
  dataset: string;
  kind?: DatasetKind;
  methods: MethodName[];
  edits: number;
  batch: number;
  protocol: Protocol;
  checkpoints?: number[];
  out: string;
  seed: number;
  neighborhood: NeighborhoodMode;
  preset?: string;
  sets: Partial<Record<MethodName, Record<string, unknown>>>;
  statsCorpus?: string;
  heldOut?: string;
  controlFacts?: string;
  json: boolean;
  title?: string;
  fluency?: boolean;
  tfidfDir?: string;
}

function inferKind(file: string): DatasetKind {
  const b = path.basename(file).toLowerCase();
  if (b.includes("zsre")) return "zsre";
  if (b === "counterfact.json") return "cf";
  return "mcf";
}

/** Run a bench from a parsed invocation (shared by `bench` and `demo`). */
export async function invokeBench(inv: BenchInvocation, io: CliIO): Promise<number> {
  const log = (m: string): void => io.err(m + "\n");
  const modelDir = await resolveModelDir(inv.model, { log });
  let file = inv.dataset;
  if (!fs.existsSync(file)) {
    const known: Record<string, DatasetKind> = { mcf: "mcf", multi_counterfact: "mcf", cf: "cf", counterfact: "cf", zsre: "zsre" };
    const k = known[inv.dataset];
    if (!k) throw new DeltaEditError("E_NOT_FOUND", `bench: dataset file ${inv.dataset} does not exist`, { hint: "give a path, or one of: mcf, counterfact, zsre (downloaded into the cache)" });
    inv.kind ??= k;
    file = await ensureDataset(datasetFileName(k), { log });
  }
  const kind = inv.kind ?? inferKind(file);
  const tok = loadTokenizer(modelDir);
  const loaded = loadDataset(kind, file, { tokenizer: tok, size: inv.edits });
  const fit = recordsThatFit(loaded.records, tok, readModelConfig(modelDir).maxPositions);
  const ds = { ...loaded, records: fit.records, rejected: [...loaded.rejected, ...fit.rejected] };
  for (const r of ds.rejected) log(`rejected: ${r.message}`);
  const heldOut = inv.heldOut ? fs.readFileSync(inv.heldOut, "utf8").split("\n").filter((l) => l.trim().length > 0) : undefined;
  const facts = inv.controlFacts ? fs.readFileSync(inv.controlFacts, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as Fact) : undefined;
  const progress = new ProgressLine(io, "bench");
  const t0 = performance.now();
  const report = await runBench({
    modelSource: inv.model,
    records: ds.records,
    datasetName: path.basename(file),
    methods: inv.methods,
    edits: Math.min(inv.edits, ds.records.length),
    batchSize: inv.batch,
    protocol: inv.protocol,
    ...(inv.checkpoints ? { checkpoints: inv.checkpoints } : {}),
    outDir: inv.out,
    seed: inv.seed,
    neighborhoodMode: kind === "zsre" ? "standard" : inv.neighborhood,
    ...(inv.preset ? { preset: inv.preset } : {}),
    overrides: inv.sets,
    secondMoments: (m, layers) => prepareSecondMoments(m, layers, inv.statsCorpus ? { corpus: inv.statsCorpus } : {}, log),
    ...(heldOut ? { heldOutText: heldOut } : {}),
    ...(inv.fluency ? { generation: generationInputs(inv, log) } : {}),
    ...(facts ? { controlFacts: facts } : {}),
    codeVersion: packageVersion(),
    log: (m) => {
      progress.done();
      log(m);
    },
    onProgress: (p) => {
      const el = (performance.now() - t0) / 1000;
      const k = inv.methods.indexOf(p.method as MethodName);
      const frac = (k + p.done / p.total) / inv.methods.length;
      progress.update(Math.round(frac * 1000), 1000, `${p.method} ${p.phase === "edit" ? `edit ${p.done}/${p.total}` : p.detail} · elapsed ${formatDuration(el)} · ETA ${formatDuration(frac > 0 ? (el * (1 - frac)) / frac : NaN)}`);
    },
  });
  progress.done();
  if (inv.json) io.out(fs.readFileSync(path.join(inv.out, "results.json"), "utf8"));
  else {
    io.out(renderSummaryTable(report) + "\n\n");
    io.out(`results: ${path.resolve(inv.out, "results.json")}\nreport:  ${path.resolve(inv.out, "report.html")}  (open it in a browser)\n`);
  }
  return 0;
}

function generationInputs(inv: BenchInvocation, log: (m: string) => void): { seed: number; tfidf?: TfidfModel; snippets?: AttributeSnippets } {
  if (!inv.tfidfDir) return { seed: inv.seed };
  const f = (n: string): string => path.join(inv.tfidfDir!, n);
  for (const n of ["tfidf_vocab.json", "idf.npy", "attribute_snippets.json"]) {
    if (!fs.existsSync(f(n))) throw new DeltaEditError("E_NOT_FOUND", `bench: --tfidf-dir ${inv.tfidfDir} has no ${n}`, { hint: "download tfidf_vocab.json, idf.npy and attribute_snippets.json (evaluation spec §1.1) into that directory" });
  }
  log("bench: loading TF-IDF model and attribute snippets for the consistency score");
  return { seed: inv.seed, tfidf: loadTfidf(f("tfidf_vocab.json"), f("idf.npy")), snippets: loadAttributeSnippets(f("attribute_snippets.json")) };
}

function parseMethodSets(a: ParsedArgs): Partial<Record<MethodName, Record<string, unknown>>> {
  const out: Partial<Record<MethodName, Record<string, unknown>>> = {};
  const sets = a["set"];
  for (const s of Array.isArray(sets) ? sets : []) {
    const m = /^([a-z]+)\.([A-Za-z0-9_]+)=(.*)$/.exec(s);
    if (!m || !METHOD_NAMES.includes(m[1] as MethodName)) throw new DeltaEditError("E_USAGE", `--set expects method.key=value (e.g. deltaedit.varMultiplier=3), got "${s}"`);
    ((out[m[1] as MethodName] ??= {})[m[2]!] = m[3]);
  }
  return out;
}

export const command: CommandSpec = {
  name: "bench",
  summary: "run editing methods on the same edit stream and score them (tables, results.json, HTML report)",
  usage: "deltaedit bench --model DIR --dataset FILE --methods memit,alphaedit,deltaedit --edits N [--batch B] [--protocol checkpoints|end|immediate|single] [--out DIR]",
  options: {
    model: { type: "string", description: "model directory or Hub repo id", required: true, valueName: "DIR|REPO" },
    dataset: { type: "string", description: "CounterFact / MultiCounterFact / ZsRE file (official formats) or JSONL; or mcf|counterfact|zsre to download", required: true, valueName: "FILE" },
    "dataset-kind": { type: "string", description: "cf, mcf or zsre (default: from the file name)", valueName: "KIND" },
    methods: { type: "string", description: `comma-separated: ${METHOD_NAMES.join(", ")}`, default: "memit,alphaedit,deltaedit", valueName: "LIST" },
    edits: { type: "number", description: "number of requests in the stream (first N records, file order)", required: true, valueName: "N" },
    batch: { type: "number", description: "requests per batch", default: 1, valueName: "B" },
    protocol: { type: "string", description: "checkpoints (DeltaEdit: 200, every 500, end), end (AlphaEdit), immediate (EasyEdit), single (each record alone into the unedited model: ROME/MEMIT single edits)", default: "checkpoints", valueName: "NAME" },
    checkpoints: { type: "string", description: "explicit checkpoint counts, e.g. 50,100,200", valueName: "LIST" },
    out: { type: "string", description: "output directory (sessions, per-case records, results.json, report.html); rerun to resume", default: "runs/bench", valueName: "DIR" },
    neighborhood: { type: "string", description: "neighborhood reference: standard (target_true) or deltaedit (unedited model's greedy tokens)", default: "standard", valueName: "MODE" },
    preset: { type: "string", description: "hyperparameter preset name or preset JSON file (e.g. from deltaedit trace --suggest; default: matched to the model)", valueName: "NAME|FILE.json" },
    set: { type: "list", description: "per-method override, e.g. --set deltaedit.varMultiplier=3 (repeatable)", valueName: "M.KEY=VALUE" },
    "stats-corpus": { type: "string", description: "corpus for covariance statistics when none are shipped with the model", valueName: "FILE|DIR" },
    heldout: { type: "string", description: "held-out text (one document per line) for the perplexity check", valueName: "FILE" },
    "control-facts": { type: "string", description: "JSONL {prompt, subject, target} facts never edited (accuracy check)", valueName: "FILE" },
    seed: { type: "number", description: "seed of every session (and of the fluency generations)", default: 0, valueName: "S" },
    fluency: { type: "boolean", description: "also score fluency (n-gram entropy of 10 seeded generations per case; slow)" },
    "tfidf-dir": { type: "string", description: "with --fluency: directory with tfidf_vocab.json, idf.npy, attribute_snippets.json for the consistency score", valueName: "DIR" },
    threads: { type: "number", description: "compute threads", valueName: "N" },
    json: { type: "boolean", description: "print results.json on stdout" },
  },
  async run(args, io) {
    const methods = str(args, "methods")!.split(",").map((s) => s.trim()).filter(Boolean);
    for (const m of methods) if (!METHOD_NAMES.includes(m as MethodName)) throw new DeltaEditError("E_USAGE", `bench: unknown method "${m}"`, { hint: `one of ${METHOD_NAMES.join(", ")}` });
    const protocol = str(args, "protocol")!;
    if (!["checkpoints", "end", "immediate", "single"].includes(protocol)) throw new DeltaEditError("E_USAGE", `bench: --protocol must be checkpoints, end, immediate or single, got "${protocol}"`);
    const nb = str(args, "neighborhood")!;
    if (!["standard", "deltaedit", "deltaedit-clean"].includes(nb)) throw new DeltaEditError("E_USAGE", `bench: --neighborhood must be standard or deltaedit, got "${nb}"`);
    const edits = num(args, "edits")!;
    if (!Number.isInteger(edits) || edits < 1) throw new DeltaEditError("E_USAGE", `bench: --edits must be a positive integer`);
    const threads = num(args, "threads");
    if (threads !== undefined) ops.setThreads(threads);
    const inv: BenchInvocation = {
      model: str(args, "model")!,
      dataset: str(args, "dataset")!,
      methods: methods as MethodName[],
      edits,
      batch: num(args, "batch")!,
      protocol: protocol as Protocol,
      out: str(args, "out")!,
      seed: num(args, "seed")!,
      neighborhood: nb as NeighborhoodMode,
      sets: parseMethodSets(args),
      json: bool(args, "json"),
    };
    const kind = str(args, "dataset-kind");
    if (kind) inv.kind = kind as DatasetKind;
    const cps = str(args, "checkpoints");
    if (cps) inv.checkpoints = intList(cps, "checkpoints");
    const preset = str(args, "preset");
    if (preset) inv.preset = preset;
    const sc = str(args, "stats-corpus");
    if (sc) inv.statsCorpus = sc;
    const ho = str(args, "heldout");
    if (ho) inv.heldOut = ho;
    if (bool(args, "fluency")) inv.fluency = true;
    const td = str(args, "tfidf-dir");
    if (td) inv.tfidfDir = td;
    const cf = str(args, "control-facts");
    if (cf) inv.controlFacts = cf;
    return invokeBench(inv, io);
  },
};
