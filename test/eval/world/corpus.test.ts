import assert from "node:assert/strict";
import { test } from "node:test";
import { buildCorpus, factSentence } from "../../../src/eval/world/corpus.js";
import { buildKnowledgeBase } from "../../../src/eval/world/kb.js";

const SMALL = { people: 40, cities: 8, companies: 8, bands: 8 } as const;

/** Sentences of a document (sentences end with "." and are joined by " "; names hold no "."). */
function sentences(doc: string): string[] {
  return doc.split(/(?<=\.) /);
}

/** The longest static piece of a template around its "{}". */
function longestFragment(template: string): string {
  const [a, b] = template.split("{}") as [string, string];
  return a.trim().length >= b.trim().length ? a : b;
}

test("corpus: deterministic for a seed, different for another seed", () => {
  const kb = buildKnowledgeBase({ seed: 1, ...SMALL });
  const a = buildCorpus(kb, { seed: 5 });
  assert.deepEqual(a, buildCorpus(kb, { seed: 5 }));
  assert.notDeepEqual(a.train, buildCorpus(kb, { seed: 6 }).train);
});

test("corpus: every (fact, training template) sentence appears exactly repeatsPerFact times", () => {
  const kb = buildKnowledgeBase({ seed: 2, ...SMALL });
  const repeats = 2;
  const c = buildCorpus(kb, { seed: 2, repeatsPerFact: repeats, fillerRatio: 0.25 });
  const count = new Map<string, number>();
  let total = 0;
  for (const d of c.train) {
    for (const s of sentences(d)) {
      count.set(s, (count.get(s) ?? 0) + 1);
      total++;
    }
  }
  let factTotal = 0;
  for (const f of kb.facts) {
    const r = kb.relations.find((x) => x.id === f.relationId)!;
    for (const t of r.trainTemplates) {
      const s = factSentence(f, t);
      assert.equal(count.get(s), repeats, `"${s}"`);
      factTotal += repeats;
    }
  }
  const fillerShare = (total - factTotal) / total;
  assert.ok(Math.abs(fillerShare - 0.25) < 0.02, `filler share ${fillerShare.toFixed(3)}, asked 0.25`);
  assert.ok(c.heldOut.length > 0, "held-out split is not empty");
  const lens = c.train.map((d) => sentences(d).length);
  assert.ok(Math.min(...lens) >= 1 && lens.filter((n) => n >= 3).length / lens.length > 0.9, "documents have a few sentences");
});

test("corpus: splitFactUnits with one-sentence documents puts every fact sentence at a document start", () => {
  const kb = buildKnowledgeBase({ seed: 4, ...SMALL });
  const c = buildCorpus(kb, { seed: 4, repeatsPerFact: 1, splitFactUnits: true, docSentences: [1, 1], fillerRatio: 0 });
  const facts = new Set(kb.facts.flatMap((f) => kb.relations.find((r) => r.id === f.relationId)!.trainTemplates.map((t) => factSentence(f, t))));
  const seen = new Map<string, number>();
  for (const d of c.train) {
    assert.equal(sentences(d).length, 1, `one sentence per document: "${d}"`);
    seen.set(d, (seen.get(d) ?? 0) + 1);
  }
  for (const s of facts) assert.equal(seen.get(s), 1, `"${s}" is a document`);
  // the default keeps a subject's facts together in one unit
  const grouped = buildCorpus(kb, { seed: 4, docSentences: [1, 1], fillerRatio: 0 });
  assert.ok(grouped.train.some((d) => sentences(d).length > 1), "without splitFactUnits a unit holds several facts");
});

