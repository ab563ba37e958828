/**
 * LanguageModel: a loaded (or randomly initialised) causal LM = config + parameters +
 * architecture (+ tokenizer when loaded from a directory). It owns no per-call state:
 * forward passes, backward passes and generation keep theirs in their own objects.
 */
import { DeltaEditError } from "../errors.js";
import { Rng } from "../util/rng.js";
import { architectureFor } from "./arch/index.js";
import type { Architecture } from "./arch/architecture.js";
import { openCheckpoint, type Checkpoint, type ModelIdentity } from "./checkpoint.js";
import type { ModelConfig } from "./config.js";
import { resolveModelDir } from "./hub.js";
import { ParamStore, numel } from "./params.js";
import { loadTokenizer, type TextTokenizer } from "./tokenizer.js";

export interface LoadOptions {
  /** Skip the tokenizer (weights-only use). */
  noTokenizer?: boolean;
  offline?: boolean;
  revision?: string;
  log?: (msg: string) => void;
}

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
      return LanguageModel.fromCheckpoint(ckpt, tok);
    } finally {
      ckpt.close();
    }
  }

  /** Read every parameter of the architecture from an open checkpoint (validating shapes). */
  static fromCheckpoint(ckpt: Checkpoint, tokenizer: TextTokenizer | null): LanguageModel {
    const cfg = ckpt.config;
    const entry = architectureFor(cfg);
    const specs = entry.paramSpecs(cfg);
    const data = new Map<string, Float32Array>();
    const where = ckpt.weightFiles().join(", ");
    for (const spec of specs) {
      const found = entry.checkpointNames(spec, cfg).find((n) => ckpt.has(n));
      if (found === undefined) {
        throw new DeltaEditError("E_CHECKPOINT", `${where}: missing tensor "${spec.name}" (expected shape [${spec.shape.join(",")}]) for ${cfg.modelType} with ${cfg.numLayers} layers`, {
          hint: "the checkpoint does not match config.json, or it is not a supported architecture",
        });
      }
      const info = ckpt.info(found);
      if (info.shape.length !== spec.shape.length || info.shape.some((d, i) => d !== spec.shape[i])) {
        throw new DeltaEditError("E_CHECKPOINT", `${info.file}: tensor "${found}" has shape [${info.shape.join(",")}], expected [${spec.shape.join(",")}]${cfg.family === "gpt2" ? " (GPT-2 Conv1D layout: [in, out])" : " (torch Linear layout: [out, in])"}`);
      }
      const buf = new Float32Array(numel(spec.shape));
      ckpt.readInto(found, buf);
      data.set(spec.name, buf);
    }
    return new LanguageModel(cfg, new ParamStore(specs, data), tokenizer, ckpt.identity(), ckpt.dir);
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
