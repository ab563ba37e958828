import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { METHOD_NAMES, type MethodName } from "../../edit/methods/method.js";
import { readHparamsFile } from "../../edit/hparams.js";
import type { Protocol } from "../../eval/bench.js";
import { benchmark } from "../../eval/benchmark.js";
import type { DatasetKind } from "../../eval/datasets/record.js";
import type { NeighborhoodMode } from "../../eval/metrics/counterfact.js";
import { renderSummaryTable } from "../../eval/report/table.js";
import * as ops from "../../kernels/ops.js";
import { bool, intList, num, str, type CliIO, type CommandSpec, type ParsedArgs } from "../args.js";
import { ProgressLine, formatDuration } from "../progress.js";

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
  /** Orderings of the edit stream (default 1). */
  seeds?: number;
  neighborhood: NeighborhoodMode;
  preset?: string;
  sets: Partial<Record<MethodName, Record<string, unknown>>>;
  /** General-ability tasks along the stream. */
  glue?: { data: string; at?: number[] };
  /** Per method, an EasyEdit / official-repository hparams file. */
  hparams?: Partial<Record<MethodName, string>>;
  statsCorpus?: string;
  heldOut?: string;
  controlFacts?: string;
  json: boolean;
  title?: string;
  fluency?: boolean;
  tfidfDir?: string;
}

