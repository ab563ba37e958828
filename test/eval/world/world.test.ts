/**
 * The world builder and the shipped world:
 * - buildWorld is deterministic for a seed (tiny settings) and differs across seeds;
 * - the extra training templates keep every paraphrase (held-out) template unseen;
 * - trainWorld writes a loadable Hugging Face Llama directory with the world files (tiny run);
 * - the shipped model in worlds/factworld-v1 answers a sample of 50 facts (training templates and
 *   held-out paraphrases) and its statistics belong to its weights.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { factAccuracy } from "../../../src/eval/world/accuracy.js";
import { buildCorpus, factSentence } from "../../../src/eval/world/corpus.js";
import { EXTRA_TRAIN_TEMPLATES } from "../../../src/eval/world/extratemplates.js";
import type { KnowledgeBase } from "../../../src/eval/world/kb.js";
import { CONTEXT_OPENERS, withOpener } from "../../../src/eval/world/paraphrase.js";
import { RELATION_SPECS } from "../../../src/eval/world/relations.js";
import { VOCABULARY_UNITS } from "../../../src/eval/world/vocabulary.js";
import { presetEditLayers, trainWorld } from "../../../src/eval/world/trainworld.js";
import { isComplete, readStatsFile } from "../../../src/edit/secondMoment.js";
import { modelFingerprint } from "../../../src/edit/covariance.js";
import { presetFor } from "../../../src/edit/presets.js";
import { buildWorld, type WorldOptions } from "../../../src/eval/world/world.js";
import { generate } from "../../../src/model/generate.js";
import { LanguageModel } from "../../../src/model/model.js";
import { Rng } from "../../../src/util/rng.js";
import { repoRoot } from "../../helpers/paths.js";

const TINY: Omit<WorldOptions, "seed"> = {
  kb: { people: 12, cities: 4, companies: 3, bands: 3 },
  vocabSize: 400,
  editCount: 10,
  model: { hiddenSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 1, intermediateSize: 32, maxPositions: 64 },
};

test("buildWorld: deterministic for a seed, different for another seed", () => {
  const a = buildWorld({ seed: 3, ...TINY });
  const b = buildWorld({ seed: 3, ...TINY });
  const strip = (w: typeof a) => ({ kb: w.kb, corpus: w.corpus, bpe: w.bpe, edits: w.edits, configJson: w.configJson, resolved: w.resolved });
  assert.deepEqual(strip(a), strip(b));
  const c = buildWorld({ seed: 4, ...TINY });
  assert.notDeepEqual(c.kb.facts, a.kb.facts);
  assert.notDeepEqual(c.corpus.train, a.corpus.train);
  // config.json: a tied Llama whose BOS/EOS/pad is <|endoftext|>
  assert.equal(a.configJson["model_type"], "llama");
  assert.equal(a.configJson["tie_word_embeddings"], true);
  assert.equal(a.configJson["bos_token_id"], a.eotId);
  assert.equal(a.configJson["eos_token_id"], a.eotId);
  assert.equal(a.bpe.tokens[a.eotId], "<|endoftext|>");
  assert.equal(a.config.vocabSize, a.bpe.tokens.length);
  assert.throws(() => buildWorld({ seed: 1, ...TINY, model: { hidenSize: 8 } as never }), /unknown option "hidenSize"/);
});

test("buildWorld: one fact in 20 stays out of the edit records (the control facts), whatever editCount asks", () => {
  const w = buildWorld({ seed: 3, ...TINY, editCount: 100_000 });
  const n = w.kb.facts.length;
  assert.equal(w.edits.length, n - Math.ceil(n / 20));
  const edited = new Set(w.edits.map((e) => e.pararel_idx));
  assert.equal(edited.size, w.edits.length);
  assert.equal(n - edited.size, Math.ceil(n / 20));
});

/** The longest static piece of a template around its "{}" (as in corpus.test.ts). */
function longestFragment(template: string): string {
  const [x, y] = template.split("{}") as [string, string];
  return x.trim().length >= y.trim().length ? x : y;
}