test("corpus (default size): novel wordings never appear; held-out split is fact + filler text", () => {
  const kb = buildKnowledgeBase({ seed: 0 });
  const c = buildCorpus(kb, { seed: 0 });
  const train = c.train.join("\n");
  const held = c.heldOut.join("\n");
  for (const r of kb.relations) {
    for (const h of r.novelTemplates) {
      const frag = longestFragment(h);
      assert.ok(frag.trim().length >= 8, `${r.id}: novel wording "${h}" needs a distinctive fragment`);
      for (const t of r.trainTemplates) assert.ok(!t.includes(frag.trim()), `${r.id}: fragment "${frag}" of "${h}" is in training template "${t}"`);
      assert.ok(!train.includes(frag), `${r.id}: held-out fragment "${frag}" occurs in train`);
      assert.ok(!held.includes(frag), `${r.id}: held-out fragment "${frag}" occurs in heldOut`);
    }
  }
  // spot-check full paraphrase prompts too
  for (const f of kb.facts.slice(0, 200)) {
    const r = kb.relations.find((x) => x.id === f.relationId)!;
    for (const h of [...r.heldOutTemplates, ...r.novelTemplates]) assert.ok(!train.includes(h.replace("{}", f.subject)));
  }
  const heldSentences = c.heldOut.flatMap(sentences);
  const trainSentenceCount = c.train.reduce((n, d) => n + sentences(d).length, 0);
  assert.ok(Math.abs(heldSentences.length / trainSentenceCount - 0.02) < 0.005, `held-out fraction ${heldSentences.length / trainSentenceCount}`);
  const factSet = new Set(kb.facts.flatMap((f) => kb.relations.find((x) => x.id === f.relationId)!.trainTemplates.map((t) => factSentence(f, t))));
  const heldFacts = heldSentences.filter((s) => factSet.has(s)).length;
  assert.ok(heldFacts > 0 && heldFacts < heldSentences.length, `held-out has ${heldFacts} fact sentences of ${heldSentences.length}`);
  assert.ok(train.length > 2_000_000, `default train corpus is ${train.length} chars`);
});

test("corpus: filler never mentions a relation verb or the closed-set words of person relations", () => {
  const kb = buildKnowledgeBase({ seed: 4, ...SMALL });
  const c = buildCorpus(kb, { seed: 4, fillerRatio: 0.5 });
  const factSet = new Set(kb.facts.flatMap((f) => kb.relations.find((x) => x.id === f.relationId)!.trainTemplates.map((t) => factSentence(f, t))));
  const banned = kb.relations
    .filter((r) => r.subjectKind === "person" && !r.objects.some((o) => o.id.startsWith("city:") || o.id.startsWith("company:")))
    .flatMap((r) => r.objects.map((o) => o.str));
  const filler = c.train.flatMap(sentences).filter((s) => !factSet.has(s));
  assert.ok(filler.length > 100);
  for (const s of filler) {
    const words = new Set(s.replace(/[.,]/g, "").split(" "));
    for (const w of [...banned, "born", "works", "plays", "speaks"]) assert.ok(!words.has(w), `filler "${s}" contains "${w}"`);
  }
});

/** Corpus options under which every training document is one sentence (so documents compare one to one), with continuations and a statistics split. */
const ONE_SENTENCE_DOCS = { seed: 3, repeatsPerFact: 2, splitFactUnits: true, docSentences: [1, 1] as const, fillerRatio: 0.2, continuations: { repeats: 1, style: "object" as const }, statsText: { factShare: 0.5, sentences: 400 } };

