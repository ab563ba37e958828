/**
 * Text corpora for the second-moment statistics (spec §3.6): a `CorpusSource` yields documents in
 * a deterministic order and carries a content hash that keys the statistics cache.
 *
 * Accepted inputs:
 * - a plain-text file (`.txt`, `.text`, `.md`, or any other extension except `.jsonl`/`.json`):
 *   `split: "line"` (default) makes every non-empty line one document; `split: "paragraph"` makes
 *   every block of text between blank lines one document (its inner newlines kept). Lines are
 *   split on `\n` with a trailing `\r` removed; whitespace-only lines count as empty.
 * - a JSONL file (`.jsonl`, `.json`): one JSON object per non-empty line, the document is its
 *   string field `textField` (default "text"); documents whose text is empty are skipped.
 * - a directory: every regular file below it whose extension is one of the above (hidden files
 *   and directories skipped), in order of their relative path (code-unit order), concatenated.
 *
 * The corpus hash is sha256 over the split mode, the text field, and for each file in order its
 * relative name and contents (length-prefixed), so a renamed, reordered or edited file changes it.
 * Whole files are held in memory (documents as strings); fine for the sample sizes in use
 * (10⁵ Wikipedia articles ≈ 0.5 GB of text would be at the limit).
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import { pythonShuffledSample } from "../util/mt19937.js";

export type TextSplit = "line" | "paragraph";

export interface CorpusOptions {
  /** How a plain-text file is cut into documents (default "line"). */
  split?: TextSplit;
  /** JSONL field holding the document text (default "text"). */
  textField?: string;
}

export interface CorpusSource {
  /** sha256 (hex) of the corpus content and the options that cut it into documents. */
  readonly hash: string;
  /** Human-readable origin (path), recorded in the statistics' provenance. */
  readonly description: string;
  /** Number of documents. */
  readonly size: number;
  /** Document `i` (0 ≤ i < size). */
  document(i: number): string;
}

const TEXT_EXT = new Set([".txt", ".text", ".md"]);
const JSONL_EXT = new Set([".jsonl", ".json"]);

/** An in-memory corpus (tests, programmatic use); hashed over its documents. */
export function corpusFromDocuments(docs: readonly string[], description = "in-memory documents"): CorpusSource {
  const h = createHash("sha256");
  h.update("deltaedit.corpus.documents.v1\0");
  for (const d of docs) {
    const b = Buffer.from(d, "utf8");
    h.update(`${b.length}\0`);
    h.update(b);
  }
  const list = [...docs];
  return { hash: h.digest("hex"), description, size: list.length, document: (i) => at(list, i, description) };
}

/** Opens a text/JSONL file or a directory of them (see the module comment for the formats). */
export function openCorpus(p: string, opts: CorpusOptions = {}): CorpusSource {
  const split = opts.split ?? "line";
  if (split !== "line" && split !== "paragraph") throw new DeltaEditError("E_ARG", `corpus: split must be "line" or "paragraph", got ${JSON.stringify(split)}`);
  const field = opts.textField ?? "text";
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `corpus ${p}: no such file or directory`, { cause: e, context: { file: p } });
  }
  const files: { rel: string; abs: string }[] = [];
  if (st.isDirectory()) {
    for (const rel of listFiles(p, "")) files.push({ rel, abs: path.join(p, rel) });
    if (files.length === 0) throw new DeltaEditError("E_NOT_FOUND", `corpus ${p}: the directory holds no .txt/.text/.md/.jsonl/.json files`);
  } else files.push({ rel: path.basename(p), abs: p });

  const h = createHash("sha256");
  h.update(`deltaedit.corpus.files.v1\0split=${split}\0field=${field}\0`);
  const docs: string[] = [];
  for (const f of files) {
    const bytes = fs.readFileSync(f.abs);
    h.update(`${f.rel}\0${bytes.length}\0`);
    h.update(bytes);
    const text = bytes.toString("utf8");
    if (JSONL_EXT.has(path.extname(f.rel).toLowerCase())) parseJsonl(text, field, f.abs, docs);
    else splitText(text, split, docs);
  }
  return { hash: h.digest("hex"), description: path.resolve(p), size: docs.length, document: (i) => at(docs, i, p) };
}

/**
 * Indices of the documents to use: the first `samples` in corpus order, or — with `shuffleSeed`
 * — the reference's sample `random.Random(seed).shuffle(range(size))[:samples]` (Appendix C).
 */
export function sampleIndices(size: number, samples: number, shuffleSeed: number | null): number[] {
  if (!Number.isSafeInteger(samples) || samples < 0) throw new DeltaEditError("E_ARG", `corpus: samples must be a non-negative integer, got ${samples}`);
  const n = Math.min(size, samples);
  if (shuffleSeed === null) return Array.from({ length: n }, (_, i) => i);
  return pythonShuffledSample(size, samples, shuffleSeed);
}

function at(docs: readonly string[], i: number, what: string): string {
  const d = docs[i];
  if (d === undefined) throw new DeltaEditError("E_ARG", `corpus ${what}: document index ${i} outside [0, ${docs.length})`);
  return d;
}

function listFiles(root: string, rel: string): string[] {
  const out: string[] = [];
  const entries = fs.readdirSync(path.join(root, rel), { withFileTypes: true }).filter((e) => !e.name.startsWith("."));
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const r = rel === "" ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...listFiles(root, r));
    else if (e.isFile()) {
      const ext = path.extname(e.name).toLowerCase();
      if (TEXT_EXT.has(ext) || JSONL_EXT.has(ext)) out.push(r);
    }
  }
  // sort by full relative path so nesting does not change the order rule
  return rel === "" ? out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) : out;
}

function lines(text: string): string[] {
  return text.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
}

function splitText(text: string, split: TextSplit, out: string[]): void {
  if (split === "line") {
    for (const l of lines(text)) if (l.trim().length > 0) out.push(l);
    return;
  }
  let cur: string[] = [];
  for (const l of lines(text)) {
    if (l.trim().length === 0) {
      if (cur.length > 0) out.push(cur.join("\n"));
      cur = [];
    } else cur.push(l);
  }
  if (cur.length > 0) out.push(cur.join("\n"));
}

function parseJsonl(text: string, field: string, file: string, out: string[]): void {
  lines(text).forEach((l, i) => {
    if (l.trim().length === 0) return;
    let rec: unknown;
    try {
      rec = JSON.parse(l);
    } catch (e) {
      throw new DeltaEditError("E_ARG", `${file}:${i + 1}: not valid JSON (${(e as Error).message})`, { cause: e, context: { file, line: i + 1 } });
    }
    const v = rec !== null && typeof rec === "object" ? (rec as Record<string, unknown>)[field] : undefined;
    if (typeof v !== "string") throw new DeltaEditError("E_ARG", `${file}:${i + 1}: expected an object with a string field "${field}", got ${JSON.stringify(l.slice(0, 80))}`, { context: { file, line: i + 1 } });
    if (v.length > 0) out.push(v);
  });
}
