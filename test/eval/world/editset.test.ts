import assert from "node:assert/strict";
import { test } from "node:test";
import { DeltaEditError } from "../../../src/errors.js";
import { buildEditSet, type EditRecord } from "../../../src/eval/world/editset.js";
import { buildKnowledgeBase, type KnowledgeBase } from "../../../src/eval/world/kb.js";

/** (subject, relation id) of a prompt filled from one of the relation's templates, or undefined. */
function parsePrompt(kb: KnowledgeBase, relationId: string, prompt: string, held: boolean): string | undefined {
  const r = kb.relations.find((x) => x.id === relationId)!;
  for (const t of held ? r.heldOutTemplates : r.trainTemplates) {
    const [a, b] = t.split("{}") as [string, string];
    if (prompt.startsWith(a) && prompt.endsWith(b) && prompt.length > a.length + b.length) {
      const subject = prompt.slice(a.length, prompt.length - b.length);
      if (kb.subjects.some((s) => s.name === subject)) return subject;
    }
  }
  return undefined;
}

function objectOf(kb: KnowledgeBase, subject: string, relationId: string): string | undefined {
  return kb.facts.find((f) => f.subject === subject && f.relationId === relationId)?.object.id;
}

function checkRecord(kb: KnowledgeBase, rec: EditRecord): void {
  const rw = rec.requested_rewrite;
  const rel = kb.relations.find((r) => r.id === rw.relation_id);
  assert.ok(rel !== undefined, `case ${rec.case_id}: relation ${rw.relation_id}`);
  assert.equal(rw.prompt.split("{}").length, 2, `case ${rec.case_id}: prompt "${rw.prompt}" must hold exactly one {}`);
  assert.ok(rel.trainTemplates.includes(rw.prompt), `case ${rec.case_id}: prompt is a training template`);
  assert.notEqual(rw.target_new.str, rw.target_true.str);
  assert.notEqual(rw.target_new.id, rw.target_true.id);
  assert.equal(objectOf(kb, rw.subject, rw.relation_id), rw.target_true.id, `case ${rec.case_id}: target_true is the KB object`);
  assert.ok(rel.objects.some((o) => o.id === rw.target_new.id && o.str === rw.target_new.str), "target_new in the closed set");
  assert.ok(!rw.target_true.str.startsWith(" ") && !rw.target_new.str.startsWith(" "));
  assert.equal(rec.paraphrase_prompts.length, 2);
  assert.equal(new Set(rec.paraphrase_prompts).size, 2);
  for (const p of rec.paraphrase_prompts) assert.equal(parsePrompt(kb, rw.relation_id, p, true), rw.subject, `paraphrase "${p}"`);
  // a paraphrase rewords the request: never the held-out composition that wraps the requested prompt itself
  const own = rw.prompt.replace("{}", rw.subject).toLowerCase();
  for (const p of rec.paraphrase_prompts) assert.ok(!p.toLowerCase().endsWith(" " + own), `paraphrase "${p}" only prefixes the requested prompt`);
  assert.ok(rec.neighborhood_prompts.length <= 10);
  for (const p of rec.neighborhood_prompts) {
    const s = parsePrompt(kb, rw.relation_id, p, false);
    assert.ok(s !== undefined && s !== rw.subject, `neighborhood "${p}" is about another subject`);
    assert.equal(objectOf(kb, s, rw.relation_id), rw.target_true.id, `neighborhood "${p}" shares the true object`);
  }
  for (const p of rec.attribute_prompts) {
    const s = parsePrompt(kb, rw.relation_id, p, false);
    assert.ok(s !== undefined && s !== rw.subject, `attribute "${p}"`);
    assert.equal(objectOf(kb, s, rw.relation_id), rw.target_new.id, `attribute "${p}" has target_new as object`);
  }
  assert.ok(rec.generation_prompts.length >= 3);
  for (const p of rec.generation_prompts) assert.ok(p.includes(rw.subject) && !p.includes("{}"));
}

test("edit set: every record is valid MultiCounterFact", () => {
  const kb = buildKnowledgeBase({ seed: 0 });
  const set = buildEditSet(kb, { seed: 0, count: 400 });
  assert.equal(set.length, 400);
  assert.deepEqual(set.map((r) => r.case_id), set.map((_, i) => i));
  for (const rec of set) checkRecord(kb, rec);
  assert.ok(set.filter((r) => r.neighborhood_prompts.length === 10).length > 300, "most records have 10 neighbors");
  const rels = new Set(set.map((r) => r.requested_rewrite.relation_id));
  assert.ok(rels.size >= 6, `edited relations: ${[...rels].join(",")}`);
});

test("edit set: deterministic, distinct subjects while they last, each fact once", () => {
  const kb = buildKnowledgeBase({ seed: 1, people: 30, cities: 5, companies: 5, bands: 5 });
  const a = buildEditSet(kb, { seed: 3, count: 100 });
  assert.deepEqual(a, buildEditSet(kb, { seed: 3, count: 100 }));
  assert.notDeepEqual(a, buildEditSet(kb, { seed: 4, count: 100 }));
  const nSubjects = kb.subjects.length;
  const subjects = a.slice(0, nSubjects).map((r) => r.requested_rewrite.subject);
  assert.equal(new Set(subjects).size, nSubjects, "first records edit distinct subjects");
  const facts = a.map((r) => r.pararel_idx);
  assert.equal(new Set(facts).size, facts.length, "each fact edited at most once");
  for (const rec of a) checkRecord(kb, rec);
  // the whole KB can be edited
  assert.equal(buildEditSet(kb, { seed: 3, count: kb.facts.length }).length, kb.facts.length);
});

test("edit set: bad options are E_ARG", () => {
  const kb = buildKnowledgeBase({ seed: 1, people: 5, cities: 2, companies: 2, bands: 2 });
  assert.throws(() => buildEditSet(kb, { seed: 0, count: kb.facts.length + 1 }), (e: unknown) => e instanceof DeltaEditError && e.code === "E_ARG" && e.message.includes("count"));
  assert.throws(() => buildEditSet(kb, { seed: 0, count: 1, paraphrases: 9 }), (e: unknown) => e instanceof DeltaEditError && e.message.includes("paraphrases"));
  assert.throws(() => buildEditSet(kb, { seed: 0, count: 1, neighbours: 3 } as never), (e: unknown) => e instanceof DeltaEditError && e.message.includes("neighbours"));
});
