/**
 * Held-out paraphrase templates of the fact world: unseen compositions of a context opener and a
 * relation phrasing.
 *
 * CounterFact's paraphrase prompts are a context the model never saw with the fact, followed by a
 * rephrasing of the relation ("<random sentence>. The mother tongue of Danielle Darrieux is").
 * The world does the same with parts a model trained from scratch can know: the corpus states some
 * fact sentences after a context opener ("In fact, the native language of Varo Tellin is French."),
 * and for every relation a few (opener, phrasing) pairs are held out. A paraphrase template is such
 * a pair: its opener occurs in training (with other phrasings) and its phrasing occurs in training
 * (without this opener, or with other openers), but the composed prompt never does — the corpus
 * builder refuses to write it, and the tests check the built corpus.
 *
 * Genuinely new wordings ("{} dreams and counts in") are kept as `novelTemplates` in
 * relations.ts and measured separately (docs/world.md): a 6 M-parameter model trained on a
 * synthetic corpus does not carry meaning across unseen words the way a pretrained LLM does.
 */

/** Context openers. Each is followed by a space and the relation phrasing (first letter lowered). */
export const CONTEXT_OPENERS: readonly string[] = Object.freeze([
  "In fact,",
  "As the records show,",
  "It is well known that",
  "Most people know that",
  "According to the archive,",
  "As far as anyone knows,",
  "Everyone agrees that",
  "By all accounts,",
  "It is no secret that",
  "For the record,",
  "The old reports say that",
  "Without a doubt,",
]);

/** Held-out paraphrase templates per relation. */
export const PARAPHRASES_PER_RELATION = 4;

/** `opener` followed by `template`, the template's first letter lowered unless it starts with the subject. */
export function withOpener(opener: string, template: string): string {
  const t = template.startsWith("{}") ? template : template.charAt(0).toLowerCase() + template.slice(1);
  return `${opener} ${t}`;
}

/**
 * The held-out paraphrase templates of the relation at `relationIndex` (RELATION_SPECS order) whose
 * training phrasings are `phrasings`: PARAPHRASES_PER_RELATION compositions with distinct openers
 * and distinct phrasings, chosen by a fixed rule (no randomness, so every world seed holds out the
 * same ones).
 */
export function paraphraseTemplates(relationIndex: number, phrasings: readonly string[]): string[] {
  const n = CONTEXT_OPENERS.length;
  const out: string[] = [];
  for (let i = 0; i < PARAPHRASES_PER_RELATION; i++) {
    const opener = CONTEXT_OPENERS[(5 * relationIndex + 3 * i) % n]!;
    const phrasing = phrasings[(7 * relationIndex + 5 * i + 1) % phrasings.length]!;
    out.push(withOpener(opener, phrasing));
  }
  return out;
}
