/**
 * KnowEdit's portability and locality (EasyEdit's KnowEdit benchmark), for records that carry them
 * (datasets/knowedit.ts): each item's answer a = ids(" " + answer) is fed after bos(ids(prompt)) and
 * every answer token is checked: correct[j] = argmax after prompt + a[0..j) equals a[j] (teacher-forced
 * token accuracy, as EasyEdit scores portability). Locality is scored the same way against the item's
 * ground truth (like ZsRE's specificity here, §4), not against the unedited model's predictions as
 * EasyEdit does.
 *
 * Case values: `portability_acc` / `locality_acc` = mean over the record's items of the item's token
 * accuracy, and per group `portability_<group>_acc` (group lower-cased, e.g. portability_reasoning_acc).
 * A record without items has no such values (absent, never zero).
 */
import type { LanguageModel } from "../../model/model.js";
import type { EvalRecord } from "../datasets/record.js";
import { contextIds, requireTokenizer, scoreTokens, targetIds, type ScoreOptions } from "./score.js";

/** Per group, per item, per answer token: argmax = answer token. */
export interface KnowEditScores {
  portability?: Record<string, boolean[][]>;
  locality?: Record<string, boolean[][]>;
}

/** Score the record's KnowEdit items on the current model ({} when it has none). */
export function scoreKnowEdit(model: LanguageModel, record: EvalRecord, opts: ScoreOptions = {}): KnowEditScores {
  if (!record.knowEdit) return {};
  const tok = requireTokenizer(model, "scoreKnowEdit");
  const out: KnowEditScores = {};
  for (const part of ["portability", "locality"] as const) {
    const items = record.knowEdit[part].map((it) => ({ group: it.group, prefix: contextIds(tok, it.prompt), continuation: targetIds(tok, it.answer) })).filter((it) => it.continuation.length > 0);
    if (items.length === 0) continue;
    const s = scoreTokens(model, items, opts);
    const groups: Record<string, boolean[][]> = {};
    items.forEach((it, i) => (groups[it.group] ??= []).push(s[i]!.argmax.map((a, j) => a === it.continuation[j])));
    out[part] = groups;
  }
  return out;
}

function itemAccuracy(tokens: readonly boolean[]): number {
  return tokens.filter(Boolean).length / tokens.length;
}

/** `<part>_acc` and `<part>_<group>_acc` case values (fractions in [0, 1]). */
export function knowEditCaseValues(s: KnowEditScores): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of ["portability", "locality"] as const) {
    const groups = s[part];
    if (!groups) continue;
    const all: number[] = [];
    for (const [g, items] of Object.entries(groups)) {
      const accs = items.filter((t) => t.length > 0).map(itemAccuracy);
      if (accs.length === 0) continue;
      all.push(...accs);
      out[`${part}_${g.toLowerCase().replace(/[^a-z0-9]+/g, "_")}_acc`] = accs.reduce((a, b) => a + b, 0) / accs.length;
    }
    if (all.length > 0) out[`${part}_acc`] = all.reduce((a, b) => a + b, 0) / all.length;
  }
  return out;
}
