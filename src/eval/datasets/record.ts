/**
 * The common evaluation record (evaluation spec §1.2–1.4): one edit case of CounterFact ("cf"),
 * MultiCounterFact ("mcf") or ZsRE ("zsre") after loading, with everything a metric reads.
 *
 * - `request` is the `EditRequest` handed to an editor (targetNew = the object to insert).
 * - `requestedRewrite` keeps the reference's snake_case shape; it is copied verbatim into the
 *   per-case result JSON (§3.2).
 * - CounterFact neighborhood prompts are plain strings whose expected answer is
 *   `target_true.str`; ZsRE neighborhood items are `{prompt, target, targetId}`, one per answer
 *   token (§1.4), and `zsreNeighborhood` holds the same thing as ids for the teacher-forced route.
 *
 * Loaders never throw on one bad record: they return it in `rejected` (index, case id, field).
 */
import type { EditRequest, Rejection } from "../../edit/request.js";
import { Rng } from "../../util/rng.js";

export type { Rejection } from "../../edit/request.js";

/** "cf" = counterfact.json, "mcf" = multi_counterfact.json, "zsre" = zsre_mend_eval.json. */
export type DatasetKind = "cf" | "mcf" | "zsre";

export const DATASET_KINDS: readonly DatasetKind[] = ["cf", "mcf", "zsre"];

/** `{str, id}` as in CounterFact; `id` (a Wikidata id) is null where the source has none. */
export interface TargetRef {
  str: string;
  id: string | null;
}

/** The reference's `requested_rewrite` object (snake_case on purpose: it goes into result JSON). */
export interface RequestedRewrite {
  prompt: string; // exactly one "{}"
  subject: string;
  relation_id: string | null;
  target_new: TargetRef;
  target_true: TargetRef;
}

/** One ZsRE neighborhood item: `prompt = loc + "?" + decode(b[0..j))`, `target = decode(b[j])`. */
export interface ZsreNeighborhoodItem {
  prompt: string;
  target: string;
  targetId: number; // b[j]
}

/** One KnowEdit portability or locality item: `answer` after `prompt`, in `group` (e.g. "Reasoning"). */
export interface KnowEditItem {
  group: string;
  prompt: string;
  answer: string;
}

/** One evaluation case after loading: the edit request and every prompt a metric reads. */
export interface EvalRecord {
  kind: DatasetKind;
  caseId: number; // opaque key (CF: case_id; ZsRE: position in the file)
  index: number; // position in the source file
  request: EditRequest;
  requestedRewrite: RequestedRewrite;
  paraphrasePrompts: string[];
  /** CF: complete prompts about other subjects (answer target_true.str). ZsRE: the items' prompts. */
  neighborhoodPrompts: string[];
  /** ZsRE only (empty for CF/MCF). */
  neighborhoodItems: ZsreNeighborhoodItem[];
  /** ZsRE only: the neighborhood as ids, `question = loc + "?"`, `answerIds = b`. */
  zsreNeighborhood: { question: string; answerIds: number[] } | null;
  attributePrompts: string[]; // unused by every metric (§1.2)
  generationPrompts: string[]; // fluency / consistency prompts (CF/MCF)
  /** KnowEdit's portability / locality items, where the record has them (datasets/knowedit.ts). */
  knowEdit?: { portability: KnowEditItem[]; locality: KnowEditItem[] };
}

/** A loaded evaluation set and its rejected records. */
export interface LoadedDataset {
  kind: DatasetKind;
  file: string;
  records: EvalRecord[];
  rejected: Rejection[];
}

/** The rewrite prompt `R = prompt.format(subject)` (§3.1). */
export function rewritePrompt(r: EvalRecord): string {
  return r.requestedRewrite.prompt.replace("{}", r.requestedRewrite.subject);
}

export interface SelectOptions {
  /** Keep the first `size` records (after the optional shuffle). */
  size?: number;
  /** Seeded shuffle before truncation (the references take file order: §1.7, Q4). */
  shuffleSeed?: number;
}

/** Record selection of §1.7: file order, first N; a seeded shuffle only when asked. */
export function selectRecords(records: readonly EvalRecord[], opts: SelectOptions = {}): EvalRecord[] {
  const out = [...records];
  if (opts.shuffleSeed !== undefined) new Rng(opts.shuffleSeed).shuffle(out);
  return opts.size === undefined ? out : out.slice(0, Math.max(0, opts.size));
}

/** Cut records into consecutive chunks of `numEdits` (the edit steps of §1.7). */
export function chunkRecords(records: readonly EvalRecord[], numEdits: number): EvalRecord[][] {
  if (!Number.isInteger(numEdits) || numEdits < 1) throw new RangeError(`chunkRecords: numEdits must be a positive integer, got ${numEdits}`);
  const out: EvalRecord[][] = [];
  for (let i = 0; i < records.length; i += numEdits) out.push(records.slice(i, i + numEdits));
  return out;
}

// ---- validation helpers shared by the loaders ----

/** Thrown inside a loader for one record; turned into a `Rejection`. */
export class RecordError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export function stringList(v: unknown, field: string, required: boolean): string[] {
  if (v === undefined && !required) return [];
  if (!Array.isArray(v)) throw new RecordError(field, `field "${field}" is ${v === undefined ? "missing" : "not a list"}`);
  v.forEach((s, i) => {
    if (typeof s !== "string") throw new RecordError(`${field}[${i}]`, `field "${field}[${i}]" is not a string`);
  });
  return v as string[];
}

export function targetRef(v: unknown, field: string): TargetRef {
  if (typeof v === "string") return { str: v, id: null };
  if (v && typeof v === "object" && typeof (v as { str?: unknown }).str === "string") {
    const id = (v as { id?: unknown }).id;
    return { str: (v as { str: string }).str, id: typeof id === "string" ? id : id === undefined || id === null ? null : String(id) };
  }
  throw new RecordError(field, `field "${field}" is missing or not {str, id}`);
}

export function rejection(index: number, caseId: string, field: string, message: string): Rejection {
  return { index, caseId, field, message: `record #${index} (case_id ${caseId}): ${message}` };
}
