/**
 * ZsRE token accuracies (evaluation spec §4). a = ids(" " + answers[0]) (no BOS), m = |a|.
 * - rewrite_prompts_correct[j]: argmax after src + a[0..j) equals a[j] (Efficacy tokens);
 * - paraphrase_prompts_correct[j]: the same after `rephrase` (Generalization tokens);
 * - neighborhood_prompts_correct[j]: argmax after loc + "?" + b[0..j) equals b[j] (Specificity
 *   tokens; ground-truth NQ answer, not the unedited model's output).
 *
 * Routes (Q10):
 * - "teacher-forced" (clean default): one pass over bos(ids(q)) ++ a, reading positions |P|−1+j.
 * - "string" (reference compatibility): each context is rebuilt as the STRING
 *   q + decode(a[0..j)) (ZsRE neighborhood: the item's prompt) and re-tokenised; the prediction
 *   is the argmax at the last position of bos(ids(context)).
 * `retokenizeTargets: true` compares with the first id of ids(decode(a[j])) (no special tokens)
 * instead of a[j], the reference's workaround for byte-level pieces.
 */
import { DeltaEditError } from "../../errors.js";
import type { LanguageModel } from "../../model/model.js";
import type { TextTokenizer } from "../../model/tokenizer.js";
import type { EvalRecord, RequestedRewrite } from "../datasets/record.js";
import { decodeIds } from "../datasets/zsre.js";
import { aggregateCaseValues, type Aggregate, type Prefix } from "./aggregate.js";
import { knowEditCaseValues, scoreKnowEdit, type KnowEditScores } from "./knowedit.js";
import { contextIds, requireTokenizer, scoreTokens, targetIds, type ScoreOptions, type ScoreRequest } from "./score.js";

/** How ZsRE token accuracies are computed (teacher-forced, or the reference's string route). */
export type ZsreRoute = "teacher-forced" | "string";

/** Options of `evaluateZsreCase`. */
export interface ZsreEvalOptions extends ScoreOptions {
  route?: ZsreRoute; // default "teacher-forced"
  retokenizeTargets?: boolean; // default false
  numEdits?: number;
  groupedCaseIds?: number[];
  time?: number;
}

export interface ZsrePost extends KnowEditScores {
  rewrite_prompts_correct: boolean[];
  paraphrase_prompts_correct: boolean[];
  neighborhood_prompts_correct: boolean[];
}

/** The per-case ZsRE result record. */
export interface ZsreCaseResult {
  case_id: number;
  grouped_case_ids: number[];
  num_edits: number;
  requested_rewrite: RequestedRewrite;
  time: number;
  route: ZsreRoute;
  retokenize_targets: boolean;
  post: ZsrePost;
}

/** One question with its expected answer ids. */
interface TokenQuestion {
  question: string; // the context before the answer
  answer: readonly number[]; // ids fed / expected, one prediction per id
  prompts?: readonly string[]; // string route: the context of each j (default: question + decode(answer[0..j)))
}

function expectedIds(tok: TextTokenizer, answer: readonly number[], retokenize: boolean): number[] {
  if (!retokenize) return [...answer];
  return answer.map((id) => tok.encode(tok.decode([id]), { addSpecialTokens: false })[0] ?? -1);
}

/** Per-token correctness of each question (order kept). */
function tokenCorrect(model: LanguageModel, tok: TextTokenizer, qs: readonly TokenQuestion[], opts: ZsreEvalOptions): boolean[][] {
  const route = opts.route ?? "teacher-forced";
  const retok = opts.retokenizeTargets ?? false;
  if (route === "teacher-forced") {
    const reqs: ScoreRequest[] = qs.map((q) => ({ prefix: contextIds(tok, q.question), continuation: q.answer }));
    const s = scoreTokens(model, reqs, opts);
    return qs.map((q, i) => {
      const exp = expectedIds(tok, q.answer, retok);
      return s[i]!.argmax.map((a, j) => a === exp[j]);
    });
  }
  if (route !== "string") throw new DeltaEditError("E_ARG", `ZsRE route must be "teacher-forced" or "string", got ${JSON.stringify(route)}`);
  // string route: one request per (question, j). The continuation [a[j]] is never fed (the scorer
  // drops the last token); it only asks for the logits at the context's last position |P|−1.
  const reqs: ScoreRequest[] = [];
  const exps: number[][] = [];
  for (const q of qs) {
    const exp = expectedIds(tok, q.answer, retok);
    exps.push(exp);
    q.answer.forEach((id, j) => {
      const ctx = q.prompts?.[j] ?? q.question + decodeIds(tok, q.answer.slice(0, j));
      reqs.push({ prefix: contextIds(tok, ctx), continuation: [id] });
    });
  }
  const s = scoreTokens(model, reqs, opts);
  let k = 0;
  return qs.map((q, i) => q.answer.map((_, j) => s[k++]!.argmax[0] === exps[i]![j]));
}

