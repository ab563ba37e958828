/**
 * Load an evaluation set whatever its format, recognised from the records' fields
 * (edit/recordFormats.ts): CounterFact / MultiCounterFact, our flat JSONL, EasyEdit's flattened
 * CounterFact and KnowEdit records (kind "mcf", or "cf" for a file named counterfact.json), ZsRE as
 * MEND / EasyEdit distribute it (kind "zsre"). A JSON array or JSONL (by the `.jsonl` extension).
 * The format is read from the first record; every record is still validated on its own (a record in
 * another shape is rejected by index and field, the rest load).
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { detectRecordFormat, RECORD_FORMAT_NAMES, type RecordFormat } from "../../edit/recordFormats.js";
import type { TargetTokenizer } from "../../edit/request.js";
import { counterfactRecords, readJsonFile } from "./counterfact.js";
import { parseJsonl } from "./jsonl.js";
import type { DatasetKind, LoadedDataset, Rejection } from "./record.js";
import { zsreRecords } from "./zsre.js";

/** Options of `loadDatasetFile`. */
export interface LoadDatasetFileOptions {
  /** Override the kind read from the records ("cf", "mcf" or "zsre"). */
  kind?: DatasetKind;
  /** The model's tokenizer: needed for ZsRE (its neighborhood items are per answer token). */
  tokenizer?: TargetTokenizer;
  /** Keep the first `size` records (file order). */
  size?: number;
  /** ZsRE reference behaviour: neighborhood answers tokenized with special tokens (Q7). */
  neighborhoodSpecialTokens?: boolean;
}

/** A loaded set and the record format it was read as. */
export interface DetectedDataset extends LoadedDataset {
  format: RecordFormat;
  /** Human-readable name of the format (for logs and reports). */
  formatName: string;
}

/** The format of a list of raw records: that of the first object (default "counterfact"). */
export function detectDatasetFormat(raws: readonly unknown[]): RecordFormat {
  const first = raws.find((r) => r !== null && typeof r === "object" && !Array.isArray(r));
  return first === undefined ? "counterfact" : detectRecordFormat(first);
}

/** Load `file`, detecting its format from the fields. */
export function loadDatasetFile(file: string, o: LoadDatasetFileOptions = {}): DetectedDataset {
  let raws: unknown[];
  const rejected: Rejection[] = [];
  if (file.endsWith(".jsonl")) {
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      throw new DeltaEditError("E_NOT_FOUND", `cannot read ${file}: ${(e as Error).message}`, { context: { file } });
    }
    const p = parseJsonl(text, file);
    raws = p.objects;
    rejected.push(...p.rejected);
  } else {
    const data = readJsonFile(file);
    if (!Array.isArray(data)) throw new DeltaEditError("E_REQUEST", `${file}: expected a JSON array of records (CounterFact, EasyEdit/KnowEdit or ZsRE), got ${data === null ? "null" : typeof data}`, { context: { file } });
    raws = data;
  }
  const format = detectDatasetFormat(raws);
  const kind: DatasetKind = o.kind ?? (format === "zsre" ? "zsre" : path.basename(file).toLowerCase() === "counterfact.json" ? "cf" : "mcf");
  const size = o.size === undefined ? {} : { size: o.size };
  let loaded: { records: LoadedDataset["records"]; rejected: Rejection[] };
  if (kind === "zsre") {
    if (!o.tokenizer) throw new DeltaEditError("E_ARG", `loadDatasetFile(${file}): a ZsRE set needs the model's tokenizer (its neighborhood items are per answer token)`);
    loaded = zsreRecords(raws, { tokenizer: o.tokenizer, neighborhoodSpecialTokens: o.neighborhoodSpecialTokens ?? false, ...size });
  } else loaded = counterfactRecords(raws, kind, size);
  return { kind, file, records: loaded.records, rejected: [...rejected, ...loaded.rejected], format, formatName: RECORD_FORMAT_NAMES[format] };
}
