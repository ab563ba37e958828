/**
 * Run the general-capability tasks (tasks.ts) on a model's current weights (evaluation spec §5.4–5.5).
 * Per test item (items offset … offset + items − 1, offset 10: the first 10 are the few-shot pool):
 *   answer     — generation prediction: greedy decoding from bos(ids(prompt)), 5 new tokens, decoded with
 *                special tokens skipped, parsed by the task (−1 = invalid);
 *   answer_new — likelihood prediction: p_w = exp(−nll(prompt, w)) per candidate word w (the scoring
 *                primitive, target " " + w); binary: 1 iff p(label-1 word) > p(label-0 word) (ties → 0);
 *                MMLU: the index whose p is strictly greater than all others, else −1.
 * Per task: correct / incorrect / invalid (generation), total, f1 and f1_new (weighted F1), mcc
 * (generation), time in seconds; MMLU also correct_new / incorrect_new. An item whose prompt with its
 * generation or a candidate does not fit the model's positions is skipped and counted in `skipped`.
 */
import fs from "node:fs";
import path from "node:path";
import { DeltaEditError } from "../../errors.js";
import { generate } from "../../model/generate.js";
import type { LanguageModel } from "../../model/model.js";
import { contextIds, requireTokenizer, scoreTokens, targetIds } from "../metrics/score.js";
import { matthewsCorrelation, weightedF1 } from "./classification.js";
import { GLUE_TASKS, glueTask, type GlueTask, type GlueTaskName } from "./tasks.js";

/** Test items start here (items 0–9 are the harness's few-shot pool). */
export const GLUE_TEST_OFFSET = 10;
/** New tokens of the generation prediction (the harness passes 5). */
export const GLUE_MAX_NEW_TOKENS = 5;

/** Scores of one task (§5.5 field names). */
export interface GlueTaskResult {
  correct: number;
  incorrect: number;
  invalid: number;
  total: number;
  f1: number;
  f1_new: number;
  mcc: number;
  /** Seconds. */
  time: number;
  /** Items that did not fit the model's positions (not in `total`). */
  skipped: number;
  /** MMLU only: likelihood-prediction counts. */
  correct_new?: number;
  incorrect_new?: number;
}

/** One scored item (the harness's `_gen.json` record). */
export interface GlueItemResult {
  index: number;
  prompt: string;
  gold: number;
  answer: number;
  answer_new: number;
  text: string;
}

/** Scores per task (result keys of the harness). */
export type GlueResult = Partial<Record<GlueTaskName, GlueTaskResult>>;

/** Task items read from a task directory. */
export type GlueData = ReadonlyMap<GlueTask, readonly Readonly<Record<string, unknown>>[]>;

/** Options of `readGlueData` and `runGlue`. */
export interface GlueOptions {
  /** Tasks to run (default: every task whose file is in the directory). */
  tasks?: readonly string[];
  /** Test items per task (default 100, as the harness). */
  items?: number;
}

/**
 * Read the task files of `dir` (tasks.ts names them). Every test item is checked for its fields;
 * errors name the file, item and field.
 */
export function readGlueData(dir: string, o: GlueOptions = {}): GlueData {
  const tasks = o.tasks
    ? o.tasks.map((n) => {
        const t = glueTask(n);
        if (!t) throw new DeltaEditError("E_ARG", `glue: unknown task "${n}"`, { hint: `tasks: ${GLUE_TASKS.map((x) => x.name).join(", ")}` });
        return t;
      })
    : GLUE_TASKS.filter((t) => fs.existsSync(path.join(dir, t.file)));
  if (tasks.length === 0) throw new DeltaEditError("E_NOT_FOUND", `glue: ${dir} holds none of the task files (${GLUE_TASKS.map((t) => t.file).join(", ")})`, { hint: "convert the harness's pickles with tools/glue/convert_pickles.py (docs/glue.md)" });
  const n = o.items ?? 100;
  if (!Number.isInteger(n) || n < 1) throw new DeltaEditError("E_ARG", `glue: items must be a positive integer, got ${n}`);
  const out = new Map<GlueTask, Record<string, unknown>[]>();
  for (const t of tasks) {
    const file = path.join(dir, t.file);
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch (e) {
      throw new DeltaEditError(fs.existsSync(file) ? "E_REQUEST" : "E_NOT_FOUND", `glue: cannot read ${file}: ${(e as Error).message}`, { context: { file } });
    }
    if (!Array.isArray(raw)) throw new DeltaEditError("E_REQUEST", `glue: ${file} must hold a JSON array of items`, { context: { file } });
    if (raw.length <= GLUE_TEST_OFFSET) throw new DeltaEditError("E_REQUEST", `glue: ${file} has ${raw.length} items; test items start at item ${GLUE_TEST_OFFSET} (0–9 are the few-shot pool)`, { context: { file } });
    const items = raw.slice(GLUE_TEST_OFFSET, GLUE_TEST_OFFSET + n);
    items.forEach((it, i) => {
      const where = `${file}: item ${GLUE_TEST_OFFSET + i}`;
      if (!it || typeof it !== "object" || Array.isArray(it)) throw new DeltaEditError("E_REQUEST", `glue: ${where} is not an object`, { context: { file } });
      for (const f of t.fields) if ((it as Record<string, unknown>)[f] === undefined) throw new DeltaEditError("E_REQUEST", `glue: ${where} has no field "${f}"`, { context: { file, field: f } });
      if (t.name === "mmmlu" && (!Array.isArray((it as Record<string, unknown>)["choices"]) || ((it as Record<string, unknown>)["choices"] as unknown[]).length !== 4)) {
        throw new DeltaEditError("E_REQUEST", `glue: ${where}: field "choices" must be a list of 4 strings`, { context: { file, field: "choices" } });
      }
      const g = t.gold(it as Record<string, unknown>);
      if (!Number.isInteger(g) || g < 0 || g >= t.candidates.length) throw new DeltaEditError("E_REQUEST", `glue: ${where}: its label gives ${JSON.stringify(g)}, not one of 0..${t.candidates.length - 1}`, { context: { file } });
    });
    out.set(t, items as Record<string, unknown>[]);
  }
  return out;
}

