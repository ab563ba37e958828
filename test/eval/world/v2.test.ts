/**
 * World v2's levers: person names composed from shared pools (identity only as a combination), a
 * general-text split for the key statistics in which facts are a minority, and the v2 recipe.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildCorpus } from "../../../src/eval/world/corpus.js";
import { buildKnowledgeBase } from "../../../src/eval/world/kb.js";
import { buildWorld, mergeWorldOptions, WORLD_RECIPE_STATS_LAYERS, WORLD_RECIPE_TRAIN, WORLD_RECIPES } from "../../../src/eval/world/world.js";
import { DeltaEditError } from "../../../src/errors.js";

test("composed person names: unique pairs from the pools, every pool word shared, no collision with other names", () => {
  const kb = buildKnowledgeBase({ seed: 5, people: 120, cities: 10, companies: 6, bands: 6, personPools: [12, 12] });
  const people = kb.subjects.filter((s) => s.kind === "person").map((s) => s.name);
  assert.equal(people.length, 120);
  assert.equal(new Set(people).size, 120, "a name pair was used twice");
  const given = new Map<string, number>();
  const family = new Map<string, number>();
  for (const p of people) {
    const parts = p.split(" ");
    assert.equal(parts.length, 2, p);
    given.set(parts[0]!, (given.get(parts[0]!) ?? 0) + 1);
    family.set(parts[1]!, (family.get(parts[1]!) ?? 0) + 1);
  }
  assert.equal(given.size, 12);
  assert.equal(family.size, 12);
  // 120 people over 12 × 12 pools: every word exactly 10 times (the diagonal walk balances use when G = F)
  assert.deepEqual([...new Set(given.values())], [10]);
  assert.deepEqual([...new Set(family.values())], [10]);
  const poolWords = new Set([...given.keys(), ...family.keys()]);
  for (const s of kb.subjects) if (s.kind !== "person") for (const w of s.name.split(" ")) assert.ok(!poolWords.has(w), `${s.kind} ${s.name} reuses a pool word`);
});

test("composed person names: unequal pools use every word evenly and every pair at most once", () => {
  const uses = (people: number, G: number, F: number): { pairs: number; given: number[]; family: number[] } => {
    const kb = buildKnowledgeBase({ seed: 7, people, cities: 4, companies: 3, bands: 3, personPools: [G, F] });
    const names = kb.subjects.filter((s) => s.kind === "person").map((s) => s.name.split(" "));
    const count = (i: number): number[] => [...names.reduce((m, n) => m.set(n[i]!, (m.get(n[i]!) ?? 0) + 1), new Map<string, number>()).values()];
    return { pairs: new Set(names.map((n) => n.join(" "))).size, given: count(0), family: count(1) };
  };
  // a unique family name per person, given names shared by 15
  const a = uses(360, 24, 360);
  assert.equal(a.pairs, 360);
  assert.equal(a.family.length, 360);
  assert.deepEqual([...new Set(a.family)], [1]);
  assert.deepEqual([...new Set(a.given)], [15]);
  // gcd(12, 18) = 6: all 216 pairs, each word used F or G times
  const b = uses(216, 12, 18);
  assert.equal(b.pairs, 216);
  assert.deepEqual([...new Set(b.given)], [18]);
  assert.deepEqual([...new Set(b.family)], [12]);
  // a count that is not a multiple of the pools: uses differ by at most one
  const c = uses(100, 12, 30);
  assert.equal(c.pairs, 100);
  assert.ok(Math.max(...c.given) - Math.min(...c.given) <= 1 && c.given.length === 12, `given ${c.given}`);
  assert.ok(Math.max(...c.family) - Math.min(...c.family) <= 1 && c.family.length === 30, `family ${c.family}`);
});

test("composed person names: too many people for the pools is an error naming the option", () => {
  assert.throws(() => buildKnowledgeBase({ seed: 1, people: 30, personPools: [5, 5] }), (e: unknown) => e instanceof DeltaEditError && /5 × 5 = 25/.test(e.message));
  assert.throws(() => buildKnowledgeBase({ seed: 1, people: 3, personPools: [1, 5] }), (e: unknown) => e instanceof DeltaEditError && /pools must be integers ≥ 2/.test(e.message));
});

test("statsText: general text with the requested fact share, and the train / held-out splits unchanged", () => {
  const kb = buildKnowledgeBase({ seed: 2, people: 20, cities: 4, companies: 3, bands: 3 });
  const base = buildCorpus(kb, { seed: 9, repeatsPerFact: 1, fillerRatio: 0.25 });
  const withStats = buildCorpus(kb, { seed: 9, repeatsPerFact: 1, fillerRatio: 0.25, statsText: { factShare: 0.1, sentences: 4000 } });
  assert.deepEqual(withStats.train, base.train);
  assert.deepEqual(withStats.heldOut, base.heldOut);
  assert.deepEqual(base.stats, []);
  const facts = new Set(kb.facts.map((f) => f.object.str));
  const sentences = withStats.stats.flatMap((d) => d.split(/(?<=\.) /));
  assert.ok(sentences.length >= 4000);
  // a fact sentence names its subject and ends with its object; count sentences ending in an object
  // name that also contain a subject (filler never states a relation, corpus.test.ts)
  const subjects = kb.subjects.map((s) => s.name);
  const factLike = sentences.filter((s) => facts.has(s.replace(/\.$/, "").split(" ").slice(-1)[0]!) && subjects.some((n) => s.includes(n))).length;
  const share = factLike / sentences.length;
  // binomial: 10 % of ≥ 4000 units → σ ≈ 0.5 %; filler units hold several sentences, so the share is a bit lower
  assert.ok(share > 0.03 && share < 0.15, `fact share ${share}`);
});

test("the v2-composed recipe: composed names, 25 % filler, 8 blocks, general-text statistics", () => {
  const opts = mergeWorldOptions(WORLD_RECIPES["v2-composed"]!, { kb: { people: 40, cities: 4, companies: 3, bands: 3 }, vocabSize: 600, editCount: 10, model: { hiddenSize: 16, numHeads: 2, numKvHeads: 1, intermediateSize: 32, maxPositions: 64 } });
  assert.deepEqual(opts.kb?.personPools, [30, 30]);
  const w = buildWorld({ seed: 1, ...opts });
  assert.equal(w.config.numLayers, 8);
  assert.ok(w.corpus.stats.length > 0);
  assert.equal(w.resolved.corpus.fillerRatio, 0.25);
});

test("the v2 recipe (probe Q): composed names, object continuations, family-name mentions, 8 blocks of F 1 536, first 3 MLPs frozen", () => {
  const small = { kb: { people: 40, cities: 4, companies: 3, bands: 3 }, vocabSize: 600, editCount: 10, model: { hiddenSize: 16, numHeads: 2, numKvHeads: 1, maxPositions: 64 } };
  const recipe = WORLD_RECIPES["v2"]!;
  assert.deepEqual(recipe.model, { hiddenSize: 128, numLayers: 8, intermediateSize: 1536 });
  const w = buildWorld({ seed: 1, ...mergeWorldOptions(recipe, { ...small, model: { ...small.model, intermediateSize: 32 } }) });
  assert.equal(w.config.numLayers, 8);
  assert.deepEqual(w.resolved.kb.personPools, [24, 360]);
  assert.deepEqual(w.resolved.corpus.shortMentions, { share: 0.3 });
  assert.deepEqual(w.resolved.corpus.continuations, { repeats: 4, style: "object" });
  assert.equal(w.corpus.stats.length, 0, "no general-text split: writeWorldStats uses the training corpus");
  const people = w.kb.subjects.filter((s) => s.kind === "person").map((s) => s.name);
  assert.equal(people.length, 40);
  assert.equal(new Set(people).size, 40, "each (given, family) pair names one person");
  assert.ok(new Set(people.map((n) => n.split(" ")[0])).size <= 24, "given names come from a pool of 24");
  assert.deepEqual(WORLD_RECIPE_TRAIN["v2"], { frozenMlpBlocks: 3 });
  assert.deepEqual(WORLD_RECIPE_STATS_LAYERS["v2"], [3, 4], "the statistics of the shipped preset's edit layers");
});

test("the v2-first recipe: v1's world plus object continuations (4 per fact); statistics over the training corpus", () => {
  const opts = mergeWorldOptions(WORLD_RECIPES["v2-first"]!, { kb: { people: 40, cities: 4, companies: 3, bands: 3 }, vocabSize: 600, editCount: 10, model: { hiddenSize: 16, numHeads: 2, numKvHeads: 1, intermediateSize: 32, maxPositions: 64 } });
  const w = buildWorld({ seed: 1, ...opts });
  assert.equal(w.config.numLayers, 6);
  assert.equal(w.kb.subjects.filter((s) => s.kind === "person").length, 40);
  assert.equal(w.corpus.stats.length, 0, "no general-text split: writeWorldStats uses the training corpus");
  assert.deepEqual(w.resolved.corpus.continuations, { repeats: 4, style: "object" });
  const f = w.kb.facts[0]!;
  const sentence = `${f.subject} ${f.object.str} `;
  assert.equal(w.corpus.train.filter((d) => d.startsWith(sentence)).length, 4, "each fact's continuation 4 times");
});

test("subject continuations: one phrase per object value, first words unique, each fact stated `repeats` times right after the name", async () => {
  const { SUBJECT_CONTINUATIONS, continuationSentence } = await import("../../../src/eval/world/continuations.js");
  const { RELATION_SPECS } = await import("../../../src/eval/world/relations.js");
  const { EXTRA_TRAIN_TEMPLATES } = await import("../../../src/eval/world/extratemplates.js");
  const firstWords = new Map<string, string>();
  for (const [rel, table] of Object.entries(SUBJECT_CONTINUATIONS)) {
    const spec = RELATION_SPECS.find((r) => r.id === rel);
    assert.ok(spec && "words" in spec.objects, `${rel} must be a person relation with word objects`);
    assert.deepEqual(Object.keys(table).sort(), [...spec.objects.words].sort(), `${rel}: every object value needs a phrase`);
    for (const [obj, phrase] of Object.entries(table)) {
      const w = phrase.split(" ")[0]!;
      assert.ok(!firstWords.has(w), `"${w}" starts the phrases of ${firstWords.get(w)} and ${rel}/${obj}`);
      firstWords.set(w, `${rel}/${obj}`);
    }
  }
  // no phrase continues a name the way a template of any person relation does
  const templateStarts = new Set(RELATION_SPECS.filter((r) => r.subjectKind === "person").flatMap((r) => [...r.trainTemplates, ...(EXTRA_TRAIN_TEMPLATES[r.id] ?? [])]).filter((t) => t.startsWith("{} ")).map((t) => t.split(" ")[1]!));
  for (const w of firstWords.keys()) assert.ok(!templateStarts.has(w), `"${w}" also starts a template after the name`);
  assert.equal(continuationSentence("Ka Lo", "P641", "tennis"), "Ka Lo served an ace.");
  assert.equal(continuationSentence("Ka Lo", "P19", "Paris"), null);

  const kb = buildKnowledgeBase({ seed: 3, people: 24, cities: 4, companies: 3, bands: 3, personPools: [6, 6] });
  const plain = buildCorpus(kb, { seed: 1, splitFactUnits: true, docSentences: [1, 1], fillerRatio: 0.1 });
  const withCont = buildCorpus(kb, { seed: 1, splitFactUnits: true, docSentences: [1, 1], fillerRatio: 0.1, continuations: { repeats: 3, table: SUBJECT_CONTINUATIONS } });
  const expected = kb.facts.flatMap((f) => {
    const s = continuationSentence(f.subject, f.relationId, f.object.str);
    return s === null ? [] : [s, s, s];
  });
  assert.equal(expected.length, 24 * 3 * 3);
  const count = (docs: readonly string[]) => {
    const m = new Map<string, number>();
    for (const d of docs) if (expected.includes(d)) m.set(d, (m.get(d) ?? 0) + 1);
    return m;
  };
  assert.equal(count(plain.train).size, 0);
  const got = count(withCont.train);
  assert.equal([...got.values()].reduce((a, b) => a + b, 0), expected.length);
  assert.throws(() => buildCorpus(kb, { seed: 1, continuations: { repeats: 0, table: SUBJECT_CONTINUATIONS } }), /repeats ≥ 1/);
});

test("object continuations: every fact of every relation stated as \"<subject> <object> <marker>.\", `repeats` times, right after BOS", async () => {
  const { OBJECT_CONTINUATION_MARKERS, objectContinuationSentence } = await import("../../../src/eval/world/continuations.js");
  const { RELATION_SPECS } = await import("../../../src/eval/world/relations.js");
  const { EXTRA_TRAIN_TEMPLATES } = await import("../../../src/eval/world/extratemplates.js");
  assert.deepEqual(Object.keys(OBJECT_CONTINUATION_MARKERS).sort(), RELATION_SPECS.map((r) => r.id).sort(), "one marker per relation");
  // no template of any relation starts "{} <object>", so the word after a name is the object only in a continuation
  for (const r of RELATION_SPECS) for (const t of [...r.trainTemplates, ...(EXTRA_TRAIN_TEMPLATES[r.id] ?? [])]) assert.ok(!t.startsWith("{} {}"), t);
  assert.equal(objectContinuationSentence("Ka Lo", "P19", "Ulma"), "Ka Lo Ulma native.");
  assert.equal(objectContinuationSentence("Ka Lo", "P999", "Ulma"), null);

  const kb = buildKnowledgeBase({ seed: 3, people: 24, cities: 4, companies: 3, bands: 3 });
  const withCont = buildCorpus(kb, { seed: 1, splitFactUnits: true, docSentences: [1, 1], fillerRatio: 0.1, continuations: { repeats: 2, style: "object" } });
  const expected = new Map<string, number>();
  for (const f of kb.facts) expected.set(objectContinuationSentence(f.subject, f.relationId, f.object.str)!, 0);
  assert.equal(expected.size, kb.facts.length);
  for (const d of withCont.train) if (expected.has(d)) expected.set(d, expected.get(d)! + 1);
  for (const [s, n] of expected) assert.equal(n, 2, s);
  assert.throws(() => buildCorpus(kb, { seed: 1, continuations: { repeats: 1, style: "bogus" as "object" } }), /style "bogus"/);
  assert.throws(() => buildCorpus(kb, { seed: 1, continuations: { repeats: 1 } }), /needs a table/);
});
