/**
 * A Hugging Face model directory: config.json + safetensors weights, single-file
 * (`model.safetensors`) or sharded (`model.safetensors.index.json` + shards).
 *
 * Tensors are read lazily, one at a time, through the safetensors reader (no whole-file loads).
 * Architecture knowledge (which tensor is what, Conv1D vs Linear orientation) is not here: see
 * `model/arch/<family>.ts`.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import { brief, readBoundedJson } from "./boundedjson.js";
import { readModelConfig, type ModelConfig } from "./config.js";
import { unsafeRelativePathReason } from "./relpath.js";
import { SafetensorsFile } from "./safetensors.js";

/** A model's identity: a fingerprint hash, its type and its weight files. */
export interface ModelIdentity {
  /**
   * sha256 fingerprint (hex) of config.json, every weight file's name, size and header, and
   * 16 evenly spaced 64 KiB samples of each weight file. Cheap (≈1 MiB read per file) and changes
   * whenever weights are re-exported or edited in a sampled region or header; it is a
   * fingerprint, not a full-content hash.
   */
  hash: string;
  modelType: string;
  /** Weight files (relative to the model directory) with their sizes. */
  files: { name: string; bytes: number }[];
}

/** One tensor of a checkpoint: name, dtype, shape and the file holding it. */
export interface CheckpointTensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Weight file (relative to the model directory) holding the tensor. */
  file: string;
}

/** A Hugging Face checkpoint directory opened for reading (safetensors, sharded or not). */
export interface Checkpoint {
  dir: string;
  config: ModelConfig;
  /** Every tensor name. */
  names(): string[];
  /** Whether the checkpoint holds tensor `name`. */
  has(name: string): boolean;
  /** Dtype, shape and file of tensor `name`. */
  info(name: string): CheckpointTensorInfo;
  /** Read tensor `name` as float32 into `out` (its element count). */
  readInto(name: string, out: Float32Array): void;
  /** Read tensor `name` as float32. */
  read(name: string): Float32Array;
  /** Weight files relative to `dir`, sorted. */
  weightFiles(): string[];
  /** The model's fingerprint and files. */
  identity(): ModelIdentity;
  /** Close the weight files. */
  close(): void;
}

const SINGLE_FILE = "model.safetensors";
const INDEX_FILE = "model.safetensors.index.json";
const IDENTITY_SAMPLES = 16;
const IDENTITY_SAMPLE_BYTES = 64 * 1024;

/** Opens the model directory `dir`; throws E_NOT_FOUND / E_CONFIG / E_CHECKPOINT naming the file at fault. */
export function openCheckpoint(dir: string): Checkpoint {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new DeltaEditError("E_NOT_FOUND", `${dir}: model directory not found`, {
      hint: "pass a Hugging Face model directory (config.json, model.safetensors, tokenizer.json) or a Hub repo id such as gpt2-xl",
      context: { dir },
    });
  }
  const config = readModelConfig(dir);
  const { shards, tensorFile } = openWeights(dir);
  return new HfCheckpoint(dir, config, shards, tensorFile);
}

function openWeights(dir: string): { shards: Map<string, SafetensorsFile>; tensorFile: Map<string, string> } {
  const indexPath = path.join(dir, INDEX_FILE);
  const singlePath = path.join(dir, SINGLE_FILE);
  const shards = new Map<string, SafetensorsFile>();
  const tensorFile = new Map<string, string>(); // tensor name → shard file name
  try {
    if (fs.existsSync(indexPath)) {
      const weightMap = readWeightMap(indexPath);
      const files = [...new Set(weightMap.values())].sort();
      for (const f of files) {
        const p = path.join(dir, f);
        if (!fs.existsSync(p)) {
          throw new DeltaEditError("E_CHECKPOINT", `${indexPath}: shard "${f}" listed in weight_map does not exist in ${dir}`, {
            hint: "the download is incomplete; re-download the model or remove the directory from the cache",
            context: { file: indexPath, shard: f },
          });
        }
        shards.set(f, SafetensorsFile.open(p));
      }
      for (const [f, st] of shards) {
        for (const name of st.names()) {
          const other = tensorFile.get(name);
          if (other !== undefined) {
            throw new DeltaEditError("E_CHECKPOINT", `${indexPath}: tensor "${name}" is present in two shards, "${other}" and "${f}"`, {
              context: { file: indexPath, tensor: name },
            });
          }
          tensorFile.set(name, f);
        }
      }
      for (const [name, f] of weightMap) {
        if (tensorFile.get(name) !== f) {
          throw new DeltaEditError("E_CHECKPOINT", `${indexPath}: weight_map puts tensor "${name}" in "${f}" but that shard's header does not contain it`, {
            context: { file: indexPath, tensor: name, shard: f },
          });
        }
      }
    } else if (fs.existsSync(singlePath)) {
      const st = SafetensorsFile.open(singlePath);
      shards.set(SINGLE_FILE, st);
      for (const name of st.names()) tensorFile.set(name, SINGLE_FILE);
    } else {
      throw missingWeights(dir);
    }
  } catch (e) {
    for (const st of shards.values()) st.close();
    throw e;
  }
  return { shards, tensorFile };
}

