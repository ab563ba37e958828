/**
 * Context templates (spec §3.3): short prefixes generated once by the UNEDITED model and
 * prepended to prompts so that keys and targets generalise. Seeded (the reference seeds
 * nothing, ODD-29); the generated templates are stored in the session and can be supplied
 * explicitly to replay a logged run.
 *
 * Generator: seed words ["The", "Therefore", "Because", "I", "You"], each repeated g times,
 * decoded with top-k = 5 sampling (temperature 1) until every sequence has `maxLength` tokens
 * in all (prompt and BOS included), no stop on EOS; decoded with special tokens kept, NFKD,
 * "\n\n" → " ", "<|endoftext|>" deleted.
 * MEMIT family: g = 1, length 10; braces → spaces; groups [["{}"], [t1..t5]].
 * ROME family: rounds (length 5, 10 texts) and (length 10, 10 texts); braces deleted (ODD-23);
 * flat list ["{}", t1..t20].
 */
import { generate } from "../model/generate.js";
import type { LanguageModel } from "../model/model.js";
import { DeltaEditError } from "../errors.js";
import type { Rng } from "../util/rng.js";

export const SEED_WORDS: readonly string[] = ["The", "Therefore", "Because", "I", "You"];

/** The context templates a session generated (MEMIT family groups, ROME list). */
export interface ContextTemplates {
  /** MEMIT family groups: [["{}"], [t1..t5]]. */
  memit: string[][];
  /** ROME family flat list: ["{}", t1..t20]. */
  rome: string[];
}

export interface TemplateParams {
  topK: number; // 5
  memitLength: number; // 10
  memitPerSeed: number; // 1
  romeRounds: readonly (readonly [number, number])[]; // [[5, 10], [10, 10]]: (length, texts per round)
}

export const defaultTemplateParams: Readonly<TemplateParams> = Object.freeze({ topK: 5, memitLength: 10, memitPerSeed: 1, romeRounds: [[5, 10], [10, 10]] as const });

function sampleTexts(model: LanguageModel, rng: Rng, perSeed: number, length: number, topK: number): string[] {
  const tok = model.tokenizer;
  if (!tok) throw new DeltaEditError("E_TOKENIZER", "context templates need the model's tokenizer");
  const prompts: number[][] = [];
  for (const w of SEED_WORDS) for (let i = 0; i < perSeed; i++) prompts.push(tok.encode(w));
  const gens = prompts.map((p) => Math.max(0, length - p.length));
  const maxNew = Math.max(...gens);
  const out = generate(model, prompts, { maxNewTokens: maxNew, topK, rng });
  return prompts.map((p, i) => {
    const ids = [...p, ...out[i]!.slice(0, gens[i]!)];
    return tok.decode(ids, { skipSpecialTokens: false }).normalize("NFKD").replaceAll("\n\n", " ").replaceAll("<|endoftext|>", "");
  });
}

/** Generate both template families with the unedited model (MEMIT family first, then ROME). */
export function generateContextTemplates(model: LanguageModel, rng: Rng, params: TemplateParams = defaultTemplateParams): ContextTemplates {
  const memitTexts = sampleTexts(model, rng, params.memitPerSeed, params.memitLength, params.topK);
  const memit = [["{}"], memitTexts.map((t) => t.replace(/[{}]/g, " ") + ". {}")];
  const rome = ["{}"];
  for (const [len, n] of params.romeRounds) {
    const per = Math.max(1, Math.floor(n / SEED_WORDS.length));
    for (const t of sampleTexts(model, rng, per, len, params.topK)) rome.push(t.replace(/[{}]/g, "") + ". {}");
  }
  return { memit, rome };
}

/** Validate user-supplied templates (each must contain exactly one "{}"). */
export function checkTemplates(t: ContextTemplates): ContextTemplates {
  const check = (s: string, where: string): void => {
    if (s.split("{}").length !== 2) throw new DeltaEditError("E_REQUEST", `context template ${where} must contain exactly one "{}": ${JSON.stringify(s)}`);
  };
  t.memit.forEach((g, i) => g.forEach((s, j) => check(s, `memit[${i}][${j}]`)));
  t.rome.forEach((s, i) => check(s, `rome[${i}]`));
  return t;
}
