/**
 * `trainWorld`: build the fact world for a seed, train its model from scratch, and write the
 * shipped world directory:
 *
 *   <out>/config.json              LlamaForCausalLM, tied embeddings, bos = eos = pad = <|endoftext|>
 *   <out>/model.safetensors        F32 (or BF16) weights under Hugging Face names
 *   <out>/tokenizer.json, tokenizer_config.json, generation_config.json
 *   <out>/world/kb.json            the knowledge base
 *   <out>/world/edits.json         MultiCounterFact-format edit records
 *   <out>/world/corpus-heldout.txt held-out documents, one per line
 *   <out>/world/quality.json       measured quality of the model AS STORED (see `WorldQuality`)
 *   <out>/world/control-facts.jsonl facts in no edit record ({prompt, subject, target}; general-capability check)
 *   <out>/stats/layer-<l>.safetensors second moments of the edited layers' keys over the training corpus
 *
 * Checkpoints go to `<out>/train-state/` (removed after a successful run unless kept); a run
 * killed at any point continues with `resume: true` to the same weights.
 */
import fs from "node:fs";
import path from "node:path";
import { corpusFromDocuments } from "../../edit/corpus.js";
import { computeStats } from "../../edit/covariance.js";
import { presetFor } from "../../edit/presets.js";
import { writeStatsFile } from "../../edit/secondMoment.js";
import { DeltaEditError } from "../../errors.js";
import { getKernelThreads, getThreads } from "../../kernels/ops.js";
import { LanguageModel } from "../../model/model.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../model/half.js";
import { writeSafetensors } from "../../model/safetensors.js";
import { evaluateLoss, train, TRAIN_DEFAULTS, type EvalRecord, type TrainParams } from "../../model/train.js";
import { writeFileAtomic } from "../../model/trainstate.js";
import { documentStarts, evalWindows } from "../../model/windows.js";
import { Rng } from "../../util/rng.js";
import { factAccuracy, type AccuracyResult } from "./accuracy.js";
import type { Fact } from "./kb.js";
import { tokenizerConfig, tokenizerJson } from "./tokenizerjson.js";
import { buildWorld, SUB_SEEDS, tokenStream, type World, type WorldOptions } from "./world.js";

/** Trainer settings of the shipped world (every other TrainParams field keeps its default). */
export const WORLD_TRAIN_DEFAULTS: Readonly<Partial<TrainParams>> = Object.freeze({
  // short windows: a window starts at a document (one fact sentence) far more often, so facts are
  // learned right after BOS, where they are measured (docs/world.md, runs h and k)
  batchSize: 32,
  seqLen: 32,
  steps: 4000,
  lr: 4e-3,
  warmupSteps: 150,
  evalEvery: 400,
  evalWindows: 64,
  checkpointEvery: 50,
  logEvery: 10,
});

export const QUALITY_FORMAT = "deltaedit-world-quality";

export interface TrainWorldOptions {
  /** Output directory (created). */
  out: string;
  seed: number;
  /** World options other than the seed. */
  world?: Omit<WorldOptions, "seed">;
  /** Trainer settings over WORLD_TRAIN_DEFAULTS (`seed` is set to the world's data-order seed). */
  train?: Partial<TrainParams>;
  /** Storage dtype of model.safetensors. Default "F32". */
  dtype?: "F32" | "F16" | "BF16";
  /** Continue from `<out>/train-state` when it holds a checkpoint. */
  resume?: boolean;
  /** Keep `<out>/train-state` after a successful run. */
  keepCheckpoints?: boolean;
  /** Layers whose key second moments are shipped in `<out>/stats`. Default: the edited layers of the model's preset. */
  statsLayers?: number[];
  /** Facts sampled for the accuracy probe at each periodic evaluation. Default 300. */
  probeFacts?: number;
  /** Recorded in quality.json (e.g. "deltaedit 0.1.0 (git abc1234)"). */
  codeVersion?: string;
  log?: (msg: string) => void;
  /** Stop after an optimizer step (checkpoint written; tests). */
  shouldStop?: (step: number) => boolean;
}

