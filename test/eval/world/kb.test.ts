import assert from "node:assert/strict";
import { test } from "node:test";
import { DeltaEditError } from "../../../src/errors.js";
import { buildKnowledgeBase, KB_DEFAULTS } from "../../../src/eval/world/kb.js";

const SMALL = { people: 60, cities: 10, companies: 10, bands: 10 } as const;

test("knowledge base: deterministic for a seed, different for another seed", () => {
  const a = buildKnowledgeBase({ seed: 7, ...SMALL });
  const b = buildKnowledgeBase({ seed: 7, ...SMALL });
  assert.deepEqual(a, b);
  const c = buildKnowledgeBase({ seed: 8, ...SMALL });
  assert.notDeepEqual(a.subjects, c.subjects);
  assert.notDeepEqual(a.facts.map((f) => f.object.str), c.facts.map((f) => f.object.str));
});

test("knowledge base: default size has ≥ 3000 distinct facts and ≥ 8 relations", () => {
  const kb = buildKnowledgeBase({ seed: 0 });
  assert.ok(kb.facts.length >= 3000, `facts = ${kb.facts.length}`);
  assert.equal(kb.facts.length, 6 * KB_DEFAULTS.people + KB_DEFAULTS.cities + 2 * KB_DEFAULTS.companies + 2 * KB_DEFAULTS.bands);
  const keys = new Set(kb.facts.map((f) => `${f.subjectId}\u0000${f.relationId}`));
  assert.equal(keys.size, kb.facts.length, "one fact per (subject, relation)");
  assert.ok(kb.relations.length >= 8, `relations = ${kb.relations.length}`);
  const kinds = new Set(kb.subjects.map((s) => s.kind));
  assert.ok(kinds.size >= 3, `subject kinds = ${[...kinds].join(",")}`);
});

test("knowledge base: names are unique, prefix-free and pronounceable-looking", () => {
  const kb = buildKnowledgeBase({ seed: 3 });
  const names = kb.subjects.map((s) => s.name);
  assert.equal(new Set(names).size, names.length, "unique names");
  const set = new Set(names);
  for (const n of names) {
    const w = n.split(" ");
    for (let i = 1; i < w.length; i++) assert.ok(!set.has(w.slice(0, i).join(" ")), `"${n}" has another name as prefix`);
    assert.match(n, /^[A-Z][a-z]+( [A-Z][a-z]+)*$/, `name "${n}"`);
  }
  assert.ok(names.some((n) => n.includes(" ")), "some multi-word names");
  // the last word identifies the subject (edits write at the subject's last token)
  const lasts = names.map((n) => n.split(" ").at(-1)!);
  assert.equal(new Set(lasts).size, names.length, "last words are unique");
});

test("knowledge base: templates are well-formed and held-out templates differ from training ones", () => {
  const kb = buildKnowledgeBase({ seed: 0, ...SMALL });
  for (const r of kb.relations) {
    assert.ok(r.trainTemplates.length >= 4, `${r.id}: ${r.trainTemplates.length} training templates`);
    assert.ok(r.heldOutTemplates.length >= 2, `${r.id}: ${r.heldOutTemplates.length} held-out templates`);
    assert.ok(r.name.length > 0);
    for (const t of [...r.trainTemplates, ...r.heldOutTemplates]) {
      assert.equal(t.split("{}").length, 2, `${r.id}: template "${t}" must hold exactly one {}`);
      assert.ok(!t.endsWith(" ") && !t.endsWith("{}"), `${r.id}: template "${t}" must end with a word before the object`);
    }
    for (const h of r.heldOutTemplates) assert.ok(!r.trainTemplates.includes(h), `${r.id}: held-out "${h}" is also a training template`);
  }
});

test("knowledge base: objects come from the closed set and no object dominates a relation", () => {
  const kb = buildKnowledgeBase({ seed: 11 });
  for (const r of kb.relations) {
    const ids = new Set(r.objects.map((o) => o.id));
    assert.ok(r.objects.length >= 2, `${r.id}: closed set size ${r.objects.length}`);
    const facts = kb.facts.filter((f) => f.relationId === r.id);
    assert.ok(facts.length > 0, `${r.id} has facts`);
    const hist = new Map<string, number>();
    for (const f of facts) {
      assert.ok(ids.has(f.object.id), `${r.id}: object ${f.object.id} not in closed set`);
      hist.set(f.object.id, (hist.get(f.object.id) ?? 0) + 1);
    }
    const maxShare = Math.max(...hist.values()) / facts.length;
    const uniform = 1 / r.objects.length;
    // sampling weights are within 2× of each other; 3× uniform leaves room for sampling noise
    assert.ok(maxShare <= Math.max(3 * uniform, 0.25), `${r.id}: top object share ${maxShare.toFixed(3)} vs uniform ${uniform.toFixed(3)}`);
  }
});

test("knowledge base: bad options are E_ARG errors that name the option", () => {
  assert.throws(() => buildKnowledgeBase({ seed: 0, poeple: 3 } as never), (e: unknown) => e instanceof DeltaEditError && e.code === "E_ARG" && e.message.includes("poeple"));
  assert.throws(() => buildKnowledgeBase({ seed: 0, cities: 1 }), (e: unknown) => e instanceof DeltaEditError && e.message.includes("cities"));
  assert.throws(() => buildKnowledgeBase({ seed: 0.5 }), (e: unknown) => e instanceof DeltaEditError && e.message.includes("seed"));
});
