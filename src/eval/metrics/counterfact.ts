/**
 * CounterFact / MultiCounterFact metrics (evaluation spec §3.1–3.6, §3.10).
 *
 * Per case, with R = [prompt.format(subject)], Pp = paraphrase prompts, N = neighborhood prompts:
 *   nll_new(x) = nll(x, target_new), nll_true(x) = nll(x, target_true)          (score.ts)
 *   correct: top1(x, target_new) for x in R, Pp; top1(x, target_true) for x in N.
 * Neighborhood modes (Q1, §3.6), named in every result and summary:
 *   "standard"        — (target_true, target_new), top-1 on target_true (MEMIT / AlphaEdit).
 *   "deltaedit"       — input bos(ids(x_k)) ++ ids(" " + target_true), the "true" side scored
 *                       against the unedited model's greedy ids r_k (`neighborhoodReference`),
 *                       exactly as the official DeltaEdit code.
 *   "deltaedit-clean" — input bos(ids(x_k)) ++ r_k, scored against r_k (extra, not the default).
 * Case values (§3.3) and both success styles (§3.5: "larger" = *_success, "top" = *_acc) are
 * computed by `counterfactCaseValues`; `summarizeCounterfact` aggregates them (§3.4) and adds
 * `post_score` (§3.10).
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { generate } from "../../model/generate.js";
import type { LanguageModel } from "../../model/model.js";
import { rewritePrompt, type EvalRecord, type RequestedRewrite } from "../datasets/record.js";
import { aggregateCaseValues, harmonicScore, round2, type Aggregate, type Prefix } from "./aggregate.js";
import { referenceSamples, referenceScore, type AttributeSnippets, type TfidfModel } from "./consistency.js";
import { generateTexts, ngramEntropyOfTexts, type GenerationOptions } from "./fluency.js";
import { essencePerplexity } from "./general.js";
import { knowEditCaseValues, scoreKnowEdit, type KnowEditScores } from "./knowedit.js";
import { contextIds, deltaeditNeighborhoodRequest, requireTokenizer, scoreTokens, targetIds, type ScoreOptions, type ScoreRequest } from "./score.js";

/** How CounterFact neighborhood prompts are scored (§3.6). */
export type NeighborhoodMode = "standard" | "deltaedit" | "deltaedit-clean";
export const NEIGHBORHOOD_MODES: readonly NeighborhoodMode[] = ["standard", "deltaedit", "deltaedit-clean"];

/** `String(case_id)` → one greedy id list per neighborhood prompt (§1.5 cache format). */
export type NeighborhoodReference = Record<string, number[][]>;

/** Options of the generation test (fluency, consistency, essence). */
export interface GenerationTestOptions extends GenerationOptions {
  tfidf?: TfidfModel | null; // consistency needs both tfidf and snippets
  snippets?: AttributeSnippets | null;
}

/** Options of `evaluateCounterfactCase`. */
export interface CounterfactEvalOptions extends ScoreOptions {
  neighborhoodMode?: NeighborhoodMode; // default "standard"
  /** Required for the deltaedit modes (from `neighborhoodReference` on the UNEDITED model). */
  neighborhoodTrue?: NeighborhoodReference;
  /** Run the generation test when given (the references gate it on case_id % interval). */
  generation?: GenerationTestOptions | null;
  numEdits?: number; // batch size per edit step (result field num_edits)
  groupedCaseIds?: number[]; // case ids of the chunk (result field grouped_case_ids)
  time?: number; // seconds of the edit step
}

/** NLL values despite the reference's "probs" naming (§3.2). */
export interface PromptNll {
  target_new: number;
  target_true: number;
}

export interface CounterfactPost extends KnowEditScores {
  rewrite_prompts_probs: PromptNll[];
  paraphrase_prompts_probs: PromptNll[];
  neighborhood_prompts_probs: PromptNll[];
  rewrite_prompts_correct: boolean[];
  paraphrase_prompts_correct: boolean[];
  neighborhood_prompts_correct: boolean[];
  ngram_entropy?: number;
  reference_score?: number | null; // NaN (null in JSON) when undefined, §3.8
  text?: string[];
  essence_score?: number;
  essence_text?: string;
}

