/**
 * The documented JSONL form of an evaluation set: one JSON object per line, blank lines ignored.
 *
 * CounterFact-like sets (kind "cf" / "mcf", the default "mcf") accept per line either a full
 * CounterFact record (with `requested_rewrite`, §1.2) or the flat form
 *
 *   {"case_id"?: int,                       // default: the record's position among the objects
 *    "prompt": "The mother tongue of {} is", "subject": "Danielle Darrieux",
 *    "target_new": "English" | {"str": "English", "id": "Q1860"},
 *    "target_true": "French" | {"str": "French", "id": "Q150"},
 *    "relation_id"?: "P103",
 *    "paraphrase_prompts"?: string[], "neighborhood_prompts"?: string[],
 *    "generation_prompts"?: string[], "attribute_prompts"?: string[]}
 *
 * ZsRE sets (kind "zsre") take one raw ZsRE record per line (§1.3: subject, src, rephrase,
 * answers, loc, loc_ans); `case_id` is the record's position among the objects.
 *
 * A line that is not valid JSON is rejected by its line number (field "(json)"); a malformed
 * record by index and field; the rest load.
 */
import fs from "node:fs";
import { DeltaEditError } from "../../errors.js";
import { counterfactRecords } from "./counterfact.js";
import type { DatasetKind, LoadedDataset, Rejection } from "./record.js";
import { zsreRecords, type ZsreLoadOptions } from "./zsre.js";

export interface JsonlLoadOptions {
  kind?: DatasetKind; // default "mcf"
  /** Required for kind "zsre". */
  zsre?: Omit<ZsreLoadOptions, "size">;
  size?: number;
}

/** Parse JSONL text into objects; bad lines are reported by line number. */
export function parseJsonl(text: string, file: string): { objects: unknown[]; rejected: Rejection[] } {
  const objects: unknown[] = [];
  const rejected: Rejection[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim().length === 0) return;
    try {
      objects.push(JSON.parse(line));
    } catch (e) {
      rejected.push({ index: -1, caseId: `line ${i + 1}`, field: "(json)", message: `${file}:${i + 1}: not valid JSON (${(e as Error).message})` });
    }
  });
  return { objects, rejected };
}

export function loadJsonl(file: string, opts: JsonlLoadOptions = {}): LoadedDataset {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `cannot read ${file}: ${(e as Error).message}`, { context: { file } });
  }
  const kind = opts.kind ?? "mcf";
  const { objects, rejected } = parseJsonl(text, file);
  if (kind === "zsre") {
    if (!opts.zsre) throw new DeltaEditError("E_ARG", `loadJsonl(${file}): kind "zsre" needs opts.zsre.tokenizer to build the neighborhood items`);
    const z = zsreRecords(objects, { ...opts.zsre, ...(opts.size === undefined ? {} : { size: opts.size }) });
    return { kind, file, records: z.records, rejected: [...rejected, ...z.rejected] };
  }
  const c = counterfactRecords(objects, kind, opts.size === undefined ? {} : { size: opts.size });
  return { kind, file, records: c.records, rejected: [...rejected, ...c.rejected] };
}
