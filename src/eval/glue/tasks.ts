/**
 * The general-capability tasks of AlphaEdit's harness (evaluation spec §5): SST-2, MRPC, CoLA, RTE,
 * MMLU and NLI, zero-shot, exactly as the harness words them (§5.3: whitespace copied), with the
 * candidate words in label order, the parser of a generated answer (§5.3, quirks §5.6 kept: substring
 * matching, RTE's label 1 read as "True") and the gold label of an item.
 *
 * Task files (`<dir>/<file>`): a JSON array of the items of the harness's pickles, fields as there
 * (§5.2; `tools/glue/convert_pickles.py` writes them). Items 0–9 are the few-shot pool (unused at 0
 * shots); the test items are 10, 11, … (100 in the harness).
 */

/** Result keys of the harness (`mmmlu` sic, §5.5). */
export type GlueTaskName = "sst" | "mrpc" | "cola" | "rte" | "mmmlu" | "nli";

/** One task: how to read, prompt, parse and score its items. */
export interface GlueTask {
  name: GlueTaskName;
  /** File name in the task directory. */
  file: string;
  /** Fields every item must have. */
  fields: readonly string[];
  /** The zero-shot prompt of an item. */
  prompt(item: Readonly<Record<string, unknown>>): string;
  /** Candidate answer words in label order (label i ↔ candidates[i]). */
  candidates: readonly string[];
  /** The label a generation means: parsed from the full text (prompt + generated) or the continuation; -1 = invalid. */
  parse(full: string, continuation: string): number;
  /** The item's gold label (an index into `candidates`). */
  gold(item: Readonly<Record<string, unknown>>): number;
}

/** The text after the last occurrence of `marker` (the whole text when absent). */
function after(full: string, marker: string): string {
  const i = full.lastIndexOf(marker);
  return i < 0 ? full : full.slice(i + marker.length);
}

const s = (v: unknown): string => String(v);
const intLabel = (v: unknown): number => (typeof v === "number" ? v : Number(v));

/** The six tasks, in the harness's order. */
export const GLUE_TASKS: readonly GlueTask[] = Object.freeze([
  {
    name: "sst",
    file: "sst2.json",
    fields: ["sentence", "label"],
    prompt: (it) => `Review :${s(it["sentence"])}\nSentiment :`,
    candidates: ["negative", "positive"],
    parse: (full) => {
      const a = after(full, "Sentiment :").toLowerCase();
      return a.includes("positive") ? 1 : a.includes("negative") ? 0 : -1;
    },
    gold: (it) => intLabel(it["label"]),
  },
  {
    name: "mrpc",
    file: "mrpc.json",
    fields: ["sentence1", "sentence2", "label"],
    prompt: (it) => `Are the sentences paraphrases of each other.\nSentence 1: ${s(it["sentence1"])}\nSentence 2: ${s(it["sentence2"])}\nAnswer:`,
    candidates: ["No", "Yes"],
    parse: (full) => {
      const a = after(full, "Answer:").toLowerCase();
      return a.includes("yes") ? 1 : a.includes("no") ? 0 : -1;
    },
    gold: (it) => intLabel(it["label"]),
  },
  {
    name: "cola",
    file: "cola.json",
    fields: ["sentence", "label"],
    prompt: (it) => `Is this sentence linguistically acceptable?\nSentence: ${s(it["sentence"])}\nAnswer: `,
    candidates: ["No", "Yes"],
    parse: (full) => {
      const a = after(full, "Answer:").toLowerCase();
      return a.includes("yes") ? 1 : a.includes("no") ? 0 : -1;
    },
    gold: (it) => intLabel(it["label"]),
  },
  {
    name: "rte",
    file: "rte.json",
    fields: ["sentence1", "sentence2", "label"],
    prompt: (it) => `${s(it["sentence1"])}\nquestion: ${s(it["sentence2"])} True or False?\nanswer:`,
    candidates: ["False", "True"],
    parse: (full) => {
      const a = after(full, "answer:").toLowerCase();
      return a.includes("false") ? 0 : a.includes("true") ? 1 : -1;
    },
    // §5.6: GLUE's label 1 ("not entailment") is scored as the answer "True", as the harness does
    gold: (it) => intLabel(it["label"]),
  },
  {
    name: "mmmlu",
    file: "mmlu.json",
    fields: ["question", "choices", "answer"],
    prompt: (it) => {
      const c = it["choices"] as readonly unknown[];
      return `Question: ${s(it["question"])}\n(A) ${s(c[0])}\n(B) ${s(c[1])}\n(C) ${s(c[2])}\n(D) ${s(c[3])}\nAnswer:`;
    },
    candidates: ["A", "B", "C", "D"],
    parse: (_full, continuation) => {
      const a = continuation.toLowerCase();
      const i = ["a\n", "b\n", "c\n", "d\n"].findIndex((x) => a.includes(x));
      return i;
    },
    gold: (it) => intLabel(it["answer"]),
  },
  {
    name: "nli",
    file: "nli.json",
    fields: ["sentence1", "sentence2", "label"],
    prompt: (it) => `${s(it["sentence1"])} entails the ${s(it["sentence2"])} True or False? Answer:`,
    candidates: ["False", "True"],
    parse: (full) => {
      const a = after(full, "True or False? Answer:").toLowerCase();
      return a.includes("true") ? 1 : a.includes("false") ? 0 : -1;
    },
    gold: (it) => (it["label"] === "entailment" ? 1 : it["label"] === "not_entailment" ? 0 : intLabel(it["label"])),
  },
]);

/** The task named `name` (result key or file stem: "sst", "sst2", "mmlu", "mmmlu", …), or undefined. */
export function glueTask(name: string): GlueTask | undefined {
  const n = name.toLowerCase();
  return GLUE_TASKS.find((t) => t.name === n || t.file === `${n}.json`);
}