export interface WorldQuality {
  format: string;
  version: number;
  seed: number;
  codeVersion: string;
  createdAt: string;
  model: { hiddenSize: number; numLayers: number; numHeads: number; numKvHeads: number; intermediateSize: number; vocabSize: number; parameters: number; dtype: string };
  data: { subjects: number; facts: number; relations: number; trainTokens: number; heldOutTokens: number; editRecords: number };
  /** Top-1 accuracy on the first token of " " + object. */
  factAccuracy: { trainTemplates: AccuracyResult; heldOutTemplates: AccuracyResult; novelTemplates?: AccuracyResult };
  heldOut: { loss: number; perplexity: number; tokens: number };
  training: { seconds: number; threads: number; kernelThreads?: number; steps: number; tokensPerStep: number; resumed: boolean };
  hyperparameters: { world: World["resolved"]; train: Partial<TrainParams> };
  history: EvalRecord[];
}

export interface TrainWorldResult {
  out: string;
  stopped: boolean;
  quality: WorldQuality | null; // null when stopped early
}

const STATE_DIR = "train-state";
const WORLD_OPTIONS_FILE = "world-options.json";

/** Seeded sample of `n` facts (for the periodic probe). */
function sampleFacts(facts: readonly Fact[], n: number, seed: number): Fact[] {
  const idx = new Rng(seed).shuffle(facts.map((_, i) => i)).slice(0, Math.min(n, facts.length));
  return idx.sort((a, b) => a - b).map((i) => facts[i]!);
}