test("corpus: shortMentions names a share of a person's training sentences by the family name alone, and changes nothing else", () => {
  const kb = buildKnowledgeBase({ seed: 3, ...SMALL });
  const opts = ONE_SENTENCE_DOCS;
  const full = buildCorpus(kb, opts);
  assert.deepEqual(buildCorpus(kb, { ...opts, shortMentions: { share: 0 } }), full, "share 0 is the corpus without the option");
  const short = buildCorpus(kb, { ...opts, shortMentions: { share: 0.5 } });
  // the mention draws have their own random stream: document i is the same sentence, its name maybe shortened
  assert.equal(short.train.length, full.train.length);
  assert.deepEqual(short.heldOut, full.heldOut, "held-out text keeps full names");
  assert.deepEqual(short.stats, full.stats, "statistics text keeps full names");
  const people = kb.subjects.filter((s) => s.kind === "person" && s.name.includes(" ")).map((s) => s.name);
  assert.ok(people.length > 10);
  let personSentences = 0;
  let shortened = 0;
  for (let i = 0; i < full.train.length; i++) {
    const a = full.train[i]!;
    const b = short.train[i]!;
    const who = people.find((n) => a.includes(n));
    if (who === undefined || !kb.facts.some((f) => f.subject === who && a.includes(f.object.str))) {
      assert.equal(b, a, `document ${i} has no person fact and must not change`);
      continue;
    }
    personSentences++;
    if (b === a) continue;
    const family = who.split(" ").pop()!;
    assert.equal(b, a.replace(who, family), `document ${i}: only the name is shortened`);
    shortened++;
  }
  assert.ok(personSentences > 1000, `${personSentences} person fact sentences`);
  const share = shortened / personSentences;
  assert.ok(share > 0.4 && share < 0.6, `share of shortened person sentences ${share.toFixed(3)} (asked 0.5)`);
  assert.throws(() => buildCorpus(kb, { ...opts, shortMentions: { share: 1.5 } }), /shortMentions" needs a share in \[0, 1\], got 1.5/);
});

test("corpus: objectNoise states another object of the relation in a share of the training sentences, and changes nothing else", () => {
  const kb = buildKnowledgeBase({ seed: 3, ...SMALL });
  const opts = { ...ONE_SENTENCE_DOCS, shortMentions: { share: 0.3 } };
  const clean = buildCorpus(kb, opts);
  assert.deepEqual(buildCorpus(kb, { ...opts, objectNoise: { share: 0 } }), clean, "share 0 is the corpus without the option");
  const noisy = buildCorpus(kb, { ...opts, objectNoise: { share: 0.25 } });
  // the noise draws have their own random stream: document i is the same sentence (same name mention too), its object maybe replaced
  assert.equal(noisy.train.length, clean.train.length);
  assert.deepEqual(noisy.heldOut, clean.heldOut, "held-out text keeps the true objects");
  assert.deepEqual(noisy.stats, clean.stats, "the statistics split keeps the true objects");
  const objectsOf = new Map(kb.relations.map((r) => [r.id, r.objects.map((o) => o.str)]));
  let factDocs = 0;
  let replaced = 0;
  for (let i = 0; i < clean.train.length; i++) {
    const a = clean.train[i]!;
    const b = noisy.train[i]!;
    if (a === b) {
      if (kb.facts.some((f) => a.includes(f.subject.split(" ").pop()!) && a.includes(f.object.str))) factDocs++;
      continue;
    }
    // exactly one word differs: the object, replaced by another object of a relation that has both
    const wa = a.split(" ");
    const wb = b.split(" ");
    assert.equal(wb.length, wa.length, `document ${i}: same words except the object (${JSON.stringify(a)} / ${JSON.stringify(b)})`);
    const diff = wa.map((w, j) => j).filter((j) => wa[j] !== wb[j]);
    assert.equal(diff.length, 1, `document ${i}: one word differs (${JSON.stringify(a)} / ${JSON.stringify(b)})`);
    const strip = (w: string): string => w.replace(/\.$/, "");
    const [x, y] = [strip(wa[diff[0]!]!), strip(wb[diff[0]!]!)];
    assert.ok([...objectsOf.values()].some((objs) => objs.includes(x) && objs.includes(y)), `document ${i}: "${x}" → "${y}" stays within one relation's objects`);
    factDocs++;
    replaced++;
  }
  assert.ok(factDocs > 1000, `${factDocs} fact documents`);
  const share = replaced / factDocs;
  assert.ok(share > 0.17 && share < 0.33, `share of sentences with another object ${share.toFixed(3)} (asked 0.25)`);
  assert.throws(() => buildCorpus(kb, { ...opts, objectNoise: { share: 1 } }), /objectNoise" needs a share in \[0, 1\), got 1/);
});
