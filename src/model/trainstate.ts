/**
 * Trainer checkpoints: everything needed to continue a run bit-identically after a crash or a
 * `kill -9` (same thread count): the weights, both Adam moments, the optimizer step, the data
 * sampler state (Rng state + epoch + cursor) and the history of evaluations.
 *
 * Layout of a checkpoint directory:
 *   state-<step>.safetensors   F32 tensors "param.<name>", "adam.m.<name>", "adam.v.<name>"
 *   trainer-state.json         { format, version, step, tensors: "state-<step>.safetensors", sampler, … }
 *
 * Crash safety: the tensor file is written atomically (temp file + fsync + rename, by
 * `writeSafetensors`), then `trainer-state.json` is replaced atomically the same way; only then is
 * the previous tensor file deleted. At every instant `trainer-state.json` names a complete file.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import { AdamW, type AdamWParams } from "./adamw.js";
import type { ParamStore } from "./params.js";
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from "./safetensors.js";
import type { SamplerState } from "./windows.js";
import { writeFileAtomic } from "../util/fsio.js";

export const TRAIN_STATE_FORMAT = "deltaedit-train-state";
export const TRAIN_STATE_VERSION = 1;
const STATE_JSON = "trainer-state.json";

export interface TrainStateJson {
  format: string;
  version: number;
  step: number; // optimizer steps completed
  tensors: string; // file name of the tensor file, relative to the checkpoint directory
  sampler: SamplerState;
  adam: AdamWParams;
  /** Free-form record of the run (hyperparameters, evaluation history) kept across resumes. */
  run: Record<string, unknown>;
}

/** Atomically write a small text file (temp + fsync + rename; checked writes, see util/fsio). */
export { writeFileAtomic } from "../util/fsio.js";

/** Save a checkpoint of (params, optimizer, sampler) after `opt.step` updates into `dir`. */
export function saveTrainState(dir: string, params: ParamStore, opt: AdamW, sampler: SamplerState, run: Record<string, unknown>): void {
  fs.mkdirSync(dir, { recursive: true });
  const prev = readTrainStateJson(dir);
  const tensorsFile = `state-${String(opt.step).padStart(8, "0")}.safetensors`;
  const tensors: TensorToWrite[] = [];
  for (const spec of params.specs) {
    tensors.push({ name: `param.${spec.name}`, shape: spec.shape, data: params.get(spec.name) });
    tensors.push({ name: `adam.m.${spec.name}`, shape: spec.shape, data: opt.m.get(spec.name) });
    tensors.push({ name: `adam.v.${spec.name}`, shape: spec.shape, data: opt.v.get(spec.name) });
  }
  writeSafetensors(path.join(dir, tensorsFile), tensors, { format: TRAIN_STATE_FORMAT, step: String(opt.step) });
  const json: TrainStateJson = { format: TRAIN_STATE_FORMAT, version: TRAIN_STATE_VERSION, step: opt.step, tensors: tensorsFile, sampler, adam: { ...opt.hp }, run };
  writeFileAtomic(path.join(dir, STATE_JSON), JSON.stringify(json, null, 2) + "\n");
  if (prev !== null && prev.tensors !== tensorsFile) fs.rmSync(path.join(dir, prev.tensors), { force: true });
}

/** The checkpoint's JSON record, or null when `dir` holds no checkpoint. */
export function readTrainStateJson(dir: string): TrainStateJson | null {
  const file = path.join(dir, STATE_JSON);
  if (!fs.existsSync(file)) return null;
  let json: TrainStateJson;
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8")) as TrainStateJson;
  } catch (e) {
    throw new DeltaEditError("E_CHECKPOINT", `${file}: not valid JSON (${(e as Error).message})`, { cause: e, context: { file } });
  }
  if (json.format !== TRAIN_STATE_FORMAT || json.version !== TRAIN_STATE_VERSION) {
    throw new DeltaEditError("E_CHECKPOINT", `${file}: format ${JSON.stringify(json.format)} version ${json.version}, expected ${TRAIN_STATE_FORMAT} version ${TRAIN_STATE_VERSION}`, { context: { file } });
  }
  return json;
}

/**
 * Load a checkpoint into `params` (in place) and return the restored optimizer and the JSON record.
 * Every parameter of `params` must be present with its shape.
 */
export function loadTrainState(dir: string, params: ParamStore): { opt: AdamW; json: TrainStateJson } {
  const json = readTrainStateJson(dir);
  if (json === null) throw new DeltaEditError("E_NOT_FOUND", `${dir}: no ${STATE_JSON} (nothing to resume)`, { context: { dir } });
  const file = path.join(dir, json.tensors);
  const st = SafetensorsFile.open(file);
  try {
    const m = params.zerosLike();
    const v = params.zerosLike();
    const read = (name: string, into: Float32Array, shape: readonly number[]): void => {
      if (!st.has(name)) throw new DeltaEditError("E_CHECKPOINT", `${file}: missing tensor "${name}"`, { context: { file } });
      const info = st.info(name);
      if (info.dtype !== "F32" || info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new DeltaEditError("E_CHECKPOINT", `${file}: tensor "${name}" is ${info.dtype} [${info.shape.join(",")}], expected F32 [${shape.join(",")}]`, { context: { file } });
      }
      st.readInto(name, into);
    };
    for (const spec of params.specs) {
      read(`param.${spec.name}`, params.get(spec.name), spec.shape);
      read(`adam.m.${spec.name}`, m.get(spec.name), spec.shape);
      read(`adam.v.${spec.name}`, v.get(spec.name), spec.shape);
    }
    return { opt: new AdamW(params, json.adam, { m, v, step: json.step }), json };
  } finally {
    st.close();
  }
}
