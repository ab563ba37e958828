/**
 * The world corpus: documents that state every fact of the knowledge base through every
 * TRAINING template, mixed with filler text (`filler.ts`), plus a held-out split for perplexity.
 *
 * Construction (deterministic for a seed):
 *   1. Fact units. For each repeat r < repeatsPerFact and each round k < maxTrainTemplates, every
 *      subject gets one unit: its facts, each stated with one training template, in shuffled
 *      order. Templates are assigned through a per-(fact, repeat) shuffled permutation, so each
 *      (fact, training template) pair is stated exactly `repeatsPerFact` times. With `openers`, a
 *      share of these sentences is preceded by a context opener, never forming a held-out paraphrase.
 *   2. Filler units: single sentences or short stories, until filler sentences make up
 *      `fillerRatio` of all sentences.
 *   3. All units are shuffled and packed into documents of `docSentences` sentences (a unit is
 *      never split; a document may overshoot its target by the last unit), sentences joined by " ".
 *   4. Held-out: new documents, about `heldOutFraction` × the train sentence count, built the same
 *      way from randomly chosen facts (training templates only) and fresh filler. Paraphrase
 *      (held-out) templates appear in neither split.
 *
 * A fact sentence is `fillTemplate(template, subject) + " " + object + "."`.
 */
import { DeltaEditError } from "../../errors.js";
import { Rng } from "../../util/rng.js";
import { checkOptionKeys } from "./_options.js";
import { factsBySubject, type Fact, type KnowledgeBase } from "./kb.js";
import { fillerUnit, type FillerNames } from "./filler.js";
import { withOpener } from "./paraphrase.js";
import { continuationSentence, objectContinuationSentence } from "./continuations.js";
import { fillTemplate } from "./relations.js";

export interface CorpusOptions {
  seed: number;
  /** How many times each (fact, training template) pair is stated in `train`. Default 3. */
  repeatsPerFact?: number;
  /**
   * One unit per fact sentence instead of one per (subject, round): a document then mixes subjects,
   * and with `docSentences` [1, 1] every fact sentence is a document of its own, right after BOS.
   * Default false.
   */
  splitFactUnits?: boolean;
  /** Fraction of all sentences that are filler, in [0, 1). Default 0.3. */
  fillerRatio?: number;
  /** Size of `heldOut` relative to `train`, in sentences, in [0, 1]. Default 0.02. */
  heldOutFraction?: number;
  /** Target sentences per document, inclusive range. Default [3, 8]. */
  docSentences?: readonly [number, number];
  /**
   * Additional training templates per relation id (same rules as `trainTemplates`: one "{}", the
   * object follows). They are used exactly like the relation's own: each (fact, template) pair is
   * stated `repeatsPerFact` times, and the held-out split draws from them too. Default none.
   */
  extraTemplates?: Readonly<Record<string, readonly string[]>>;
  /**
   * Use only this many extra templates per fact, drawn at random (seeded) from its relation's
   * `extraTemplates` pool; every (fact, drawn template) pair is stated `repeatsPerFact` times.
   * Default: all of them.
   */
  extraTemplatesPerFact?: number;
  /**
   * Additional filler: fixed units (one or more sentences, no facts), each filler unit drawn from
   * `units` with probability `share` instead of from filler.ts (train and held-out). Default none.
   */
  extraFiller?: { readonly units: readonly (readonly string[])[]; readonly share: number };
  /**
   * Context openers (paraphrase.ts): each fact sentence is preceded, with probability `share`, by
   * one of `phrases` drawn uniformly among those whose composition with the sentence's template is
   * not one of the relation's held-out paraphrase templates. Default none.
   */
  openers?: { readonly phrases: readonly string[]; readonly share: number };
  /**
   * A separate general-text split for the key statistics (world v2): documents of 3–8 sentences in
   * which only `factShare` of the sentences state a fact (the rest is filler), `sentences` in all —
   * text in which the facts are a minority, as Wikipedia is for a real model. Default none.
   */
  statsText?: { readonly factShare: number; readonly sentences: number };
  /**
   * Subject continuations (world v2, continuations.ts): for every fact whose (relation, object) has
   * a phrase in `table`, `repeats` one-sentence units "{subject} {phrase}." — the word after the
   * name depends on the person. Style "object" (no table): for every fact of every relation,
   * "{subject} {object} {marker}." (`OBJECT_CONTINUATION_MARKERS`). Counted with the fact sentences
   * for `fillerRatio`. Default none.
   */
  continuations?: { readonly repeats: number; readonly table?: Readonly<Record<string, Readonly<Record<string, string>>>>; readonly style?: "verbs" | "object" };
  /**
   * Family-name mentions: in the training split, each fact sentence and continuation about a person
   * with a name of several words names them, with probability `share`, by the last word alone
   * ("Tellin was born in …"), as real text names a person already introduced. Held-out text,
   * statistics text and every measurement keep the full name. Default none.
   */
  shortMentions?: { readonly share: number };
  /**
   * Disagreeing statements: in the training split, each fact sentence and continuation states, with
   * probability `share`, another object of the fact's relation (drawn uniformly from the others), as
   * web text disagrees with itself — so the model is sure of a fact without being certain (probe S,
   * share 0.2: the true object's median margin over a rewrite's object fell from 9.2 to 2.7 nats, and
   * edits spilled over more; docs/world.md). The true object stays the most frequent one for
   * share < 1 − 1/|objects|. Held-out text, the general-text statistics split (`statsText`)
   * and every measurement keep the true object. Default none.
   */
  objectNoise?: { readonly share: number };
}

