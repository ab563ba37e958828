import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { METHOD_NAMES, type MethodName } from "../../edit/methods/method.js";
import { PRESETS } from "../../edit/presets.js";
import { readRequestsFile, type ParsedRequests } from "../../edit/request.js";
import { EditSession } from "../../edit/session/session.js";
import { packageVersion } from "../version.js";
import { bool, num, str, type CliIO, type CommandSpec, type ParsedArgs } from "../args.js";
import { prepareSecondMoments } from "./_stats.js";
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
  usage: "deltaedit edit --model DIR --method NAME --edits FILE --session DIR [--batch N] [--preset NAME|FILE.json] [--set key=value …] [--resume]",
  options: {
    model: { type: "string", description: "model directory or Hub repo id (not needed with --resume)", valueName: "DIR|REPO" },
    method: { type: "string", description: `editing method: ${METHOD_NAMES.join(", ")}`, valueName: "NAME" },
    edits: { type: "string", description: "edit requests: CounterFact/MultiCounterFact JSON, or JSONL {prompt, subject, target_new}", required: true, valueName: "FILE" },
    session: { type: "string", description: "session directory (manifest, journal, factors)", required: true, valueName: "DIR" },
    batch: { type: "number", description: "requests per batch (the paper's protocol: 1)", default: 1, valueName: "N" },
    preset: { type: "string", description: `hyperparameter preset (${PRESETS.map((p) => p.name).join(", ")}; or a preset JSON file, e.g. from deltaedit trace --suggest; default: matched to the model's shape)`, valueName: "NAME|FILE.json" },
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
    const clean = Object.fromEntries(Object.entries(statsOpts).filter(([, v]) => v !== undefined));
    const factory = (model: Parameters<typeof prepareSecondMoments>[0], layers: readonly number[]) => prepareSecondMoments(model, layers, clean, log);
    // the requests are read and validated before a session directory is created or opened
    const parsed = readRequestsFile(str(args, "edits")!);
    for (const r of parsed.rejected) log(`rejected: ${r.message}`);
    if (parsed.requests.length === 0) {
      throw new DeltaEditError("E_REQUEST", `${str(args, "edits")}: none of its ${parsed.rejected.length} record(s) is a valid edit request (see the rejections above)`);
    }
    let session: EditSession;
    const resume = bool(args, "resume");
    if (resume) {
      const o: Parameters<typeof EditSession.open>[1] = { secondMoments: factory, log, access: "write", command: "edit --resume", skipModelCheck: bool(args, "skip-model-check") };
      const m = str(args, "model");
      if (m) o.modelSource = m;
      session = await EditSession.open(sessionDir, o);
      for (const k of ["method", "preset", "set", "batch"] as const) if (args[k] !== undefined && k !== "batch") log(`note: --${k} is ignored with --resume (the session's manifest decides)`);
    } else {
      const model = str(args, "model");
      const method = str(args, "method");
      if (!model) throw new DeltaEditError("E_USAGE", "edit: --model is required for a new session");
      if (bool(args, "skip-model-check")) throw new DeltaEditError("E_USAGE", "edit: --skip-model-check only applies with --resume (a new session records its model's hash)");
      if (!method) throw new DeltaEditError("E_USAGE", "edit: --method is required for a new session", { hint: `one of ${METHOD_NAMES.join(", ")}` });
      if (!METHOD_NAMES.includes(method as MethodName)) throw new DeltaEditError("E_USAGE", `edit: unknown method "${method}"`, { hint: `one of ${METHOD_NAMES.join(", ")}` });
      if (fs.existsSync(path.join(sessionDir, "manifest.json"))) throw new DeltaEditError("E_USAGE", `edit: ${sessionDir} already holds a session`, { hint: "add --resume to continue it" });
      const batch = num(args, "batch")!;
      if (!Number.isInteger(batch) || batch < 1) throw new DeltaEditError("E_USAGE", `edit: --batch must be a positive integer, got ${batch}`);
      const so: Parameters<typeof EditSession.create>[0] = { dir: sessionDir, modelSource: model, method: method as MethodName, overrides: parseSets(args), batchSize: batch, seed: num(args, "seed")!, codeVersion: packageVersion(), secondMoments: factory, log };
      const preset = str(args, "preset");
      if (preset) so.preset = preset;
      const threads = num(args, "threads");
      if (threads !== undefined) so.threads = threads;
      session = await EditSession.create(so);
    }
    try {
      return runSession(session, args, io, sessionDir, log, parsed);
    } finally {
      session.close();
    }
  },
};

/** Apply the edit stream in an open (locked) session and print the summary. */
function runSession(session: EditSession, args: ParsedArgs, io: CliIO, sessionDir: string, log: (m: string) => void, parsed: ParsedRequests): number {
  const progress = new ProgressLine(io, "edit");
  const start = session.position;
  const t0 = performance.now();
  const limit = num(args, "limit");
  const runOpts: Parameters<EditSession["run"]>[1] = {
    rejected: parsed.rejected,
    onBatch: (p) => {
      for (const r of p.record.rejected) if (!parsed.rejected.some((x) => x.index === r.index)) log(`rejected: ${r.message}`);
      const el = (performance.now() - t0) / 1000;
      const rate = (p.done - start) / el;
      const trig = p.record.outcome?.requests.filter((q) => q.noise?.triggered).length ?? 0;
      progress.update(p.done, p.total, `batch ${p.batch}${trig ? ` (projection triggered ×${trig})` : ""} · ${rate > 0 ? (1 / rate).toFixed(2) : "?"} s/request · ETA ${formatDuration(rate > 0 ? (p.total - p.done) / rate : NaN)}`);
    },
  };
  if (limit !== undefined) runOpts.limit = limit;
  const res = session.run(parsed.requests, runOpts);
  progress.done();
  const fin = session.finish();
  if (fin.length > 0) log(`final step of ${session.manifest.method}: ${fin.length} layer update(s) applied`);
  const batches = session.journal.filter((r) => r.kind === "batch");
  const summary = {
    session: sessionDir,
    method: session.manifest.method,
    preset: session.manifest.preset,
    applied: res.applied,
    rejected: res.rejected,
    batches: batches.length,
    position: session.position,
    seconds: (performance.now() - t0) / 1000,
  };
  if (bool(args, "json")) io.out(JSON.stringify(summary) + "\n");
  else io.out(renderTable(["session", "method", "preset", "applied", "rejected", "batches", "position", "time"], [[sessionDir, summary.method, summary.preset, String(res.applied), String(res.rejected), String(summary.batches), String(summary.position), formatDuration(summary.seconds)]]) + "\n");
  if (res.applied === 0 && res.rejected > 0) {
    log(`edit: none of the ${res.rejected} request(s) of this run could be applied`);
    return 1;
  }
  return 0;
}