test("extra templates and vocabulary filler: well-formed, and no paraphrase template or fragment leaks into the corpus", () => {
  for (const spec of RELATION_SPECS) {
    const extra = EXTRA_TRAIN_TEMPLATES[spec.id];
    assert.ok(extra !== undefined && extra.length >= 8, `${spec.id} has extra templates`);
    for (const t of extra) {
      assert.equal(t.split("{}").length, 2, `"${t}" has exactly one {}`);
      assert.ok(!/\s$/.test(t) && !/\.$/.test(t), `"${t}" ends right before the object`);
      assert.ok(!spec.trainTemplates.includes(t), `"${t}" duplicates a training template`);
      assert.ok(!/ in (the|a) /.test(t), `"${t}" has "in the" / "in a" inside`);
    }
  }
  // no template of a subject kind is a proper prefix of another ("{} was born in" → the object, not "the")
  for (const kind of ["person", "city", "company", "band"]) {
    const ts = RELATION_SPECS.filter((r) => r.subjectKind === kind).flatMap((r) => [...r.trainTemplates, ...(EXTRA_TRAIN_TEMPLATES[r.id] ?? [])].map((t) => ({ t, id: r.id })));
    for (const a of ts) for (const b of ts) assert.ok(a === b || !(b.t + " ").startsWith(a.t + " "), `${a.id} "${a.t}" is a prefix of ${b.id} "${b.t}"`);
  }
  const all = Object.values(EXTRA_TRAIN_TEMPLATES).flat();
  for (const spec of RELATION_SPECS) {
    for (const h of spec.novelTemplates) {
      const frag = longestFragment(h).trim();
      for (const t of all) assert.ok(!t.includes(frag), `extra template "${t}" contains "${frag}" of paraphrase template "${h}"`);
    }
  }
  for (const u of VOCABULARY_UNITS) {
    for (const sentence of u) {
      assert.ok(!sentence.includes(" in the "), `vocabulary sentence "${sentence}" uses "in the"`);
      for (const spec of RELATION_SPECS) for (const h of spec.novelTemplates) assert.ok(!sentence.includes(longestFragment(h).trim()), `vocabulary sentence "${sentence}" contains a fragment of "${h}"`);
    }
  }
  const w = buildWorld({ seed: 0 }); // the shipped world's corpus
  const train = w.corpus.train.join("\n");
  for (const r of w.kb.relations) {
    for (const h of r.novelTemplates) assert.ok(!train.includes(longestFragment(h)), `${r.id}: novel fragment of "${h}" occurs in the corpus`);
  }
  // Held-out paraphrases are unseen (opener, phrasing) compositions: no corpus sentence (either split)
  // states any subject through one, while the opener and the phrasing each occur in training.
  const corpusSentences = [...w.corpus.train, ...w.corpus.heldOut].flatMap((d) => d.split(/(?<=\.) /));
  const subjects = new Set(w.kb.subjects.map((s) => s.name));
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  for (const r of w.kb.relations) {
    const phrasings = [...r.trainTemplates, ...(EXTRA_TRAIN_TEMPLATES[r.id] ?? [])];
    for (const h of r.heldOutTemplates) {
      const opener = CONTEXT_OPENERS.find((o) => h.startsWith(o + " "));
      assert.ok(opener !== undefined, `${r.id}: "${h}" starts with a context opener`);
      const phrasing = phrasings.find((p) => withOpener(opener, p) === h);
      assert.ok(phrasing !== undefined, `${r.id}: "${h}" is an opener + a training phrasing`);
      const [a, b] = h.split("{}") as [string, string];
      const re = new RegExp(`^${esc(a)}(.+)${esc(b)} [^ ]+\\.$`);
      for (const s of corpusSentences) {
        const m = re.exec(s);
        assert.ok(m === null || !subjects.has(m[1]!), `${r.id}: held-out paraphrase "${h}" occurs in the corpus: "${s}"`);
      }
      const seenOpener = corpusSentences.some((s) => s.startsWith(opener + " "));
      const sentenceSet = new Set(corpusSentences);
      const seenPhrasing = w.kb.facts.some((f) => f.relationId === r.id && sentenceSet.has(factSentence(f, phrasing)));
      assert.ok(seenOpener && seenPhrasing, `${r.id}: both parts of "${h}" occur in training (opener ${seenOpener}, phrasing ${seenPhrasing})`);
    }
  }
  // every fact through every extra template of its relation
  const f = w.kb.facts.find((x) => x.relationId === "P103")!;
  const sentences = new Set(w.corpus.train.flatMap((d) => d.split(/(?<=\.) /)));
  // (plain, or after one of the context openers)
  for (const t of EXTRA_TRAIN_TEMPLATES["P103"]!) {
    const forms = [t, ...CONTEXT_OPENERS.map((o) => withOpener(o, t))].map((x) => factSentence(f, x));
    assert.ok(forms.some((s) => sentences.has(s)), `"${factSentence(f, t)}" is in the corpus`);
  }
  // the corpus option extraTemplatesPerFact draws that many extra templates per fact
  const kb = buildWorld({ seed: 1, ...TINY }).kb;
  const c = buildCorpus(kb, { seed: 1, extraTemplates: EXTRA_TRAIN_TEMPLATES, extraTemplatesPerFact: 5 });
  const cs = new Set(c.train.flatMap((d) => d.split(/(?<=\.) /)));
  for (const g of kb.facts.slice(0, 20)) {
    const rel = kb.relations.find((r) => r.id === g.relationId)!;
    assert.equal(EXTRA_TRAIN_TEMPLATES[g.relationId]!.filter((t) => cs.has(factSentence(g, t))).length, 5, `${g.subject} ${g.relationId}: 5 extra templates`);
    for (const t of rel.trainTemplates) assert.ok(cs.has(factSentence(g, t)), "training templates are always stated");
  }
});

