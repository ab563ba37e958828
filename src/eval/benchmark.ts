/**
 * `benchmark`: the whole `deltaedit bench` as a function: resolve the model and the dataset (a file in
 * any supported format, read from its fields; or mcf / counterfact / zsre, downloaded into the cache),
 * drop records whose prompts do not fit the model, prepare the optional general-capability and
 * fluency inputs, read EasyEdit hparams files per method, find or compute statistics as the CLI does,
 * run every method over the same stream (bench.ts: `runBench`; with `seeds` > 1 over that many
 * orderings of it, `runBenchOrderings`), and return the results as written to `<out>/results.json`.
 * The CLI's `bench` and `demo` are this plus a progress line and a table.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import { describeHparams, readHparamsFile } from "../edit/hparams.js";
import type { MethodName } from "../edit/methods/method.js";
import { secondMomentFactory, type StatsOptions } from "../edit/statsProvider.js";
import { readModelConfig } from "../model/config.js";
import { resolveModelDir } from "../model/hub.js";
import { loadTokenizer } from "../model/tokenizer.js";
import { packageVersion } from "../util/version.js";
import { writeJsonAtomic } from "../edit/session/store.js";
import { LanguageModel } from "../model/model.js";
import { runBenchOrderings, type BenchProgress, type Protocol } from "./bench.js";
import { glueMetrics, readGlueData, runGlue, type GlueResult } from "./glue/runGlue.js";
import { RECORD_FORMAT_NAMES } from "../edit/recordFormats.js";
import { loadDatasetFile } from "./datasets/detect.js";
import { datasetFileName, ensureDataset } from "./datasets/download.js";
import { recordsThatFit } from "./datasets/fit.js";
import type { DatasetKind, EvalRecord } from "./datasets/record.js";
import { loadAttributeSnippets, loadTfidf, type AttributeSnippets, type TfidfModel } from "./metrics/consistency.js";
import type { NeighborhoodMode } from "./metrics/counterfact.js";
import type { Fact } from "./metrics/general.js";
import { readResultsJson, type ResultsFile } from "./report/json.js";

/** Options of `benchmark` (the `bench` command's flags). */
export interface BenchmarkOptions {
  /** Model directory or Hub repo id. */
  model: string;
  /**
   * The edit stream: a file (CounterFact / MultiCounterFact, EasyEdit / KnowEdit, ZsRE JSON, or JSONL;
   * format read from the fields), one of "mcf", "counterfact", "zsre" (downloaded into the cache),
   * or records already loaded.
   */
  dataset: string | readonly EvalRecord[];
  /** Override the dataset kind ("cf", "mcf", "zsre"). */
  datasetKind?: DatasetKind;
  /** Methods to compare, each from the same starting weights over the same stream. */
  methods: readonly MethodName[];
  /** Requests in the stream (the first N usable records, file order). */
  edits: number;
  /** Requests per batch (default 1). */
  batchSize?: number;
  /** Scoring protocol (default "checkpoints"; see `checkpointSchedule`). */
  protocol?: Protocol;
  /** Explicit checkpoint counts. */
  checkpoints?: number[];
  /** Output directory (sessions, per-case records, results.json, report.html); a rerun resumes. */
  out: string;
  /** Seed of every session and of the fluency generations (default 0). */
  seed?: number;
  /**
   * Number of orderings of the edit stream (default 1: the file order, today's output layout). N > 1:
   * every method runs on N orderings of the same selected records (ordering 0 = file order, ordering
   * k > 0 a seeded shuffle, `streamOrdering`), each in `<out>/seed-<k>/`; results.json then holds the
   * means over orderings, per-ordering values and 95 % confidence intervals. Not with protocol "single".
   */
  seeds?: number;
  /** CounterFact neighborhood reference (default "standard"; ZsRE always uses its ground truth). */
  neighborhood?: NeighborhoodMode;
  /** Preset name or preset JSON file (default: matched to the model). */
  preset?: string;
  /** Per method, an EasyEdit / official-repository hparams file (docs/hparams.md). */
  hparams?: Partial<Record<MethodName, string>>;
  /** Per method, parameters by our names, applied last. */
  params?: Partial<Record<MethodName, Record<string, unknown>>>;
  /** Statistics the model does not ship are computed from this corpus (cached). */
  stats?: StatsOptions;
  /** Held-out text for the perplexity check: documents, or a file with one per line. */
  heldOut?: string | readonly string[];
  /** Facts never edited (accuracy check): a list, or a JSONL file of `{prompt, subject, target}`. */
  controlFacts?: string | readonly Fact[];
  /** Also score fluency (slow); with `tfidfDir`, consistency too. */
  fluency?: boolean;
  /** Directory with tfidf_vocab.json, idf.npy, attribute_snippets.json. */
  tfidfDir?: string;
  /**
   * General-ability tasks (SST-2, MRPC, CoLA, RTE, MMLU, NLI; evaluation spec §5) from this task
   * directory: run on the unedited model and at the checkpoints (`at`: only these edit counts), written
   * to `<out>/glue/` and reported as `glue_<task>_f1` metrics. Not with protocol "single".
   */
  glue?: { data: string; at?: readonly number[]; tasks?: readonly string[]; items?: number };
  /** Progress and notes, e.g. rejected records (default: discarded). */
  log?: (msg: string) => void;
  /** Called as each method edits and is scored (with the ordering `seed` of `seeds` when there are several). */
  onProgress?: (p: BenchProgress) => void;
}

