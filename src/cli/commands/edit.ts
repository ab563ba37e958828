import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { METHOD_NAMES, methodDisplayName, type MethodName } from "../../edit/methods/method.js";
import { PRESETS } from "../../edit/presets.js";
import { readRequestsFile, type ParsedRequests } from "../../edit/request.js";
import { CLI_STATS_HINT } from "../../edit/statsProvider.js";
import { Editor, type EditorCreateOptions, type EditorOpenOptions } from "../../eval/editor.js";
import { bool, num, str, type CliIO, type CommandSpec, type ParsedArgs } from "../args.js";
import { formatDuration, ProgressLine } from "../progress.js";
import { renderTable } from "../table.js";

function parseSets(a: ParsedArgs): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const sets = a["set"];
  for (const s of Array.isArray(sets) ? sets : []) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new DeltaEditError("E_USAGE", `--set expects key=value, got "${s}"`);
    out[s.slice(0, eq)] = s.slice(eq + 1);
  }
  return out;
}

export const command: CommandSpec = {
  name: "edit",
  summary: "apply a stream of edit requests sequentially in a durable, resumable session",
  usage: "deltaedit edit --model DIR --method NAME --edits FILE --session DIR [--batch N] [--preset NAME|FILE.json] [--hparams FILE.yaml|json] [--set key=value …] [--resume]",
  options: {
    model: { type: "string", description: "model directory or Hub repo id (not needed with --resume)", valueName: "DIR|REPO" },
    method: { type: "string", description: `editing method: ${METHOD_NAMES.join(", ")}`, valueName: "NAME" },
    edits: { type: "string", description: "edit requests: CounterFact/MultiCounterFact JSON, EasyEdit/KnowEdit or ZsRE JSON (format read from the fields), or JSONL {prompt, subject, target_new}", required: true, valueName: "FILE" },
    session: { type: "string", description: "session directory (manifest, journal, factors)", required: true, valueName: "DIR" },
    batch: { type: "number", description: "requests per batch (the paper's protocol: 1)", default: 1, valueName: "N" },
    preset: { type: "string", description: `hyperparameter preset (${PRESETS.map((p) => p.name).join(", ")}; or a preset JSON file, e.g. from deltaedit trace --suggest; default: matched to the model's shape)`, valueName: "NAME|FILE.json" },
    hparams: { type: "string", description: "EasyEdit / official-repository hyperparameter file (YAML or JSON), on top of the preset; names the method if --method is not given (docs/hparams.md)", valueName: "FILE" },
    set: { type: "list", description: "override a hyperparameter, e.g. --set l2=10 --set editLayers=4,5,6 (repeatable)", valueName: "KEY=VALUE" },
    resume: { type: "boolean", description: "continue an interrupted session" },
    "skip-model-check": { type: "boolean", description: "with --resume: replay onto the model without checking its content hash against the session's (needed when the manifest records none; results are only right for the original model)" },
    limit: { type: "number", description: "stop after this many requests of the stream", valueName: "N" },
    seed: { type: "number", description: "seed of the session's RNG (context templates, randomized SVD)", default: 0, valueName: "S" },
    "stats-corpus": { type: "string", description: "corpus for the covariance statistics when none are shipped with the model", valueName: "FILE|DIR" },
    "stats-samples": { type: "number", description: "documents in the statistics sample", valueName: "N" },
    "stats-max-tokens": { type: "number", description: "truncation length of statistics documents", valueName: "T" },
    threads: { type: "number", description: "compute threads (recorded; a resume uses the same count)", valueName: "N" },
    json: { type: "boolean", description: "print a JSON summary on stdout" },
  },
  async run(args, io) {
    const log = (m: string): void => io.err(m + "\n");
    const sessionDir = str(args, "session")!;
    if (sessionDir.trim() === "") throw new DeltaEditError("E_USAGE", "edit: --session must name a directory, got an empty string");
    const statsOpts = { corpus: str(args, "stats-corpus"), samples: num(args, "stats-samples"), maxTokens: num(args, "stats-max-tokens") };
    const clean = { ...Object.fromEntries(Object.entries(statsOpts).filter(([, v]) => v !== undefined)), missingHint: CLI_STATS_HINT };
    // the requests are read and validated before a session directory is created or opened
    const parsed = readRequestsFile(str(args, "edits")!);
    for (const r of parsed.rejected) log(`rejected: ${r.message}`);
    if (parsed.requests.length === 0) {
      throw new DeltaEditError("E_REQUEST", `${str(args, "edits")}: none of its ${parsed.rejected.length} record(s) is a valid edit request (see the rejections above)`);
    }
    let editor: Editor;
    const resume = bool(args, "resume");
    if (resume) {
      const o: EditorOpenOptions = { stats: clean, log, access: "write", command: "edit --resume", skipModelCheck: bool(args, "skip-model-check") };
      const m = str(args, "model");
      if (m) o.model = m;
      editor = await Editor.open(sessionDir, o);
      for (const k of ["method", "preset", "hparams", "set", "batch"] as const) if (args[k] !== undefined && k !== "batch") log(`note: --${k} is ignored with --resume (the session's manifest decides)`);
    } else {
      const model = str(args, "model");
      const method = str(args, "method");
      const hparams = str(args, "hparams");
      if (!model) throw new DeltaEditError("E_USAGE", "edit: --model is required for a new session");
      if (bool(args, "skip-model-check")) throw new DeltaEditError("E_USAGE", "edit: --skip-model-check only applies with --resume (a new session records its model's hash)");
      if (!method && !hparams) throw new DeltaEditError("E_USAGE", "edit: --method is required for a new session", { hint: `one of ${METHOD_NAMES.join(", ")}` });
      if (method && !METHOD_NAMES.includes(method as MethodName)) throw new DeltaEditError("E_USAGE", `edit: unknown method "${method}"`, { hint: `one of ${METHOD_NAMES.join(", ")}` });
      if (fs.existsSync(path.join(sessionDir, "manifest.json"))) throw new DeltaEditError("E_USAGE", `edit: ${sessionDir} already holds a session`, { hint: "add --resume to continue it" });
      const batch = num(args, "batch")!;
      if (!Number.isInteger(batch) || batch < 1) throw new DeltaEditError("E_USAGE", `edit: --batch must be a positive integer, got ${batch}`);
      const so: EditorCreateOptions = { dir: sessionDir, model, params: parseSets(args), batchSize: batch, seed: num(args, "seed")!, stats: clean, log, command: "edit" };
      if (method) so.method = method as MethodName;
      if (hparams) so.hparams = hparams;
      const preset = str(args, "preset");
      if (preset) so.preset = preset;
      const threads = num(args, "threads");
      if (threads !== undefined) so.threads = threads;
      editor = await Editor.create(so);
    }
    try {
      return await runSession(editor, args, io, sessionDir, log, parsed);
    } finally {
      await editor.close();
    }
  },
};

