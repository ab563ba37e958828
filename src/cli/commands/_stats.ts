/**
 * The second-moment provider used by edit sessions: statistics shipped with a model
 * (`<model>/stats/layer-<l>.safetensors`, e.g. the bundled fact world), else the statistics cache
 * computed (once, resumably) over `--stats-corpus`.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { openCorpus } from "../../edit/corpus.js";
import { computeStats } from "../../edit/covariance.js";
import { readStatsFile, secondMomentMatrix } from "../../edit/secondMoment.js";
import type { LanguageModel } from "../../model/model.js";

export interface StatsOptions {
  corpus?: string;
  samples?: number;
  maxTokens?: number;
  cacheDir?: string;
}

export interface SecondMomentProvider {
  get(layer: number): Float32Array;
  provenance: Record<string, unknown>;
}

export function shippedStatsFile(model: LanguageModel, layer: number): string | null {
  if (!model.dir) return null;
  const f = path.join(model.dir, "stats", `layer-${layer}.safetensors`);
  return fs.existsSync(f) ? f : null;
}

/** Resolve C0 for `layers` before editing (spec ODD-15: from the unedited model, up front). */
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
      throw new DeltaEditError("E_USAGE", `no covariance statistics for layer(s) ${missing.join(",")} of ${model.dir ?? "the model"}`, {
        hint: "pass --stats-corpus FILE|DIR (plain text, JSONL with a \"text\" field, or a directory of them); they are computed once and cached (see `deltaedit stats`)",
      });
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
