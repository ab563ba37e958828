/**
 * General-capability checks that need no benchmark files (the GLUE harness of evaluation spec
 * §5 is separate):
 * - `perplexity`: held-out text; token-level mean NLL over all predicted tokens of all documents
 *   (each document = bos(ids(doc)) truncated to `maxTokens`; token t ≥ 1 is predicted from
 *   tokens < t), perplexity = exp(mean NLL).
 * - `factAccuracy`: facts never edited; a fact is correct iff the first token of
 *   ids(" " + target) is the argmax after bos(ids(prompt with "{}" → subject)).
 * - `essencePerplexity` (§3.9): the reference's formula, which divides the sum of the L − 1
 *   predicted log-probabilities by L (the number of tokens, BOS included), on the first 100 tokens.
 */
import { DeltaEditError } from "../../errors.js";
import type { LanguageModel } from "../../model/model.js";
import { contextIds, requireTokenizer, scoreTokens, targetIds, type ScoreOptions } from "./score.js";

/** Perplexity of held-out text under the current weights. */
export interface PerplexityResult {
  perplexity: number; // exp(meanNll)
  meanNll: number; // nats per predicted token
  tokens: number; // predicted tokens
  documents: number; // documents with ≥ 2 tokens (the others predict nothing and are skipped)
}

/** Options of `perplexity`. */
export interface PerplexityOptions extends ScoreOptions {
  /** Truncate each document to this many tokens (default: the model's maximum positions). */
  maxTokens?: number;
}

function docLogProbs(model: LanguageModel, docs: readonly string[], maxTokens: number, opts: ScoreOptions): { sums: number[]; counts: number[] } {
  const tok = requireTokenizer(model, "perplexity");
  const seqs = docs.map((d) => contextIds(tok, d).slice(0, maxTokens)).filter((s) => s.length >= 2);
  const scores = scoreTokens(model, seqs.map((s) => ({ prefix: s.slice(0, 1), continuation: s.slice(1) })), opts);
  return { sums: scores.map((s) => s.logProbs.reduce((a, b) => a + b, 0)), counts: scores.map((s) => s.logProbs.length) };
}

/** Held-out perplexity exp(mean NLL per predicted token) over `docs` (a general-capability check). */
export function perplexity(model: LanguageModel, docs: readonly string[], opts: PerplexityOptions = {}): PerplexityResult {
  const maxTokens = opts.maxTokens ?? model.config.maxPositions;
  if (!Number.isInteger(maxTokens) || maxTokens < 2) throw new DeltaEditError("E_ARG", `perplexity: maxTokens must be an integer ≥ 2, got ${maxTokens}`);
  const { sums, counts } = docLogProbs(model, docs, maxTokens, opts);
  const tokens = counts.reduce((a, b) => a + b, 0);
  if (tokens === 0) throw new DeltaEditError("E_ARG", `perplexity: no document has at least 2 tokens (${docs.length} documents)`);
  const meanNll = -sums.reduce((a, b) => a + b, 0) / tokens;
  return { perplexity: Math.exp(meanNll), meanNll, tokens, documents: counts.length };
}

/** §3.9: exp(−(1/L) Σ_{t=1}^{L−1} log p(x_t | x_<t)) on the first `maxTokens` (100) tokens. */
export function essencePerplexity(model: LanguageModel, text: string, maxTokens = 100): number {
  const tok = requireTokenizer(model, "essencePerplexity");
  const ids = contextIds(tok, text).slice(0, maxTokens);
  if (ids.length < 2) return NaN;
  const s = scoreTokens(model, [{ prefix: ids.slice(0, 1), continuation: ids.slice(1) }])[0]!;
  return Math.exp(-s.logProbs.reduce((a, b) => a + b, 0) / ids.length);
}

/** A fact that is never edited (control set of the accuracy check). */
export interface Fact {
  prompt: string; // may contain "{}" for the subject
  subject: string;
  target: string;
}

/** Fraction of facts whose target is the model's top-1 continuation, and which. */
export interface FactAccuracyResult {
  accuracy: number; // fraction in [0, 1]
  correct: boolean[]; // per fact
}

/** Accuracy on facts never edited: top-1 of `target` after the prompt with the subject filled in. */
export function factAccuracy(model: LanguageModel, facts: readonly Fact[], opts: ScoreOptions = {}): FactAccuracyResult {
  const tok = requireTokenizer(model, "factAccuracy");
  const reqs = facts.map((f, i) => {
    const t = targetIds(tok, f.target);
    if (t.length === 0) throw new DeltaEditError("E_ARG", `factAccuracy: fact ${i}: target ${JSON.stringify(f.target)} tokenises to nothing`);
    const context = f.prompt.includes("{}") ? f.prompt.replace("{}", f.subject) : f.prompt;
    return { prefix: contextIds(tok, context), continuation: [t[0]!] };
  });
  const correct = scoreTokens(model, reqs, opts).map((s) => s.top1);
  return { accuracy: correct.length === 0 ? NaN : correct.filter(Boolean).length / correct.length, correct };
}