/** Apply the edit stream in an open (locked) session and print the summary. */
async function runSession(editor: Editor, args: ParsedArgs, io: CliIO, sessionDir: string, log: (m: string) => void, parsed: ParsedRequests): Promise<number> {
  const progress = new ProgressLine(io, "edit");
  const start = editor.position;
  const t0 = performance.now();
  const limit = num(args, "limit");
  const runOpts: Parameters<Editor["editStream"]>[1] = {
    onBatch: (p) => {
      for (const r of p.record.rejected) if (!parsed.rejected.some((x) => x.index === r.index)) log(`rejected: ${r.message}`);
      const el = (performance.now() - t0) / 1000;
      const rate = (p.done - start) / el;
      const trig = p.record.outcome?.requests.filter((q) => q.noise?.triggered).length ?? 0;
      progress.update(p.done, p.total, `batch ${p.batch}${trig ? ` (projection triggered ×${trig})` : ""} · ${rate > 0 ? (1 / rate).toFixed(2) : "?"} s/request · ETA ${formatDuration(rate > 0 ? (p.total - p.done) / rate : NaN)}`);
    },
  };
  if (limit !== undefined) runOpts.limit = limit;
  const res = await editor.editStream(parsed, runOpts);
  const applied = res.applied;
  const rejected = res.rejected.length;
  progress.done();
  const fin = await editor.finish();
  if (fin > 0) log(`final step of ${editor.method}: ${fin} layer update(s) applied`);
  const batches = editor.journal.filter((r) => r.kind === "batch");
  const summary = {
    session: sessionDir,
    method: editor.method,
    preset: editor.manifest.preset,
    applied,
    rejected,
    batches: batches.length,
    position: editor.position,
    seconds: (performance.now() - t0) / 1000,
  };
  if (bool(args, "json")) io.out(JSON.stringify(summary) + "\n");
  else io.out(renderTable(["session", "method", "preset", "applied", "rejected", "batches", "position", "time"], [[sessionDir, methodDisplayName(summary.method, editor.params), summary.preset, String(applied), String(rejected), String(summary.batches), String(summary.position), formatDuration(summary.seconds)]]) + "\n");
  if (applied === 0 && rejected > 0) {
    log(`edit: none of the ${rejected} request(s) of this run could be applied`);
    return 1;
  }
  return 0;
}