function readWeightMap(indexPath: string): Map<string, string> {
  const json = readBoundedJson(indexPath, "E_CHECKPOINT")?.value;
  const wm = typeof json === "object" && json !== null ? (json as Record<string, unknown>)["weight_map"] : undefined;
  if (typeof wm !== "object" || wm === null || Array.isArray(wm)) {
    throw new DeltaEditError("E_CHECKPOINT", `${indexPath}: missing "weight_map" object`, { context: { file: indexPath } });
  }
  const out = new Map<string, string>();
  for (const [name, f] of Object.entries(wm as Record<string, unknown>)) {
    const why = unsafeRelativePathReason(f);
    if (why !== null) {
      throw new DeltaEditError("E_CHECKPOINT", `${indexPath}: weight_map["${name}"] must be a shard file name inside the model directory, got ${brief(f)} (${why})`, {
        context: { file: indexPath, tensor: name },
      });
    }
    out.set(name, f as string);
  }
  return out;
}

function missingWeights(dir: string): DeltaEditError {
  const entries = fs.readdirSync(dir);
  const torchFiles = entries.filter((e) => e.endsWith(".bin") || e.endsWith(".pt") || e.endsWith(".pth") || e === "pytorch_model.bin.index.json");
  if (torchFiles.length > 0) {
    return new DeltaEditError("E_CHECKPOINT", `${dir}: only PyTorch weights (${torchFiles.join(", ")}) found; deltaedit requires safetensors (${SINGLE_FILE} or ${INDEX_FILE})`, {
      hint:
        `convert once with Python: python -c "from transformers import AutoModelForCausalLM as M; ` +
        `M.from_pretrained('${dir}').save_pretrained('${dir}-safetensors', safe_serialization=True)" ` +
        `and copy the tokenizer files next to it`,
      context: { dir },
    });
  }
  return new DeltaEditError("E_NOT_FOUND", `${dir}: no weights found (expected ${SINGLE_FILE} or ${INDEX_FILE})`, {
    hint: "pass a complete Hugging Face model directory or a Hub repo id",
    context: { dir },
  });
}

class HfCheckpoint implements Checkpoint {
  private cachedIdentity: ModelIdentity | null = null;

  constructor(
    readonly dir: string,
    readonly config: ModelConfig,
    private readonly shards: Map<string, SafetensorsFile>,
    private readonly tensorFile: Map<string, string>,
  ) {}

  names(): string[] {
    return [...this.tensorFile.keys()];
  }

  has(name: string): boolean {
    return this.tensorFile.has(name);
  }

  info(name: string): CheckpointTensorInfo {
    const { st, file } = this.locate(name);
    const t = st.info(name);
    return { name, dtype: t.dtype, shape: t.shape, file };
  }

  readInto(name: string, out: Float32Array): void {
    this.locate(name).st.readInto(name, out);
  }

  read(name: string): Float32Array {
    return this.locate(name).st.read(name);
  }

  weightFiles(): string[] {
    return [...this.shards.keys()].sort();
  }

  identity(): ModelIdentity {
    if (this.cachedIdentity === null) this.cachedIdentity = this.computeIdentity();
    return { ...this.cachedIdentity, files: this.cachedIdentity.files.map((f) => ({ ...f })) };
  }

  close(): void {
    for (const st of this.shards.values()) st.close();
  }

  private locate(name: string): { st: SafetensorsFile; file: string } {
    const file = this.tensorFile.get(name);
    const st = file === undefined ? undefined : this.shards.get(file);
    if (file === undefined || st === undefined) {
      throw new DeltaEditError("E_NOT_FOUND", `${this.dir}: checkpoint has no tensor "${name}"`, { context: { dir: this.dir, tensor: name } });
    }
    return { st, file };
  }

  private computeIdentity(): ModelIdentity {
    const h = crypto.createHash("sha256");
    h.update("deltaedit-model-identity-v1\0");
    h.update(fs.readFileSync(path.join(this.dir, "config.json")));
    const files: { name: string; bytes: number }[] = [];
    const sample = Buffer.alloc(IDENTITY_SAMPLE_BYTES);
    for (const name of this.weightFiles()) {
      const st = this.shards.get(name) as SafetensorsFile;
      files.push({ name, bytes: st.fileSize });
      h.update(`\0file\0${name}\0${st.fileSize}\0`);
      h.update(st.rawHeader());
      const len = Math.min(IDENTITY_SAMPLE_BYTES, st.fileSize);
      const fd = fs.openSync(st.path, "r");
      try {
        for (let i = 0; i < IDENTITY_SAMPLES; i++) {
          const pos = Math.floor((i * (st.fileSize - len)) / (IDENTITY_SAMPLES - 1));
          let got = 0;
          while (got < len) {
            const n = fs.readSync(fd, sample, got, len - got, pos + got);
            if (n === 0) break;
            got += n;
          }
          h.update(sample.subarray(0, got));
        }
      } finally {
        fs.closeSync(fd);
      }
    }
    return { hash: h.digest("hex"), modelType: this.config.modelType, files };
  }
}
