/**
 * The teacher-forcing scoring primitive (evaluation spec §2).
 *
 * For context c and target t: P = bos(ids(c)), T = ids(" " + t) (`targetTokenIds`), m = |T|.
 * One pass over P ++ T; the logit row predicting T[j] is at position |P| − 1 + j, so
 *   nll(c, t)  = (1/m) Σ_j −lsm(logits[|P|−1+j])[T[j]]      (exp(−nll) = geometric-mean prob.)
 *   top1(c, t) = ∀ j: argmax(logits[|P|−1+j]) = T[j].
 *
 * Generalised request: the tokens FED after P (`continuation`) and the tokens SCORED
 * (`reference`, default = continuation) may differ; DeltaEdit's neighborhood mode (§3.6) feeds
 * ids(" " + target_true) but scores the unedited model's greedy tokens r_k.
 *
 * Implementation: rows are batched with right padding (results do not depend on the batch
 * size), the last fed token is dropped (its logits are never read), logits are computed only at
 * the m needed positions (`logits: Position[]`), and log-softmax is taken in float64.
 *
 * Dimension legend: B rows per pass, m target tokens of a request, V vocabulary.
 */
import { DeltaEditError } from "../../errors.js";
import { targetTokenIds } from "../../edit/request.js";
import { makeBatch, type Position } from "../../model/batch.js";
import { forward } from "../../model/forward.js";
import type { LanguageModel } from "../../model/model.js";
import type { TextTokenizer } from "../../model/tokenizer.js";

export interface ScoreRequest {
  prefix: readonly number[]; // P = bos(ids(c)), length ≥ 1
  continuation: readonly number[]; // tokens fed after P, length m ≥ 1
  reference?: readonly number[]; // tokens scored, length m (default: continuation)
}

export interface TokenScore {
  nll: number; // mean over j of −log p(reference[j])
  top1: boolean; // every reference token is the argmax
  logProbs: number[]; // (m) log p(reference[j] | P ++ continuation[0..j))
  argmax: number[]; // (m) argmax of each scored row
}

/** Options of the scoring primitive. */
export interface ScoreOptions {
  /** Rows per forward pass (default 16). Results do not depend on it. */
  batchSize?: number;
}

/** The model's tokenizer, or a clear error. */
export function requireTokenizer(model: LanguageModel, what: string): TextTokenizer {
  if (!model.tokenizer) throw new DeltaEditError("E_TOKENIZER", `${what}: the model was loaded without a tokenizer (tokenizer.json)`, { hint: "load the model from a directory that has tokenizer.json" });
  return model.tokenizer;
}

/** bos(ids(c)): the context ids, with BOS prepended when the tokenizer does so by default. */
export function contextIds(tok: TextTokenizer, c: string): number[] {
  const ids = tok.encode(c, { addSpecialTokens: false });
  return tok.addsBos && tok.bosTokenId !== null ? [tok.bosTokenId, ...ids] : ids;
}

/** ids(" " + t): the in-context target ids (no special tokens; see `targetTokenIds`). */
export function targetIds(tok: TextTokenizer, t: string): number[] {
  return targetTokenIds(tok, t);
}

/** log-softmax of `row` at index `k`, in float64. */
export function logProbAt(row: Float32Array, k: number): number {
  let mx = -Infinity;
  for (let v = 0; v < row.length; v++) if (row[v]! > mx) mx = row[v]!;
  let s = 0;
  for (let v = 0; v < row.length; v++) s += Math.exp(row[v]! - mx);
  return row[k]! - mx - Math.log(s);
}

function argmaxOf(row: Float32Array): number {
  let best = 0;
  for (let v = 1; v < row.length; v++) if (row[v]! > row[best]!) best = v;
  return best;
}

