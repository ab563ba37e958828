/**
 * One entry point for the evaluation sets: the official JSON files (§1.2–1.4) or the JSONL form
 * (jsonl.ts), chosen by the file extension. ZsRE needs the model's tokenizer (neighborhood items).
 */
import { DeltaEditError } from "../../errors.js";
import type { TargetTokenizer } from "../../edit/request.js";
import { loadCounterfact } from "./counterfact.js";
import { loadJsonl } from "./jsonl.js";
import type { DatasetKind, LoadedDataset } from "./record.js";
import { loadZsre } from "./zsre.js";

export interface LoadDatasetOptions {
  tokenizer?: TargetTokenizer; // required for "zsre"
  size?: number; // first N records (file order)
  neighborhoodSpecialTokens?: boolean; // ZsRE reference behaviour (Q7)
}

export function loadDataset(kind: DatasetKind, file: string, opts: LoadDatasetOptions = {}): LoadedDataset {
  const size = opts.size === undefined ? {} : { size: opts.size };
  if (kind === "zsre" && !opts.tokenizer) throw new DeltaEditError("E_ARG", `loadDataset(zsre, ${file}): a tokenizer is needed to build the ZsRE neighborhood items`);
  const zsre = opts.tokenizer ? { tokenizer: opts.tokenizer, neighborhoodSpecialTokens: opts.neighborhoodSpecialTokens ?? false } : undefined;
  if (file.endsWith(".jsonl")) return loadJsonl(file, { kind, ...size, ...(zsre ? { zsre } : {}) });
  if (kind === "zsre") return loadZsre(file, { ...zsre!, ...size });
  return loadCounterfact(file, kind, size);
}
