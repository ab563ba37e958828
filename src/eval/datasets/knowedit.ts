/**
 * KnowEdit's `portability` and `locality` dictionaries (EasyEdit's KnowEdit benchmark), read where a
 * record has them (the EasyEdit-flattened and ZsRE loaders). Shape:
 *
 *   "portability": { "Reasoning": [ {"prompt": "...", "ground_truth": "..." | ["alias", …] | [["alias", …]]} ],
 *                    "Subject_Aliasing": [...], "Logical_Generalization": [...] },
 *   "locality":    { "Relation_Specificity": [...], "Forgetfulness": [...] }
 *
 * A group's value is a list of items or one item; an item's `prompt` a string (or a list whose first
 * entry is used), its `ground_truth` a string or a (nested) list of aliases whose first entry is the
 * answer. Each item is scored by teacher-forced token accuracy of its answer (metrics/knowedit.ts).
 */
import { firstString } from "../../edit/recordFormats.js";
import { RecordError, type KnowEditItem } from "./record.js";

/** The items of one dictionary (`field` = "portability" or "locality"); absent → []. */
export function knowEditItems(raw: unknown, field: "portability" | "locality"): KnowEditItem[] {
  if (raw === undefined || raw === null) return [];
  if (typeof raw !== "object" || Array.isArray(raw)) throw new RecordError(field, `field "${field}" must be an object {group: [{prompt, ground_truth}]}`);
  const out: KnowEditItem[] = [];
  for (const [group, v] of Object.entries(raw as Record<string, unknown>)) {
    if (v === null || v === undefined || v === "") continue; // KnowEdit leaves unused groups empty
    const items = Array.isArray(v) ? v : [v];
    items.forEach((it, i) => {
      const where = `${field}.${group}[${i}]`;
      if (!it || typeof it !== "object" || Array.isArray(it)) throw new RecordError(where, `field "${where}" must be an object {prompt, ground_truth}`);
      const prompt = firstString((it as Record<string, unknown>)["prompt"]);
      const answer = firstString((it as Record<string, unknown>)["ground_truth"]);
      if (prompt === null || prompt.trim() === "") throw new RecordError(`${where}.prompt`, `field "${where}.prompt" is missing or empty`);
      if (answer === null || answer.trim() === "") throw new RecordError(`${where}.ground_truth`, `field "${where}.ground_truth" is missing or empty`);
      out.push({ group, prompt, answer });
    });
  }
  return out;
}

/** `{portability, locality}` of a record, or undefined when it has neither dictionary. */
export function knowEditOf(r: Record<string, unknown>): { portability: KnowEditItem[]; locality: KnowEditItem[] } | undefined {
  if (r["portability"] === undefined && (r["locality"] === undefined || typeof r["locality"] === "string")) return undefined;
  return { portability: knowEditItems(r["portability"], "portability"), locality: typeof r["locality"] === "string" ? [] : knowEditItems(r["locality"], "locality") };
}