export async function trainWorld(opts: TrainWorldOptions): Promise<TrainWorldResult> {
  const log = opts.log ?? (() => {});
  const out = path.resolve(opts.out);
  const stateDir = path.join(out, STATE_DIR);
  const dtype = opts.dtype ?? "F32";
  if (dtype !== "F32" && dtype !== "F16" && dtype !== "BF16") throw new DeltaEditError("E_ARG", `trainWorld: dtype must be "F32", "F16" or "BF16", got ${String(dtype)}`);
  fs.mkdirSync(out, { recursive: true });

  const worldOptions: WorldOptions = { ...opts.world, seed: opts.seed };
  const trainParams: Partial<TrainParams> = { ...WORLD_TRAIN_DEFAULTS, ...opts.train, seed: opts.seed + SUB_SEEDS.data };
  const recorded = JSON.stringify({ world: worldOptions, train: trainParams });
  const optionsFile = path.join(stateDir, WORLD_OPTIONS_FILE);
  if (opts.resume && fs.existsSync(optionsFile)) {
    const before = fs.readFileSync(optionsFile, "utf8").trim();
    if (before !== recorded) {
      throw new DeltaEditError("E_ARG", `trainWorld: cannot resume ${stateDir}: it was started with different options`, {
        hint: `started with ${before}\nnow        ${recorded}\nuse the same options, or drop --resume to start over`,
      });
    }
  } else {
    fs.rmSync(stateDir, { recursive: true, force: true });
    fs.mkdirSync(stateDir, { recursive: true });
    writeFileAtomic(optionsFile, recorded + "\n");
  }

  const tBuild = performance.now();
  const world = buildWorld(worldOptions, log);
  const trainIds = tokenStream(world.corpus.train, world.encoder, world.eotId);
  const heldOut = tokenStream(world.corpus.heldOut, world.encoder, world.eotId);
  const data = { train: trainIds, heldOut, trainDocStarts: documentStarts(trainIds, world.eotId), heldOutDocStarts: documentStarts(heldOut, world.eotId) };
  log(`world built in ${((performance.now() - tBuild) / 1000).toFixed(1)} s: ${data.train.length} train tokens, ${data.heldOut.length} held-out tokens, vocabulary ${world.config.vocabSize}`);

  const model = LanguageModel.random(world.config, opts.seed + SUB_SEEDS.init);
  const encode = (s: string): number[] => world.encoder.encode(s);
  const probeSet = sampleFacts(world.kb.facts, opts.probeFacts ?? 300, opts.seed + SUB_SEEDS.data);
  const acc = { bos: world.eotId };
  const probe = (m: LanguageModel): Record<string, number> => ({
    trainTemplateAcc: factAccuracy(m, world.kb, probeSet, "train", encode, acc).accuracy,
    paraphraseAcc: factAccuracy(m, world.kb, probeSet, "heldOut", encode, acc).accuracy,
  });
  const res = train(model, data, trainParams, {
    log,
    probe,
    checkpointDir: stateDir,
    resume: opts.resume === true,
    ...(opts.shouldStop ? { shouldStop: opts.shouldStop } : {}),
  });
  if (res.stopped) return { out, stopped: true, quality: null };

  if (dtype !== "F32") roundToHalf(model, dtype); // measure the weights as stored
  writeWorldDir(out, world, model, dtype);
  log("measuring fact accuracy on every fact …");
  const T = trainParams.seqLen ?? TRAIN_DEFAULTS.seqLen; // the windows the trainer used
  const heldLoss = evaluateLoss(model, evalWindows(data.heldOut, T, Number.MAX_SAFE_INTEGER, data.heldOutDocStarts), T, trainParams.batchSize ?? TRAIN_DEFAULTS.batchSize);
  const quality: WorldQuality = {
    format: QUALITY_FORMAT,
    version: 1,
    seed: opts.seed,
    codeVersion: opts.codeVersion ?? "unknown",
    createdAt: new Date().toISOString(),
    model: {
      hiddenSize: world.config.hiddenSize,
      numLayers: world.config.numLayers,
      numHeads: world.config.numHeads,
      numKvHeads: world.config.numKvHeads,
      intermediateSize: world.config.intermediateSize,
      vocabSize: world.config.vocabSize,
      parameters: model.params.count(),
      dtype,
    },
    data: {
      subjects: world.kb.subjects.length,
      facts: world.kb.facts.length,
      relations: world.kb.relations.length,
      trainTokens: data.train.length,
      heldOutTokens: data.heldOut.length,
      editRecords: world.edits.length,
    },
    factAccuracy: {
      trainTemplates: factAccuracy(model, world.kb, world.kb.facts, "train", encode, acc),
      heldOutTemplates: factAccuracy(model, world.kb, world.kb.facts, "heldOut", encode, acc),
      novelTemplates: factAccuracy(model, world.kb, world.kb.facts, "novel", encode, acc),
    },
    heldOut: { loss: heldLoss, perplexity: Math.exp(heldLoss), tokens: data.heldOut.length },
    training: { seconds: res.trainSeconds, threads: getThreads(), kernelThreads: getKernelThreads(), steps: res.step, tokensPerStep: res.tokensPerStep, resumed: res.resumedFrom !== null },
    hyperparameters: { world: world.resolved, train: trainParams },
    history: res.history,
  };
  writeFileAtomic(path.join(out, "world", "quality.json"), JSON.stringify(quality, null, 2) + "\n");
  // from the directory as written (weights as stored, the shipped tokenizer), as the editors will load it
  await writeWorldStats(out, world, await LanguageModel.load(out), opts.statsLayers ?? presetEditLayers(world), log);
  const q = quality.factAccuracy;
  log(`fact accuracy: training templates ${(100 * q.trainTemplates.accuracy).toFixed(2)} % (${q.trainTemplates.correct}/${q.trainTemplates.total}), ` +
    `paraphrase templates ${(100 * q.heldOutTemplates.accuracy).toFixed(2)} % (${q.heldOutTemplates.correct}/${q.heldOutTemplates.total}); held-out perplexity ${quality.heldOut.perplexity.toFixed(3)}`);
  if (!opts.keepCheckpoints) fs.rmSync(stateDir, { recursive: true, force: true });
  return { out, stopped: false, quality };
}

/** Round every parameter to float16 or bfloat16 in place (so quality is measured on the stored weights). */
function roundToHalf(model: LanguageModel, dtype: "F16" | "BF16"): void {
  for (const name of model.params.names()) {
    const d = model.params.get(name);
    const h = new Uint16Array(d.length);
    if (dtype === "F16") {
      f32ToF16(d, h);
      f16ToF32(h, d);
    } else {
      f32ToBf16(d, h);
      bf16ToF32(h, d);
    }
  }
}

