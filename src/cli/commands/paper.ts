import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import * as ops from "../../kernels/ops.js";
import { PAPER_METHODS, paperMethods, runPaper, type PaperOptions } from "../../eval/paper/runPaper.js";
import { DEFAULT_BETAS } from "../../eval/paper/schedule.js";
import { renderPaperSummary } from "../../eval/report/paperTable.js";
import { bool, intList, num, str, type CommandSpec } from "../args.js";
import { formatDuration, ProgressLine } from "../progress.js";
import { parseMethodSets } from "./bench.js";
import { packageRoot } from "./_root.js";

/**
 * The world `paper` runs on by default, relative to the package root (`--model` runs another).
 */
export const PAPER_WORLD = path.join("worlds", "factworld-v2");

/** `<model>/world/<name>` when it exists. */
function worldFile(model: string, name: string): string | undefined {
  const f = path.join(model, "world", name);
  return fs.existsSync(f) ? f : undefined;
}

export const command: CommandSpec = {
  name: "paper",
  summary: "reproduce the DeltaEdit paper's experiments on a model (tables, noise, influence/activation, representation shift, β sweep, case study)",
  usage: "deltaedit paper [--model DIR] [--edits N] [--seeds N] [--out DIR] [--resume]",
  options: {
    model: { type: "string", description: `model directory; its world/ folder gives the edits, control facts and held-out text (default: the bundled ${PAPER_WORLD})`, valueName: "DIR" },
    edits: { type: "number", description: "main stream length (default 8·C edits, C = the model's hidden width, capped by the records)", valueName: "N" },
    out: { type: "string", description: "output directory: bench/, beta/, stages/, paper.json, report.html", default: "runs/paper", valueName: "DIR" },
    resume: { type: "boolean", description: "continue the run in --out: completed stages are skipped, an interrupted bench resumes" },
    fresh: { type: "boolean", description: "delete an earlier run in --out first" },
    methods: { type: "string", description: `methods to run, comma-separated, from: ${PAPER_METHODS.map((m) => m.id).join(", ")} (deltaedit-paper: DeltaEdit with variant "paper")`, default: PAPER_METHODS.map((m) => m.id).join(","), valueName: "LIST" },
    betas: { type: "string", description: "β values (DeltaEdit varMultiplier) of the sweep; empty for none", default: DEFAULT_BETAS.join(","), valueName: "LIST" },
    "sweep-edits": { type: "number", description: "β-sweep stream length (default 2·C, capped by the stream)", valueName: "N" },
    checkpoints: { type: "string", description: "explicit checkpoints instead of the paper's 200/500/1000/2000/3000 × C/1600", valueName: "LIST" },
    dataset: { type: "string", description: "edit records (MultiCounterFact format; default <model>/world/edits.json)", valueName: "FILE" },
    heldout: { type: "string", description: "held-out text, one document per line (default <model>/world/corpus-heldout.txt)", valueName: "FILE" },
    "control-facts": { type: "string", description: "JSONL {prompt, subject, target} facts never edited (default <model>/world/control-facts.jsonl)", valueName: "FILE" },
    "stats-corpus": { type: "string", description: "corpus for covariance statistics when the model ships none", valueName: "FILE|DIR" },
    preset: { type: "string", description: "hyperparameter preset name or JSON file (default: matched to the model)", valueName: "NAME|FILE.json" },
    set: { type: "list", description: "per-method override by registry name, e.g. --set deltaedit.numGradSteps=20 (repeatable; deltaedit.* applies to both variants and the β sweep)", valueName: "M.KEY=VALUE" },
    seed: { type: "number", description: "seed of every session", default: 0, valueName: "S" },
    seeds: { type: "number", description: "orderings of the main stream: N > 1 runs every method on N seeded shuffles of the same records (as bench --seeds; ordering 0 = file order), the analyses per ordering, and reports mean ± 95 % CI, the ~ marks and the DeltaEdit − AlphaEdit verdict (paired t over orderings); the β sweep and case study use ordering 0", default: 1, valueName: "N" },
    cases: { type: "number", description: "case-study subjects", default: 4, valueName: "N" },
    "case-tokens": { type: "number", description: "tokens generated per case-study prompt", default: 20, valueName: "N" },
    "repr-prompts": { type: "number", description: "unrelated prompts for the representation shift (at most)", default: 200, valueName: "N" },
    threads: { type: "number", description: "compute threads", valueName: "N" },
    json: { type: "boolean", description: "print paper.json on stdout instead of the summary" },
  },
  async run(args, io) {
    const threads = num(args, "threads");
    if (threads !== undefined) ops.setThreads(threads);
    const model = str(args, "model") ?? path.join(packageRoot(), PAPER_WORLD);
    const out = str(args, "out")!;
    const dataset = str(args, "dataset") ?? worldFile(model, "edits.json");
    if (dataset === undefined) throw new DeltaEditError("E_USAGE", `paper: ${model} has no world/edits.json`, { hint: "pass --dataset FILE (MultiCounterFact records)" });
    if (bool(args, "fresh")) {
      if (bool(args, "resume")) throw new DeltaEditError("E_USAGE", "paper: --fresh and --resume contradict each other");
      fs.rmSync(out, { recursive: true, force: true });
    }
    const betas = str(args, "betas")!.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
      const b = Number(s);
      if (!(Number.isFinite(b) && b > 0)) throw new DeltaEditError("E_USAGE", `paper: --betas expects positive numbers, got "${s}"`);
      return b;
    });
    const seeds = num(args, "seeds")!;
    if (!Number.isInteger(seeds) || seeds < 1) throw new DeltaEditError("E_USAGE", `paper: --seeds must be a positive integer, got ${seeds}`);
    const heldOut = str(args, "heldout") ?? worldFile(model, "corpus-heldout.txt");
    const controlFacts = str(args, "control-facts") ?? worldFile(model, "control-facts.jsonl");
    const o: PaperOptions = {
      model, dataset, out, betas,
      methods: paperMethods(str(args, "methods")!.split(",").map((s) => s.trim()).filter(Boolean)),
      params: parseMethodSets(args),
      seed: num(args, "seed")!,
      ...(seeds > 1 ? { seeds } : {}),
      resume: bool(args, "resume"),
      cases: num(args, "cases")!,
      caseTokens: num(args, "case-tokens")!,
      representationPrompts: num(args, "repr-prompts")!,
      ...(heldOut !== undefined ? { heldOut } : {}),
      ...(controlFacts !== undefined ? { controlFacts } : {}),
    };
    const edits = num(args, "edits");
    if (edits !== undefined) o.edits = edits;
    const sweep = num(args, "sweep-edits");
    if (sweep !== undefined) o.sweepEdits = sweep;
    const cps = str(args, "checkpoints");
    if (cps) o.checkpoints = intList(cps, "checkpoints");
    const sc = str(args, "stats-corpus");
    if (sc) o.statsCorpus = sc;
    const preset = str(args, "preset");
    if (preset) o.preset = preset;

    const progress = new ProgressLine(io, "paper");
    const t0 = performance.now();
    let start: number | null = null; // work units already done when this process started working
    o.log = (m) => {
      progress.done();
      io.err(m + "\n");
    };
    o.onProgress = (p) => {
      start ??= p.done;
      const el = (performance.now() - t0) / 1000;
      const rate = p.done > start ? (p.done - start) / el : 0;
      const eta = rate > 0 ? (p.total - p.done) / rate : NaN;
      progress.update(Math.round(p.done), Math.round(p.total), `stage ${p.index + 1}/${p.stages} ${p.detail} · elapsed ${formatDuration(el)} · ETA ${formatDuration(eta)}`);
    };
    const report = await runPaper(o);
    progress.done();
    if (bool(args, "json")) io.out(fs.readFileSync(path.join(out, "paper.json"), "utf8"));
    else {
      io.out(renderPaperSummary(report) + "\n\n");
      io.out(`paper.json: ${path.resolve(out, "paper.json")}\nreport:     ${path.resolve(out, "report.html")}  (open it in a browser)\n`);
    }
    return report.stages.some((s) => s.status === "failed") ? 1 : 0;
  },
};
