/**
 * A causal-tracing run over a list of facts: tokenize, keep the facts the model knows (the
 * object's first token is the argmax after the prompt), fix ν, trace each fact, summarize.
 * The result is a plain record (trace.json); nothing here prints.
 */
import { DeltaEditError } from "../../errors.js";
import type { Rejection } from "../../edit/request.js";
import type { LanguageModel } from "../../model/model.js";
import { cleanPredictions, drawNoise, factRng, subjectEmbeddingStd, traceFact, validateTraceOptions, type FactTrace, type TraceOptions } from "./causalTrace.js";
import { summarize, type TraceSummary } from "./effects.js";
import { tokenizeFact, type TokenizedFact, type TraceFact } from "./facts.js";

export const TRACE_FORMAT = "deltaedit-trace";
export const TRACE_VERSION = 1;

export interface TraceRunOptions extends TraceOptions {
  /** Trace at most this many known facts (file order); all when absent. */
  n?: number;
}

export interface DroppedFact {
  index: number;
  caseId: string;
  reason: string;
}

export interface TraceResult {
  format: typeof TRACE_FORMAT;
  version: typeof TRACE_VERSION;
  model: { name: string; hash: string; family: string; numLayers: number; hidden: number };
  options: { samples: number; noise: string; window: number; seed: number; n: number | null };
  /** σ of the subject embeddings over the traced facts (null when ν is fixed). */
  sigma: number | null;
  nu: number;
  examined: number; // facts looked at (file order) to find the traced ones
  rejected: Rejection[]; // malformed or untokenizable facts
  dropped: DroppedFact[]; // well-formed facts the model does not know
  facts: FactTrace[];
  summary: TraceSummary;
  seconds: number;
}

export interface TraceHooks {
  onFact?: (done: number, total: number, t: FactTrace) => void;
  log?: (msg: string) => void;
}

export function noiseLabel(o: TraceOptions): string {
  return o.noise.kind === "sigma" ? `${o.noise.multiplier}σ` : `${o.noise.nu}`;
}

export function runTrace(model: LanguageModel, facts: readonly TraceFact[], opts: TraceRunOptions, hooks: TraceHooks = {}): TraceResult {
  validateTraceOptions(opts);
  const t0 = performance.now();
  const tok = model.tokenizer;
  if (!tok) throw new DeltaEditError("E_TOKENIZER", `trace: model ${model.dir ?? ""} has no tokenizer.json`);
  const n = opts.n ?? Infinity;
  if (!(n >= 1)) throw new DeltaEditError("E_ARG", `trace: n must be ≥ 1, got ${opts.n}`);
  const rejected: Rejection[] = [];
  const dropped: DroppedFact[] = [];
  const kept: TokenizedFact[] = [];
  let examined = 0;
  const CHUNK = 32;
  for (let s = 0; s < facts.length && kept.length < n; s += CHUNK) {
    const part: TokenizedFact[] = [];
    for (const f of facts.slice(s, s + CHUNK)) {
      try {
        const tf = tokenizeFact(tok, f);
        if (tf.ids.length > model.config.maxPositions) throw new DeltaEditError("E_REQUEST", `fact #${f.index} (case_id ${f.caseId}): ${tf.ids.length} tokens exceed the model's ${model.config.maxPositions} positions`);
        part.push(tf);
      } catch (e) {
        if (!(e instanceof DeltaEditError)) throw e;
        rejected.push({ index: f.index, caseId: f.caseId, field: String(e.context["field"] ?? "(record)"), message: e.message });
        examined++;
      }
    }
    const preds = cleanPredictions(model, part, tok.padTokenId);
    for (let i = 0; i < part.length; i++) {
      if (kept.length >= n) break;
      const f = part[i]!;
      examined++;
      const p = preds[i]!;
      if (p.argmax === f.objectId) kept.push(f);
      else dropped.push({ index: f.fact.index, caseId: f.fact.caseId, reason: `predicts ${JSON.stringify(tok.decode([p.argmax]))}, not ${JSON.stringify(tok.decode([f.objectId]))} (p = ${p.pObject.toExponential(2)})` });
    }
  }
  if (kept.length === 0) {
    throw new DeltaEditError("E_REQUEST", `trace: none of the ${examined} facts examined is known by the model (the object's first token is never the argmax)`, {
      hint: rejected.length > 0 ? `${rejected.length} facts were rejected as malformed; see the messages above` : "check that the facts' objects are what this model answers",
    });
  }
  const sigma = opts.noise.kind === "sigma" ? subjectEmbeddingStd(model, kept) : null;
  const nu = opts.noise.kind === "sigma" ? opts.noise.multiplier * sigma! : opts.noise.nu;
  hooks.log?.(`trace: ${kept.length} known facts (${dropped.length} dropped as not known, ${rejected.length} rejected); ν = ${nu.toPrecision(4)}${sigma !== null ? ` (${noiseLabel(opts)}, σ = ${sigma.toPrecision(4)})` : ""}`);
  const C = model.arch.hidden;
  const traces: FactTrace[] = [];
  for (const f of kept) {
    const nS = f.subjectEnd - f.subjectStart;
    const eps = drawNoise(factRng(opts.seed, f.fact.index), opts.samples, nS, C, nu);
    const t = traceFact(model, f, eps, opts, tok.padTokenId);
    traces.push(t);
    hooks.onFact?.(traces.length, kept.length, t);
  }
  const cfg = model.config;
  return {
    format: TRACE_FORMAT,
    version: TRACE_VERSION,
    model: { name: model.dir ?? cfg.modelType, hash: model.identity?.hash ?? "", family: cfg.family, numLayers: cfg.numLayers, hidden: cfg.hiddenSize },
    options: { samples: opts.samples, noise: noiseLabel(opts), window: opts.window, seed: opts.seed, n: opts.n ?? null },
    sigma,
    nu,
    examined,
    rejected,
    dropped,
    facts: traces,
    summary: summarize(traces, cfg.numLayers),
    seconds: (performance.now() - t0) / 1000,
  };
}