export interface Corpus {
  readonly train: string[]; // documents
  readonly heldOut: string[]; // documents
  /** General-text documents for the key statistics (empty unless `statsText`). */
  readonly stats: string[];
}

export const CORPUS_DEFAULTS = Object.freeze({ repeatsPerFact: 3, fillerRatio: 0.3, heldOutFraction: 0.02, docSentences: Object.freeze([3, 8] as const) });

const OPTION_KEYS: readonly string[] = ["seed", "repeatsPerFact", "splitFactUnits", "fillerRatio", "heldOutFraction", "docSentences", "extraTemplates", "extraTemplatesPerFact", "extraFiller", "openers", "statsText", "continuations", "shortMentions", "objectNoise"];

/** Seed offset of the family-name mention draws (`shortMentions`). */
const SHORT_MENTION_SEED_OFFSET = 7_919;
/** Seed offset of the disagreeing-object draws (`objectNoise`). */
const OBJECT_NOISE_SEED_OFFSET = 104_729;

/** The sentence stating `fact` through `template`. */
export function factSentence(fact: Fact, template: string): string {
  return `${fillTemplate(template, fact.subject)} ${fact.object.str}.`;
}

/** Chooses the phrasing of each fact sentence: the template itself, or an allowed opener composition. */
type Framer = (fact: Fact, template: string) => string;

