/**
 * A session's model for llama.cpp: the edited model (or the unedited original, the base of an
 * adapter) as one GGUF file with its tokenizer, or the accumulated updates as a GGUF LoRA adapter
 * for that base, which a server can switch on and off and scale per request.
 *
 * The adapter holds, per edited down projection, the factors of ΔW (C, F) = B·A from
 * loraFactors.ts (exact, or truncated to `rank` with the retained energy reported). One
 * adapter.lora.alpha serves every layer: alpha = the largest rank r_max, and layer l's B is scaled
 * by r_l / r_max, so llama.cpp's scale·(alpha/r_l)·B·A is exactly scale·ΔW at every layer.
 */
import { DeltaEditError } from "../../errors.js";
import { openCheckpoint } from "../../model/checkpoint.js";
import { writeGgufLora, type LoraPair } from "../../model/gguf/lora.js";
import { checkGgufTarget, ggufPlanOf, writeGguf, type GgufDtype, type GgufWriteReport } from "../../model/gguf/writeModel.js";
import { LanguageModel } from "../../model/model.js";
import { loraFactors, type LoraFactors, type LoraLayerReport } from "./loraFactors.js";
import type { EditSession } from "./session.js";

/** Write the session's current model (or, `unedited`, the original it was loaded from) to `out`. */
export function exportGgufModel(session: EditSession, out: string, o: { dtype?: GgufDtype; unedited?: boolean }): GgufWriteReport {
  let model = session.model;
  checkGgufTarget(out);
  ggufPlanOf(model); // refuses an unsupported architecture before the unedited weights are read
  if (o.unedited) {
    if (!model.dir) throw new DeltaEditError("E_ARG", "export: the session's model was not loaded from a directory; cannot reload its unedited weights");
    const ckpt = openCheckpoint(model.dir);
    try {
      model = LanguageModel.fromCheckpoint(ckpt, session.model.tokenizer);
    } finally {
      ckpt.close();
    }
  }
  return writeGguf(model, out, o.dtype !== undefined ? { dtype: o.dtype } : {});
}

/**
 * The adapter tensors of `factors` (ΔW_l = B_l·A_l, ranks r_l) under one alpha = max r_l: B_l is
 * multiplied by r_l / alpha, so that llama.cpp's (alpha / r_l)·B_l·A_l is ΔW_l again.
 */
export function ggufLoraPairs(model: LanguageModel, factors: readonly LoraFactors[]): { alpha: number; pairs: LoraPair[] } {
  const alpha = Math.max(...factors.map((f) => f.rank));
  const pairs = factors.map((f) => {
    const b = f.b.slice(); // (C, r)
    const k = f.rank / alpha;
    if (k !== 1) for (let i = 0; i < b.length; i++) b[i]! *= k;
    return { param: model.arch.editTarget(f.layer).name, rank: f.rank, a: f.a, b };
  });
  return { alpha, pairs };
}

/** Write the session's accumulated updates as a GGUF LoRA adapter; returns the per-layer report and alpha. */
export function exportGgufLora(session: EditSession, out: string, o: { rank?: number; dtype?: GgufDtype }): { layers: LoraLayerReport[]; alpha: number; bytes: number } {
  const model = session.model;
  const dtype = o.dtype ?? "f32";
  if (dtype !== "f32" && dtype !== "f16") throw new DeltaEditError("E_ARG", `export: a GGUF LoRA adapter is written as f32 or f16, got ${JSON.stringify(dtype)}`, { context: { field: "dtype" } });
  checkGgufTarget(out);
  for (const r of session.journal) {
    if (r.kind === "undo") continue;
    const bias = r.updates.find((u) => u.biasName);
    if (bias) {
      throw new DeltaEditError("E_SESSION", `export: ${r.kind === "batch" ? `batch ${r.batch}` : "the method's finish step"} changed the bias ${bias.biasName}, which a LoRA adapter cannot hold`, {
        hint: "export the whole edited model instead (--format gguf)",
        context: { tensor: bias.biasName },
      });
    }
  }
  const plan = ggufPlanOf(model); // refuses an unsupported architecture before any work
  const factors = loraFactors(session.accumulatedUpdates(), model.arch.hidden, model.arch.dFF, { ...(o.rank !== undefined ? { rank: o.rank } : {}), requireNonZero: true });
  const { alpha, pairs } = ggufLoraPairs(model, factors);
  const rep = writeGgufLora(model, pairs, out, { alpha, dtype });
  const gguf = new Map(plan.tensors.map((m) => [m.param, m.name]));
  const layers = factors.map((f) => ({
    layer: f.layer,
    module: gguf.get(model.arch.editTarget(f.layer).name)!.replace(/\.weight$/, ""),
    rank: f.rank,
    numericalRank: f.numericalRank,
    retainedEnergy: f.retainedEnergy,
    exact: f.exact,
  }));
  return { layers, alpha, bytes: rep.bytes };
}
