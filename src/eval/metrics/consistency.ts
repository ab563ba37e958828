/**
 * Consistency (`reference_score`, evaluation spec §3.8) and the attribute-snippet index (§1.6).
 *
 * - Reference texts: every `text` of `snips[relation_id][target_new.id]`.
 * - A = the generated texts joined by single spaces; B = the reference texts joined likewise.
 * - TF-IDF with the FIXED vocabulary (`tfidf_vocab.json`: term → column) and idf (`idf.npy`,
 *   1-D float64): lowercase; terms = maximal runs of ≥ 2 Unicode word characters (Python's
 *   `(?u)\b\w\w+\b`, here `[\p{L}\p{N}_]{2,}`); out-of-vocabulary terms dropped; weight =
 *   count · idf[col]; L2-normalised.
 * - Score = cosine(A, B). If either vector is all zeros (or the reference list is empty) the
 *   score is NaN; the summariser excludes NaN values and counts them (aggregate.ts).
 */
import fs from "node:fs";
import { DeltaEditError } from "../../errors.js";
import { parseNpy } from "../../edit/npz.js";
import { readJsonFile } from "../datasets/counterfact.js";
import { forEachJsonArrayElement } from "../datasets/_jsonstream.js";

/** The reference's TF-IDF model (vocabulary and idf). */
export interface TfidfModel {
  vocab: Map<string, number>; // term → column
  idf: Float64Array; // (numColumns)
}

/** A TF-IDF model from a vocabulary object and an idf vector (checks every column). */
export function tfidfModel(vocab: Record<string, number> | Map<string, number>, idf: ArrayLike<number>, what = "tfidf"): TfidfModel {
  const m = vocab instanceof Map ? vocab : new Map(Object.entries(vocab));
  const idfArr = Float64Array.from({ length: idf.length }, (_, i) => idf[i]!);
  for (const [term, col] of m) {
    if (!Number.isInteger(col) || col < 0 || col >= idfArr.length) throw new DeltaEditError("E_CHECKPOINT", `${what}: term ${JSON.stringify(term)} has column ${col}, outside the idf vector [0, ${idfArr.length})`);
  }
  return { vocab: m, idf: idfArr };
}

/** Read `tfidf_vocab.json` and `idf.npy`. */
export function loadTfidf(vocabFile: string, idfFile: string): TfidfModel {
  const vocab = readJsonFile(vocabFile);
  if (!vocab || typeof vocab !== "object" || Array.isArray(vocab)) throw new DeltaEditError("E_CHECKPOINT", `${vocabFile}: expected an object mapping term → column index`);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(idfFile);
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `cannot read ${idfFile}: ${(e as Error).message}`);
  }
  const arr = parseNpy(bytes, idfFile);
  if (arr.shape.length !== 1) throw new DeltaEditError("E_CHECKPOINT", `${idfFile}: expected a 1-D idf vector, got shape (${arr.shape.join(", ")})`);
  return tfidfModel(vocab as Record<string, number>, arr.data, vocabFile);
}

/** Terms of `(?u)\b\w\w+\b` on the lowercased text. */
export function tfidfTerms(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}_]{2,}/gu) ?? [];
}

/** The L2-normalised TF-IDF vector of a text (sparse: column → weight). */
export function tfidfVector(m: TfidfModel, text: string): Map<number, number> {
  const v = new Map<number, number>();
  for (const t of tfidfTerms(text)) {
    const col = m.vocab.get(t);
    if (col !== undefined) v.set(col, (v.get(col) ?? 0) + m.idf[col]!);
  }
  let n2 = 0;
  for (const w of v.values()) n2 += w * w;
  const n = Math.sqrt(n2);
  for (const [c, w] of v) v.set(c, n > 0 ? w / n : 0);
  return v;
}

