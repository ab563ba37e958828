/**
 * Fact accuracy of a model on the fact world: the fraction of (fact, template) prompts whose
 * next-token argmax is the first token of " " + object.
 *
 * A prompt is `fillTemplate(template, subject)` encoded without special tokens, preceded by the
 * BOS token when `bos` is given (the world tokenizer prepends <|endoftext|> like Llama's tokenizers
 * prepend their BOS, and the world model is trained with it at position 0); prompts are run in
 * right-padded batches of `batchSize`, logits only at each prompt's last token.
 */
import { makeBatch } from "../../model/batch.js";
import { forward } from "../../model/forward.js";
import type { LanguageModel } from "../../model/model.js";
import type { Fact, KnowledgeBase } from "./kb.js";
import { fillTemplate } from "./relations.js";

/** Which templates of each relation to prompt with. */
/** Training core phrasings, held-out paraphrase compositions, or novel wordings (kb.ts `Relation`). */
export type TemplateSet = "train" | "heldOut" | "novel";

export interface AccuracyOptions {
  /** Prompts per forward pass. Default 64. */
  batchSize?: number;
  /** Only the first `maxTemplates` templates of each relation (default: all). */
  maxTemplates?: number;
  /** Token prepended to every prompt (the tokenizer's BOS when it adds one). Default none. */
  bos?: number | null;
}

export interface AccuracyResult {
  correct: number;
  total: number;
  accuracy: number; // correct / total
  byRelation: Record<string, { correct: number; total: number }>;
}

/** One scored prompt. */
export interface FactPrompt {
  prompt: string;
  relationId: string;
  firstObjectToken: number;
}

/** The prompts of `facts` under the chosen templates. `encode` must add no special tokens (it also gives the object's first token). */
export function factPrompts(kb: KnowledgeBase, facts: readonly Fact[], which: TemplateSet, encode: (s: string) => number[], opts: AccuracyOptions = {}): FactPrompt[] {
  const out: FactPrompt[] = [];
  const firstTok = new Map<string, number>();
  for (const f of facts) {
    const rel = kb.relations.find((r) => r.id === f.relationId)!;
    const ts = (which === "train" ? rel.trainTemplates : which === "heldOut" ? rel.heldOutTemplates : rel.novelTemplates).slice(0, opts.maxTemplates ?? Infinity);
    let tok = firstTok.get(f.object.str);
    if (tok === undefined) {
      tok = encode(" " + f.object.str)[0]!;
      firstTok.set(f.object.str, tok);
    }
    for (const t of ts) out.push({ prompt: fillTemplate(t, f.subject), relationId: f.relationId, firstObjectToken: tok });
  }
  return out;
}

/** Top-1 next-token predictions of `prompts` (token ids), batched. */
export function nextTokenArgmax(model: LanguageModel, prompts: readonly (readonly number[])[], batchSize = 64): Int32Array {
  const V = model.config.vocabSize;
  const out = new Int32Array(prompts.length);
  for (let i = 0; i < prompts.length; i += batchSize) {
    const chunk = prompts.slice(i, i + batchSize);
    const batch = makeBatch(chunk, 0, V);
    const at = chunk.map((p, row) => ({ row, pos: p.length - 1 }));
    const logits = forward(model, batch, { logits: at }).logits!; // (rows, V)
    for (let r = 0; r < chunk.length; r++) {
      let best = 0;
      let bestV = -Infinity;
      for (let v = 0; v < V; v++) {
        const x = logits[r * V + v]!;
        if (x > bestV) {
          bestV = x;
          best = v;
        }
      }
      out[i + r] = best;
    }
  }
  return out;
}

/** Accuracy of `model` on `facts` under the chosen templates. */
export function factAccuracy(model: LanguageModel, kb: KnowledgeBase, facts: readonly Fact[], which: TemplateSet, encode: (s: string) => number[], opts: AccuracyOptions = {}): AccuracyResult {
  const prompts = factPrompts(kb, facts, which, encode, opts);
  const bos = opts.bos ?? null;
  const pred = nextTokenArgmax(model, prompts.map((p) => (bos === null ? encode(p.prompt) : [bos, ...encode(p.prompt)])), opts.batchSize ?? 64);
  const byRelation: Record<string, { correct: number; total: number }> = {};
  let correct = 0;
  prompts.forEach((p, i) => {
    const r = (byRelation[p.relationId] ??= { correct: 0, total: 0 });
    r.total++;
    if (pred[i] === p.firstObjectToken) {
      r.correct++;
      correct++;
    }
  });
  return { correct, total: prompts.length, accuracy: prompts.length > 0 ? correct / prompts.length : NaN, byRelation };
}
