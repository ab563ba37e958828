/**
 * Where an edit session's second moments C0 come from (spec ODD-15: from the unedited model, before
 * any edit), the same for the CLI and the library: statistics shipped with a model
 * (`<model>/stats/layer-<l>.safetensors`, e.g. the bundled fact world), else the statistics cache,
 * computed once (resumably) over a corpus (`--stats-corpus`, `stats.corpus` in the API).
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import type { LanguageModel } from "../model/model.js";
import { openCorpus } from "./corpus.js";
import { computeStats } from "./covariance.js";
import { readStatsFile, secondMomentMatrix } from "./secondMoment.js";
import type { SecondMomentFactory } from "./session/session.js";

/** How to compute statistics that are not shipped with the model. */
export interface StatsOptions {
  /** Corpus file or directory (plain text, JSONL with a "text" field, or a directory of them). */
  corpus?: string;
  /** Documents in the statistics sample (default: the spec's 100 000, or the whole corpus). */
  samples?: number;
  /** Truncation length of statistics documents, in tokens. */
  maxTokens?: number;
  /** Statistics cache directory (default: `$DELTAEDIT_CACHE` or `.deltaedit-cache`). */
  cacheDir?: string;
  /** Hint given when statistics are missing and no corpus was named (default: the CLI's `--stats-corpus`). */
  missingHint?: string;
}

/** C0 per layer (F, F) and where each came from (recorded in the session manifest). */
export interface SecondMomentProvider {
  get(layer: number): Float32Array;
  provenance: Record<string, unknown>;
}

/** `<model>/stats/layer-<l>.safetensors` when the model ships it, else null. */
export function shippedStatsFile(model: LanguageModel, layer: number): string | null {
  if (!model.dir) return null;
  const f = path.join(model.dir, "stats", `layer-${layer}.safetensors`);
  return fs.existsSync(f) ? f : null;
}

/** The hint when statistics are missing, in the CLI's words (the default). */
export const CLI_STATS_HINT = "pass --stats-corpus FILE|DIR (plain text, JSONL with a \"text\" field, or a directory of them); they are computed once and cached (see `deltaedit stats`)";

/** Resolve C0 for `layers` before editing: shipped files first, the rest from the corpus (cached). */
export async function prepareSecondMoments(model: LanguageModel, layers: readonly number[], o: StatsOptions, log: (m: string) => void): Promise<SecondMomentProvider> {
  const mats = new Map<number, Float32Array>();
  const prov: Record<string, unknown> = {};
  const missing: number[] = [];
  for (const l of layers) {
    const f = shippedStatsFile(model, l);
    if (f) {
      const m = readStatsFile(f);
      mats.set(l, secondMomentMatrix(m));
      prov[`layer${l}`] = { file: path.relative(model.dir ?? "", f), count: m.count, corpusHash: m.provenance.corpusHash };
    } else missing.push(l);
  }
  if (missing.length > 0) {
    if (!o.corpus) {
      throw new DeltaEditError("E_USAGE", `no covariance statistics for layer(s) ${missing.join(",")} of ${model.dir ?? "the model"}`, { hint: o.missingHint ?? CLI_STATS_HINT });
    }
    const corpus = openCorpus(o.corpus);
    const params: Parameters<typeof computeStats>[2] = { layers: missing };
    if (o.samples !== undefined) params.samples = o.samples;
    if (o.maxTokens !== undefined) params.maxTokens = o.maxTokens;
    if (o.cacheDir !== undefined) params.cacheDir = o.cacheDir;
    const stats = await computeStats(model, corpus, params, { log });
    for (const [l, m] of stats) {
      mats.set(l, secondMomentMatrix(m));
      prov[`layer${l}`] = { corpus: corpus.description, corpusHash: corpus.hash, count: m.count, samples: m.provenance.samples };
    }
  }
  return {
    get(layer: number): Float32Array {
      const m = mats.get(layer);
      if (!m) throw new DeltaEditError("E_SESSION", `no second moment prepared for layer ${layer}`);
      return m;
    },
    provenance: prov,
  };
}

/** The session's `secondMoments` callback for these options (statistics resolved as above). */
export function secondMomentFactory(o: StatsOptions, log: (m: string) => void): SecondMomentFactory {
  return (model, layers) => prepareSecondMoments(model, layers, o, log);
}