/** cosine(A, B) of two texts' TF-IDF vectors; NaN when either vector is zero. */
export function tfidfCosine(m: TfidfModel, a: string, b: string): number {
  const va = tfidfVector(m, a);
  const vb = tfidfVector(m, b);
  if (va.size === 0 || vb.size === 0) return NaN;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (const [c, w] of va) {
    dot += w * (vb.get(c) ?? 0);
    na += w * w;
  }
  for (const w of vb.values()) nb += w * w;
  return na === 0 || nb === 0 ? NaN : dot / Math.sqrt(na * nb);
}

// ---- attribute snippets ----

/** One attribute snippet: a Wikipedia passage about `name`. */
export interface SnippetSample {
  name: string; // the entity the passage is about
  text: string;
}

/** `snips[relation_id][target_id]` → samples (duplicate keys concatenated). */
export type AttributeSnippets = Map<string, Map<string, SnippetSample[]>>;

/** Add one `{relation_id, target_id, samples}` entry to the index (throws naming the field). */
export function addSnippetEntry(index: AttributeSnippets, entry: unknown, i: number, what = "attribute_snippets"): void {
  const e = entry as { relation_id?: unknown; target_id?: unknown; samples?: unknown };
  if (!e || typeof e !== "object" || typeof e.relation_id !== "string" || typeof e.target_id !== "string" || !Array.isArray(e.samples)) {
    const field = !e || typeof e !== "object" ? "(record)" : typeof e.relation_id !== "string" ? "relation_id" : typeof e.target_id !== "string" ? "target_id" : "samples";
    throw new DeltaEditError("E_REQUEST", `${what}: entry #${i}: field "${field}" is missing or malformed`, { context: { index: i, field } });
  }
  const samples: SnippetSample[] = e.samples.map((s: unknown, j: number) => {
    const x = s as { name?: unknown; text?: unknown };
    if (!x || typeof x.text !== "string") throw new DeltaEditError("E_REQUEST", `${what}: entry #${i}: field "samples[${j}].text" is missing`, { context: { index: i, field: `samples[${j}].text` } });
    return { name: typeof x.name === "string" ? x.name : "", text: x.text };
  });
  let byTarget = index.get(e.relation_id);
  if (!byTarget) index.set(e.relation_id, (byTarget = new Map()));
  byTarget.set(e.target_id, [...(byTarget.get(e.target_id) ?? []), ...samples]);
}

/** Index a parsed snippet list. */
export function indexAttributeSnippets(entries: readonly unknown[]): AttributeSnippets {
  const index: AttributeSnippets = new Map();
  entries.forEach((e, i) => addSnippetEntry(index, e, i));
  return index;
}

export interface SnippetLoadOptions {
  /** Keep only the (relation_id, target_id) pairs this returns true for (saves memory). */
  keep?: (relationId: string, targetId: string) => boolean;
}

/** Stream `attribute_snippets.json` (926 MB) into the index, entry by entry. */
export function loadAttributeSnippets(file: string, opts: SnippetLoadOptions = {}): AttributeSnippets {
  const index: AttributeSnippets = new Map();
  forEachJsonArrayElement(file, (e, i) => {
    const x = e as { relation_id?: unknown; target_id?: unknown };
    if (opts.keep && typeof x.relation_id === "string" && typeof x.target_id === "string" && !opts.keep(x.relation_id, x.target_id)) return;
    addSnippetEntry(index, e, i, file);
  });
  return index;
}

/** The reference samples of a case (empty when none). */
export function referenceSamples(snips: AttributeSnippets, relationId: string | null, targetNewId: string | null): SnippetSample[] {
  if (relationId === null || targetNewId === null) return [];
  return snips.get(relationId)?.get(targetNewId) ?? [];
}

/** `reference_score` of one case: cosine(join(texts), join(reference texts)); NaN without references. */
export function referenceScore(m: TfidfModel, texts: readonly string[], samples: readonly SnippetSample[]): number {
  if (samples.length === 0) return NaN;
  return tfidfCosine(m, texts.join(" "), samples.map((s) => s.text).join(" "));
}
