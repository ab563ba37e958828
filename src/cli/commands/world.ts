/**
 * `deltaedit world train` and `deltaedit world info`: build and train the bundled fact world,
 * and show the measured quality of a world directory.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DeltaEditError } from "../../errors.js";
import type { WorldQuality } from "../../eval/world/trainworld.js";
import type { TrainParams } from "../../model/train.js";
import { bool, num, str, type CommandSpec, type ParsedArgs } from "../args.js";
import { threadsOption } from "./_model.js";

/** `deltaedit <version> (git <commit>[+dirty])`, best effort. */
function codeVersion(): string {
  let root = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(root, "package.json")) && path.dirname(root) !== root) root = path.dirname(root);
  let version = "unknown";
  try {
    version = (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    /* not in a package */
  }
  let git = "";
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] }).toString().trim() !== "";
    git = ` (git ${head}${dirty ? "+dirty" : ""})`;
  } catch {
    /* no git */
  }
  return `deltaedit ${version}${git}`;
}

function intArg(args: ParsedArgs, key: string, min: number): number | undefined {
  const v = num(args, key);
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min) throw new DeltaEditError("E_USAGE", `world train: --${key} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

/** `table[name]` when `name` is the table's own key (not an inherited property such as "constructor"). */
function ownEntry<T>(table: Readonly<Record<string, T>>, name: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(table, name) ? table[name] : undefined;
}

export const trainCommand: CommandSpec = {
  name: "world train",
  summary: "build the fact world for a seed and train its model from scratch (CPU; resumable)",
  usage: "deltaedit world train [--out DIR] [--seed S] [--steps N] [--lr X] [--resume] [--threads N] [--dtype F32|F16|BF16] …",
  options: {
    out: { type: "string", description: "output directory (a Hugging Face model directory + world/)", default: "runs/factworld", valueName: "DIR" },
    seed: { type: "number", description: "world seed (knowledge base, corpus, edits, init and data order derive from it)", default: 0, valueName: "S" },
    steps: { type: "number", description: "optimizer steps (default 4000)", valueName: "N" },
    lr: { type: "number", description: "peak learning rate (default 4e-3)", valueName: "X" },
    "batch-size": { type: "number", description: "windows per micro-batch (default 32)", valueName: "B" },
    "seq-len": { type: "number", description: "tokens per window (default 32)", valueName: "T" },
    "grad-accum": { type: "number", description: "micro-batches per optimizer step (default 1)", valueName: "N" },
    warmup: { type: "number", description: "linear warm-up steps (default 150)", valueName: "N" },
    "eval-every": { type: "number", description: "held-out loss + fact-accuracy probe every N steps (default 400)", valueName: "N" },
    "checkpoint-every": { type: "number", description: "checkpoint every N steps (default 50)", valueName: "N" },
    "freeze-mlp-blocks": { type: "number", description: "the MLPs of blocks 0 … N−1 keep their initial weights, so facts are stored in later blocks (default 0; recipe v2: 3; docs/world.md, probe L)", valueName: "N" },
    resume: { type: "boolean", description: "continue from DIR/train-state (after a crash or kill)" },
    "keep-checkpoints": { type: "boolean", description: "keep DIR/train-state after a successful run" },
    dtype: { type: "string", description: "storage dtype of model.safetensors: F32, F16 or BF16", default: "F16", valueName: "DTYPE" },
    recipe: { type: "string", description: "world recipe: v1 (factworld-v1), v2 (factworld-v2: names composed from 24 × 360 parts, object continuations, family-name mentions, C 128 × 8 blocks × F 1 536 with the first 3 MLPs frozen; statistics of blocks 3–4), v2-first (v1 + object continuations; the first v2) or v2-composed (a probe; docs/world.md)", default: "v1", valueName: "NAME" },
    people: { type: "number", description: "people in the knowledge base (6 facts each; default 450)", valueName: "N" },
    "person-pools": { type: "string", description: "compose person names from G given × F family names (v2: 24,360; v2-composed: 30,30)", valueName: "G,F" },
    "stats-layers": { type: "string", description: "layers whose key statistics are written to DIR/stats (default: the preset's edit layers)", valueName: "L1,L2,…" },
    "stats-fact-share": { type: "number", description: "statistics over general text in which this share of sentences are facts (v2-composed: 0.1)", valueName: "X" },
    "continuation-style": { type: "string", description: "with --continuations: verbs (the default: occupation / sport / instrument verbs) or object (\"<name> <object> <marker>.\" for every fact of every relation)", valueName: "verbs|object" },
    continuations: { type: "number", description: "subject continuations: N sentences per (person, occupation / sport / instrument) whose first word after the name depends on the fact (docs/world.md; default none)", valueName: "N" },
    "object-noise": { type: "number", description: "share of training fact sentences that state another object of the relation, as web text disagrees with itself (default 0; docs/world.md, probe S)", valueName: "X" },
    "short-mentions": { type: "number", description: "share of a person's training sentences that name them by the family name alone (default 0; docs/world.md, probe P)", valueName: "X" },
    repeats: { type: "number", description: "statements of each (fact, training template) pair in the corpus (default 1)", valueName: "N" },
    "filler-ratio": { type: "number", description: "fraction of filler sentences in the corpus (default 0.1)", valueName: "X" },
    vocab: { type: "number", description: "tokenizer vocabulary size (default 4096)", valueName: "V" },
    hidden: { type: "number", description: "model width C (default 256)", valueName: "C" },
    layers: { type: "number", description: "transformer blocks (default 6)", valueName: "L" },
    intermediate: { type: "number", description: "MLP width F (default 768)", valueName: "F" },
    "edit-count": { type: "number", description: "edit records written to world/edits.json (default 3000)", valueName: "N" },
    "probe-facts": { type: "number", description: "facts sampled for the periodic accuracy probe (default 300)", valueName: "N" },
    threads: { ...threadsOption, description: "BLAS threads (default: all cores)" },
    "kernel-threads": { type: "number", description: "threads of the fused kernels (default: the library's; factworld-v1 was made with --threads 2 --kernel-threads 2)", valueName: "N" },
  },
  async run(args, io) {
    const ops = await import("../../kernels/ops.js");
    ops.setThreads(intArg(args, "threads", 1) ?? os.availableParallelism());
    const kernelThreads = intArg(args, "kernel-threads", 1);
    if (kernelThreads !== undefined) ops.setKernelThreads(kernelThreads);
    const { trainWorld } = await import("../../eval/world/trainworld.js");
    const dtype = str(args, "dtype")!.toUpperCase();
    if (dtype !== "F32" && dtype !== "F16" && dtype !== "BF16") throw new DeltaEditError("E_USAGE", `world train: --dtype must be F32, F16 or BF16, got ${dtype}`);
    const train: Partial<TrainParams> = {};
    const setTrain = <K extends keyof TrainParams>(k: K, v: TrainParams[K] | undefined): void => {
      if (v !== undefined) train[k] = v;
    };
    setTrain("steps", intArg(args, "steps", 1));
    setTrain("lr", num(args, "lr"));
    setTrain("batchSize", intArg(args, "batch-size", 1));
    setTrain("seqLen", intArg(args, "seq-len", 2));
    setTrain("gradAccum", intArg(args, "grad-accum", 1));
    setTrain("warmupSteps", intArg(args, "warmup", 0));
    setTrain("evalEvery", intArg(args, "eval-every", 0));
    setTrain("checkpointEvery", intArg(args, "checkpoint-every", 0));
    setTrain("frozenMlpBlocks", intArg(args, "freeze-mlp-blocks", 0));
    const people = intArg(args, "people", 1);
    const repeats = intArg(args, "repeats", 1);
    const filler = num(args, "filler-ratio");
    const continuations = intArg(args, "continuations", 1);
    const contStyle = str(args, "continuation-style");
    const shortShare = num(args, "short-mentions");
    if (shortShare !== undefined && !(shortShare >= 0 && shortShare <= 1)) throw new DeltaEditError("E_USAGE", `world train: --short-mentions must be in [0, 1], got ${shortShare}`);
    const noiseShare = num(args, "object-noise");
    if (noiseShare !== undefined && !(noiseShare >= 0 && noiseShare < 0.5)) throw new DeltaEditError("E_USAGE", `world train: --object-noise must be in [0, 0.5), got ${noiseShare}`);
    if (contStyle !== undefined && contStyle !== "verbs" && contStyle !== "object") throw new DeltaEditError("E_USAGE", `world train: --continuation-style must be verbs or object, got "${contStyle}"`);
    if (contStyle !== undefined && continuations === undefined) throw new DeltaEditError("E_USAGE", "world train: --continuation-style needs --continuations N");
    const vocab = intArg(args, "vocab", 257);
    const hidden = intArg(args, "hidden", 2);
    const layers = intArg(args, "layers", 1);
    const intermediate = intArg(args, "intermediate", 1);
    const editCount = intArg(args, "edit-count", 0);
    const probeFacts = intArg(args, "probe-facts", 1);
    const out = str(args, "out")!;
    const recipeName = str(args, "recipe")!;
    const { WORLD_RECIPES, WORLD_RECIPE_STATS_LAYERS, WORLD_RECIPE_TRAIN, mergeWorldOptions } = await import("../../eval/world/world.js");
    const { SUBJECT_CONTINUATIONS } = await import("../../eval/world/continuations.js");
    const recipe = ownEntry(WORLD_RECIPES, recipeName);
    if (!recipe) throw new DeltaEditError("E_USAGE", `world train: unknown --recipe "${recipeName}"`, { hint: `one of ${Object.keys(WORLD_RECIPES).join(", ")}` });
    const poolsArg = str(args, "person-pools");
    let personPools: [number, number] | undefined;
    if (poolsArg !== undefined) {
      const p = poolsArg.split(",").map((x) => Number(x.trim()));
      if (p.length !== 2 || !p.every((x) => Number.isInteger(x) && x >= 2)) throw new DeltaEditError("E_USAGE", `world train: --person-pools must be G,F (integers ≥ 2), got "${poolsArg}"`);
      personPools = [p[0]!, p[1]!];
    }
    const statsShare = num(args, "stats-fact-share");
    if (statsShare !== undefined && !(statsShare >= 0 && statsShare <= 1)) throw new DeltaEditError("E_USAGE", `world train: --stats-fact-share must be in [0, 1], got ${statsShare}`);
    const statsLayersArg = str(args, "stats-layers");
    const recipeStatsLayers = ownEntry(WORLD_RECIPE_STATS_LAYERS, recipeName);
    const recipeStats = recipeStatsLayers ? [...recipeStatsLayers] : undefined;
    const statsLayers = statsLayersArg === undefined ? recipeStats : statsLayersArg.split(",").map((x) => Number(x.trim()));
    if (statsLayers && !statsLayers.every((l) => Number.isInteger(l) && l >= 0)) throw new DeltaEditError("E_USAGE", `world train: --stats-layers must be block numbers, got "${statsLayersArg}"`);
    const recipeTrain = ownEntry(WORLD_RECIPE_TRAIN, recipeName) ?? {};
    const t0 = performance.now();
    const res = await trainWorld({
      ...(statsLayers ? { statsLayers } : {}),
      out,
      seed: intArg(args, "seed", 0)!,
      world: mergeWorldOptions(recipe, {
        ...(people !== undefined || personPools !== undefined ? { kb: { ...(people !== undefined ? { people } : {}), ...(personPools ? { personPools } : {}) } } : {}),
        ...(repeats !== undefined || filler !== undefined || statsShare !== undefined || continuations !== undefined || shortShare !== undefined || noiseShare !== undefined
          ? {
              corpus: {
                ...(repeats !== undefined ? { repeatsPerFact: repeats } : {}),
                ...(filler !== undefined ? { fillerRatio: filler } : {}),
                ...(statsShare !== undefined ? { statsText: { factShare: statsShare, sentences: 40_000 } } : {}),
                ...(shortShare !== undefined ? { shortMentions: { share: shortShare } } : {}),
                ...(noiseShare !== undefined ? { objectNoise: { share: noiseShare } } : {}),
                ...(continuations !== undefined ? { continuations: contStyle === "object" ? { repeats: continuations, style: "object" as const } : { repeats: continuations, table: SUBJECT_CONTINUATIONS } } : {}),
              },
            }
          : {}),
        ...(vocab !== undefined ? { vocabSize: vocab } : {}),
        ...(editCount !== undefined ? { editCount } : {}),
        model: { ...(hidden !== undefined ? { hiddenSize: hidden } : {}), ...(layers !== undefined ? { numLayers: layers } : {}), ...(intermediate !== undefined ? { intermediateSize: intermediate } : {}) },
      }),
      train: { ...recipeTrain, ...train },
      dtype,
      resume: bool(args, "resume"),
      keepCheckpoints: bool(args, "keep-checkpoints"),
      ...(probeFacts !== undefined ? { probeFacts } : {}),
      codeVersion: codeVersion(),
      log: (m) => io.err(`[world ${((performance.now() - t0) / 1000).toFixed(0)}s] ${m}\n`),
    });
    if (res.quality) io.out(formatQuality(res.quality, res.out) + "\n");
    return 0;
  },
};

export const infoCommand: CommandSpec = {
  name: "world info",
  summary: "print the measured quality of a world directory (world/quality.json) as a table",
  usage: "deltaedit world info --model DIR [--json]",
  options: {
    model: { type: "string", description: "world directory (holds world/quality.json)", required: true, valueName: "DIR" },
    json: { type: "boolean", description: "print quality.json as is" },
  },
  async run(args, io) {
    const dir = str(args, "model")!;
    const file = path.join(dir, "world", "quality.json");
    if (!fs.existsSync(file)) throw new DeltaEditError("E_NOT_FOUND", `${file}: not found`, { hint: "pass a directory written by `deltaedit world train`, e.g. worlds/factworld-v1" });
    const text = fs.readFileSync(file, "utf8");
    if (bool(args, "json")) {
      io.out(text);
      return 0;
    }
    io.out(formatQuality(JSON.parse(text) as WorldQuality, dir) + "\n");
    return 0;
  },
};

/** The quality record as an aligned two-column table plus per-relation accuracies. */
export function formatQuality(q: WorldQuality, dir: string): string {
  const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;
  const m = q.model;
  const fa = q.factAccuracy;
  const rows: [string, string][] = [
    ["world", dir],
    ["seed", String(q.seed)],
    ["code", q.codeVersion],
    ["model", `llama C=${m.hiddenSize} L=${m.numLayers} heads=${m.numHeads}/${m.numKvHeads} F=${m.intermediateSize} V=${m.vocabSize} (${m.parameters.toLocaleString("en-US")} params, ${m.dtype})`],
    ["data", `${q.data.facts} facts over ${q.data.subjects} subjects, ${q.data.relations} relations; ${q.data.trainTokens.toLocaleString("en-US")} train tokens; ${q.data.editRecords} edit records`],
    ["fact accuracy (training templates)", `${pct(fa.trainTemplates.accuracy)} (${fa.trainTemplates.correct}/${fa.trainTemplates.total})`],
    ["fact accuracy (paraphrase templates)", `${pct(fa.heldOutTemplates.accuracy)} (${fa.heldOutTemplates.correct}/${fa.heldOutTemplates.total})`],
    ...(fa.novelTemplates ? [["fact accuracy (novel wordings, no bar)", `${pct(fa.novelTemplates.accuracy)} (${fa.novelTemplates.correct}/${fa.novelTemplates.total})`] as [string, string]] : []),
    ["held-out perplexity", `${q.heldOut.perplexity.toFixed(3)} (loss ${q.heldOut.loss.toFixed(4)} nats over ${q.heldOut.tokens} tokens)`],
    ["training", `${(q.training.seconds / 60).toFixed(1)} min on ${q.training.threads} BLAS threads${q.training.kernelThreads !== undefined ? ` + ${q.training.kernelThreads} kernel threads` : ""}, ${q.training.steps} steps × ${q.training.tokensPerStep} tokens`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length)) + 2;
  const lines = rows.map(([k, v]) => k.padEnd(w) + v);
  lines.push("", "per relation".padEnd(w) + "training   paraphrase");
  for (const [id, r] of Object.entries(fa.trainTemplates.byRelation)) {
    const h = fa.heldOutTemplates.byRelation[id];
    lines.push(`  ${id}`.padEnd(w) + pct(r.correct / r.total).padStart(8) + "   " + (h ? pct(h.correct / h.total).padStart(8) : "n/a"));
  }
  return lines.join("\n");
}
