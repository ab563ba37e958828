/**
 * A LanguageModel's current weights as one llama.cpp GGUF v3 file with its tokenizer embedded:
 * general.* keys, the family's hyperparameters and tensor layout (model/arch/<family>.ts
 * `ggufPlan`), the tokenizer (vocab.ts), then the tensors.
 *
 * Element types (`dtype`): "f32" writes every tensor as F32 (exact); "f16" and "q8_0" write the
 * 2-D tensors as F16 / Q8_0 and keep 1-D tensors (norms, biases, rope_freqs) F32, as the converter
 * does; a matrix whose rows are not whole Q8_0 blocks of 32 falls back to F16.
 *
 * The file is created atomically (fsio.createFileFromChunks): `file` must not exist, nothing is
 * left on any error, tensors are encoded one at a time while writing.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { createFileFromChunks } from "../../util/fsio.js";
import { architectureFor } from "../arch/index.js";
import type { LanguageModel } from "../model.js";
import { loadTokenizer } from "../tokenizer.js";
import { FILE_TYPE, ggufChunks, str, u32, type GgmlType, type GgufMetadata, type GgufTensor } from "./format.js";
import { planTensorData, type GgufArchitecture } from "./plan.js";
import { encodeTensorData } from "./quantize.js";
import { ggufVocab, type GgufVocabSummary } from "./vocab.js";

/** Element type of the matrices of a GGUF export: float32, float16, or llama.cpp's 8-bit Q8_0 blocks. */
export type GgufDtype = "f32" | "f16" | "q8_0";
export const GGUF_DTYPES: readonly GgufDtype[] = ["f32", "f16", "q8_0"];

/** Options of `writeGguf`. */
export interface GgufWriteOptions {
  /** Element type of the matrices (default "f16"; 1-D tensors are always F32). */
  dtype?: GgufDtype;
  /** general.name (default: the model directory's name). */
  name?: string;
}

/** What `writeGguf` wrote. */
export interface GgufWriteReport {
  /** The file written. */
  file: string;
  /** general.architecture: "llama" or "gpt2". */
  architecture: string;
  /** Element type of the matrices. */
  dtype: GgufDtype;
  /** Number of tensors in the file. */
  tensors: number;
  /** File size in bytes. */
  bytes: number;
  /** The embedded tokenizer. */
  tokenizer: GgufVocabSummary;
}

/** Refuse a GGUF output path that cannot be created: empty, existing, or in a missing directory (E_ARG naming it). */
export function checkGgufTarget(file: string): void {
  if (typeof file !== "string" || file.trim() === "") throw new DeltaEditError("E_ARG", `export: the output file must be a non-empty path, got ${JSON.stringify(file)}`);
  if (fs.existsSync(file)) throw new DeltaEditError("E_ARG", `export: ${file} already exists; a GGUF export never overwrites`, { hint: "choose a new --out file", context: { file } });
  const dir = path.dirname(path.resolve(file));
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new DeltaEditError("E_ARG", `export: directory ${dir} of ${file} does not exist`, { hint: "create it first", context: { file } });
}

/** The GGML type of a tensor of `shape` under `dtype`. */
export function tensorType(shape: readonly number[], dtype: GgufDtype): GgmlType {
  if (shape.length < 2 || dtype === "f32") return "F32";
  if (dtype === "q8_0" && shape[shape.length - 1]! % 32 === 0) return "Q8_0";
  return "F16";
}

/** The family's GGUF plan for `model` (E_CONFIG naming its config.json when it has none). */
export function ggufPlanOf(model: LanguageModel): GgufArchitecture {
  return architectureFor(model.config).ggufPlan(model.config, model.dir ? path.join(model.dir, "config.json") : "config.json");
}

/** general.* keys shared by models and adapters. */
export function generalMetadata(arch: string, type: "model" | "adapter", name: string): GgufMetadata {
  return [
    ["general.architecture", str(arch)],
    ["general.type", str(type)],
    ["general.name", str(name)],
  ];
}

/**
 * Write `model`'s weights (as they are now, edits included) as a llama.cpp GGUF v3 file with the
 * model directory's tokenizer embedded. `file` must not exist (its directory must); nothing is left
 * behind on an error. E_CONFIG naming config.json for an architecture that cannot be exported (Qwen2,
 * Llama with biases), E_TOKENIZER naming tokenizer.json for a tokenizer llama.cpp could not reproduce.
 */
export function writeGguf(model: LanguageModel, file: string, o: GgufWriteOptions = {}): GgufWriteReport {
  const dtype = o.dtype ?? "f16";
  if (!GGUF_DTYPES.includes(dtype)) throw new DeltaEditError("E_ARG", `export: GGUF dtype must be one of ${GGUF_DTYPES.join(", ")}, got ${JSON.stringify(dtype)}`, { context: { field: "dtype" } });
  checkGgufTarget(file);
  const plan = ggufPlanOf(model);
  if (!model.dir) throw new DeltaEditError("E_TOKENIZER", "export: the model was not loaded from a directory, so it has no tokenizer.json to embed in the GGUF file");
  const tok = model.tokenizer ?? loadTokenizer(model.dir);
  const vocab = ggufVocab(model.dir, model.config.vocabSize, tok);

  const tensors: GgufTensor[] = plan.tensors.map((m) => {
    const spec = model.params.spec(m.param);
    const type = tensorType(m.shape, dtype);
    return { name: m.name, shape: m.shape, type, bytes: () => encodeTensorData(planTensorData(m, model.params.get(m.param), spec.shape), type) };
  });
  for (const x of plan.extra) tensors.push({ name: x.name, shape: x.shape, type: "F32", bytes: () => encodeTensorData(x.data, "F32") });
  const quantized = tensors.some((t) => t.type === "Q8_0");
  const md: GgufMetadata = [
    ...generalMetadata(plan.name, "model", o.name ?? path.basename(path.resolve(model.dir))),
    ...plan.hparams,
    ["general.file_type", u32(FILE_TYPE[dtype === "f32" ? "F32" : dtype === "f16" ? "F16" : "Q8_0"])],
    ...(quantized ? ([["general.quantization_version", u32(2)]] as GgufMetadata) : []),
    ...vocab.metadata,
  ];
  createFileFromChunks(file, ggufChunks(md, tensors));
  return { file, architecture: plan.name, dtype, tensors: tensors.length, bytes: fs.statSync(file).size, tokenizer: vocab.summary };
}