const KNOWN_DATASETS: Readonly<Record<string, DatasetKind>> = Object.freeze({ mcf: "mcf", multi_counterfact: "mcf", cf: "cf", counterfact: "cf", zsre: "zsre" });

/** Run a bench and return its results (the object in `<out>/results.json`). */
export async function benchmark(o: BenchmarkOptions): Promise<ResultsFile> {
  const log = o.log ?? (() => {});
  if (!Number.isInteger(o.edits) || o.edits < 1) throw new DeltaEditError("E_ARG", `bench: edits must be a positive integer, got ${o.edits}`);
  const seeds = o.seeds ?? 1;
  if (!Number.isInteger(seeds) || seeds < 1) throw new DeltaEditError("E_ARG", `bench: seeds (orderings of the edit stream) must be a positive integer, got ${o.seeds}`);
  if (seeds > 1 && o.protocol === "single") throw new DeltaEditError("E_ARG", "bench: protocol single edits each record alone into the unedited model, so the order of the stream changes nothing", { hint: "use seeds 1 with protocol single" });
  const modelDir = await resolveModelDir(o.model, { log });
  const tok = loadTokenizer(modelDir);
  let records: readonly EvalRecord[];
  let datasetName: string;
  if (typeof o.dataset === "string") {
    let file = o.dataset;
    let kind = o.datasetKind;
    if (!fs.existsSync(file)) {
      const k = KNOWN_DATASETS[o.dataset];
      if (!k) throw new DeltaEditError("E_NOT_FOUND", `bench: dataset file ${o.dataset} does not exist`, { hint: "give a path, or one of: mcf, counterfact, zsre (downloaded into the cache)" });
      kind ??= k;
      file = await ensureDataset(datasetFileName(k), { log });
    }
    const loaded = loadDatasetFile(file, { ...(kind ? { kind } : {}), tokenizer: tok, size: o.edits });
    if (loaded.format !== "counterfact" && loaded.format !== "zsre") log(`bench: ${path.basename(file)} read as ${RECORD_FORMAT_NAMES[loaded.format]}`);
    const fit = recordsThatFit(loaded.records, tok, readModelConfig(modelDir).maxPositions);
    for (const r of [...loaded.rejected, ...fit.rejected]) log(`rejected: ${r.message}`);
    records = fit.records;
    datasetName = path.basename(file);
  } else {
    records = o.dataset;
    datasetName = "records";
  }
  const overrides: Partial<Record<MethodName, Record<string, unknown>>> = {};
  for (const m of o.methods) {
    const file = o.hparams?.[m];
    const h = file !== undefined ? readHparamsFile(file, m) : null;
    if (h) for (const line of describeHparams(h)) log(line);
    overrides[m] = { ...(h?.overrides ?? {}), ...(o.params?.[m] ?? {}) };
  }
  for (const m of Object.keys(o.hparams ?? {})) if (!o.methods.includes(m as MethodName)) throw new DeltaEditError("E_ARG", `bench: an hparams file is given for ${m}, which is not among the methods (${o.methods.join(", ")})`);
  const heldOut = typeof o.heldOut === "string" ? fs.readFileSync(o.heldOut, "utf8").split("\n").filter((l) => l.trim().length > 0) : o.heldOut;
  const facts = typeof o.controlFacts === "string" ? readFacts(o.controlFacts) : o.controlFacts;
  const seed = o.seed ?? 0;
  const kind = records[0]?.kind;
  const glue = o.glue ? await prepareGlue(o.glue, o.model, o.out, o.protocol ?? "checkpoints", log) : null;
  await runBenchOrderings({
    modelSource: o.model,
    records,
    datasetName,
    methods: o.methods,
    edits: Math.min(o.edits, records.length),
    batchSize: o.batchSize ?? 1,
    protocol: o.protocol ?? "checkpoints",
    ...(o.checkpoints ? { checkpoints: o.checkpoints } : {}),
    outDir: o.out,
    seed,
    neighborhoodMode: kind === "zsre" ? "standard" : (o.neighborhood ?? "standard"),
    ...(o.preset ? { preset: o.preset } : {}),
    overrides,
    secondMoments: secondMomentFactory(o.stats ?? {}, log),
    ...(heldOut ? { heldOutText: [...heldOut] } : {}),
    ...(o.fluency ? { generation: generationInputs(seed, o.tfidfDir, log) } : {}),
    ...(facts ? { controlFacts: [...facts] } : {}),
    codeVersion: packageVersion(),
    ...(glue ? { checkpointMetrics: glue.atCheckpoint, notes: glue.notes } : {}),
    log,
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
  }, seeds);
  return readResultsJson(path.join(o.out, "results.json"));
}

