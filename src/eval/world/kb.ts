/**
 * The knowledge base of the synthetic fact world: subjects with generated names, the relations of
 * `relations.ts` with their closed object sets, and one fact per (subject, applicable relation).
 *
 * Deterministic for a seed: the same options give a deep-equal knowledge base.
 *
 * Sizes at the defaults (700 people, 60 cities, 80 companies, 120 bands):
 *   facts = 6·700 (person) + 1·60 (city) + 2·80 (company) + 2·120 (band) = 4660.
 *
 * Object distribution: each subject draws its object from the relation's closed set with
 * per-relation weights uniform in [1, 2), so no object takes more than about twice its uniform
 * share (the tests bound it at 3×).
 */
import { DeltaEditError } from "../../errors.js";
import { Rng } from "../../util/rng.js";
import { checkOptionKeys } from "./_options.js";
import { NameGenerator, SUBJECT_KINDS, type SubjectKind } from "./names.js";
import { EXTRA_TRAIN_TEMPLATES } from "./extratemplates.js";
import { paraphraseTemplates } from "./paraphrase.js";
import { RELATION_SPECS, type RelationSpec } from "./relations.js";

export interface Subject {
  readonly id: string; // stable id, e.g. "person:Varo Tellin"
  readonly name: string; // surface string, e.g. "Varo Tellin"
  readonly kind: SubjectKind;
}

/** One member of a relation's closed object set. `str` carries no leading space. */
export interface WorldObject {
  readonly id: string; // e.g. "language:French", "city:Quessaby"
  readonly str: string; // e.g. "French", "Quessaby"
}

export interface Relation {
  readonly id: string; // e.g. "P103"
  readonly name: string; // e.g. "native language"
  readonly subjectKind: SubjectKind;
  readonly objects: readonly WorldObject[]; // the closed set (≥ 2 members)
  readonly trainTemplates: readonly string[]; // the relation's core phrasings (requested prompts, neighborhood prompts)
  /** Held-out paraphrase templates: unseen (context opener, training phrasing) compositions (paraphrase.ts). */
  readonly heldOutTemplates: readonly string[];
  /** Wordings never in the corpus, not even their words' combination (measured, not a bar; relations.ts). */
  readonly novelTemplates: readonly string[];
}

export interface Fact {
  readonly subject: string; // subject name
  readonly subjectId: string;
  readonly relationId: string;
  readonly object: WorldObject;
}

export interface KnowledgeBase {
  readonly seed: number;
  readonly subjects: readonly Subject[]; // grouped by kind in SUBJECT_KINDS order
  readonly relations: readonly Relation[]; // RELATION_SPECS order
  readonly facts: readonly Fact[]; // subject order, then relation order
}

export interface KnowledgeBaseOptions {
  seed: number;
  /** Number of people (6 facts each). Default 700. */
  people?: number;
  /** Number of cities (1 fact each; also the objects of place relations). Default 60. */
  cities?: number;
  /** Number of companies (2 facts each; also the objects of "employer"). Default 80. */
  companies?: number;
  /** Number of bands (2 facts each). Default 120. */
  bands?: number;
  /**
   * Compose person names from shared pools of `[given, family]` names (each pair used once), so a
   * person is identified only by the combination (world v2). Default: unique names (world v1).
   */
  personPools?: readonly [number, number];
}

export const KB_DEFAULTS = Object.freeze({ people: 700, cities: 60, companies: 80, bands: 120 });

const OPTION_KEYS: readonly string[] = ["seed", "people", "cities", "companies", "bands", "personPools"];

function checkCount(fn: string, name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) {
    throw new DeltaEditError("E_ARG", `${fn}: option "${name}" must be an integer ≥ ${min}, got ${v}`, { context: { [name]: v } });
  }
}

