/**
 * deltaedit — the public API. Everything not exported here is private.
 */
export { DeltaEditError, isDeltaEditError, type ErrorCode } from "./errors.js";
export { Rng } from "./util/rng.js";

// kernels
export { blasInfo, setThreads, getThreads } from "./kernels/ops.js";

// model runtime
export { LanguageModel, type LoadOptions } from "./model/model.js";
export type { ModelConfig, RopeScaling } from "./model/config.js";
export { parseModelConfig, readModelConfig } from "./model/config.js";
export { openCheckpoint, type Checkpoint, type ModelIdentity } from "./model/checkpoint.js";
export { SafetensorsFile, writeSafetensors } from "./model/safetensors.js";
export { resolveModelDir } from "./model/hub.js";
export { loadTokenizer, type TextTokenizer } from "./model/tokenizer.js";
export { makeBatch, type Batch, type Position } from "./model/batch.js";
export { forward, backward, type ForwardOptions, type ForwardResult, type BackwardOptions, type BackwardResult, type Injection, type TapRequest, type Taps } from "./model/forward.js";
export type { Patch, PatchKind } from "./model/forward.js";
export { nllLoss, klLoss, logSoftmax } from "./model/loss.js";
export { generate, type GenerateOptions } from "./model/generate.js";
export type { EditTarget } from "./model/arch/architecture.js";