/** Build the corpus. Throws `E_ARG` on bad options. */
export function buildCorpus(kb: KnowledgeBase, opts: CorpusOptions): Corpus {
  const fn = "buildCorpus";
  checkOptionKeys(fn, opts, OPTION_KEYS);
  const repeats = opts.repeatsPerFact ?? CORPUS_DEFAULTS.repeatsPerFact;
  const fillerRatio = opts.fillerRatio ?? CORPUS_DEFAULTS.fillerRatio;
  const heldOutFraction = opts.heldOutFraction ?? CORPUS_DEFAULTS.heldOutFraction;
  const [docMin, docMax] = opts.docSentences ?? CORPUS_DEFAULTS.docSentences;
  if (!Number.isInteger(opts.seed)) throw new DeltaEditError("E_ARG", `${fn}: option "seed" must be an integer, got ${opts.seed}`);
  if (!Number.isInteger(repeats) || repeats < 1) throw new DeltaEditError("E_ARG", `${fn}: option "repeatsPerFact" must be an integer ≥ 1, got ${repeats}`);
  if (!(fillerRatio >= 0 && fillerRatio < 1)) throw new DeltaEditError("E_ARG", `${fn}: option "fillerRatio" must be in [0, 1), got ${fillerRatio}`);
  if (!(heldOutFraction >= 0 && heldOutFraction <= 1)) throw new DeltaEditError("E_ARG", `${fn}: option "heldOutFraction" must be in [0, 1], got ${heldOutFraction}`);
  if (!(Number.isInteger(docMin) && Number.isInteger(docMax) && docMin >= 1 && docMax >= docMin)) {
    throw new DeltaEditError("E_ARG", `${fn}: option "docSentences" must be integers [min, max] with 1 ≤ min ≤ max, got [${docMin}, ${docMax}]`);
  }

  const rng = new Rng(opts.seed);
  const extra = opts.extraTemplates ?? {};
  for (const [id, ts] of Object.entries(extra)) {
    if (!kb.relations.some((r) => r.id === id)) throw new DeltaEditError("E_ARG", `${fn}: option "extraTemplates" names relation "${id}", which is not in the knowledge base`);
    for (const t of ts) if (t.split("{}").length !== 2) throw new DeltaEditError("E_ARG", `${fn}: extra template ${JSON.stringify(t)} of relation ${id} must contain exactly one "{}"`);
  }
  const perFact = opts.extraTemplatesPerFact;
  if (perFact !== undefined && !(Number.isInteger(perFact) && perFact >= 0)) throw new DeltaEditError("E_ARG", `${fn}: option "extraTemplatesPerFact" must be an integer ≥ 0, got ${perFact}`);
  const allTemplates = new Map<string, readonly string[]>(kb.relations.map((r) => [r.id, [...r.trainTemplates, ...(extra[r.id] ?? [])]]));
  // per fact: its relation's training templates + a seeded sample of the relation's pool, when asked
  const factTemplates = new Map<Fact, readonly string[]>();
  if (perFact !== undefined) {
    for (const f of kb.facts) {
      const r = kb.relations.find((x) => x.id === f.relationId)!;
      factTemplates.set(f, [...r.trainTemplates, ...rng.shuffle([...(extra[r.id] ?? [])]).slice(0, perFact)]);
    }
  }
  const templatesOf = (f: Fact): readonly string[] => factTemplates.get(f) ?? allTemplates.get(f.relationId)!;
  const names = fillerNames(kb);
  const extraFiller = opts.extraFiller;
  if (extraFiller !== undefined && (extraFiller.units.length === 0 || !(extraFiller.share >= 0 && extraFiller.share <= 1))) {
    throw new DeltaEditError("E_ARG", `${fn}: option "extraFiller" needs at least one unit and a share in [0, 1], got ${extraFiller.units.length} units, share ${extraFiller.share}`);
  }
  const openers = opts.openers;
  if (openers !== undefined && (openers.phrases.length === 0 || !(openers.share >= 0 && openers.share <= 1))) {
    throw new DeltaEditError("E_ARG", `${fn}: option "openers" needs at least one phrase and a share in [0, 1], got ${openers.phrases.length} phrases, share ${openers.share}`);
  }
  const heldOutPhrasings = new Map<string, ReadonlySet<string>>(kb.relations.map((r) => [r.id, new Set(r.heldOutTemplates)]));
  const frame: Framer = (f, t) => {
    if (openers === undefined || openers.share === 0 || !(rng.uniform() < openers.share)) return t;
    const held = heldOutPhrasings.get(f.relationId)!;
    const allowed = openers.phrases.map((o) => withOpener(o, t)).filter((c) => !held.has(c));
    return allowed.length === 0 ? t : allowed[rng.int(allowed.length)]!;
  };
  const nextFiller = (): string[] =>
    extraFiller !== undefined && rng.uniform() < extraFiller.share ? [...extraFiller.units[rng.int(extraFiller.units.length)]!] : fillerUnit(rng, names);

  const short = opts.shortMentions;
  if (short !== undefined && !(short.share >= 0 && short.share <= 1)) throw new DeltaEditError("E_ARG", `${fn}: option "shortMentions" needs a share in [0, 1], got ${short.share}`);
  const mentionRng = new Rng(opts.seed + SHORT_MENTION_SEED_OFFSET); // its own stream: the other draws do not move
  /** The fact as the training text mentions it: a person's family name alone with probability `share`. */
  const mention = (f: Fact): Fact => {
    if (short === undefined || short.share === 0 || !f.subjectId.startsWith("person:")) return f;
    const words = f.subject.split(" ");
    if (words.length < 2 || !(mentionRng.uniform() < short.share)) return f;
    return { ...f, subject: words[words.length - 1]! };
  };
  const noise = opts.objectNoise;
  if (noise !== undefined && !(noise.share >= 0 && noise.share < 1)) throw new DeltaEditError("E_ARG", `${fn}: option "objectNoise" needs a share in [0, 1), got ${noise.share}`);
  const noiseRng = new Rng(opts.seed + OBJECT_NOISE_SEED_OFFSET); // its own stream, like the mention draws
  const objectsOf = new Map(kb.relations.map((r) => [r.id, r.objects]));
  /** The fact as a training sentence states it: with probability `share`, another object of its relation. */
  const stated = (f: Fact): Fact => {
    if (noise === undefined || noise.share === 0 || !(noiseRng.uniform() < noise.share)) return f;
    const others = objectsOf.get(f.relationId)!.filter((o) => o.id !== f.object.id);
    return others.length === 0 ? f : { ...f, object: others[noiseRng.int(others.length)]! };
  };

  // 1. fact units
  const units: string[][] = [];
  const bySubject = [...factsBySubject(kb).values()];
  const rounds = Math.max(...kb.facts.map((f) => templatesOf(f).length));
  let factSentences = 0;
  for (let r = 0; r < repeats; r++) {
    // perms[s][j]: template order for fact j of subject s in this repeat
    const perms = bySubject.map((facts) => facts.map((f) => rng.shuffle(templatesOf(f).map((_, i) => i))));
    for (let k = 0; k < rounds; k++) {
      bySubject.forEach((facts, s) => {
        const unit: string[] = [];
        facts.forEach((f, j) => {
          const perm = perms[s]![j]!;
          if (k < perm.length) unit.push(factSentence(stated(mention(f)), frame(f, templatesOf(f)[perm[k]!]!)));
        });
        if (unit.length > 0) {
          if (opts.splitFactUnits === true) for (const sentence of unit) units.push([sentence]);
          else units.push(rng.shuffle(unit));
          factSentences += unit.length;
        }
      });
    }
  }

  // 1b. subject continuations (one sentence each, like split fact units)
  const cont = opts.continuations;
  if (cont !== undefined) {
    if (!(Number.isInteger(cont.repeats) && cont.repeats >= 1)) throw new DeltaEditError("E_ARG", `${fn}: option "continuations" needs repeats ≥ 1 (an integer), got ${cont.repeats}`);
    const style = cont.style ?? "verbs";
    if (style !== "verbs" && style !== "object") throw new DeltaEditError("E_ARG", `${fn}: option "continuations" has style "${String(style)}"; expected "verbs" or "object"`);
    if (style === "verbs" && cont.table === undefined) throw new DeltaEditError("E_ARG", `${fn}: option "continuations" with style "verbs" needs a table`);
    for (let r = 0; r < cont.repeats; r++) {
      for (const f of kb.facts) {
        const m = stated(mention(f));
        const sentence = style === "object" ? objectContinuationSentence(m.subject, f.relationId, m.object.str) : continuationSentence(m.subject, f.relationId, m.object.str, cont.table);
        if (sentence !== null) {
          units.push([sentence]);
          factSentences++;
        }
      }
    }
  }

  // 2. filler units
  const fillerTarget = Math.round((factSentences * fillerRatio) / (1 - fillerRatio));
  let trainSentences = factSentences;
  for (let n = 0; n < fillerTarget; ) {
    const u = nextFiller();
    units.push(u);
    n += u.length;
    trainSentences += u.length;
  }

  // 3. documents
  const train = pack(rng, rng.shuffle(units), docMin, docMax);

  // 4. held-out split
  const heldOutTarget = Math.round(trainSentences * heldOutFraction);
  const heldUnits: string[][] = [];
  for (let n = 0; n < heldOutTarget; ) {
    let u: string[];
    if (rng.uniform() < fillerRatio) {
      u = nextFiller();
    } else {
      const f = kb.facts[rng.int(kb.facts.length)]!;
      const ts = templatesOf(f);
      u = [factSentence(f, frame(f, ts[rng.int(ts.length)]!))];
    }
    heldUnits.push(u);
    n += u.length;
  }
  const heldOut = pack(rng, heldUnits, docMin, docMax);

  // 5. general text for the statistics (drawn last, so the train and held-out splits do not depend on it)
  const st = opts.statsText;
  const statsUnits: string[][] = [];
  if (st !== undefined) {
    if (!(st.factShare >= 0 && st.factShare <= 1) || !(Number.isInteger(st.sentences) && st.sentences >= 1)) {
      throw new DeltaEditError("E_ARG", `${fn}: option "statsText" needs factShare in [0, 1] and sentences ≥ 1, got ${JSON.stringify(st)}`);
    }
    for (let n = 0; n < st.sentences; ) {
      let u: string[];
      if (rng.uniform() < st.factShare) {
        const f = kb.facts[rng.int(kb.facts.length)]!;
        const ts = templatesOf(f);
        u = [factSentence(f, frame(f, ts[rng.int(ts.length)]!))];
      } else u = nextFiller();
      statsUnits.push(u);
      n += u.length;
    }
  }
  return { train, heldOut, stats: pack(rng, statsUnits, 3, 8) };
}

function fillerNames(kb: KnowledgeBase): FillerNames {
  const of = (kind: string): string[] => kb.subjects.filter((s) => s.kind === kind).map((s) => s.name);
  return { people: of("person"), cities: of("city"), companies: of("company"), bands: of("band") };
}

/** Pack units into documents of a random target length in [min, max] sentences. */
function pack(rng: Rng, units: readonly string[][], min: number, max: number): string[] {
  const docs: string[] = [];
  let cur: string[] = [];
  let target = min + rng.int(max - min + 1);
  for (const u of units) {
    cur.push(...u);
    if (cur.length >= target) {
      docs.push(cur.join(" "));
      cur = [];
      target = min + rng.int(max - min + 1);
    }
  }
  if (cur.length > 0) docs.push(cur.join(" "));
  return docs;
}

/** Total UTF-8 bytes of a list of documents (for size reports). */
export function corpusBytes(docs: readonly string[]): number {
  const enc = new TextEncoder();
  let n = 0;
  for (const d of docs) n += enc.encode(d).length;
  return n;
}