/** Score many requests; results are in request order and independent of `batchSize`. */
export function scoreTokens(model: LanguageModel, reqs: readonly ScoreRequest[], opts: ScoreOptions = {}): TokenScore[] {
  const bs = opts.batchSize ?? 16;
  if (!Number.isInteger(bs) || bs < 1) throw new DeltaEditError("E_ARG", `scoreTokens: batchSize must be a positive integer, got ${bs}`);
  const V = model.arch.vocab;
  const maxT = model.config.maxPositions;
  reqs.forEach((r, i) => {
    const m = r.continuation.length;
    if (r.prefix.length === 0) throw new DeltaEditError("E_ARG", `scoreTokens: request ${i} has an empty prefix (the first target token has no predicting position; an empty context needs a BOS token)`);
    if (m === 0) throw new DeltaEditError("E_ARG", `scoreTokens: request ${i} has an empty continuation (target tokenises to nothing)`);
    if (r.reference && r.reference.length !== m) throw new DeltaEditError("E_ARG", `scoreTokens: request ${i} has ${r.reference.length} reference tokens, expected ${m} (= continuation length)`);
    if (r.prefix.length + m - 1 > maxT) throw new DeltaEditError("E_ARG", `scoreTokens: request ${i} needs ${r.prefix.length + m - 1} positions, the model has ${maxT}`);
  });
  const out: TokenScore[] = new Array<TokenScore>(reqs.length);
  for (let b0 = 0; b0 < reqs.length; b0 += bs) {
    const group = reqs.slice(b0, b0 + bs);
    // each row: P ++ continuation[0..m−1) (the last fed token's logits are never read)
    const seqs = group.map((r) => [...r.prefix, ...r.continuation.slice(0, r.continuation.length - 1)]);
    const batch = makeBatch(seqs, model.tokenizer?.padTokenId ?? model.tokenizer?.eosTokenId ?? 0, V);
    const at: Position[] = [];
    group.forEach((r, row) => {
      for (let j = 0; j < r.continuation.length; j++) at.push({ row, pos: r.prefix.length - 1 + j });
    });
    const logits = forward(model, batch, { logits: at }).logits!; // (Σm, V)
    let p = 0;
    group.forEach((r, row) => {
      const ref = r.reference ?? r.continuation;
      const logProbs: number[] = [];
      const argmax: number[] = [];
      for (let j = 0; j < ref.length; j++, p++) {
        const lr = logits.subarray(p * V, (p + 1) * V);
        logProbs.push(logProbAt(lr, ref[j]!));
        argmax.push(argmaxOf(lr));
      }
      const nll = -logProbs.reduce((a, b) => a + b, 0) / ref.length;
      out[b0 + row] = { nll, top1: argmax.every((a, j) => a === ref[j]), logProbs, argmax };
    });
  }
  return out;
}

/** A (context, target) string pair of the primitive. */
export interface ContextTarget {
  context: string;
  target: string;
}

/** nll(c, t) and top1(c, t) for many pairs at once (§2). */
export function scorePairs(model: LanguageModel, pairs: readonly ContextTarget[], opts: ScoreOptions = {}): TokenScore[] {
  const tok = requireTokenizer(model, "scorePairs");
  return scoreTokens(model, pairs.map((p) => ({ prefix: contextIds(tok, p.context), continuation: targetIds(tok, p.target) })), opts);
}

/** nll(c, t) for one pair. */
export function nll(model: LanguageModel, context: string, target: string): number {
  return scorePairs(model, [{ context, target }])[0]!.nll;
}

/** top1(c, t) for one pair. */
export function top1(model: LanguageModel, context: string, target: string): boolean {
  return scorePairs(model, [{ context, target }])[0]!.top1;
}

/**
 * DeltaEdit-mode neighborhood request (§3.6): input bos(ids(x)) ++ ids(" " + target_true),
 * scored against the unedited model's greedy ids r (|r| must equal |ids(" " + target_true)|).
 * `clean: true` is the `deltaedit-clean` variant: input bos(ids(x)) ++ r.
 */
export function deltaeditNeighborhoodRequest(tok: TextTokenizer, prompt: string, targetTrue: string, reference: readonly number[], clean = false): ScoreRequest {
  const prefix = contextIds(tok, prompt);
  if (clean) return { prefix, continuation: reference, reference };
  const t = targetIds(tok, targetTrue);
  if (t.length !== reference.length) throw new DeltaEditError("E_ARG", `deltaedit neighborhood: reference has ${reference.length} tokens but ids(" " + ${JSON.stringify(targetTrue)}) has ${t.length} (they must match: §1.5)`);
  return { prefix, continuation: t, reference };
}
