/**
 * The world builder: everything of the fact world that is derived from a seed, before training —
 * knowledge base, corpus, tokenizer, edit set and the model configuration.
 *
 * Sub-seeds (all derived from the one world seed s, so a world is named by its seed):
 *   knowledge base s · corpus s + 1 · edit set s + 2 · model initialisation s + 3 · data order s + 4.
 *
 * Defaults (the shipped factworld-v1; see docs/world.md for the reasoning):
 *   3 160 facts (450 people × 6 + 60 cities + 80 companies × 2 + 120 bands × 2),
 *   every fact stated once through each of its 16 training templates (4 of relations.ts +
 *   12 of extratemplates.ts), 30 % of them after a context opener (paraphrase.ts), 10 % filler
 *   sentences (30 % of them general-vocabulary sentences of vocabulary.ts), byte-level BPE with
 *   4 096 tokens, Llama with C = 256, 6 blocks, 8 query / 4 key-value heads of 32, F = 768 (3C),
 *   128 positions, tied embeddings; 3 000 MultiCounterFact-format edit records.
 */
import { DeltaEditError } from "../../errors.js";
import { parseModelConfig, type ModelConfig } from "../../model/config.js";
import { checkOptionKeys } from "./_options.js";
import { ENDOFTEXT, trainBpe, type BpeModel } from "./bpe.js";
import { buildCorpus, type Corpus, type CorpusOptions } from "./corpus.js";
import { buildEditSet, type EditRecord } from "./editset.js";
import { BpeEncoder } from "./encoder.js";
import { EXTRA_TRAIN_TEMPLATES } from "./extratemplates.js";
import { CONTEXT_OPENERS } from "./paraphrase.js";
import { VOCABULARY_SHARE, VOCABULARY_UNITS } from "./vocabulary.js";
import { buildKnowledgeBase, type KnowledgeBase, type KnowledgeBaseOptions } from "./kb.js";

/** Architecture of the world model (Llama family; written to config.json). */
export interface WorldModelOptions {
  /** Residual width C. */
  hiddenSize: number;
  /** Number of transformer blocks L. */
  numLayers: number;
  /** Query heads NH. */
  numHeads: number;
  /** Key/value heads NKV (grouped-query attention; divides numHeads). */
  numKvHeads: number;
  /** MLP inner width F (= key width of the edited down projection). */
  intermediateSize: number;
  /** Longest sequence (RoPE table size; training windows must fit). */
  maxPositions: number;
  /** RoPE base θ. */
  ropeTheta: number;
  /** RMSNorm ε. */
  rmsNormEps: number;
}

export interface WorldOptions {
  seed: number;
  /** Subject counts of the knowledge base. */
  kb?: Omit<KnowledgeBaseOptions, "seed">;
  /** Corpus options (extraTemplates defaults to EXTRA_TRAIN_TEMPLATES and extraFiller to the
   * vocabulary units of vocabulary.ts; pass `{}` / `undefined` explicitly to drop them). */
  corpus?: Omit<CorpusOptions, "seed">;
  /** Tokenizer vocabulary size (special token included). */
  vocabSize?: number;
  /** Number of edit records in world/edits.json. */
  editCount?: number;
  /** Neighborhood / attribute prompts per edit record. */
  maxNeighbors?: number;
  model?: Partial<WorldModelOptions>;
}

export const WORLD_DEFAULTS = Object.freeze({
  kb: Object.freeze({ people: 450, cities: 60, companies: 80, bands: 120 }),
  // one fact sentence per document: every fact is stated right after BOS, as it is measured and edited
  corpus: Object.freeze({ repeatsPerFact: 1, fillerRatio: 0.1, heldOutFraction: 0.02, splitFactUnits: true, docSentences: Object.freeze([1, 1] as const) }),
  /** Share of fact sentences preceded by a context opener (paraphrase.ts). */
  openerShare: 0.3,
  vocabSize: 4096,
  editCount: 3000,
  maxNeighbors: 10,
  model: Object.freeze({
    hiddenSize: 256,
    numLayers: 6,
    numHeads: 8,
    numKvHeads: 4,
    intermediateSize: 768,
    maxPositions: 128,
    ropeTheta: 10000,
    rmsNormEps: 1e-5,
  } satisfies WorldModelOptions),
});

