/**
 * deltaedit — the public API. Everything not exported here is private.
 *
 * The model runtime (load, forward, backward, generate), the editing library (`Editor`: an edit
 * session as an object; hparams files; presets; request formats), the evaluation (dataset loaders,
 * CounterFact / ZsRE / KnowEdit metrics, `runBench`). Errors are `DeltaEditError`s with a stable `code`.
 *
 * @module
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
export { writeGguf, type GgufDtype, type GgufWriteOptions, type GgufWriteReport } from "./model/gguf/writeModel.js";
export type { GgufVocabSummary } from "./model/gguf/vocab.js";

// ---- editing: the library API (an edit session as an object; docs/api/) ----
export {
  Editor,
  type EditorCreateOptions,
  type EditorOpenOptions,
  type EditInput,
  type EditRecordInput,
  type EditOptions,
  type EditResult,
  type AppliedRequest,
  type EvaluateOptions,
  type Evaluation,
} from "./eval/editor.js";
export type { BatchProgress, BatchRecord, FinishRecord, JournalRecord, Manifest, UndoRecord } from "./edit/session/session.js";
export type { ExportOptions, ExportResult } from "./edit/session/exportSession.js";
export type { LoraLayerReport } from "./edit/session/loraFactors.js";
export { generateText, type GenerateTextOptions, type GeneratedText } from "./model/generateText.js";
export { METHOD_NAMES, type MethodName, type RequestReport } from "./edit/methods/method.js";
export { PRESETS, presetByName, presetFor, type Preset } from "./edit/presets.js";
export { readHparamsFile, mapHparams, HPARAMS_RULES, type HparamsMapping, type MappedField, type IgnoredField } from "./edit/hparams.js";
export type { StatsOptions } from "./edit/statsProvider.js";
export { readRequestsFile, parseRequests, type EditRequest, type ParsedRequests, type Rejection } from "./edit/request.js";
export { detectRecordFormat, type RecordFormat } from "./edit/recordFormats.js";

// ---- evaluation: datasets, metrics, the bench ----
export { loadDatasetFile, type LoadDatasetFileOptions, type DetectedDataset } from "./eval/datasets/detect.js";
export type { DatasetKind, EvalRecord, KnowEditItem, LoadedDataset, RequestedRewrite, TargetRef, ZsreNeighborhoodItem } from "./eval/datasets/record.js";
export { ensureDataset } from "./eval/datasets/download.js";
export {
  evaluateCounterfactCase,
  neighborhoodReference,
  summarizeCounterfact,
  type CounterfactCaseResult,
  type CounterfactPost,
  type CounterfactSummary,
  type NeighborhoodMode,
  type NeighborhoodReference,
  type PromptNll,
} from "./eval/metrics/counterfact.js";
export { evaluateZsreCase, summarizeZsre, type ZsreCaseResult, type ZsrePost, type ZsreRoute, type ZsreSummary } from "./eval/metrics/zsre.js";
export { scoreKnowEdit, type KnowEditScores } from "./eval/metrics/knowedit.js";
export { summarize, type CaseResult } from "./eval/metrics/summary.js";
export { perplexity, factAccuracy, type Fact, type FactAccuracyResult, type PerplexityOptions, type PerplexityResult } from "./eval/metrics/general.js";
export { benchmark as runBench, type BenchmarkOptions as RunBenchOptions } from "./eval/benchmark.js";
export { checkpointSchedule, streamOrdering, type BenchProgress, type Protocol } from "./eval/bench.js";
export type { ResultsFile } from "./eval/report/json.js";
// ---- the DeltaEdit paper's experiments from one call (docs/paper.md) ----
export { runPaper, PAPER_METHODS, type PaperOptions, type PaperProgress, type PaperMethodSpec } from "./eval/paper/runPaper.js";
export { paperSchedule, type PaperSchedule } from "./eval/paper/schedule.js";
export type { OverlapStats } from "./eval/paper/overlap.js";
export type { ShiftStats } from "./eval/paper/representation.js";
export type {
  PaperReport, PaperMethodInfo, PaperTableRow, PaperNoisePoint, PaperOverlapMethod, PaperRepresentation, PaperBetaPoint, PaperCase, PaperStage, PaperVerdict, PaperVerdictRow,
} from "./eval/report/paperReport.js";
export { readPaperJson, validatePaperReport, paperVerdict } from "./eval/report/paperReport.js";
export type { BenchReport, BenchMethod, BenchCheckpoint, MetricStat } from "./eval/report/benchReport.js";

// ---- types referenced by the signatures above (documented with them) ----
export type { BatchShape, KVCacheLayer } from "./model/arch/architecture.js";
export type { Layout } from "./model/linear.js";
export type { Family } from "./model/config.js";
export type { BlasInfo } from "./kernels/ops.js";
export type { CoreTypeSource } from "./kernels/native.js";
export type { LossWithGrad, Distributions } from "./model/loss.js";
export type { TensorInfo, TensorToWrite, WriteDtype } from "./model/safetensors.js";
export type { CheckpointTensorInfo } from "./model/checkpoint.js";
export type { ResolveOptions } from "./model/hub.js";
export type { CheckpointLoadOptions } from "./model/model.js";
export type { BatchOutcome, LayerUpdate } from "./edit/methods/method.js";
export type { RequestRef } from "./edit/session/journal.js";
export type { TensorKind, UpdateMeta } from "./edit/session/store.js";
export type { ManifestModel } from "./edit/session/manifest.js";
export type { ContextTemplates } from "./edit/templates.js";
export type { TargetTokenizer } from "./edit/request.js";
export type { HparamsRule } from "./edit/hparams.js";
export type { NoiseKey, NoiseLevel, NoiseRoute, NoiseSummary, NoiseVariant } from "./eval/noise.js";
export type { AttributeSnippets, SnippetSample, TfidfModel } from "./eval/metrics/consistency.js";
export type { MetricInfo, BenchRun, BenchOrderings, SeedSpread } from "./eval/report/benchReport.js";
export type { Prefix, Aggregate } from "./eval/metrics/aggregate.js";
export type { EnsureOptions } from "./eval/datasets/download.js";
export type { CounterfactEvalOptions, GenerationTestOptions } from "./eval/metrics/counterfact.js";
export type { ZsreEvalOptions } from "./eval/metrics/zsre.js";
export type { ScoreOptions } from "./eval/metrics/score.js";

// ---- general ability: AlphaEdit's GLUE-style harness (docs/glue.md) ----
export {
  readGlueData,
  runGlue,
  type GlueData,
  type GlueItemResult,
  type GlueOptions,
  type GlueResult,
  type GlueTaskResult,
} from "./eval/glue/runGlue.js";
export { GLUE_TASKS, type GlueTask, type GlueTaskName } from "./eval/glue/tasks.js";