/** The per-case result record of §3.2 (file `<num_edits>_edits-case_<case_id>.json`). */
export interface CounterfactCaseResult {
  case_id: number;
  grouped_case_ids: number[];
  num_edits: number;
  requested_rewrite: RequestedRewrite;
  time: number;
  neighborhood_mode: NeighborhoodMode;
  post: CounterfactPost;
}

/** The result file name of §3.2. */
export function caseResultFileName(numEdits: number, caseId: number): string {
  return `${numEdits}_edits-case_${caseId}.json`;
}

// ---- DeltaEdit neighborhood reference (§1.5) ----

/**
 * Greedy continuations of the UNEDITED model on every neighborhood prompt: |ids(" " + target_true)|
 * new tokens from bos(ids(prompt)), EOS not stopping. Compute before any edit.
 */
export function neighborhoodReference(model: LanguageModel, records: readonly EvalRecord[], opts: { log?: (msg: string) => void } = {}): NeighborhoodReference {
  const tok = requireTokenizer(model, "neighborhoodReference");
  const out: NeighborhoodReference = {};
  records.forEach((r, i) => {
    const m = targetIds(tok, r.requestedRewrite.target_true.str).length;
    const prompts = r.neighborhoodPrompts.map((p) => contextIds(tok, p));
    out[String(r.caseId)] = m === 0 || prompts.length === 0 ? prompts.map(() => []) : generate(model, prompts, { maxNewTokens: m });
    if (opts.log && ((i + 1) % 100 === 0 || i + 1 === records.length)) opts.log(`neighborhood reference: ${i + 1}/${records.length} records`);
  });
  return out;
}

/** The reference's cache file name: `mcf_<model-name-last-path-part>_neighborhood_true.json`. */
export function neighborhoodReferenceFileName(modelName: string): string {
  return `mcf_${path.basename(modelName.replace(/[\\/]+$/, ""))}_neighborhood_true.json`;
}

export function writeNeighborhoodReference(file: string, ref: NeighborhoodReference): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(ref));
  fs.renameSync(tmp, file);
}

export function readNeighborhoodReference(file: string): NeighborhoodReference {
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new DeltaEditError("E_NOT_FOUND", `cannot read the neighborhood reference ${file}: ${(e as Error).message}`);
  }
  if (!data || typeof data !== "object" || Array.isArray(data)) throw new DeltaEditError("E_REQUEST", `${file}: expected an object case_id → list of id lists`);
  for (const [k, v] of Object.entries(data)) {
    if (!Array.isArray(v) || !v.every((l) => Array.isArray(l) && l.every((x) => Number.isInteger(x)))) throw new DeltaEditError("E_REQUEST", `${file}: case ${k}: expected a list of integer id lists`);
  }
  return data as NeighborhoodReference;
}

// ---- per-case evaluation ----

function pairs(newS: readonly { nll: number }[], trueS: readonly { nll: number }[]): PromptNll[] {
  return newS.map((s, i) => ({ target_new: s.nll, target_true: trueS[i]!.nll }));
}