/**
 * Named world recipes: option sets over WORLD_DEFAULTS (v1 = the defaults). v2 (the shipped
 * worlds/factworld-v2; docs/world.md, "factworld-v2") is probe Q's design: person names composed from
 * 24 given × 360 family names (each pair unique, so a person is identified only at the name's last
 * token), object continuations ("<subject> <object> <marker>." for every fact, 4 times), 30 % of a
 * person's training sentences naming them by the family name alone, and a narrow, deep model
 * (C 128, 8 blocks, F 1 536) whose first three MLPs keep their initial weights
 * (WORLD_RECIPE_TRAIN) — together they put the facts at a middle block at the subject's last token,
 * as causal tracing finds in real LLMs. "v2-first" is the first v2 design (v1 plus object
 * continuations; shipped until probe Q), "v2-composed" an earlier probe design (composed names 30 ×
 * 30, 25 % filler, 8 blocks); both stay for the probes docs/world.md reports.
 */
export const WORLD_RECIPES: Readonly<Record<string, Omit<WorldOptions, "seed">>> = Object.freeze({
  v1: {},
  v2: {
    kb: { people: 360, personPools: [24, 360] as const },
    corpus: { continuations: { repeats: 4, style: "object" as const }, shortMentions: { share: 0.3 } },
    model: { hiddenSize: 128, numLayers: 8, intermediateSize: 1536 },
  },
  "v2-first": {
    corpus: { continuations: { repeats: 4, style: "object" as const } },
  },
  "v2-composed": {
    kb: { personPools: [30, 30] as const },
    corpus: { fillerRatio: 0.25, statsText: { factShare: 0.1, sentences: 40_000 } },
    model: { numLayers: 8 },
  },
});

/**
 * Blocks whose key statistics `world train` writes for a recipe when --stats-layers is not given
 * (absent: the edited layers of the model's built-in preset). v2 writes the edit layers of its
 * preset (`deltaedit trace --suggest`: blocks 3–4); v2-first wrote blocks 0–3.
 */
export const WORLD_RECIPE_STATS_LAYERS: Readonly<Record<string, readonly number[]>> = Object.freeze({ v2: Object.freeze([3, 4]), "v2-first": Object.freeze([0, 1, 2, 3]) });

/** Trainer settings a recipe adds to WORLD_TRAIN_DEFAULTS (a command-line flag wins). */
export const WORLD_RECIPE_TRAIN: Readonly<Record<string, Readonly<{ frozenMlpBlocks?: number }>>> = Object.freeze({ v2: Object.freeze({ frozenMlpBlocks: 3 }) });

/** Recipe options with `over` merged in (kb, corpus and model merged key by key). */
export function mergeWorldOptions(base: Omit<WorldOptions, "seed">, over: Omit<WorldOptions, "seed">): Omit<WorldOptions, "seed"> {
  const out: Omit<WorldOptions, "seed"> = { ...base, ...over };
  if (base.kb || over.kb) out.kb = { ...base.kb, ...over.kb };
  if (base.corpus || over.corpus) out.corpus = { ...base.corpus, ...over.corpus };
  if (base.model || over.model) out.model = { ...base.model, ...over.model };
  return out;
}

const OPTION_KEYS: readonly string[] = ["seed", "kb", "corpus", "vocabSize", "editCount", "maxNeighbors", "model"];
const MODEL_KEYS: readonly string[] = Object.keys(WORLD_DEFAULTS.model);

/** Seed offsets of the world's random streams (see the file comment). */
export const SUB_SEEDS = Object.freeze({ kb: 0, corpus: 1, edits: 2, init: 3, data: 4 });

export interface World {
  readonly seed: number;
  readonly kb: KnowledgeBase;
  readonly corpus: Corpus;
  readonly bpe: BpeModel;
  readonly encoder: BpeEncoder;
  readonly edits: EditRecord[];
  readonly eotId: number; // id of <|endoftext|>: BOS, EOS and padding
  readonly configJson: Record<string, unknown>; // config.json
  readonly config: ModelConfig;
  /** The options with every default filled in (recorded in quality.json). */
  readonly resolved: Required<Omit<WorldOptions, "model" | "corpus" | "kb">> & { kb: Omit<KnowledgeBaseOptions, "seed">; corpus: Omit<CorpusOptions, "seed">; model: WorldModelOptions };
}

/** One fact in this many is never an edit record (the control facts). */
const CONTROL_FACT_SHARE_INVERSE = 20;