/** Build the knowledge base. Throws `E_ARG` on bad options. */
export function buildKnowledgeBase(opts: KnowledgeBaseOptions): KnowledgeBase {
  const fn = "buildKnowledgeBase";
  checkOptionKeys(fn, opts, OPTION_KEYS);
  if (!Number.isInteger(opts.seed)) throw new DeltaEditError("E_ARG", `${fn}: option "seed" must be an integer, got ${opts.seed}`);
  const counts: Record<SubjectKind, number> = {
    person: opts.people ?? KB_DEFAULTS.people,
    city: opts.cities ?? KB_DEFAULTS.cities,
    company: opts.companies ?? KB_DEFAULTS.companies,
    band: opts.bands ?? KB_DEFAULTS.bands,
  };
  // Cities and companies double as closed object sets, which need ≥ 2 members.
  checkCount(fn, "people", counts.person, 1);
  checkCount(fn, "cities", counts.city, 2);
  checkCount(fn, "companies", counts.company, 2);
  checkCount(fn, "bands", counts.band, 1);

  const rng = new Rng(opts.seed);
  const names = new NameGenerator(rng);
  const subjects: Subject[] = [];
  const byKind: Record<SubjectKind, Subject[]> = { person: [], city: [], company: [], band: [] };
  const pools = opts.personPools;
  if (pools !== undefined && !(Array.isArray(pools) && pools.length === 2)) throw new DeltaEditError("E_ARG", `${fn}: option "personPools" must be [given, family], got ${JSON.stringify(pools)}`);
  const composed = pools === undefined ? null : names.composedPeople(counts.person, pools[0], pools[1]);
  for (const kind of SUBJECT_KINDS) {
    for (let i = 0; i < counts[kind]; i++) {
      const name = kind === "person" && composed !== null ? composed[i]! : names.next(kind);
      const s: Subject = { id: `${kind}:${name}`, name, kind };
      subjects.push(s);
      byKind[kind].push(s);
    }
  }

  const relations = RELATION_SPECS.map((spec, i) => resolveRelation(spec, i, byKind));
  const weights = relations.map((r) => r.objects.map(() => 1 + rng.uniform())); // (nRel, nObj_r)

  const facts: Fact[] = [];
  for (const s of subjects) {
    relations.forEach((r, ri) => {
      if (r.subjectKind !== s.kind) return;
      const w = weights[ri]!;
      const object = r.objects[rng.categorical(w)]!;
      facts.push({ subject: s.name, subjectId: s.id, relationId: r.id, object });
    });
  }
  return { seed: opts.seed, subjects, relations, facts };
}

function resolveRelation(spec: RelationSpec, index: number, byKind: Record<SubjectKind, Subject[]>): Relation {
  const src = spec.objects;
  const objects: WorldObject[] =
    "words" in src
      ? src.words.map((w) => ({ id: `${src.category}:${w}`, str: w }))
      : byKind[src.subjectsOf].map((s) => ({ id: s.id, str: s.name }));
  return {
    id: spec.id,
    name: spec.name,
    subjectKind: spec.subjectKind,
    objects,
    trainTemplates: spec.trainTemplates,
    heldOutTemplates: paraphraseTemplates(index, [...spec.trainTemplates, ...(EXTRA_TRAIN_TEMPLATES[spec.id] ?? [])]),
    novelTemplates: spec.novelTemplates,
  };
}

/** The relation with this id; throws `E_ARG` when absent. */
export function relationById(kb: KnowledgeBase, id: string): Relation {
  const r = kb.relations.find((x) => x.id === id);
  if (r === undefined) throw new DeltaEditError("E_ARG", `relation "${id}" is not in the knowledge base (have ${kb.relations.map((x) => x.id).join(", ")})`);
  return r;
}

/** Facts grouped by subject id, in `kb.facts` order. */
export function factsBySubject(kb: KnowledgeBase): Map<string, Fact[]> {
  const m = new Map<string, Fact[]>();
  for (const f of kb.facts) {
    const list = m.get(f.subjectId);
    if (list === undefined) m.set(f.subjectId, [f]);
    else list.push(f);
  }
  return m;
}
