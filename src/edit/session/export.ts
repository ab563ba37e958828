/**
 * Export of an edited model.
 *
 * HF checkpoint: the original directory's files are copied (config, tokenizer, index, every shard),
 * then the bytes of each edited tensor are overwritten in place with the edited values in the
 * tensor's own dtype (same names, shapes, dtypes, sharding and header; unedited tensors stay
 * byte-identical). Written to a temporary directory renamed into place at the end.
 *
 * PEFT LoRA adapter: per edited down projection, the accumulated update ΔW (C, F) = B·A with
 * B = U_r diag(s_r) (C, r) and A = V_rᵀ (r, F) from its SVD: exact when r ≥ the numerical rank,
 * else truncated, with the retained energy Σ_{i<r} s_i² / Σ s_i² reported per layer. GPT-2's Conv1D
 * down projections are declared with fan_in_fan_out = true.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import * as ops from "../../kernels/ops.js";
import { architectureFor } from "../../model/arch/index.js";
import { openCheckpoint } from "../../model/checkpoint.js";
import { f32ToBf16, f32ToF16 } from "../../model/half.js";
import type { LanguageModel } from "../../model/model.js";
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from "../../model/safetensors.js";
import { writeJsonAtomic } from "./store.js";

function tmpDirFor(out: string): string {
  return `${out.replace(/\/+$/, "")}.tmp-${process.pid}`;
}

function commitDir(tmp: string, out: string): void {
  if (fs.existsSync(out)) {
    if (fs.readdirSync(out).length > 0) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw new DeltaEditError("E_ARG", `export: output directory ${out} exists and is not empty`, { hint: "choose a new --out directory" });
    }
    fs.rmdirSync(out);
  }
  fs.renameSync(tmp, out);
}

/** Write the edited model as a Hugging Face checkpoint; `changed` lists parameter names to rewrite. */
export function exportHf(model: LanguageModel, changed: readonly string[], out: string): { files: string[]; tensors: string[] } {
  if (!model.dir) throw new DeltaEditError("E_ARG", "export: the model was not loaded from a directory");
  const src = model.dir;
  const tmp = tmpDirFor(out);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const copied: string[] = [];
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    const real = fs.statSync(path.join(src, e.name)); // follows HF-cache symlinks
    if (!real.isFile()) continue;
    fs.copyFileSync(path.join(src, e.name), path.join(tmp, e.name));
    copied.push(e.name);
  }
  const ckpt = openCheckpoint(src);
  const entry = architectureFor(model.config);
  const written: string[] = [];
  try {
    for (const name of changed) {
      const spec = model.params.spec(name);
      const stored = entry.checkpointNames(spec, model.config).find((n) => ckpt.has(n));
      if (!stored) throw new DeltaEditError("E_CHECKPOINT", `export: parameter ${name} not found in ${src}`);
      const info = ckpt.info(stored);
      const data = model.params.get(name);
      const st = SafetensorsFile.open(path.join(src, info.file));
      const ti = st.info(stored);
      st.close();
      let bytes: Uint8Array;
      if (ti.dtype === "F32") bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      else if (ti.dtype === "F16") bytes = new Uint8Array(f32ToF16(data).buffer);
      else if (ti.dtype === "BF16") bytes = new Uint8Array(f32ToBf16(data).buffer);
      else throw new DeltaEditError("E_CHECKPOINT", `export: tensor ${stored} has dtype ${ti.dtype}; only F32/F16/BF16 can be rewritten`);
      if (bytes.byteLength !== ti.byteLength) throw new DeltaEditError("E_CHECKPOINT", `export: tensor ${stored}: ${bytes.byteLength} bytes to write, ${ti.byteLength} stored`);
      const fd = fs.openSync(path.join(tmp, info.file), "r+");
      try {
        fs.writeSync(fd, bytes, 0, bytes.byteLength, ti.byteOffset);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      written.push(stored);
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    ckpt.close();
  }
  commitDir(tmp, out);
  return { files: copied, tensors: written };
}


export interface LoraLayerReport {
  layer: number;
  module: string;
  rank: number;
  numericalRank: number;
  retainedEnergy: number; // Σ_{i<r} s_i² / Σ s_i²
  exact: boolean;
}


/**
 * Write a PEFT LoRA adapter holding `deltas` (layer → ΔW (C, F) out × in). `rank` caps r
 * (default: the numerical rank of each ΔW, i.e. exact).
 */
export function exportLora(model: LanguageModel, deltas: ReadonlyMap<number, Float32Array>, out: string, opts: { rank?: number; baseModel: string }): LoraLayerReport[] {
  const C = model.arch.hidden;
  const F = model.arch.dFF;
  const tensors: TensorToWrite[] = [];
  const reports: LoraLayerReport[] = [];
  const layers = [...deltas.keys()].sort((a, b) => a - b);
  if (layers.length === 0) throw new DeltaEditError("E_SESSION", "export: the session holds no update to export");
  let rMax = 0;
  for (const layer of layers) {
    const d = deltas.get(layer)!;
    const { u, s, vt } = ops.svd(d, C, F); // u (C, p), s (p), vt (p, F)
    const p = s.length;
    let total = 0;
    for (let i = 0; i < p; i++) total += s[i]! * s[i]!;
    const tol = (s[0] ?? 0) * Math.max(C, F) * 1.2e-7;
    let numericalRank = 0;
    while (numericalRank < p && s[numericalRank]! > tol) numericalRank++;
    const r = Math.max(1, Math.min(opts.rank ?? numericalRank, p));
    let kept = 0;
    for (let i = 0; i < r; i++) kept += s[i]! * s[i]!;
    const B = new Float32Array(C * r); // (C, r) = U_r diag(s_r)
    for (let c = 0; c < C; c++) for (let i = 0; i < r; i++) B[c * r + i] = u[c * p + i]! * s[i]!;
    const A = vt.slice(0, r * F); // (r, F)
    const module = model.arch.editTarget(layer).module;
    tensors.push({ name: `base_model.model.${module}.lora_A.weight`, shape: [r, F], data: A });
    tensors.push({ name: `base_model.model.${module}.lora_B.weight`, shape: [C, r], data: B });
    reports.push({ layer, module, rank: r, numericalRank, retainedEnergy: total > 0 ? kept / total : 1, exact: r >= numericalRank });
    rMax = Math.max(rMax, r);
  }
  const tmp = tmpDirFor(out);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const ranks = Object.fromEntries(reports.map((x) => [x.module, x.rank]));
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: opts.baseModel,
    r: rMax,
    lora_alpha: rMax,
    rank_pattern: ranks,
    alpha_pattern: Object.fromEntries(reports.map((x) => [x.module, x.rank])),
    target_modules: reports.map((x) => x.module),
    fan_in_fan_out: model.arch.editTarget(layers[0]!).layout === "in_out", // GPT-2 Conv1D stores (in, out)
    lora_dropout: 0,
    bias: "none",
    inference_mode: true,
    use_rslora: false,
    init_lora_weights: true,
    modules_to_save: null,
  };
  writeJsonAtomic(path.join(tmp, "adapter_config.json"), config);
  writeSafetensors(path.join(tmp, "adapter_model.safetensors"), tensors, { format: "pt" });
  writeJsonAtomic(path.join(tmp, "deltaedit_lora_report.json"), { layers: reports });
  commitDir(tmp, out);
  return reports;
}