/** Build the world. Deterministic for a seed; throws `E_ARG` on bad options. */
export function buildWorld(opts: WorldOptions, log?: (msg: string) => void): World {
  const fn = "buildWorld";
  checkOptionKeys(fn, opts, OPTION_KEYS);
  checkOptionKeys(`${fn} model`, opts.model ?? {}, MODEL_KEYS);
  if (!Number.isInteger(opts.seed) || opts.seed < 0) throw new DeltaEditError("E_ARG", `${fn}: option "seed" must be a non-negative integer, got ${opts.seed}`);
  const seed = opts.seed;
  const kbOpts = { ...WORLD_DEFAULTS.kb, ...opts.kb };
  const corpusOpts: Omit<CorpusOptions, "seed"> = {
    ...WORLD_DEFAULTS.corpus,
    extraTemplates: EXTRA_TRAIN_TEMPLATES,
    extraFiller: { units: VOCABULARY_UNITS, share: VOCABULARY_SHARE },
    openers: { phrases: CONTEXT_OPENERS, share: WORLD_DEFAULTS.openerShare },
    ...opts.corpus,
  };
  const model: WorldModelOptions = { ...WORLD_DEFAULTS.model, ...opts.model };
  const vocabSize = opts.vocabSize ?? WORLD_DEFAULTS.vocabSize;
  const editCount = opts.editCount ?? WORLD_DEFAULTS.editCount;
  const maxNeighbors = opts.maxNeighbors ?? WORLD_DEFAULTS.maxNeighbors;

  const kb = buildKnowledgeBase({ seed: seed + SUB_SEEDS.kb, ...kbOpts });
  const corpus = buildCorpus(kb, { seed: seed + SUB_SEEDS.corpus, ...corpusOpts });
  log?.(`world: ${kb.subjects.length} subjects, ${kb.facts.length} facts, corpus ${corpus.train.length} train / ${corpus.heldOut.length} held-out documents`);
  const bpe = trainBpe(corpus.train, { vocabSize, specialTokens: [ENDOFTEXT], ...(log ? { log } : {}) });
  const encoder = new BpeEncoder(bpe);
  const eotId = bpe.tokens.indexOf(ENDOFTEXT);
  // keep 1 fact in 20 out of the edit records: they are world/control-facts.jsonl, the facts a stream
  // must not disturb (factworld-v1: 3 160 facts, 3 000 edit records, 160 control facts; v2: 2 620, 2 489, 131)
  const controlReserve = Math.ceil(kb.facts.length / CONTROL_FACT_SHARE_INVERSE);
  const edits = buildEditSet(kb, { seed: seed + SUB_SEEDS.edits, count: Math.min(editCount, kb.facts.length - controlReserve), maxNeighbors });
  const configJson = llamaConfigJson(model, bpe.tokens.length, eotId);
  const config = parseModelConfig(configJson, "world config");
  return {
    seed,
    kb,
    corpus,
    bpe,
    encoder,
    edits,
    eotId,
    configJson,
    config,
    resolved: { seed, kb: kbOpts, corpus: corpusOpts, vocabSize, editCount, maxNeighbors, model },
  };
}

/** A Hugging Face LlamaForCausalLM config.json object for the world model. */
export function llamaConfigJson(m: WorldModelOptions, vocabSize: number, eotId: number): Record<string, unknown> {
  if (m.hiddenSize % m.numHeads !== 0) throw new DeltaEditError("E_ARG", `world model: hiddenSize ${m.hiddenSize} is not divisible by numHeads ${m.numHeads}`);
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: vocabSize,
    hidden_size: m.hiddenSize,
    intermediate_size: m.intermediateSize,
    num_hidden_layers: m.numLayers,
    num_attention_heads: m.numHeads,
    num_key_value_heads: m.numKvHeads,
    head_dim: m.hiddenSize / m.numHeads,
    max_position_embeddings: m.maxPositions,
    rms_norm_eps: m.rmsNormEps,
    rope_theta: m.ropeTheta,
    rope_scaling: null,
    hidden_act: "silu",
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    tie_word_embeddings: true,
    initializer_range: 0.02,
    bos_token_id: eotId,
    eos_token_id: eotId,
    pad_token_id: eotId,
    torch_dtype: "float32",
    use_cache: true,
  };
}

/** One token stream of documents, each preceded by <|endoftext|>, and a final <|endoftext|>. */
export function tokenStream(docs: readonly string[], encoder: BpeEncoder, eotId: number): Int32Array {
  const ids: number[] = [];
  for (const d of docs) {
    ids.push(eotId);
    for (const t of encoder.encode(d)) ids.push(t);
  }
  ids.push(eotId);
  return Int32Array.from(ids);
}
