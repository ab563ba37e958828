/**
 * The uniform method interface. A method instance owns its cross-edit state (projectors,
 * solvers, DeltaEdit's noise statistics and accumulated update …) — it is created and held by
 * an EditSession, never by a module. `applyBatch` edits the model's weights in place and returns
 * the recorded factors of every update; `replay` re-applies recorded factors exactly (resume),
 * updating the state exactly as `applyBatch` did, so a resumed run is bit-identical.
 */
import type { LanguageModel } from "../../model/model.js";
import type { Rng } from "../../util/rng.js";
import type { EditRequest } from "../request.js";
import type { ContextTemplates } from "../templates.js";

/** The editing methods. */
export type MethodName = "rome" | "memit" | "alphaedit" | "deltaedit" | "ft" | "prune" | "rect";
/** Every method name. */
export const METHOD_NAMES: readonly MethodName[] = ["rome", "memit", "alphaedit", "deltaedit", "ft", "prune", "rect"];

/** Methods with a `variant` parameter, and its default (DeltaEdit §4.4: official code / paper; PRUNE ODD-20). */
const VARIANT_DEFAULTS: Readonly<Partial<Record<string, string>>> = Object.freeze({ deltaedit: "official", prune: "reference" });

/**
 * The variant a method's resolved parameters select when it is not the default, else null:
 * ("deltaedit", { variant: "paper" }) → "paper"; ("deltaedit", { variant: "official" }) → null.
 * Reports name a non-default variant with the method ("deltaedit (paper)", `methodDisplayName`).
 */
export function methodVariant(name: string, params: Readonly<Record<string, unknown>> | undefined): string | null {
  const dflt = VARIANT_DEFAULTS[name];
  const v = params?.["variant"];
  return dflt !== undefined && typeof v === "string" && v !== dflt ? v : null;
}

/** The method's name as reports print it: "deltaedit", or "deltaedit (paper)" for a non-default variant. */
export function methodDisplayName(name: string, params: Readonly<Record<string, unknown>> | undefined): string {
  const v = methodVariant(name, params);
  return v === null ? name : `${name} (${v})`;
}

/** What a method may use: the model, the session's templates, statistics and RNG, a log sink. */
export interface EditContext {
  model: LanguageModel;
  templates: ContextTemplates;
  /** Normalised second moment C0 of layer l's keys (F, F), from the unedited model. */
  secondMoment(layer: number): Float32Array;
  rng: Rng;
  log: (msg: string) => void;
}

/**
 * One update of one edited matrix. Low-rank: Δ = influence · activationᵀ
 * (influence R (C, N), activation X (F, N)); keys K (F, N) are the solver keys. Methods whose
 * applied update is not low-rank (FT, RECT masks, PRUNE) record `dense` (C, F) out × in instead.
 */
export interface LayerUpdate {
  layer: number;
  n: number; // N columns
  keys: Float32Array | null; // (F, N)
  influence: Float32Array | null; // (C, N)
  activation: Float32Array | null; // (F, N)
  dense: Float32Array | null; // (C, F) applied update when not exactly R·Xᵀ
  /** Parameter name of a bias update (FT on GPT-2) and its delta. */
  biasName?: string;
  biasDelta?: Float32Array;
}

/** Per-request record of the target optimisation (journal). */
export interface RequestReport {
  caseId: string;
  index: number;
  steps: number;
  stopReason: string;
  finalLoss: number;
  finalAvgProb: number;
  deltaNorm: number;
  t0Norm: number;
  /** DeltaEdit noise monitor (absent for other methods or before ΔW_acc exists). */
  noise?: { requestCount: number; nu: number | null; mu: number | null; variance: number | null; triggered: boolean; projectionRank: number };
  warnings: string[];
}

/** What a method returns for a batch: the updates, per-request reports, layer statistics, timings. */
export interface BatchOutcome {
  updates: LayerUpdate[];
  requests: RequestReport[];
  /** Per-layer ‖Δ‖_F and residual norms. */
  layerStats: { layer: number; deltaNorm: number; residualNorm: number }[];
  timings: { target: number; keys: number; solve: number; apply: number; total: number }; // seconds
  /** Method-specific, JSON-serialisable state needed by replay (e.g. noise observations). */
  replayData: Record<string, unknown>;
}

export interface EditMethod {
  readonly name: MethodName;
  readonly params: object;
  applyBatch(ctx: EditContext, requests: readonly EditRequest[]): BatchOutcome;
  replay(ctx: EditContext, outcome: BatchOutcome): void;
  /** Called once after the last batch (PRUNE's restraint); may return a final update. */
  finish?(ctx: EditContext): LayerUpdate | LayerUpdate[] | null;
}

/** Seconds since t0 (performance.now() ms). */
export function since(t0: number): number {
  return (performance.now() - t0) / 1000;
}
