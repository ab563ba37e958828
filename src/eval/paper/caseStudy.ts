/**
 * Case study (issue #13): greedy generations for a few edited subjects, so a reader sees what the
 * edited models actually say. Cases are spread evenly over the stream (its first, last and evenly
 * spaced positions in between), each with two prompts: the edit prompt itself ("{subject} plays")
 * and the record's first generation prompt (or its first paraphrase when it has none); generation
 * stops at the EOS token.
 */
import type { LanguageModel } from "../../model/model.js";
import { generateText } from "../../model/generateText.js";
import type { EvalRecord } from "../datasets/record.js";

/** One case: the edited record and the prompts generated from. */
export interface CasePrompts {
  position: number; // position in the stream (0-based)
  caseId: number;
  subject: string;
  targetNew: string;
  targetTrue: string;
  prompts: string[];
}

/** `count` cases at evenly spaced stream positions among the first `stream` records. */
export function pickCases(records: readonly EvalRecord[], stream: number, count: number): CasePrompts[] {
  const n = Math.min(stream, records.length);
  const k = Math.min(count, n);
  const positions = [...new Set(Array.from({ length: k }, (_, i) => (k === 1 ? 0 : Math.round((i * (n - 1)) / (k - 1)))))];
  return positions.map((position) => {
    const r = records[position]!;
    const rw = r.requestedRewrite;
    const second = r.generationPrompts[0] ?? r.paraphrasePrompts[0];
    return {
      position,
      caseId: r.caseId,
      subject: rw.subject,
      targetNew: rw.target_new.str,
      targetTrue: rw.target_true.str,
      prompts: [rw.prompt.replace("{}", rw.subject), ...(second !== undefined ? [second] : [])],
    };
  });
}

/** Greedy continuations (`maxNewTokens` tokens) of every prompt of every case: [case][prompt]. */
export function generateCases(model: LanguageModel, cases: readonly CasePrompts[], maxNewTokens: number): string[][] {
  return cases.map((c) => c.prompts.map((p) => generateText(model, p, { maxNewTokens, stopAtEos: true }).text));
}
