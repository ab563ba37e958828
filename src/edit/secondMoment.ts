/**
 * The second moment of the keys of one layer, `Σ_docs Σ_real positions k kᵀ` with its token
 * count (spec §3.6), as a mergeable record, its file format and its cache key.
 *
 * Dimension legend: F = dIn = d_ff (the key width: input of the MLP down projection).
 *
 * File format (version 1): a safetensors file with one F32 tensor `sum` (F, F), the UNNORMALIZED
 * sum, and `__metadata__` (all values strings):
 *   format "deltaedit.second-moment", version, count, dIn, layer, modelHash, corpusHash, corpus,
 *   samples, maxTokens, shuffleSeed ("" = corpus order), docsDone, docsTotal, dtype "float32",
 *   source ("computed" | "merged" | "npz"), tokenBudget, groupSize, complete ("1" / "0").
 * A file with docsDone < docsTotal is a checkpoint of an unfinished run; merging files adds
 * sums and counts. The normalized C0 = sum / count is formed on use (`secondMomentMatrix`).
 *
 * Cache key: sha256 of the canonical JSON of a typed `StatsKey` record (never a hand-built string).
 */
import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import { SafetensorsFile, writeSafetensors } from "../model/safetensors.js";

/** Version of the statistics file format and of the cache key. */
export const STATS_VERSION = 1;
const FORMAT = "deltaedit.second-moment";

export interface StatsProvenance {
  source: "computed" | "merged" | "npz";
  modelHash: string; // model fingerprint ("" when unknown, e.g. an imported .npz)
  corpusHash: string; // CorpusSource.hash ("" when unknown)
  corpus: string; // human-readable corpus origin
  layer: number;
  samples: number; // requested document count
  maxTokens: number; // truncation length per document (0 = unknown / mixed)
  shuffleSeed: number | null; // null = first `samples` documents in corpus order
  docsDone: number; // documents accumulated so far
  docsTotal: number; // documents in the sample (min(samples, corpus size))
  dtype: "float32"; // accumulation dtype
  version: number;
  /** Batching of a computed run (for bit-identical resumption). */
  tokenBudget?: number;
  groupSize?: number;
}

export interface SecondMoment {
  sum: Float32Array; // (F, F) Σ k kᵀ, unnormalized
  count: number; // number of keys (real token positions) summed
  dIn: number; // F
  provenance: StatsProvenance;
}

/** The record whose hash names a cache entry. */
export interface StatsKey {
  modelHash: string;
  layer: number;
  corpusHash: string;
  samples: number;
  maxTokens: number;
  shuffleSeed: number | null;
  dtype: "float32";
  version: number;
}

/** `$DELTAEDIT_CACHE/stats` or `~/.cache/deltaedit/stats`. */
export function defaultStatsCacheDir(): string {
  return path.join(process.env["DELTAEDIT_CACHE"] ?? path.join(os.homedir(), ".cache", "deltaedit"), "stats");
}

/** sha256 (hex) of the canonical JSON of `k` (fields in a fixed order). */
export function statsCacheKey(k: StatsKey): string {
  const canonical: StatsKey = {
    modelHash: k.modelHash,
    layer: k.layer,
    corpusHash: k.corpusHash,
    samples: k.samples,
    maxTokens: k.maxTokens,
    shuffleSeed: k.shuffleSeed,
    dtype: k.dtype,
    version: k.version,
  };
  return createHash("sha256").update(JSON.stringify(canonical)).digest("hex");
}

/** Path of the cache file for `k` inside `cacheDir`. */
export function statsCachePath(cacheDir: string, k: StatsKey): string {
  return path.join(cacheDir, `layer${k.layer}-${statsCacheKey(k)}.safetensors`);
}

/** Whether every sampled document has been accumulated. */
export function isComplete(m: SecondMoment): boolean {
  return m.provenance.docsDone >= m.provenance.docsTotal;
}

/** C0 = sum / count (F, F), float32. */
export function secondMomentMatrix(m: SecondMoment): Float32Array {
  if (!(m.count > 0)) throw new DeltaEditError("E_ARG", `secondMomentMatrix: layer ${m.provenance.layer} has count ${m.count}; nothing was accumulated`);
  const out = new Float32Array(m.sum.length); // (F, F)
  for (let i = 0; i < out.length; i++) out[i] = m.sum[i]! / m.count;
  return out;
}

