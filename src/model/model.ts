/**
 * LanguageModel: a loaded (or randomly initialised) causal LM = config + parameters +
 * architecture (+ tokenizer when loaded from a directory). It owns no per-call state:
 * forward passes, backward passes and generation keep theirs in their own objects.
 */
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import { Rng } from "../util/rng.js";
import { architectureFor } from "./arch/index.js";
import type { Architecture } from "./arch/architecture.js";
import { openCheckpoint, type Checkpoint, type ModelIdentity } from "./checkpoint.js";
import type { ModelConfig } from "./config.js";
import { nonFinite } from "./finite.js";
import { resolveModelDir } from "./hub.js";
import { planParameterLoad } from "./loadplan.js";
import { ParamStore, numel } from "./params.js";
import { checkTokenizerFitsVocab, loadTokenizer, type TextTokenizer } from "./tokenizer.js";

/** Options of loading weights from a checkpoint. */
export interface CheckpointLoadOptions {
  /**
   * Accept weights holding NaN or ±Inf. Default false: the first such tensor is an E_CHECKPOINT
   * error naming it (a model with a non-finite weight computes non-finite logits). When allowed,
   * each such tensor is still reported through `log`.
   */
  allowNonFinite?: boolean;
  /** Progress and warnings (default: discarded). */
  log?: (msg: string) => void;
}

/** Options of `LanguageModel.load`. */
export interface LoadOptions extends CheckpointLoadOptions {
  /** Skip the tokenizer (weights-only use). */
  noTokenizer?: boolean;
  offline?: boolean;
  revision?: string;
}

/** A loaded causal language model (GPT-2 or Llama family): config, float32 weights, tokenizer, architecture. */
export class LanguageModel {
  readonly arch: Architecture;

  constructor(
    readonly config: ModelConfig,
    readonly params: ParamStore,
    readonly tokenizer: TextTokenizer | null,
    readonly identity: ModelIdentity | null,
    readonly dir: string | null,
  ) {
    this.arch = architectureFor(config).create(config, params);
  }

  /** Load a Hugging Face model from a local directory or a Hub repo id (cache / download). */
  static async load(idOrDir: string, opts: LoadOptions = {}): Promise<LanguageModel> {
    const ro: { offline?: boolean; revision?: string; log?: (msg: string) => void } = {};
    if (opts.offline !== undefined) ro.offline = opts.offline;
    if (opts.revision !== undefined) ro.revision = opts.revision;
    if (opts.log !== undefined) ro.log = opts.log;
    const dir = await resolveModelDir(idOrDir, ro);
    const ckpt = openCheckpoint(dir);
    try {
      const tok = opts.noTokenizer ? null : loadTokenizer(dir);
      const co: CheckpointLoadOptions = {};
      if (opts.allowNonFinite !== undefined) co.allowNonFinite = opts.allowNonFinite;
      if (opts.log !== undefined) co.log = opts.log;
      return LanguageModel.fromCheckpoint(ckpt, tok, co);
    } finally {
      ckpt.close();
    }
  }

  /**
   * Read every parameter of the architecture from an open checkpoint. The checkpoint must match the
   * config exactly (`loadplan.ts`: shapes, layer count, no unused tensors), checked before anything
   * is allocated; the tokenizer's ids must fit the config's vocabulary; weights must be finite
   * unless `opts.allowNonFinite`.
   */
  static fromCheckpoint(ckpt: Checkpoint, tokenizer: TextTokenizer | null, opts: CheckpointLoadOptions = {}): LanguageModel {
    const cfg = ckpt.config;
    const entry = architectureFor(cfg);
    if (tokenizer !== null) checkTokenizerFitsVocab(tokenizer, cfg.vocabSize, ckpt.dir);
    const steps = planParameterLoad(ckpt, cfg, entry);
    const data = new Map<string, Float32Array>();
    for (const { spec, tensor } of steps) {
      const buf = new Float32Array(numel(spec.shape));
      ckpt.readInto(tensor, buf);
      const bad = nonFinite(buf);
      if (bad.count > 0) {
        const file = path.join(ckpt.dir, ckpt.info(tensor).file);
        const what = `${file}: tensor "${tensor}" has ${bad.count} non-finite value(s) (NaN or ±Inf; first at flat index ${bad.first} of shape [${spec.shape.join(",")}])`;
        if (opts.allowNonFinite !== true) {
          throw new DeltaEditError("E_CHECKPOINT", what, {
            hint: "the checkpoint is corrupt or diverged in training; pass { allowNonFinite: true } to LanguageModel.load to load it anyway",
            context: { dir: ckpt.dir, file, tensor, count: bad.count, first: bad.first },
          });
        }
        opts.log?.(`warning: ${what}; loaded anyway (allowNonFinite)`);
      }
      data.set(spec.name, buf);
    }
    return new LanguageModel(cfg, new ParamStore(steps.map((s) => s.spec), data), tokenizer, ckpt.identity(), ckpt.dir);
  }

  /**
   * A randomly initialised model (benchmarks, tests, training from scratch): linear weights
   * N(0, std²) with std = 0.02 (GPT-2 style, output projections scaled by 1/sqrt(2L)),
   * norms 1, biases 0. Deterministic for a seed. `dist: "uniform"` draws a uniform with the same
   * variance (much faster for benchmark-sized models).
   */
  static random(config: ModelConfig, seed = 0, std = 0.02, dist: "normal" | "uniform" = "normal"): LanguageModel {
    const specs = architectureFor(config).paramSpecs(config);
    const rng = new Rng(seed);
    const store = new ParamStore(specs);
    for (const s of specs) {
      const d = store.get(s.name);
      if (s.role === "norm_weight") d.fill(1);
      else if (s.role === "norm_bias" || s.role === "linear_bias") d.fill(0);
      else {
        const isResidualOut = /(c_proj|o_proj|down_proj)\.weight$/.test(s.name);
        const sd = isResidualOut ? std / Math.sqrt(2 * config.numLayers) : std;
        if (dist === "normal") for (let i = 0; i < d.length; i++) d[i] = rng.normal() * sd;
        else {
          // uniform on [−√3·sd, √3·sd] (same variance; ~10× faster to draw, for large benchmark models)
          const a = 2 * Math.sqrt(3) * sd;
          for (let i = 0; i < d.length; i++) d[i] = (rng.nextU32() / 4294967296 - 0.5) * a;
        }
      }
    }
    return new LanguageModel(config, store, null, null, null);
  }
}
