/**
 * Which checkpoint tensor fills which parameter, decided and checked before any parameter buffer is
 * allocated. The checkpoint must match config.json exactly:
 *
 * - every parameter of the architecture is present with its expected shape (else E_CHECKPOINT
 *   naming the tensor and its file);
 * - no tensor belongs to a block ≥ the config's layer count (a config with fewer layers than the
 *   checkpoint would otherwise run a silently truncated model): E_CHECKPOINT naming the first such
 *   tensor, the config field and how many blocks the checkpoint holds;
 * - every other tensor is used, or is a known buffer / tied copy (`isIgnoredTensor` of the
 *   architecture entry): anything else is E_CHECKPOINT naming the first unused tensor.
 */
import path from "node:path";
import { DeltaEditError } from "../errors.js";
import type { ArchitectureEntry } from "./arch/index.js";
import type { Checkpoint } from "./checkpoint.js";
import type { ModelConfig } from "./config.js";
import type { ParamSpec } from "./params.js";

export interface LoadStep {
  spec: ParamSpec;
  /** Checkpoint tensor name that holds the parameter. */
  tensor: string;
}

/** Orders tensor names by block index (non-block tensors first), then by name. */
function byBlockThenName(entry: ArchitectureEntry): (a: string, b: string) => number {
  return (a, b) => (entry.blockIndexOf(a) ?? -1) - (entry.blockIndexOf(b) ?? -1) || (a < b ? -1 : a > b ? 1 : 0);
}

export function planParameterLoad(ckpt: Checkpoint, cfg: ModelConfig, entry: ArchitectureEntry): LoadStep[] {
  const where = ckpt.weightFiles().join(", ");
  const steps: LoadStep[] = [];
  const used = new Set<string>();
  for (const spec of entry.paramSpecs(cfg)) {
    const found = entry.checkpointNames(spec, cfg).find((n) => ckpt.has(n));
    if (found === undefined) {
      throw new DeltaEditError("E_CHECKPOINT", `${where}: missing tensor "${spec.name}" (expected shape [${spec.shape.join(",")}]) for ${cfg.modelType} with ${cfg.numLayers} layers`, {
        hint: "the checkpoint does not match config.json, or it is not a supported architecture",
        context: { dir: ckpt.dir, tensor: spec.name },
      });
    }
    const info = ckpt.info(found);
    if (info.shape.length !== spec.shape.length || info.shape.some((d, i) => d !== spec.shape[i])) {
      throw new DeltaEditError(
        "E_CHECKPOINT",
        `${info.file}: tensor "${found}" has shape [${info.shape.join(",")}], expected [${spec.shape.join(",")}]${cfg.family === "gpt2" ? " (GPT-2 Conv1D layout: [in, out])" : " (torch Linear layout: [out, in])"}`,
        { context: { file: info.file, tensor: found } },
      );
    }
    used.add(found);
    steps.push({ spec, tensor: found });
  }

  const unused = ckpt.names().filter((n) => !used.has(n));
  const beyond = unused.filter((n) => (entry.blockIndexOf(n) ?? -1) >= cfg.numLayers).sort(byBlockThenName(entry));
  if (beyond.length > 0) {
    const first = beyond[0]!;
    const blocks = 1 + beyond.reduce((m, n) => Math.max(m, entry.blockIndexOf(n)!), 0);
    throw new DeltaEditError(
      "E_CHECKPOINT",
      `${path.join(ckpt.dir, ckpt.info(first).file)}: tensor "${first}" belongs to block ${entry.blockIndexOf(first)}, but config.json ${entry.layersField} = ${cfg.numLayers} ` +
        `(the checkpoint holds ${blocks} blocks; ${beyond.length} tensor(s) of blocks ≥ ${cfg.numLayers} would be ignored)`,
      {
        hint: `set ${entry.layersField} in config.json to the checkpoint's number of blocks`,
        context: { dir: ckpt.dir, tensor: first, field: entry.layersField, numLayers: cfg.numLayers, checkpointBlocks: blocks },
      },
    );
  }
  const unknown = unused.filter((n) => !entry.isIgnoredTensor(n)).sort(byBlockThenName(entry));
  if (unknown.length > 0) {
    const first = unknown[0]!;
    const more = unknown.length > 1 ? ` (and ${unknown.length - 1} more unused tensor(s))` : "";
    throw new DeltaEditError("E_CHECKPOINT", `${path.join(ckpt.dir, ckpt.info(first).file)}: tensor "${first}" is not a parameter of ${cfg.modelType} as configured in config.json${more}`, {
      hint: "the checkpoint does not match config.json (a different architecture, or options such as attention_bias / mlp_bias / tie_word_embeddings that disagree with the weights)",
      context: { dir: ckpt.dir, tensor: first, unused: unknown.length },
    });
  }
  return steps;
}