test("trainWorld: writes a loadable Hugging Face Llama directory with the world files (tiny run)", async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-world-"));
  try {
    const res = await trainWorld({ out, seed: 2, world: TINY, train: { steps: 3, batchSize: 2, seqLen: 16, warmupSteps: 1, evalEvery: 0, checkpointEvery: 2 }, probeFacts: 5, codeVersion: "test" });
    assert.equal(res.stopped, false);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "world/kb.json", "world/edits.json", "world/corpus-heldout.txt", "world/quality.json"]) {
      assert.ok(fs.existsSync(path.join(out, f)), `${f} written`);
    }
    assert.ok(!fs.existsSync(path.join(out, "train-state")), "checkpoints removed after a successful run");
    const q = JSON.parse(fs.readFileSync(path.join(out, "world", "quality.json"), "utf8"));
    assert.equal(q.format, "deltaedit-world-quality");
    assert.equal(q.training.steps, 3);
    assert.equal(q.factAccuracy.trainTemplates.total, q.data.facts * 4);
    assert.ok(Number.isFinite(q.heldOut.perplexity));
    const edits = JSON.parse(fs.readFileSync(path.join(out, "world", "edits.json"), "utf8"));
    assert.equal(edits.length, 10);
    // control facts: every fact that no edit record rewrites, as {prompt, subject, target}
    const control = fs.readFileSync(path.join(out, "world", "control-facts.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(control.length, q.data.facts - 10);
    const rewritten = new Set(edits.map((e: { requested_rewrite: { subject: string; relation_id: string } }) => `${e.requested_rewrite.subject}|${e.requested_rewrite.relation_id}`));
    const kbShipped = JSON.parse(fs.readFileSync(path.join(out, "world", "kb.json"), "utf8")) as KnowledgeBase;
    for (const c of control) {
      const rel = kbShipped.relations.find((r) => r.trainTemplates[0] === c.prompt)!;
      assert.ok(rel !== undefined && !rewritten.has(`${c.subject}|${rel.id}`), `control fact ${JSON.stringify(c)} is never edited`);
      assert.equal(kbShipped.facts.find((f) => f.subject === c.subject && f.relationId === rel.id)?.object.str, c.target);
    }
    // the edited layers' key statistics, as the editors load them
    const layers = presetEditLayers(buildWorld({ seed: 2, ...TINY }));
    for (const l of layers) {
      const m = readStatsFile(path.join(out, "stats", `layer-${l}.safetensors`));
      assert.ok(isComplete(m) && m.count > 0 && m.dIn === q.model.intermediateSize, `layer ${l} statistics complete`);
    }
    assert.ok(typeof edits[0].requested_rewrite.target_new.str === "string");
    const model = await LanguageModel.load(out);
    assert.equal(model.config.tieWordEmbeddings, true);
    assert.equal(model.tokenizer!.eosTokenId, model.config.eosTokenId);
    assert.equal(model.tokenizer!.addsBos, true, "the tokenizer prepends <|endoftext|> as BOS");
    assert.equal(model.tokenizer!.bosTokenId, model.config.bosTokenId);
    const w = buildWorld({ seed: 2, ...TINY });
    const text = "Some text, with 12 numbers.";
    assert.deepEqual(model.tokenizer!.encode(text), [w.eotId, ...w.encoder.encode(text)], "HF tokenizer = BOS + reference encoder");
    assert.equal(model.tokenizer!.decode(model.tokenizer!.encode(text, { addSpecialTokens: false })), text);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

const SHIPPED = path.join(repoRoot(), "worlds", "factworld-v1");

test("shipped world: the model answers a sample of 50 facts, also through held-out paraphrases", async () => {
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "world/kb.json", "world/edits.json", "world/quality.json", "world/control-facts.jsonl"]) {
    assert.ok(fs.existsSync(path.join(SHIPPED, f)), `worlds/factworld-v1/${f} is shipped`);
  }
  const model = await LanguageModel.load(SHIPPED);
  const tok = model.tokenizer!;
  const kb = JSON.parse(fs.readFileSync(path.join(SHIPPED, "world", "kb.json"), "utf8")) as KnowledgeBase;
  const idx = new Rng(1234).shuffle(kb.facts.map((_, i) => i)).slice(0, 50);
  const sample = idx.map((i) => kb.facts[i]!);
  const encode = (s: string): number[] => tok.encode(s, { addSpecialTokens: false });
  // the four training templates of each relation (200 prompts; the stored model is 100 % right over all facts)
  const acc = factAccuracy(model, kb, sample, "train", encode, { bos: tok.addsBos ? tok.bosTokenId : null });
  assert.ok(acc.accuracy >= 0.9, `${acc.correct}/${acc.total} training-template prompts answered correctly`);
  // the held-out paraphrase compositions: the quality bar is 80 % over all facts
  const para = factAccuracy(model, kb, sample, "heldOut", encode, { bos: tok.addsBos ? tok.bosTokenId : null });
  assert.ok(para.accuracy >= 0.9, `${para.correct}/${para.total} paraphrase prompts answered correctly`);
  // the numbers the README quotes are those of the stored model
  const q = JSON.parse(fs.readFileSync(path.join(SHIPPED, "world", "quality.json"), "utf8"));
  assert.ok(q.factAccuracy.trainTemplates.accuracy >= 0.95 && q.factAccuracy.heldOutTemplates.accuracy >= 0.8, "quality.json: the quality bar (95 % training templates, 80 % paraphrases)");
  // the shipped statistics are those of the edited layers of the model's preset, for this model
  for (const l of presetFor(model.config).methods.deltaedit!["editLayers"] as number[]) {
    const m = readStatsFile(path.join(SHIPPED, "stats", `layer-${l}.safetensors`));
    assert.ok(isComplete(m) && m.dIn === model.config.intermediateSize, `stats of layer ${l}`);
    assert.equal(m.provenance.modelHash, modelFingerprint(model), `stats of layer ${l} belong to the shipped weights`);
  }
  // and as a person would see it: greedy generation of the object after a prompt
  const f = sample.find((x) => x.relationId === "P103")!;
  const rel = kb.relations.find((r) => r.id === "P103")!;
  const prompt = rel.trainTemplates[0]!.replace("{}", f.subject);
  const [gen] = generate(model, [tok.encode(prompt)], { maxNewTokens: 3 });
  assert.ok(tok.decode(gen!).startsWith(" " + f.object.str), `"${prompt}" → "${tok.decode(gen!)}", expected " ${f.object.str}"`);
});