/** Run a bench from a parsed invocation (shared by `bench` and `demo`): `benchmark` plus progress and a table. */
export async function invokeBench(inv: BenchInvocation, io: CliIO): Promise<number> {
  const log = (m: string): void => io.err(m + "\n");
  const progress = new ProgressLine(io, "bench");
  const t0 = performance.now();
  const report = await benchmark({
    model: inv.model,
    dataset: inv.dataset,
    ...(inv.kind ? { datasetKind: inv.kind } : {}),
    methods: inv.methods,
    edits: inv.edits,
    batchSize: inv.batch,
    protocol: inv.protocol,
    ...(inv.checkpoints ? { checkpoints: inv.checkpoints } : {}),
    out: inv.out,
    seed: inv.seed,
    ...(inv.seeds !== undefined && inv.seeds !== 1 ? { seeds: inv.seeds } : {}),
    neighborhood: inv.neighborhood,
    ...(inv.preset ? { preset: inv.preset } : {}),
    ...(inv.hparams ? { hparams: inv.hparams } : {}),
    params: inv.sets,
    stats: inv.statsCorpus ? { corpus: inv.statsCorpus } : {},
    ...(inv.heldOut ? { heldOut: inv.heldOut } : {}),
    ...(inv.controlFacts ? { controlFacts: inv.controlFacts } : {}),
    ...(inv.fluency ? { fluency: true } : {}),
    ...(inv.tfidfDir ? { tfidfDir: inv.tfidfDir } : {}),
    ...(inv.glue ? { glue: inv.glue } : {}),
    log: (m) => {
      progress.done();
      log(m);
    },
    onProgress: (p) => {
      const el = (performance.now() - t0) / 1000;
      const k = inv.methods.indexOf(p.method as MethodName);
      // one unit per (ordering, method): the ETA covers every ordering still to run
      const seeds = p.seeds ?? 1;
      const frac = ((p.seed ?? 0) * inv.methods.length + k + p.done / p.total) / (inv.methods.length * seeds);
      const ordering = seeds > 1 ? `ordering ${(p.seed ?? 0) + 1}/${seeds} · ` : "";
      progress.update(Math.round(frac * 1000), 1000, `${ordering}${p.method} ${p.phase === "edit" ? `edit ${p.done}/${p.total}` : p.detail} · elapsed ${formatDuration(el)} · ETA ${formatDuration(frac > 0 ? (el * (1 - frac)) / frac : NaN)}`);
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

/** `--hparams METHOD=FILE` or `--hparams FILE` (method from its alg_name, or the only method benched). */
function parseHparams(a: ParsedArgs, methods: readonly MethodName[]): Partial<Record<MethodName, string>> {
  const out: Partial<Record<MethodName, string>> = {};
  const list = a["hparams"];
  for (const s of Array.isArray(list) ? list : []) {
    const m = /^([a-z]+)=(.+)$/.exec(s);
    let method: MethodName;
    let file: string;
    if (m && METHOD_NAMES.includes(m[1] as MethodName)) {
      method = m[1] as MethodName;
      file = m[2]!;
    } else {
      file = s;
      const named = readHparamsFile(file).method; // throws (naming the file) when it names no method
      method = named;
    }
    if (!methods.includes(method)) throw new DeltaEditError("E_USAGE", `bench: --hparams ${s} is for ${method}, which is not in --methods ${methods.join(",")}`);
    if (out[method] !== undefined) throw new DeltaEditError("E_USAGE", `bench: two --hparams files for ${method}`);
    out[method] = file;
  }
  return out;
}

/** `--set method.key=value` (repeatable) → per-method overrides. */
export function parseMethodSets(a: ParsedArgs): Partial<Record<MethodName, Record<string, unknown>>> {
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
  usage: "deltaedit bench --model DIR --dataset FILE --methods memit,alphaedit,deltaedit --edits N [--batch B] [--protocol checkpoints|end|immediate|single] [--seeds N] [--out DIR]",
  options: {
    model: { type: "string", description: "model directory or Hub repo id", required: true, valueName: "DIR|REPO" },
    dataset: { type: "string", description: "CounterFact / MultiCounterFact / ZsRE file (official formats), EasyEdit / KnowEdit JSON, or JSONL (format read from the fields); or mcf|counterfact|zsre to download", required: true, valueName: "FILE" },
    "dataset-kind": { type: "string", description: "cf, mcf or zsre (default: from the records' fields)", valueName: "KIND" },
    methods: { type: "string", description: `comma-separated: ${METHOD_NAMES.join(", ")}`, default: "memit,alphaedit,deltaedit", valueName: "LIST" },
    edits: { type: "number", description: "number of requests in the stream (first N records, file order)", required: true, valueName: "N" },
    batch: { type: "number", description: "requests per batch", default: 1, valueName: "B" },
    protocol: { type: "string", description: "checkpoints (DeltaEdit: 200, every 500, end), end (AlphaEdit), immediate (EasyEdit), single (each record alone into the unedited model: ROME/MEMIT single edits)", default: "checkpoints", valueName: "NAME" },
    checkpoints: { type: "string", description: "explicit checkpoint counts, e.g. 50,100,200", valueName: "LIST" },
    out: { type: "string", description: "output directory (sessions, per-case records, results.json, report.html); rerun to resume", default: "runs/bench", valueName: "DIR" },
    neighborhood: { type: "string", description: "neighborhood reference: standard (target_true) or deltaedit (unedited model's greedy tokens)", default: "standard", valueName: "MODE" },
    preset: { type: "string", description: "hyperparameter preset name or preset JSON file (e.g. from deltaedit trace --suggest; default: matched to the model)", valueName: "NAME|FILE.json" },
    hparams: { type: "list", description: "EasyEdit / official-repository hyperparameter file (YAML or JSON) for one method: METHOD=FILE, or FILE naming its method (alg_name); repeatable (docs/hparams.md)", valueName: "[M=]FILE" },
    set: { type: "list", description: "per-method override, e.g. --set deltaedit.varMultiplier=3 (repeatable)", valueName: "M.KEY=VALUE" },
    "stats-corpus": { type: "string", description: "corpus for covariance statistics when none are shipped with the model", valueName: "FILE|DIR" },
    heldout: { type: "string", description: "held-out text (one document per line) for the perplexity check", valueName: "FILE" },
    "control-facts": { type: "string", description: "JSONL {prompt, subject, target} facts never edited (accuracy check)", valueName: "FILE" },
    seed: { type: "number", description: "seed of every session (and of the fluency generations)", default: 0, valueName: "S" },
    seeds: { type: "number", description: "orderings of the edit stream: N > 1 runs every method on N seeded shuffles of the same records (ordering 0 = file order; each in DIR/seed-<k>/) and reports mean ± 95 % CI across them, marking differences that are not significant", default: 1, valueName: "N" },
    fluency: { type: "boolean", description: "also score fluency (n-gram entropy of 10 seeded generations per case; slow)" },
    "tfidf-dir": { type: "string", description: "with --fluency: directory with tfidf_vocab.json, idf.npy, attribute_snippets.json for the consistency score", valueName: "DIR" },
    glue: { type: "string", description: "general-ability task directory (docs/glue.md): scored on the unedited model and at the checkpoints; results in glue/ and as glue_<task>_f1", valueName: "DIR" },
    "glue-at": { type: "string", description: "with --glue: only at these checkpoint counts, e.g. 200,1000", valueName: "LIST" },
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
    const seeds = num(args, "seeds")!;
    if (!Number.isInteger(seeds) || seeds < 1) throw new DeltaEditError("E_USAGE", `bench: --seeds must be a positive integer, got ${seeds}`);
    if (seeds > 1 && protocol === "single") throw new DeltaEditError("E_USAGE", "bench: --seeds N > 1 shuffles the stream, and --protocol single edits each record alone into the unedited model: the order changes nothing", { hint: "drop --seeds for --protocol single" });
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
      seeds,
      neighborhood: nb as NeighborhoodMode,
      sets: parseMethodSets(args),
      json: bool(args, "json"),
    };
    const kind = str(args, "dataset-kind");
    if (kind) inv.kind = kind as DatasetKind;
    const hp = parseHparams(args, inv.methods);
    if (Object.keys(hp).length > 0) inv.hparams = hp;
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
    const glue = str(args, "glue");
    if (glue) inv.glue = { data: glue, ...(str(args, "glue-at") ? { at: intList(str(args, "glue-at")!, "glue-at") } : {}) };
    else if (str(args, "glue-at")) throw new DeltaEditError("E_USAGE", "bench: --glue-at needs --glue DIR");
    const cf = str(args, "control-facts");
    if (cf) inv.controlFacts = cf;
    return invokeBench(inv, io);
  },
};
