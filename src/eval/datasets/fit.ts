/**
 * Evaluation records whose prompts do not fit the model's context are rejected by case id before a
 * bench starts (a prompt longer than the model's positions would otherwise abort the whole run at its
 * first checkpoint). Rows measured: every scored prompt (rewrite, paraphrases, neighborhood, ZsRE
 * question) with its longest scored continuation appended, every KnowEdit item with its answer, and every
 * generation prompt.
 */
import { spacedTarget } from "../../edit/request.js";
import type { TextTokenizer } from "../../model/tokenizer.js";
import { rejection, rewritePrompt, type EvalRecord, type Rejection } from "./record.js";

/** Tokens of the longest row the metrics run for `r`. */
export function longestEvalRow(r: EvalRecord, tok: TextTokenizer): number {
  const len = (s: string): number => tok.encode(s).length;
  const targets = [r.request.targetNew, r.request.targetTrue ?? "", ...r.neighborhoodItems.map((n) => n.target)].filter((t) => t.length > 0);
  const longestTarget = Math.max(0, ...targets.map((t) => len(spacedTarget(t))));
  const prompts = [rewritePrompt(r), ...r.paraphrasePrompts, ...r.neighborhoodPrompts, ...r.neighborhoodItems.map((n) => n.prompt), ...(r.zsreNeighborhood ? [r.zsreNeighborhood.question] : [])];
  const scored = Math.max(0, ...prompts.map((p) => len(p) + longestTarget));
  const knowEdit = r.knowEdit ? Math.max(0, ...[...r.knowEdit.portability, ...r.knowEdit.locality].map((it) => len(it.prompt) + len(spacedTarget(it.answer)))) : 0;
  const generation = Math.max(0, ...r.generationPrompts.map(len));
  return Math.max(scored, generation, knowEdit);
}

/** Split records into those whose rows fit `maxPositions` and rejections naming the others. */
export function recordsThatFit(records: readonly EvalRecord[], tok: TextTokenizer, maxPositions: number): { records: EvalRecord[]; rejected: Rejection[] } {
  const out: EvalRecord[] = [];
  const rejected: Rejection[] = [];
  for (const r of records) {
    const n = longestEvalRow(r, tok);
    if (n <= maxPositions) out.push(r);
    else rejected.push(rejection(r.index, String(r.caseId), "(prompts)", `its longest evaluation prompt with its target has ${n} tokens, more than the model's ${maxPositions} positions`));
  }
  return { records: out, rejected };
}
