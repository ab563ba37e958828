/**
 * Export a session's edited model, the same for `deltaedit export` and the library: an HF
 * checkpoint with every edited tensor rewritten (the edited down projections, and the biases an
 * update touched), or a PEFT LoRA adapter holding the accumulated update ΔW (C, F) per edited layer
 * (export.ts has the file formats).
 */
import { exportHf, exportLora, type LoraLayerReport } from "./export.js";
import type { EditSession } from "./session.js";

/** What to write. */
export interface ExportOptions {
  /** "hf": edited Hugging Face checkpoint; "lora": PEFT LoRA adapter of the accumulated update. */
  format: "hf" | "lora";
  /** Output directory: must not exist yet, or be empty. */
  out: string;
  /** LoRA only: rank cap (default: exact, the numerical rank of each layer's update). */
  rank?: number;
}

/** What was written: the HF checkpoint's files and rewritten tensors, or the adapter's layers. */
export type ExportResult = { format: "hf"; out: string; files: string[]; tensors: string[] } | { format: "lora"; out: string; layers: LoraLayerReport[] };

/** Write the session's current model (every batch applied and not undone) to `o.out`. */
export function exportSession(session: EditSession, o: ExportOptions): ExportResult {
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
