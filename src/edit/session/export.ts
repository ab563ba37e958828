/**
 * Export of an edited model.
 *
 * HF checkpoint: the original directory's files are copied (config, tokenizer, index, every shard),
 * then the bytes of each edited tensor are overwritten in place with the edited values in the
 * tensor's own dtype (same names, shapes, dtypes, sharding and header; unedited tensors stay
 * byte-identical). Written to a temporary directory `<out>.tmp-<pid>` renamed into place at the end;
 * it is removed on every error, and one left by a killed export is removed by the next export to
 * the same `out`. `out` must not exist, or be an empty directory.
 *
 * PEFT LoRA adapter: per edited down projection, the accumulated update ΔW (C, F) = B·A
 * (loraFactors.ts: exact, or truncated with the retained energy reported per layer). GPT-2's Conv1D
 * down projections are declared with fan_in_fan_out = true.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { architectureFor } from "../../model/arch/index.js";
import { openCheckpoint } from "../../model/checkpoint.js";
import { f32ToBf16, f32ToF16 } from "../../model/half.js";
import type { LanguageModel } from "../../model/model.js";
import { SafetensorsFile } from "../../model/safetensors.js";
import { removeStaleTemporaries, TMP_MARK, writeAll, writeFileAtomic, writeJsonAtomic } from "../../util/fsio.js";
import { encodeSafetensors, type F32Tensor } from "./encode.js";
import { loraFactors, type LoraLayerReport } from "./loraFactors.js";

export type { LoraLayerReport };

/**
 * Refuse an output that cannot be written: an empty path, an existing file, a non-empty directory.
 * (An empty existing directory is replaced.) Throws E_ARG naming `out`.
 */
export function checkExportTarget(out: string): void {
  if (typeof out !== "string" || out.trim() === "") throw new DeltaEditError("E_ARG", `export: the output directory must be a non-empty path, got ${JSON.stringify(out)}`);
  let st: fs.Stats;
  try {
    st = fs.statSync(out);
  } catch {
    return; // does not exist (or is unreachable: creating it will say why)
  }
  if (!st.isDirectory()) throw new DeltaEditError("E_ARG", `export: ${out} is an existing file, not a directory`, { hint: "choose a new --out directory", context: { file: out } });
  if (fs.readdirSync(out).length > 0) throw new DeltaEditError("E_ARG", `export: output directory ${out} exists and is not empty`, { hint: "choose a new --out directory", context: { file: out } });
}

/**
 * Run `body` on a fresh temporary directory `<out>.tmp-<pid>` next to `out`, then move it into place.
 * Temporaries of dead earlier exports to `out` are removed first; on any error the temporary
 * directory is removed and a failed file operation (an errno error) becomes E_IO naming `out`.
 */
function writeDirectory<R>(out: string, body: (tmp: string) => R): R {
  checkExportTarget(out);
  const target = path.resolve(out);
  const parent = path.dirname(target);
  removeStaleTemporaries(parent, { prefix: path.basename(target) + TMP_MARK });
  const tmp = `${target}${TMP_MARK}${process.pid}`;
  try {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    const r = body(tmp);
    checkExportTarget(out); // created meanwhile?
    if (fs.existsSync(target)) fs.rmdirSync(target); // an empty directory
    fs.renameSync(tmp, target);
    return r;
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (e instanceof DeltaEditError || typeof (e as NodeJS.ErrnoException | undefined)?.code !== "string") throw e; // ours, or a bug
    throw ioFailure(out, e);
  }
}

function ioFailure(out: string, e: unknown): DeltaEditError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const why = code === "ENOSPC" ? "no space left on device" : e instanceof Error ? e.message : String(e);
  return new DeltaEditError("E_IO", `export to ${out} failed: ${why} (nothing was written there)`, { cause: e, context: { file: out } });
}

/** Write the edited model as a Hugging Face checkpoint; `changed` lists parameter names to rewrite. */
export function exportHf(model: LanguageModel, changed: readonly string[], out: string): { files: string[]; tensors: string[] } {
  if (!model.dir) throw new DeltaEditError("E_ARG", "export: the model was not loaded from a directory");
  const src = model.dir;
  const entry = architectureFor(model.config);
  return writeDirectory(out, (tmp) => {
    const copied: string[] = [];
    for (const e of fs.readdirSync(src, { withFileTypes: true })) {
      const from = path.join(src, e.name);
      const real = fs.statSync(from); // follows HF-cache symlinks
      if (!real.isFile()) continue;
      fs.copyFileSync(from, path.join(tmp, e.name));
      const size = fs.statSync(path.join(tmp, e.name)).size;
      if (size !== real.size) throw new DeltaEditError("E_IO", `export: copying ${from} wrote ${size} of ${real.size} bytes (disk full?)`, { context: { file: path.join(tmp, e.name) } });
      copied.push(e.name);
    }
    const written: string[] = [];
    const ckpt = openCheckpoint(src);
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
        const file = path.join(tmp, info.file);
        const fd = fs.openSync(file, "r+");
        try {
          writeAll(fd, bytes, file, ti.byteOffset);
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        written.push(stored);
      }
    } finally {
      ckpt.close();
    }
    return { files: copied, tensors: written };
  });
}


/**
 * Write a PEFT LoRA adapter holding `deltas` (layer → ΔW (C, F) out × in). `rank` caps r
 * (default: the numerical rank of each ΔW, i.e. exact).
 */
export function exportLora(model: LanguageModel, deltas: ReadonlyMap<number, Float32Array>, out: string, opts: { rank?: number; baseModel: string }): LoraLayerReport[] {
  const C = model.arch.hidden;
  const F = model.arch.dFF;
  const tensors: F32Tensor[] = [];
  const reports: LoraLayerReport[] = [];
  const factors = loraFactors(deltas, C, F, opts.rank !== undefined ? { rank: opts.rank } : {});
  let rMax = 0;
  for (const f of factors) {
    const module = model.arch.editTarget(f.layer).module;
    tensors.push({ name: `base_model.model.${module}.lora_A.weight`, shape: [f.rank, F], data: f.a });
    tensors.push({ name: `base_model.model.${module}.lora_B.weight`, shape: [C, f.rank], data: f.b });
    reports.push({ layer: f.layer, module, rank: f.rank, numericalRank: f.numericalRank, retainedEnergy: f.retainedEnergy, exact: f.exact });
    rMax = Math.max(rMax, f.rank);
  }
  const layers = factors.map((f) => f.layer);
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
  writeDirectory(out, (tmp) => {
    writeJsonAtomic(path.join(tmp, "adapter_config.json"), config);
    writeFileAtomic(path.join(tmp, "adapter_model.safetensors"), encodeSafetensors(tensors, { format: "pt" }));
    writeJsonAtomic(path.join(tmp, "deltaedit_lora_report.json"), { layers: reports });
  });
  return reports;
}