/** Write the Hugging Face files and the world data files into `out`. */
export function writeWorldDir(out: string, world: World, model: LanguageModel, dtype: "F32" | "F16" | "BF16"): void {
  const worldDir = path.join(out, "world");
  fs.mkdirSync(worldDir, { recursive: true });
  writeFileAtomic(path.join(out, "config.json"), JSON.stringify({ ...world.configJson, torch_dtype: { F32: "float32", F16: "float16", BF16: "bfloat16" }[dtype] }, null, 2) + "\n");
  writeFileAtomic(path.join(out, "generation_config.json"), JSON.stringify({ bos_token_id: world.eotId, eos_token_id: world.eotId, pad_token_id: world.eotId, do_sample: false }, null, 2) + "\n");
  writeWorldTokenizer(out, world);
  writeSafetensors(
    path.join(out, "model.safetensors"),
    model.params.specs.map((s) => ({ name: s.name, shape: s.shape, data: model.params.get(s.name), dtype })),
    { format: "pt" },
  );
  writeFileAtomic(path.join(worldDir, "kb.json"), JSON.stringify(world.kb) + "\n");
  writeFileAtomic(path.join(worldDir, "edits.json"), JSON.stringify(world.edits) + "\n");
  writeFileAtomic(path.join(worldDir, "corpus-heldout.txt"), world.corpus.heldOut.join("\n") + "\n");
  const edited = new Set(world.edits.map((e) => e.pararel_idx));
  const control = world.kb.facts.flatMap((f, i) => {
    if (edited.has(i)) return [];
    const rel = world.kb.relations.find((r) => r.id === f.relationId)!;
    return [JSON.stringify({ prompt: rel.trainTemplates[0]!, subject: f.subject, target: f.object.str })];
  });
  writeFileAtomic(path.join(worldDir, "control-facts.jsonl"), control.join("\n") + (control.length > 0 ? "\n" : ""));
}

/** The layers the model's preset edits (DeltaEdit's, which AlphaEdit and MEMIT share). */
export function presetEditLayers(world: World): number[] {
  const layers = presetFor(world.config).methods.deltaedit?.["editLayers"];
  if (!Array.isArray(layers) || !layers.every((l) => Number.isInteger(l))) throw new DeltaEditError("E_CONFIG", `trainWorld: the preset for this world model names no DeltaEdit edit layers`);
  return layers as number[];
}

/**
 * Second moments E[k kᵀ] of the keys (down-projection inputs) of `layers` over the world's training
 * corpus, written as `<out>/stats/layer-<l>.safetensors` — the statistics the editors' null-space
 * projector and MEMIT's covariance term need (spec §6.6, computed here on the corpus the model was
 * trained on, as the reference uses Wikipedia for GPT-2).
 */
export async function writeWorldStats(out: string, world: World, model: LanguageModel, layers: readonly number[], log: (m: string) => void = () => {}): Promise<void> {
  const dir = path.join(out, "stats");
  fs.mkdirSync(dir, { recursive: true });
  const general = world.corpus.stats.length > 0;
  const corpus = general
    ? corpusFromDocuments(world.corpus.stats, `fact world seed ${world.seed}, general text (facts a minority)`)
    : corpusFromDocuments(world.corpus.train, `fact world seed ${world.seed}, training corpus`);
  log(`covariance statistics of layer(s) ${layers.join(", ")} over ${corpus.size} ${general ? "general-text" : "training"} documents …`);
  const stats = await computeStats(model, corpus, { layers: [...layers], cacheDir: null, maxTokens: world.config.maxPositions }, { log });
  for (const [l, m] of stats) writeStatsFile(path.join(dir, `layer-${l}.safetensors`), m);
}

/**
 * tokenizer.json / tokenizer_config.json of the world: the byte-level BPE of `tokenizerjson.ts`
 * with a post-processor that prepends <|endoftext|> as BOS (Llama convention: the model is trained
 * with a BOS at position 0 of every window, `windows.ts` "documents" layout).
 */
export function writeWorldTokenizer(out: string, world: World): void {
  const eot = world.bpe.tokens[world.eotId]!;
  const bos = { SpecialToken: { id: eot, type_id: 0 } };
  const tj = {
    ...tokenizerJson(world.bpe),
    post_processor: {
      type: "TemplateProcessing",
      single: [bos, { Sequence: { id: "A", type_id: 0 } }],
      pair: [bos, { Sequence: { id: "A", type_id: 0 } }, bos, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { [eot]: { id: eot, ids: [world.eotId], tokens: [eot] } },
    },
  };
  const tc = { ...tokenizerConfig(world.bpe, { modelMaxLength: world.config.maxPositions }), add_bos_token: true };
  writeFileAtomic(path.join(out, "tokenizer.json"), JSON.stringify(tj, null, 2) + "\n");
  writeFileAtomic(path.join(out, "tokenizer_config.json"), JSON.stringify(tc, null, 2) + "\n");
}