/** The likelihood prediction from candidate probabilities (§5.4). */
function likelihoodPrediction(p: readonly number[]): number {
  if (p.length === 2) return p[1]! > p[0]! ? 1 : 0;
  const best = p.indexOf(Math.max(...p));
  return p.every((x, i) => i === best || p[best]! > x) ? best : -1;
}

/** Score every task of `data` on the model's current weights. */
export function runGlue(model: LanguageModel, data: GlueData, o: { log?: (msg: string) => void } = {}): { results: GlueResult; items: Partial<Record<GlueTaskName, GlueItemResult[]>> } {
  const tok = requireTokenizer(model, "glue");
  const maxT = model.config.maxPositions;
  const results: GlueResult = {};
  const itemsOut: Partial<Record<GlueTaskName, GlueItemResult[]>> = {};
  for (const [t, items] of data) {
    const t0 = performance.now();
    const cand = t.candidates.map((w) => targetIds(tok, w));
    const rows: { index: number; prompt: string; ids: number[]; gold: number }[] = [];
    let skipped = 0;
    items.forEach((it, i) => {
      const prompt = t.prompt(it);
      const ids = contextIds(tok, prompt);
      const longest = Math.max(GLUE_MAX_NEW_TOKENS, ...cand.map((c) => c.length));
      if (ids.length + longest > maxT) skipped++;
      else rows.push({ index: GLUE_TEST_OFFSET + i, prompt, ids, gold: t.gold(it) });
    });
    const gens = rows.length === 0 ? [] : generate(model, rows.map((r) => r.ids), { maxNewTokens: GLUE_MAX_NEW_TOKENS });
    const scores = scoreTokens(model, rows.flatMap((r) => cand.map((c) => ({ prefix: r.ids, continuation: c }))));
    const res: GlueItemResult[] = rows.map((r, i) => {
      const continuation = gens[i]!.length === 0 ? "" : tok.decode(gens[i]!, { skipSpecialTokens: true });
      const p = cand.map((_, k) => Math.exp(-scores[i * cand.length + k]!.nll));
      return { index: r.index, prompt: r.prompt, gold: r.gold, answer: t.parse(r.prompt + continuation, continuation), answer_new: likelihoodPrediction(p), text: continuation };
    });
    const gold = res.map((r) => r.gold);
    const pred = res.map((r) => r.answer);
    const predNew = res.map((r) => r.answer_new);
    const tr: GlueTaskResult = {
      correct: res.filter((r) => r.answer === r.gold).length,
      incorrect: res.filter((r) => r.answer !== -1 && r.answer !== r.gold).length,
      invalid: res.filter((r) => r.answer === -1).length,
      total: res.length,
      f1: weightedF1(gold, pred),
      f1_new: weightedF1(gold, predNew),
      mcc: matthewsCorrelation(gold, pred),
      time: (performance.now() - t0) / 1000,
      skipped,
    };
    if (t.name === "mmmlu") {
      tr.correct_new = res.filter((r) => r.answer_new === r.gold).length;
      tr.incorrect_new = res.length - tr.correct_new;
    }
    results[t.name] = tr;
    itemsOut[t.name] = res;
    o.log?.(`glue: ${t.name}: f1 ${tr.f1.toFixed(3)}, f1_new ${tr.f1_new.toFixed(3)}, mcc ${tr.mcc.toFixed(3)} (${tr.total} items${skipped ? `, ${skipped} skipped` : ""})`);
  }
  return { results, items: itemsOut };
}

/** Flat metric entries for a bench checkpoint: `glue_<task>_f1`, `glue_<task>_f1_new`, `glue_<task>_mcc` (×100, as the other metrics). */
export function glueMetrics(r: GlueResult): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [task, x] of Object.entries(r)) {
    out[`glue_${task}_f1`] = 100 * x.f1;
    out[`glue_${task}_f1_new`] = 100 * x.f1_new;
    out[`glue_${task}_mcc`] = 100 * x.mcc;
  }
  return out;
}
