/**
 * Export a session's edited model, the same for `deltaedit export` and the library: an HF
 * checkpoint with every edited tensor rewritten (the edited down projections, and the biases an
 * update touched), a PEFT LoRA adapter holding the accumulated update ΔW (C, F) per edited layer
 * (export.ts has the file formats), or the same two for llama.cpp: one GGUF file of the edited
 * (or unedited) model with its tokenizer, and a GGUF LoRA adapter for the unedited GGUF
 * (exportGguf.ts).
 */
import { DeltaEditError } from "../../errors.js";
import type { GgufDtype, GgufWriteReport } from "../../model/gguf/writeModel.js";
import { exportHf, exportLora } from "./export.js";
import { exportGgufLora, exportGgufModel } from "./exportGguf.js";
import type { LoraLayerReport } from "./loraFactors.js";
import type { EditSession } from "./session.js";

/** What to write. */
export interface ExportOptions {
  /**
   * "hf": edited Hugging Face checkpoint; "lora": PEFT LoRA adapter of the accumulated update;
   * "gguf": llama.cpp GGUF file of the edited model, tokenizer embedded; "gguf-lora": llama.cpp
   * GGUF LoRA adapter of the accumulated update, for the unedited model's GGUF.
   */
  format: "hf" | "lora" | "gguf" | "gguf-lora";
  /** hf / lora: output directory (must not exist yet, or be empty). gguf / gguf-lora: output file (must not exist; its directory must). */
  out: string;
  /** lora / gguf-lora only: rank cap (default: exact, the numerical rank of each layer's update). */
  rank?: number;
  /**
   * gguf: element type of the matrices, "f32" | "f16" | "q8_0" (default "f16"; norms stay F32).
   * gguf-lora: "f32" (default) or "f16".
   */
  dtype?: GgufDtype;
  /** gguf only: write the unedited original model (the base a gguf-lora adapter is applied to). */
  unedited?: boolean;
}

/** What was written: the HF checkpoint's files and rewritten tensors, the adapter's layers, or the GGUF file. */
export type ExportResult =
  | { format: "hf"; out: string; files: string[]; tensors: string[] }
  | { format: "lora"; out: string; layers: LoraLayerReport[] }
  | { format: "gguf"; out: string; gguf: GgufWriteReport; unedited: boolean }
  | { format: "gguf-lora"; out: string; layers: LoraLayerReport[]; alpha: number; bytes: number };

const FORMATS: readonly ExportOptions["format"][] = ["hf", "lora", "gguf", "gguf-lora"];

/** Write the session's current model (every batch applied and not undone) to `o.out`. */
export function exportSession(session: EditSession, o: ExportOptions): ExportResult {
  if (!FORMATS.includes(o.format)) throw new DeltaEditError("E_ARG", `export: format must be one of ${FORMATS.join(", ")}, got ${JSON.stringify(o.format)}`, { context: { field: "format" } });
  const gguf = o.format === "gguf" || o.format === "gguf-lora";
  if (o.dtype !== undefined && !gguf) throw new DeltaEditError("E_ARG", `export: dtype applies to the gguf formats only, not to "${o.format}"`, { context: { field: "dtype" } });
  if (o.unedited && o.format !== "gguf") throw new DeltaEditError("E_ARG", `export: unedited applies to the gguf format only, not to "${o.format}"`, { context: { field: "unedited" } });
  if (o.rank !== undefined && o.format !== "lora" && o.format !== "gguf-lora") throw new DeltaEditError("E_ARG", `export: rank applies to the lora formats only, not to "${o.format}"`, { context: { field: "rank" } });
  if (o.format === "gguf") {
    const gguf = exportGgufModel(session, o.out, { ...(o.dtype !== undefined ? { dtype: o.dtype } : {}), unedited: o.unedited === true });
    return { format: "gguf", out: o.out, gguf, unedited: o.unedited === true };
  }
  if (o.format === "gguf-lora") {
    const r = exportGgufLora(session, o.out, { ...(o.rank !== undefined ? { rank: o.rank } : {}), ...(o.dtype !== undefined ? { dtype: o.dtype } : {}) });
    return { format: "gguf-lora", out: o.out, ...r };
  }
  const deltas = session.accumulatedUpdates();
  if (o.format === "hf") {
    const changed = new Set<string>();
    for (const l of deltas.keys()) changed.add(session.model.arch.editTarget(l).name);
    for (const r of session.journal) if (r.kind !== "undo") for (const u of r.updates) if (u.biasName) changed.add(u.biasName);
    const res = exportHf(session.model, [...changed], o.out);
    return { format: "hf", out: o.out, files: res.files, tensors: res.tensors };
  }
  const lo: Parameters<typeof exportLora>[3] = { baseModel: session.manifest.model.source };
  if (o.rank !== undefined) lo.rank = o.rank;
  return { format: "lora", out: o.out, layers: exportLora(session.model, deltas, o.out, lo) };
}
