/**
 * Counterfactual edit set over the fact world, in MultiCounterFact record format
 * (spec/evaluation.md §1.2).
 *
 * Per record (deterministic for a seed):
 *   requested_rewrite.prompt   a TRAINING template of the relation (exactly one "{}")
 *   target_true                the knowledge-base object; target_new another member of the same
 *                              closed set (≠ target_true), drawn uniformly
 *   paraphrase_prompts         `paraphrases` HELD-OUT templates filled with the subject (CounterFact
 *                              prefixes a random sentence; we do not)
 *   neighborhood_prompts       up to `maxNeighbors` OTHER subjects with the same relation and the same
 *                              TRUE object, each with a random training template (answer: target_true)
 *   attribute_prompts          up to `maxNeighbors` subjects whose object under the relation is
 *                              target_new, each with a random training template
 *   generation_prompts         the subject kind's open prompts (relations.ts), shuffled
 *
 * Facts are chosen in a seeded random order, each at most once; a subject is reused only after
 * every subject has been edited once.
 */
import { DeltaEditError } from "../../errors.js";
import { Rng } from "../../util/rng.js";
import { checkOptionKeys } from "./_options.js";
import type { Fact, KnowledgeBase, Relation, WorldObject } from "./kb.js";
import type { SubjectKind } from "./names.js";
import { fillTemplate, GENERATION_TEMPLATES } from "./relations.js";

/** `{str, id}` as in CounterFact; `str` has no leading space. */
export interface TargetRecord {
  str: string;
  id: string;
}

/** One MultiCounterFact-format record. */
export interface EditRecord {
  case_id: number;
  pararel_idx: number; // index of the edited fact in kb.facts (provenance; unused by metrics)
  requested_rewrite: {
    prompt: string;
    subject: string;
    relation_id: string;
    target_true: TargetRecord;
    target_new: TargetRecord;
  };
  paraphrase_prompts: string[];
  neighborhood_prompts: string[];
  attribute_prompts: string[];
  generation_prompts: string[];
}

export interface EditSetOptions {
  seed: number;
  /** Number of records (≤ number of facts). */
  count: number;
  /** Maximum neighborhood (and attribute) prompts per record. Default 10. */
  maxNeighbors?: number;
  /** Paraphrase prompts per record (≤ held-out templates of every relation). Default 2. */
  paraphrases?: number;
}

const OPTION_KEYS: readonly string[] = ["seed", "count", "maxNeighbors", "paraphrases"];

/** Build the edit set. Throws `E_ARG` on bad options. */
export function buildEditSet(kb: KnowledgeBase, opts: EditSetOptions): EditRecord[] {
  const fn = "buildEditSet";
  checkOptionKeys(fn, opts, OPTION_KEYS);
  const maxNeighbors = opts.maxNeighbors ?? 10;
  const paraphrases = opts.paraphrases ?? 2;
  if (!Number.isInteger(opts.seed)) throw new DeltaEditError("E_ARG", `${fn}: option "seed" must be an integer, got ${opts.seed}`);
  if (!Number.isInteger(opts.count) || opts.count < 0 || opts.count > kb.facts.length) {
    throw new DeltaEditError("E_ARG", `${fn}: option "count" must be an integer in [0, ${kb.facts.length}] (the number of facts), got ${opts.count}`);
  }
  if (!Number.isInteger(maxNeighbors) || maxNeighbors < 0) throw new DeltaEditError("E_ARG", `${fn}: option "maxNeighbors" must be an integer ≥ 0, got ${maxNeighbors}`);
  const minHeldOut = Math.min(...kb.relations.map((r) => r.heldOutTemplates.length));
  if (!Number.isInteger(paraphrases) || paraphrases < 0 || paraphrases > minHeldOut) {
    throw new DeltaEditError("E_ARG", `${fn}: option "paraphrases" must be an integer in [0, ${minHeldOut}], got ${paraphrases}`);
  }

  const rng = new Rng(opts.seed);
  const relById = new Map<string, Relation>(kb.relations.map((r) => [r.id, r]));
  const kindOf = new Map<string, SubjectKind>(kb.subjects.map((s) => [s.id, s.kind]));
  // index: relation id → object id → fact indices (kb.facts order)
  const byObject = new Map<string, Map<string, number[]>>();
  kb.facts.forEach((f, i) => {
    let m = byObject.get(f.relationId);
    if (m === undefined) byObject.set(f.relationId, (m = new Map()));
    const list = m.get(f.object.id);
    if (list === undefined) m.set(f.object.id, [i]);
    else list.push(i);
  });

  const chosen = chooseFacts(rng, kb, opts.count);
  return chosen.map((fi, caseId) => {
    const fact = kb.facts[fi]!;
    const rel = relById.get(fact.relationId)!;
    const alternatives = rel.objects.filter((o) => o.id !== fact.object.id);
    const targetNew: WorldObject = alternatives[rng.int(alternatives.length)]!;
    const randomTrain = (): string => rel.trainTemplates[rng.int(rel.trainTemplates.length)]!;
    const others = (objectId: string): Fact[] => {
      const idx = (byObject.get(rel.id)?.get(objectId) ?? []).filter((j) => kb.facts[j]!.subjectId !== fact.subjectId);
      return rng.shuffle(idx).slice(0, maxNeighbors).map((j) => kb.facts[j]!);
    };
    const kind = kindOf.get(fact.subjectId)!;
    const prompt = randomTrain();
    // A paraphrase is another phrasing: skip the held-out composition that wraps the requested prompt itself.
    const rewording = rel.heldOutTemplates.filter((t) => !t.toLowerCase().endsWith(" " + prompt.toLowerCase()));
    const paraphrasePool = rewording.length >= paraphrases ? rewording : rel.heldOutTemplates;
    return {
      case_id: caseId,
      pararel_idx: fi,
      requested_rewrite: {
        prompt,
        subject: fact.subject,
        relation_id: rel.id,
        target_true: { str: fact.object.str, id: fact.object.id },
        target_new: { str: targetNew.str, id: targetNew.id },
      },
      paraphrase_prompts: rng.shuffle([...paraphrasePool]).slice(0, paraphrases).map((t) => fillTemplate(t, fact.subject)),
      neighborhood_prompts: others(fact.object.id).map((f) => fillTemplate(randomTrain(), f.subject)),
      attribute_prompts: others(targetNew.id).map((f) => fillTemplate(randomTrain(), f.subject)),
      generation_prompts: rng.shuffle([...GENERATION_TEMPLATES[kind]]).map((t) => fillTemplate(t, fact.subject)),
    };
  });
}

/** Fact indices in seeded random order: first one per subject, then the rest (each fact once). */
function chooseFacts(rng: Rng, kb: KnowledgeBase, count: number): number[] {
  const order = rng.shuffle(kb.facts.map((_, i) => i));
  const seen = new Set<string>();
  const first: number[] = [];
  const rest: number[] = [];
  for (const i of order) {
    const s = kb.facts[i]!.subjectId;
    if (seen.has(s)) rest.push(i);
    else {
      seen.add(s);
      first.push(i);
    }
  }
  return first.concat(rest).slice(0, count);
}