/** Evaluate one case on the current (edited) model: the result record of §3.2. */
export function evaluateCounterfactCase(model: LanguageModel, record: EvalRecord, opts: CounterfactEvalOptions = {}): CounterfactCaseResult {
  const tok = requireTokenizer(model, "evaluateCounterfactCase");
  const mode = opts.neighborhoodMode ?? "standard";
  if (!NEIGHBORHOOD_MODES.includes(mode)) throw new DeltaEditError("E_ARG", `evaluateCounterfactCase: neighborhoodMode must be one of ${NEIGHBORHOOD_MODES.join(", ")}, got ${JSON.stringify(mode)}`);
  const rw = record.requestedRewrite;
  const tNew = targetIds(tok, rw.target_new.str);
  const tTrue = targetIds(tok, rw.target_true.str);
  const R = [rewritePrompt(record)];
  const Pp = record.paraphrasePrompts;
  const N = record.neighborhoodPrompts;
  const pre = (x: string): number[] => contextIds(tok, x);
  // requests: [R ++ Pp] × {new, true}, then N × {new, true}
  const rp = [...R, ...Pp].map(pre);
  const np = N.map(pre);
  const reqs: ScoreRequest[] = [];
  for (const p of rp) reqs.push({ prefix: p, continuation: tNew });
  for (const p of rp) reqs.push({ prefix: p, continuation: tTrue });
  for (const p of np) reqs.push({ prefix: p, continuation: tNew });
  if (mode === "standard") {
    for (const p of np) reqs.push({ prefix: p, continuation: tTrue });
  } else {
    const ref = opts.neighborhoodTrue?.[String(record.caseId)];
    if (!ref) throw new DeltaEditError("E_ARG", `evaluateCounterfactCase: neighborhood mode "${mode}" needs neighborhoodTrue for case ${record.caseId} (compute it with neighborhoodReference on the unedited model)`);
    if (ref.length !== N.length) throw new DeltaEditError("E_ARG", `evaluateCounterfactCase: case ${record.caseId}: neighborhoodTrue has ${ref.length} id lists, expected ${N.length} (one per neighborhood prompt)`);
    N.forEach((x, k) => reqs.push(deltaeditNeighborhoodRequest(tok, x, rw.target_true.str, ref[k]!, mode === "deltaedit-clean")));
  }
  const s = scoreTokens(model, reqs, opts);
  const nR = rp.length;
  const nN = np.length;
  const rpNew = s.slice(0, nR);
  const rpTrue = s.slice(nR, 2 * nR);
  const nNew = s.slice(2 * nR, 2 * nR + nN);
  const nTrue = s.slice(2 * nR + nN, 2 * nR + 2 * nN);
  const post: CounterfactPost = {
    rewrite_prompts_probs: pairs(rpNew.slice(0, 1), rpTrue.slice(0, 1)),
    paraphrase_prompts_probs: pairs(rpNew.slice(1), rpTrue.slice(1)),
    neighborhood_prompts_probs: pairs(nNew, nTrue),
    rewrite_prompts_correct: rpNew.slice(0, 1).map((x) => x.top1),
    paraphrase_prompts_correct: rpNew.slice(1).map((x) => x.top1),
    neighborhood_prompts_correct: nTrue.map((x) => x.top1),
  };
  if (opts.generation) Object.assign(post, generationTest(model, record, opts.generation));
  if (record.knowEdit) Object.assign(post, scoreKnowEdit(model, record, opts)); // KnowEdit portability / locality
  return {
    case_id: record.caseId,
    grouped_case_ids: opts.groupedCaseIds ?? [record.caseId],
    num_edits: opts.numEdits ?? 1,
    requested_rewrite: rw,
    time: opts.time ?? 0,
    neighborhood_mode: mode,
    post,
  };
}

/** Fluency (§3.7), consistency (§3.8) and essence (§3.9) of one case. */
export function generationTest(model: LanguageModel, record: EvalRecord, g: GenerationTestOptions): Pick<CounterfactPost, "ngram_entropy" | "reference_score" | "text" | "essence_score" | "essence_text"> {
  const text = generateTexts(model, record.generationPrompts, g);
  const out: Pick<CounterfactPost, "ngram_entropy" | "reference_score" | "text" | "essence_score" | "essence_text"> = { ngram_entropy: ngramEntropyOfTexts(text) };
  if (g.tfidf && g.snippets) {
    const rw = record.requestedRewrite;
    const samples = referenceSamples(g.snippets, rw.relation_id, rw.target_new.id);
    out.reference_score = referenceScore(g.tfidf, text, samples);
    const essence = samples.filter((x) => x.name === rw.subject);
    if (essence.length > 0) {
      out.essence_text = essence.map((x) => x.text).join(" ");
      out.essence_score = essencePerplexity(model, out.essence_text);
    }
  }
  out.text = text;
  return out;
}