/** Sums and counts added. Refuses statistics of different models, layers or widths. */
export function mergeStats(a: SecondMoment, b: SecondMoment): SecondMoment {
  const pa = a.provenance, pb = b.provenance;
  if (a.dIn !== b.dIn) throw new DeltaEditError("E_SHAPE", `mergeStats: key widths differ (${a.dIn} vs ${b.dIn})`);
  if (pa.layer !== pb.layer) throw new DeltaEditError("E_ARG", `mergeStats: layers differ (${pa.layer} vs ${pb.layer})`);
  if (pa.modelHash !== pb.modelHash) throw new DeltaEditError("E_ARG", `mergeStats: statistics come from different models (${pa.modelHash.slice(0, 12) || "unknown"} vs ${pb.modelHash.slice(0, 12) || "unknown"})`);
  const sum = new Float32Array(a.sum.length); // (F, F)
  for (let i = 0; i < sum.length; i++) sum[i] = a.sum[i]! + b.sum[i]!;
  const same = pa.corpusHash === pb.corpusHash;
  return {
    sum,
    count: a.count + b.count,
    dIn: a.dIn,
    provenance: {
      source: "merged",
      modelHash: pa.modelHash,
      corpusHash: same ? pa.corpusHash : createHash("sha256").update(JSON.stringify(["merged", pa.corpusHash, pb.corpusHash])).digest("hex"),
      corpus: same ? pa.corpus : `${pa.corpus} + ${pb.corpus}`,
      layer: pa.layer,
      samples: pa.samples + pb.samples,
      maxTokens: pa.maxTokens === pb.maxTokens ? pa.maxTokens : 0,
      shuffleSeed: pa.shuffleSeed === pb.shuffleSeed ? pa.shuffleSeed : null,
      docsDone: pa.docsDone + pb.docsDone,
      docsTotal: pa.docsTotal + pb.docsTotal,
      dtype: "float32",
      version: STATS_VERSION,
    },
  };
}

/** Writes `m` atomically (temp file + rename). */
export function writeStatsFile(file: string, m: SecondMoment): void {
  const p = m.provenance;
  if (m.sum.length !== m.dIn * m.dIn) throw new DeltaEditError("E_SHAPE", `writeStatsFile ${file}: sum has ${m.sum.length} elements, expected F·F = ${m.dIn}²`);
  const meta: Record<string, string> = {
    format: FORMAT,
    version: String(STATS_VERSION),
    count: String(m.count),
    dIn: String(m.dIn),
    layer: String(p.layer),
    modelHash: p.modelHash,
    corpusHash: p.corpusHash,
    corpus: p.corpus,
    samples: String(p.samples),
    maxTokens: String(p.maxTokens),
    shuffleSeed: p.shuffleSeed === null ? "" : String(p.shuffleSeed),
    docsDone: String(p.docsDone),
    docsTotal: String(p.docsTotal),
    dtype: p.dtype,
    source: p.source,
    complete: isComplete(m) ? "1" : "0",
  };
  if (p.tokenBudget !== undefined) meta["tokenBudget"] = String(p.tokenBudget);
  if (p.groupSize !== undefined) meta["groupSize"] = String(p.groupSize);
  writeSafetensors(file, [{ name: "sum", shape: [m.dIn, m.dIn], data: m.sum }], meta);
}

/** Reads a statistics file written by `writeStatsFile` (E_CHECKPOINT naming the field at fault). */
export function readStatsFile(file: string): SecondMoment {
  const f = SafetensorsFile.open(file);
  try {
    const md = f.metadata;
    const bad = (msg: string): DeltaEditError => new DeltaEditError("E_CHECKPOINT", `${path.basename(file)}: ${msg}`, { context: { file } });
    if (md["format"] !== FORMAT) throw bad(`not a deltaedit statistics file (metadata format = ${JSON.stringify(md["format"])}, expected "${FORMAT}")`);
    if (md["version"] !== String(STATS_VERSION)) throw bad(`statistics format version ${md["version"]}, this build reads version ${STATS_VERSION}`);
    const int = (k: string): number => {
      const v = Number(md[k]);
      if (md[k] === undefined || md[k] === "" || !Number.isSafeInteger(v) || v < 0) throw bad(`metadata "${k}" = ${JSON.stringify(md[k])} is not a non-negative integer`);
      return v;
    };
    const dIn = int("dIn");
    const info = f.info("sum");
    if (info.shape.length !== 2 || info.shape[0] !== dIn || info.shape[1] !== dIn) throw bad(`tensor "sum" has shape [${info.shape.join(",")}], expected [${dIn},${dIn}]`);
    const sum = new Float32Array(dIn * dIn); // (F, F)
    f.readInto("sum", sum);
    const src = md["source"];
    if (src !== "computed" && src !== "merged" && src !== "npz") throw bad(`metadata "source" = ${JSON.stringify(src)}`);
    const provenance: StatsProvenance = {
      source: src,
      modelHash: md["modelHash"] ?? "",
      corpusHash: md["corpusHash"] ?? "",
      corpus: md["corpus"] ?? "",
      layer: int("layer"),
      samples: int("samples"),
      maxTokens: int("maxTokens"),
      shuffleSeed: md["shuffleSeed"] === undefined || md["shuffleSeed"] === "" ? null : int("shuffleSeed"),
      docsDone: int("docsDone"),
      docsTotal: int("docsTotal"),
      dtype: "float32",
      version: STATS_VERSION,
    };
    if (md["tokenBudget"] !== undefined) provenance.tokenBudget = int("tokenBudget");
    if (md["groupSize"] !== undefined) provenance.groupSize = int("groupSize");
    return { sum, count: int("count"), dIn, provenance };
  } finally {
    f.close();
  }
}