/** Control facts from a JSONL file (one `{prompt, subject, target}` per line). */
function readFacts(file: string): Fact[] {
  const facts = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .map((l, i) => [l, i] as const)
    .filter(([l]) => l.trim())
    .map(([l, i]) => {
      let f: unknown;
      try {
        f = JSON.parse(l);
      } catch (e) {
        throw new DeltaEditError("E_REQUEST", `${file}:${i + 1}: not valid JSON (${(e as Error).message})`, { context: { file } });
      }
      const r = f as Partial<Record<keyof Fact, unknown>>;
      for (const k of ["prompt", "target"] as const) {
        if (typeof r?.[k] !== "string" || (r[k] as string).trim() === "") throw new DeltaEditError("E_REQUEST", `${file}:${i + 1}: control fact field "${k}" must be a non-empty string`, { context: { file } });
      }
      if (typeof r.subject !== "string" || ((r.prompt as string).includes("{}") && r.subject.trim() === "")) throw new DeltaEditError("E_REQUEST", `${file}:${i + 1}: control fact field "subject" must be a string (non-empty when the prompt holds "{}")`, { context: { file } });
      return f as Fact;
    });
  if (facts.length === 0) throw new DeltaEditError("E_REQUEST", `${file}: no control facts (the file is empty)`, { context: { file }, hint: "give a JSONL file with one {prompt, subject, target} per line, or leave out --control-facts" });
  return facts;
}

function generationInputs(seed: number, tfidfDir: string | undefined, log: (m: string) => void): { seed: number; tfidf?: TfidfModel; snippets?: AttributeSnippets } {
  if (!tfidfDir) return { seed };
  const f = (n: string): string => path.join(tfidfDir, n);
  for (const n of ["tfidf_vocab.json", "idf.npy", "attribute_snippets.json"]) {
    if (!fs.existsSync(f(n))) throw new DeltaEditError("E_NOT_FOUND", `bench: --tfidf-dir ${tfidfDir} has no ${n}`, { hint: "download tfidf_vocab.json, idf.npy and attribute_snippets.json (evaluation spec §1.1) into that directory" });
  }
  log("bench: loading TF-IDF model and attribute snippets for the consistency score");
  return { seed, tfidf: loadTfidf(f("tfidf_vocab.json"), f("idf.npy")), snippets: loadAttributeSnippets(f("attribute_snippets.json")) };
}

/**
 * GLUE-style tasks along the stream: the unedited model's scores (`<out>/glue/base_glue.json`, reused by a
 * rerun) and a checkpoint hook that scores a method's model and writes `<bench>/glue/<method>_<edits>_glue.json`
 * with the per-item generations (`<bench>` = `<out>`, or `<out>/seed-<k>` for ordering k of several).
 */
async function prepareGlue(g: NonNullable<BenchmarkOptions["glue"]>, model: string, out: string, protocol: Protocol, log: (m: string) => void): Promise<{ atCheckpoint: (m: LanguageModel, edits: number, method: MethodName, benchDir: string) => Record<string, number>; notes: string[] }> {
  if (protocol === "single") throw new DeltaEditError("E_ARG", "bench: the GLUE-style tasks measure a model along a stream; protocol single restores the unedited weights after every record", { hint: "use protocol checkpoints, end or immediate" });
  const data = readGlueData(g.data, { ...(g.tasks ? { tasks: g.tasks } : {}), ...(g.items !== undefined ? { items: g.items } : {}) });
  const dir = path.join(out, "glue");
  fs.mkdirSync(dir, { recursive: true });
  const baseFile = path.join(dir, "base_glue.json");
  let base: GlueResult;
  if (fs.existsSync(baseFile)) base = (JSON.parse(fs.readFileSync(baseFile, "utf8")) as { results: GlueResult }).results;
  else {
    log("bench: GLUE-style tasks on the unedited model");
    const r = runGlue(await LanguageModel.load(model), data, { log });
    base = r.results;
    writeJsonAtomic(baseFile, { edit_num: -1, results: r.results, items: r.items });
  }
  const notes = [`GLUE-style tasks, unedited model (F1 ×100): ${Object.entries(base).map(([t, x]) => `${t} ${(100 * x.f1).toFixed(1)}`).join(", ")}; files in glue/`];
  const atCheckpoint = (m: LanguageModel, edits: number, method: MethodName, benchDir: string): Record<string, number> => {
    if (g.at && !g.at.includes(edits)) return {};
    const r = runGlue(m, data, { log });
    const runDir = path.join(benchDir, "glue");
    fs.mkdirSync(runDir, { recursive: true });
    writeJsonAtomic(path.join(runDir, `${method}_${edits}_glue.json`), { edit_num: edits, results: r.results, items: r.items });
    return Object.fromEntries(Object.entries(glueMetrics(r.results)).filter(([k]) => /_f1$/.test(k)));
  };
  return { atCheckpoint, notes };
}