// ---- case values and run summary ----

function mean(xs: readonly number[]): number | undefined {
  return xs.length === 0 ? undefined : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * The case values of §3.3 (keys without prefix). Groups with no prompt are omitted; a missing or
 * null `reference_score` of a case that ran the generation test becomes NaN (excluded, counted).
 */
export function counterfactCaseValues(r: Pick<CounterfactCaseResult, "post"> & { time?: number }): Record<string, number> {
  const p = r.post;
  const v: Record<string, number | undefined> = {
    rewrite_success: mean(p.rewrite_prompts_probs.map((x) => (x.target_true > x.target_new ? 1 : 0))),
    rewrite_diff: mean(p.rewrite_prompts_probs.map((x) => Math.exp(-x.target_new) - Math.exp(-x.target_true))),
    paraphrase_success: mean(p.paraphrase_prompts_probs.map((x) => (x.target_true > x.target_new ? 1 : 0))),
    paraphrase_diff: mean(p.paraphrase_prompts_probs.map((x) => Math.exp(-x.target_new) - Math.exp(-x.target_true))),
    neighborhood_success: mean(p.neighborhood_prompts_probs.map((x) => (x.target_true < x.target_new ? 1 : 0))),
    neighborhood_diff: mean(p.neighborhood_prompts_probs.map((x) => Math.exp(-x.target_true) - Math.exp(-x.target_new))),
    rewrite_acc: mean(p.rewrite_prompts_correct.map(Number)),
    paraphrase_acc: mean(p.paraphrase_prompts_correct.map(Number)),
    neighborhood_acc: mean(p.neighborhood_prompts_correct.map(Number)),
  };
  if (p.ngram_entropy !== undefined) v["ngram_entropy"] = p.ngram_entropy ?? NaN;
  if (p.text !== undefined || p.reference_score !== undefined) v["reference_score"] = p.reference_score ?? NaN;
  if (p.essence_score !== undefined) v["essence_score"] = p.essence_score;
  if (r.time !== undefined) v["time"] = r.time;
  Object.assign(v, knowEditCaseValues(p));
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = x;
  return out;
}

/** Run-level CounterFact summary (§3.4) with the modes behind the numbers. */
export interface CounterfactSummary extends Aggregate {
  dataset: "counterfact";
  prefix: Prefix;
  /** The modes behind the numbers (Q1, Q2). */
  modes: { neighborhood: NeighborhoodMode | "unknown"; success: "larger"; accuracy: "top" };
  /** `<prefix>_score`: harmonic mean of the rounded ES, PS, NS (§3.10); null when one is missing. */
  score: number | null;
}

/** Run-level summary (§3.4) of case results; they must share one neighborhood mode. */
export function summarizeCounterfact(results: readonly (Pick<CounterfactCaseResult, "post"> & { time?: number; neighborhood_mode?: NeighborhoodMode })[], opts: { prefix?: Prefix } = {}): CounterfactSummary {
  const prefix = opts.prefix ?? "post";
  const modes = [...new Set(results.map((r) => r.neighborhood_mode ?? "unknown"))];
  if (modes.length > 1) throw new DeltaEditError("E_ARG", `summarizeCounterfact: results mix neighborhood modes (${modes.join(", ")}); summarise each mode separately`);
  const agg = aggregateCaseValues(results.map(counterfactCaseValues), prefix);
  const es = agg.values[`${prefix}_rewrite_success`]?.[0];
  const ps = agg.values[`${prefix}_paraphrase_success`]?.[0];
  const ns = agg.values[`${prefix}_neighborhood_success`]?.[0];
  const ok = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x);
  const score = ok(es) && ok(ps) && ok(ns) ? round2(harmonicScore(es, ps, ns)) : null;
  return { dataset: "counterfact", prefix, ...agg, modes: { neighborhood: modes[0] ?? "standard", success: "larger", accuracy: "top" }, score };
}