/** Evaluate one ZsRE case on the current model. */
export function evaluateZsreCase(model: LanguageModel, record: EvalRecord, opts: ZsreEvalOptions = {}): ZsreCaseResult {
  const tok = requireTokenizer(model, "evaluateZsreCase");
  if (record.kind !== "zsre" || !record.zsreNeighborhood) throw new DeltaEditError("E_ARG", `evaluateZsreCase: case ${record.caseId} is not a ZsRE record (kind "${record.kind}")`);
  const rw = record.requestedRewrite;
  const a = targetIds(tok, rw.target_new.str);
  if (a.length === 0) throw new DeltaEditError("E_ARG", `evaluateZsreCase: case ${record.caseId}: answer ${JSON.stringify(rw.target_new.str)} tokenises to nothing`);
  const src = rw.prompt.replace("{}", rw.subject);
  const qs: TokenQuestion[] = [
    { question: src, answer: a },
    ...record.paraphrasePrompts.map((p) => ({ question: p, answer: a })),
    { question: record.zsreNeighborhood.question, answer: record.zsreNeighborhood.answerIds, prompts: record.neighborhoodItems.map((it) => it.prompt) },
  ];
  const c = tokenCorrect(model, tok, qs, opts);
  return {
    case_id: record.caseId,
    grouped_case_ids: opts.groupedCaseIds ?? [record.caseId],
    num_edits: opts.numEdits ?? 1,
    requested_rewrite: rw,
    time: opts.time ?? 0,
    route: opts.route ?? "teacher-forced",
    retokenize_targets: opts.retokenizeTargets ?? false,
    post: {
      rewrite_prompts_correct: c[0]!,
      paraphrase_prompts_correct: c.slice(1, -1).flat(),
      neighborhood_prompts_correct: c[c.length - 1]!,
      ...(record.knowEdit ? scoreKnowEdit(model, record, opts) : {}), // KnowEdit portability / locality
    },
  };
}

function mean(xs: readonly boolean[]): number | undefined {
  return xs.length === 0 ? undefined : xs.filter(Boolean).length / xs.length;
}

/** Case values of §4: rewrite_acc, paraphrase_acc, neighborhood_acc (+ time). */
export function zsreCaseValues(r: Pick<ZsreCaseResult, "post"> & { time?: number }): Record<string, number> {
  const out: Record<string, number> = {};
  const put = (k: string, v: number | undefined): void => {
    if (v !== undefined) out[k] = v;
  };
  put("rewrite_acc", mean(r.post.rewrite_prompts_correct));
  put("paraphrase_acc", mean(r.post.paraphrase_prompts_correct));
  put("neighborhood_acc", mean(r.post.neighborhood_prompts_correct));
  put("time", r.time);
  Object.assign(out, knowEditCaseValues(r.post));
  return out;
}

/** Run-level ZsRE summary with its scoring modes. */
export interface ZsreSummary extends Aggregate {
  dataset: "zsre";
  prefix: Prefix;
  modes: { route: ZsreRoute | "unknown"; retokenizeTargets: boolean | "unknown"; accuracy: "top" };
}

/** Run-level ZsRE summary: mean and population std ×100 (Eff., Gen., Spe.). */
export function summarizeZsre(results: readonly (Pick<ZsreCaseResult, "post"> & { time?: number; route?: ZsreRoute; retokenize_targets?: boolean })[], opts: { prefix?: Prefix } = {}): ZsreSummary {
  const prefix = opts.prefix ?? "post";
  const routes = [...new Set(results.map((r) => r.route ?? "unknown"))];
  const retok = [...new Set(results.map((r) => r.retokenize_targets ?? "unknown"))];
  if (routes.length > 1 || retok.length > 1) throw new DeltaEditError("E_ARG", `summarizeZsre: results mix scoring modes (route ${routes.join("/")}, retokenize ${retok.join("/")}); summarise each separately`);
  return { dataset: "zsre", prefix, ...aggregateCaseValues(results.map(zsreCaseValues), prefix), modes: { route: routes[0] ?? "teacher-forced", retokenizeTargets: retok[0] ?? false, accuracy: "top" } };
}
