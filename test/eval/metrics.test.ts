/**
 * Evaluation metrics (evaluation spec §2–4, §9): hand-computed cases and every §9 check value,
 * the scoring primitive on the fixture models (batched vs unbatched, geometric mean), the
 * CounterFact / ZsRE case evaluations, fluency, consistency and general capability.
 */
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { DeltaEditError } from "../../src/errors.js";
import { parseRequest } from "../../src/edit/request.js";
import { makeBatch } from "../../src/model/batch.js";
import { forward } from "../../src/model/forward.js";
import { logSoftmax } from "../../src/model/loss.js";
import { LanguageModel } from "../../src/model/model.js";
import { Rng } from "../../src/util/rng.js";
import type { EvalRecord } from "../../src/eval/datasets/record.js";
import { zsreNeighborhood } from "../../src/eval/datasets/zsre.js";
import { aggregateCaseValues, harmonicScore, meanStd, round2 } from "../../src/eval/metrics/aggregate.js";
import { indexAttributeSnippets, loadAttributeSnippets, loadTfidf, referenceScore, tfidfCosine, tfidfModel, tfidfTerms, tfidfVector } from "../../src/eval/metrics/consistency.js";
import { counterfactCaseValues, evaluateCounterfactCase, neighborhoodReference, neighborhoodReferenceFileName, readNeighborhoodReference, summarizeCounterfact, writeNeighborhoodReference, type CounterfactCaseResult } from "../../src/eval/metrics/counterfact.js";
import { cleanGeneratedText, generateTexts, ngramEntropy, ngramEntropyOfTexts, tokenFluency } from "../../src/eval/metrics/fluency.js";
import { essencePerplexity, factAccuracy, perplexity } from "../../src/eval/metrics/general.js";
import { contextIds, scorePairs, scoreTokens, targetIds, type ContextTarget } from "../../src/eval/metrics/score.js";
import { summarize } from "../../src/eval/metrics/summary.js";
import { sentTokenize, treebankWordTokenize, wordTokenize } from "../../src/eval/metrics/wordtokenize.js";
import { evaluateZsreCase, summarizeZsre, type ZsreCaseResult } from "../../src/eval/metrics/zsre.js";
import { fixtureModel } from "../helpers/paths.js";

const close = (a: number, b: number, tol: number, what: string): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

function cfCase(rw: [number, number][], pp: [number, number][], nb: [number, number][], extra: Partial<CounterfactCaseResult["post"]> = {}): Pick<CounterfactCaseResult, "post" | "neighborhood_mode"> {
  const probs = (xs: [number, number][]) => xs.map(([n, t]) => ({ target_new: n, target_true: t }));
  return {
    neighborhood_mode: "standard",
    post: {
      rewrite_prompts_probs: probs(rw),
      paraphrase_prompts_probs: probs(pp),
      neighborhood_prompts_probs: probs(nb),
      rewrite_prompts_correct: rw.map(() => true),
      paraphrase_prompts_correct: pp.map(() => false),
      neighborhood_prompts_correct: nb.map(() => true),
      ...extra,
    },
  };
}

function cfRecord(caseId: number, prompt: string, subject: string, targetNew: string, targetTrue: string, more: Partial<EvalRecord> = {}): EvalRecord {
  return {
    kind: "mcf",
    caseId,
    index: caseId,
    request: parseRequest({ case_id: caseId, prompt, subject, target_new: targetNew, target_true: targetTrue }, caseId),
    requestedRewrite: { prompt, subject, relation_id: "P103", target_new: { str: targetNew, id: "Q1860" }, target_true: { str: targetTrue, id: "Q150" } },
    paraphrasePrompts: ["Danielle Darrieux spoke the language", "The native language of Danielle Darrieux is"],
    neighborhoodPrompts: ["The mother tongue of Léon Blum is", "The native language of Montesquieu is", "Michel Rocard is a native speaker of"],
    neighborhoodItems: [],
    zsreNeighborhood: null,
    attributePrompts: [],
    generationPrompts: [],
    ...more,
  };
}

describe("summariser and score (§3.3, §3.4, §3.10, §9)", () => {
  test("§9 summariser fixture: success (50, 50), diff (23.56, 23.56), case A diff 0.4711954, tie fails", () => {
    const a = cfCase([[0.5, 2.0]], [], []);
    const b = cfCase([[1.0, 1.0]], [], []);
    const va = counterfactCaseValues(a);
    const vb = counterfactCaseValues(b);
    close(va["rewrite_diff"]!, 0.4711954, 1e-7, "case A diff");
    assert.equal(va["rewrite_success"], 1);
    assert.equal(vb["rewrite_success"], 0, "a tie is a failure");
    const s = summarizeCounterfact([a, b]);
    assert.deepEqual(s.values["post_rewrite_success"], [50, 50]);
    assert.deepEqual(s.values["post_rewrite_diff"], [23.56, 23.56]);
    assert.equal(s.numCases, 2);
    assert.equal(s.modes.neighborhood, "standard");
    assert.equal(s.modes.success, "larger");
    assert.equal(s.modes.accuracy, "top");
    assert.equal(s.score, null, "no paraphrase/neighborhood values → no score");
    assert.equal(s.values["post_paraphrase_success"], undefined, "empty groups are omitted");
  });

  test("§9 score: H(90, 80, 70) = 79.162304 → 79.16; 0 if any is 0; summary computes it from ES/PS/NS", () => {
    close(harmonicScore(90, 80, 70), 79.162304, 1e-6, "harmonic mean");
    assert.equal(round2(harmonicScore(90, 80, 70)), 79.16);
    assert.equal(harmonicScore(90, 0, 70), 0);
    const cases = Array.from({ length: 10 }, (_, i) =>
      cfCase([i < 9 ? [1, 2] : [2, 1]], [i < 8 ? [1, 2] : [2, 1]], [i < 7 ? [3, 1] : [1, 3]]),
    );
    const s = summarizeCounterfact(cases);
    assert.equal(s.values["post_rewrite_success"]![0], 90);
    assert.equal(s.values["post_paraphrase_success"]![0], 80);
    assert.equal(s.values["post_neighborhood_success"]![0], 70);
    assert.equal(s.values["post_rewrite_success"]![1], 30, "population std of nine 1s and one 0 = 0.3");
    assert.equal(s.score, 79.16);
    // the "top" style is reported next to it
    assert.deepEqual(s.values["post_rewrite_acc"], [100, 0]);
    assert.deepEqual(s.values["post_paraphrase_acc"], [0, 0]);
  });

  test("neighborhood success/diff use the opposite orientation; pre prefix; population std", () => {
    const v = counterfactCaseValues(cfCase([[1, 1]], [[0.1, 0.2]], [[2, 1], [1, 2]]));
    assert.equal(v["neighborhood_success"], 0.5);
    close(v["neighborhood_diff"]!, (Math.exp(-1) - Math.exp(-2) + Math.exp(-2) - Math.exp(-1)) / 2, 1e-12, "neighborhood diff");
    close(v["paraphrase_diff"]!, Math.exp(-0.1) - Math.exp(-0.2), 1e-12, "paraphrase diff");
    const [m, s] = meanStd([1, 0, 0, 0]);
    assert.equal(m, 0.25);
    close(s, Math.sqrt(0.1875), 1e-15, "population std");
    const agg = aggregateCaseValues([{ x: 1, time: 2 }, { x: 0, time: 4 }], "pre");
    assert.deepEqual(agg.values["pre_x"], [50, 50]);
    assert.deepEqual(agg.values["pre_time"], [3, 1], "time is not scaled by 100");
  });

  test("NaN consistency values are excluded from the mean and counted; mixed modes are refused", () => {
    const a = cfCase([[1, 2]], [], [], { ngram_entropy: 6, reference_score: 0.3, text: [] });
    const b = cfCase([[1, 2]], [], [], { ngram_entropy: 5, reference_score: NaN, text: [] });
    const c = cfCase([[1, 2]], [], [], { ngram_entropy: 4, reference_score: null, text: [] });
    const s = summarizeCounterfact([a, b, c]);
    assert.deepEqual(s.values["post_reference_score"], [30, 0]);
    assert.equal(s.excluded["post_reference_score"], 2);
    assert.deepEqual(s.values["post_ngram_entropy"], [500, 81.65]);
    const d = { ...cfCase([[1, 2]], [], []), neighborhood_mode: "deltaedit" as const };
    assert.throws(() => summarizeCounterfact([a, d]), (e: unknown) => e instanceof DeltaEditError && /mix neighborhood modes/.test(e.message));
  });

  test("ZsRE summary: token accuracies ×100 with population std; summarize() dispatches", () => {
    const mk = (r: boolean[], p: boolean[], n: boolean[]): ZsreCaseResult => ({
      case_id: 0, grouped_case_ids: [0], num_edits: 1, time: 0, route: "teacher-forced", retokenize_targets: false,
      requested_rewrite: { prompt: "{}?", subject: "x", relation_id: null, target_new: { str: "a", id: null }, target_true: { str: "<|endoftext|>", id: null } },
      post: { rewrite_prompts_correct: r, paraphrase_prompts_correct: p, neighborhood_prompts_correct: n },
    });
    const rs = [mk([true, false], [true], [true, true, false]), mk([true, true], [false], [false])];
    const s = summarizeZsre(rs);
    assert.deepEqual(s.values["post_rewrite_acc"], [75, 25]);
    assert.deepEqual(s.values["post_paraphrase_acc"], [50, 50]);
    assert.deepEqual(s.values["post_neighborhood_acc"], [33.33, 33.33]);
    assert.equal(s.modes.route, "teacher-forced");
    assert.equal(summarize(rs).dataset, "zsre");
  });
});

describe("fluency (§3.7, §9)", () => {
  test("§9 check values: 'a b c a b c' → 1.507309, 'the cat sat on the mat' → 2.107309", () => {
    const t1 = "a b c a b c".split(" ");
    const t2 = "the cat sat on the mat".split(" ");
    close(ngramEntropy(t1, 2), 1.521928, 1e-6, "H2 abc");
    close(ngramEntropy(t1, 3), 1.5, 1e-12, "H3 abc");
    close(tokenFluency(t1), 1.507309, 1e-6, "fluency abc");
    close(ngramEntropy(t2, 2), 2.321928, 1e-6, "H2 cat");
    close(ngramEntropy(t2, 3), 2.0, 1e-12, "H3 cat");
    close(tokenFluency(t2), 2.107309, 1e-6, "fluency cat");
    close(ngramEntropyOfTexts(["a b c a b c", "the cat sat on the mat"]), (1.507309 + 2.107309) / 2, 1e-6, "case mean");
    assert.equal(tokenFluency(["one"]), 0, "no n-grams → entropy 0");
  });

  test("NLTK word_tokenize port: contractions, quotes, punctuation, brackets", () => {
    assert.deepEqual(wordTokenize("Don't do that."), ["Do", "n't", "do", "that", "."]);
    assert.deepEqual(wordTokenize("It's John's book, isn't it?"), ["It", "'s", "John", "'s", "book", ",", "is", "n't", "it", "?"]);
    assert.deepEqual(wordTokenize('He said "hello" to me.'), ["He", "said", "``", "hello", "''", "to", "me", "."]);
    assert.deepEqual(wordTokenize("I cannot go. She left!"), ["I", "can", "not", "go", ".", "She", "left", "!"]);
    assert.deepEqual(wordTokenize("Mr. Smith arrived at 3:30, late."), ["Mr.", "Smith", "arrived", "at", "3:30", ",", "late", "."]);
    assert.deepEqual(wordTokenize("(hello) [world] --test"), ["(", "hello", ")", "[", "world", "]", "--", "test"]);
    assert.deepEqual(wordTokenize("We're gonna win; you'll see..."), ["We", "'re", "gon", "na", "win", ";", "you", "'ll", "see", "..."]);
    assert.deepEqual(wordTokenize("They'd paid $5 & left"), ["They", "'d", "paid", "$", "5", "&", "left"]);
    assert.deepEqual(treebankWordTokenize("'Tis fine"), ["'T", "is", "fine"]);
    assert.deepEqual(wordTokenize("naïve café. Über alles"), ["naïve", "café", ".", "Über", "alles"]);
    // sentence splitting (Punkt stand-in): period + space + uppercase splits, except abbreviations / initials
    assert.deepEqual(sentTokenize("He left. She stayed. J. Smith came! Why? no"), ["He left.", "She stayed.", "J. Smith came!", "Why? no"]);
    assert.deepEqual(wordTokenize("The U.S. Army. It won."), ["The", "U.S.", "Army", ".", "It", "won", "."]);
  });

  test("cleanup: NFKD, '\\n\\n' → ' ', <|endoftext|> and given special strings deleted", () => {
    assert.equal(cleanGeneratedText("a\n\nb<|endoftext|>c<s>", ["<s>"]), "a bc");
    assert.equal(cleanGeneratedText("ﬁ café"), "fi cafe\u0301");
    assert.equal(cleanGeneratedText("x<s>"), "x<s>", "compat: only <|endoftext|> removed");
  });
});

describe("consistency (§3.8, §9)", () => {
  test("§9 TF-IDF check value 0.2279212 with the fixed vocabulary and idf", () => {
    const m = tfidfModel({ paris: 0, france: 1, city: 2 }, [2.0, 1.0, 1.5]);
    const A = "Paris is a city in France, Paris!";
    assert.deepEqual(tfidfTerms(A), ["paris", "is", "city", "in", "france", "paris"]);
    const va = tfidfVector(m, A);
    const n = Math.sqrt(16 + 1 + 2.25);
    close(va.get(0)!, 4 / n, 1e-12, "paris weight");
    close(va.get(1)!, 1 / n, 1e-12, "france weight");
    close(va.get(2)!, 1.5 / n, 1e-12, "city weight");
    close(tfidfCosine(m, A, "France"), 0.2279212, 1e-7, "cosine");
    assert.ok(Number.isNaN(tfidfCosine(m, A, "nothing known here")), "zero vector → NaN");
    assert.deepEqual(tfidfTerms("Ünïcode_x 2b ab"), ["ünïcode_x", "2b", "ab"]);
  });

  test("loadTfidf reads tfidf_vocab.json + a 1-D float64 idf.npy; snippet index streams and filters", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-tfidf-"));
    fs.writeFileSync(path.join(dir, "tfidf_vocab.json"), JSON.stringify({ paris: 0, france: 1, city: 2 }));
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }";
    header = header + " ".repeat(64 - ((10 + header.length + 1) % 64)) + "\n";
    const body = Buffer.alloc(24);
    [2.0, 1.0, 1.5].forEach((x, i) => body.writeDoubleLE(x, 8 * i));
    const hl = Buffer.alloc(2);
    hl.writeUInt16LE(header.length);
    fs.writeFileSync(path.join(dir, "idf.npy"), Buffer.concat([Buffer.from([0x93]), Buffer.from("NUMPY"), Buffer.from([1, 0]), hl, Buffer.from(header, "latin1"), body]));
    const m = loadTfidf(path.join(dir, "tfidf_vocab.json"), path.join(dir, "idf.npy"));
    assert.deepEqual([...m.idf], [2, 1, 1.5]);
    close(tfidfCosine(m, "Paris is a city in France, Paris!", "France"), 0.2279212, 1e-7, "cosine from files");
    const entries = [
      { relation_id: "P17", target_id: "Q142", samples: [{ name: "Lyon", text: "Lyon is a city in France ] } \" [" }] },
      { relation_id: "P103", target_id: "Q150", samples: [{ name: "X", text: "nope" }] },
      { relation_id: "P17", target_id: "Q142", samples: [{ name: "Paris", text: "Paris, capital of France" }] },
    ];
    fs.writeFileSync(path.join(dir, "snips.json"), JSON.stringify(entries, null, 1));
    const idx = loadAttributeSnippets(path.join(dir, "snips.json"), { keep: (r) => r === "P17" });
    assert.equal(idx.get("P103"), undefined, "filtered out");
    assert.deepEqual(idx.get("P17")!.get("Q142")!.map((s) => s.name), ["Lyon", "Paris"], "duplicate keys concatenated");
    const full = indexAttributeSnippets(entries);
    assert.equal(full.get("P103")!.get("Q150")!.length, 1);
    const texts = ["Paris is a city in France, Paris!"];
    close(referenceScore(m, texts, [{ name: "a", text: "France" }]), 0.2279212, 1e-7, "reference score");
    assert.ok(Number.isNaN(referenceScore(m, texts, [])), "no reference texts → NaN");
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("scoring primitive and metrics on fixture models (§2, §3, §4)", () => {
  let gpt2: LanguageModel;
  let stories: LanguageModel;
  before(async () => {
    gpt2 = await LanguageModel.load(fixtureModel("tiny-gpt2-random"));
    stories = await LanguageModel.load(fixtureModel("stories260k"));
  });

  const pairs: ContextTarget[] = [
    { context: "The mother tongue of Danielle Darrieux is", target: "French" },
    { context: "Paris is the capital of", target: "France and a large city" },
    { context: "A", target: "b" },
    { context: "Once upon a time there was a little girl who", target: "liked to play" },
    { context: "The cat sat on the", target: "mat" },
  ];

  test("batched (right-padded) and unbatched scoring agree to 1e-5 (both fixtures)", () => {
    for (const m of [gpt2, stories]) {
      const one = scorePairs(m, pairs, { batchSize: 1 });
      for (const bs of [2, 5, 16]) {
        const many = scorePairs(m, pairs, { batchSize: bs });
        one.forEach((s, i) => {
          close(many[i]!.nll, s.nll, 1e-5, `nll of pair ${i}, batch ${bs}`);
          assert.equal(many[i]!.top1, s.top1);
          assert.deepEqual(many[i]!.argmax, s.argmax);
        });
      }
    }
  });

  test("exp(−nll) = geometric mean of per-token probabilities read at |P|−1+j of a full pass over P ++ T", () => {
    for (const m of [gpt2, stories]) {
      const tok = m.tokenizer!;
      const s = scorePairs(m, pairs);
      pairs.forEach((p, i) => {
        const P = contextIds(tok, p.context);
        const T = targetIds(tok, p.target);
        if (tok.addsBos) assert.equal(P[0], tok.bosTokenId, "bos(ids(c)) starts with BOS");
        const seq = [...P, ...T];
        const res = forward(m, makeBatch([seq], 0, m.arch.vocab), { logits: "all" });
        const V = m.arch.vocab;
        const lsm = logSoftmax(res.logits!, seq.length, V);
        let prod = 1;
        let top = true;
        T.forEach((t, j) => {
          const row = P.length - 1 + j;
          prod *= Math.exp(lsm[row * V + t]!);
          let best = 0;
          for (let v = 1; v < V; v++) if (lsm[row * V + v]! > lsm[row * V + best]!) best = v;
          if (best !== t) top = false;
        });
        const geo = Math.pow(prod, 1 / T.length);
        close(Math.exp(-s[i]!.nll), geo, 1e-5 * geo, `geometric mean of pair ${i}`);
        assert.equal(s[i]!.top1, top, `top1 of pair ${i}`);
      });
    }
  });

  test("scoreTokens validates its inputs", () => {
    assert.throws(() => scoreTokens(gpt2, [{ prefix: [], continuation: [1] }]), /empty prefix/);
    assert.throws(() => scoreTokens(gpt2, [{ prefix: [1], continuation: [1, 2], reference: [3] }]), /reference tokens/);
  });

  test("CounterFact case (standard mode): fields of §3.2 match the primitive", () => {
    const r = cfRecord(7, "The mother tongue of {} is", "Danielle Darrieux", "English", "French");
    const res = evaluateCounterfactCase(gpt2, r, { numEdits: 2, groupedCaseIds: [7, 8], time: 1.5 });
    assert.equal(res.case_id, 7);
    assert.deepEqual(res.grouped_case_ids, [7, 8]);
    assert.equal(res.num_edits, 2);
    assert.equal(res.neighborhood_mode, "standard");
    assert.equal(res.post.rewrite_prompts_probs.length, 1);
    assert.equal(res.post.paraphrase_prompts_probs.length, 2);
    assert.equal(res.post.neighborhood_prompts_probs.length, 3);
    const x = "The mother tongue of Danielle Darrieux is";
    const [n, t] = scorePairs(gpt2, [{ context: x, target: "English" }, { context: x, target: "French" }]);
    close(res.post.rewrite_prompts_probs[0]!.target_new, n!.nll, 1e-5, "nll_new (other batch composition)");
    close(res.post.rewrite_prompts_probs[0]!.target_true, t!.nll, 1e-5, "nll_true (other batch composition)");
    assert.equal(res.post.rewrite_prompts_correct[0], n!.top1);
    const nb = scorePairs(gpt2, r.neighborhoodPrompts.map((c) => ({ context: c, target: "French" })));
    assert.deepEqual(res.post.neighborhood_prompts_correct, nb.map((s) => s.top1), "neighborhood top-1 checks target_true");
    assert.equal(res.post.ngram_entropy, undefined, "no generation test unless asked");
    const v = counterfactCaseValues(res);
    assert.ok(v["rewrite_success"] === 0 || v["rewrite_success"] === 1);
  });

  test("DeltaEdit neighborhood mode (§1.5, §3.6): on the unedited model acc is 100% (single-token target; clean variant always)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-nbref-"));
    const r1 = cfRecord(3, "The mother tongue of {} is", "Danielle Darrieux", "English", "French");
    const r2 = cfRecord(4, "{} likes to", "Lily", "play outside", "eat ice cream");
    for (const [m, r] of [[gpt2, r1], [stories, r2]] as const) {
      const ref = neighborhoodReference(m, [r]);
      const lists = ref[String(r.caseId)]!;
      const mTrue = targetIds(m.tokenizer!, r.requestedRewrite.target_true.str).length;
      assert.equal(lists.length, r.neighborhoodPrompts.length);
      lists.forEach((l) => assert.equal(l.length, mTrue, "m_true tokens per prompt"));
      const file = path.join(dir, neighborhoodReferenceFileName("/models/gpt2-xl/"));
      assert.equal(path.basename(file), "mcf_gpt2-xl_neighborhood_true.json");
      writeNeighborhoodReference(file, ref);
      assert.deepEqual(readNeighborhoodReference(file), ref);
      const clean = evaluateCounterfactCase(m, r, { neighborhoodMode: "deltaedit-clean", neighborhoodTrue: ref });
      assert.ok(clean.post.neighborhood_prompts_correct.every(Boolean), "clean variant: greedy ids are the argmax under their own teacher forcing");
      const exact = evaluateCounterfactCase(m, r, { neighborhoodMode: "deltaedit", neighborhoodTrue: ref });
      assert.equal(exact.neighborhood_mode, "deltaedit");
      if (mTrue === 1) assert.ok(exact.post.neighborhood_prompts_correct.every(Boolean), "single-token target: 100% by construction");
      // deltaedit: input fed = ids(" " + target_true), scored against r_k
      const tTrue = targetIds(m.tokenizer!, r.requestedRewrite.target_true.str);
      const manual = scoreTokens(m, r.neighborhoodPrompts.map((x, k) => ({ prefix: contextIds(m.tokenizer!, x), continuation: tTrue, reference: lists[k]! })));
      exact.post.neighborhood_prompts_probs.forEach((p, k) => close(p.target_true, manual[k]!.nll, 1e-5, `deltaedit nll_true ${k}`));
      // standard mode nll_new is unchanged
      const std = evaluateCounterfactCase(m, r);
      std.post.neighborhood_prompts_probs.forEach((p, k) => close(p.target_new, exact.post.neighborhood_prompts_probs[k]!.target_new, 1e-5, "nll_new unchanged"));
      assert.throws(() => evaluateCounterfactCase(m, r, { neighborhoodMode: "deltaedit" }), /needs neighborhoodTrue/);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("generation test: 100-token seeded top-k texts, fluency, consistency, essence; special strings (Q9)", () => {
    const prompts = ["Danielle Darrieux's mother tongue is", "Danielle Darrieux was born in", "Where Danielle Darrieux is from, people speak"];
    const t1 = generateTexts(gpt2, prompts, { rng: new Rng(5) });
    const short = (seed: number) => generateTexts(gpt2, prompts, { rng: new Rng(seed), maxLength: 16 });
    assert.deepEqual(short(5), short(5), "same seed → same texts");
    assert.notDeepEqual(short(5), short(6), "another seed → other texts");
    t1.forEach((t) => {
      const n = gpt2.tokenizer!.encode(t).length;
      assert.ok(n >= 90 && n <= 110, `about 100 tokens (re-tokenised: ${n})`);
    });
    t1.forEach((t, i) => assert.ok(t.startsWith(prompts[i]!), "the prompt is part of the decoded text"));
    // Llama-style tokenizer: BOS string removed by default, kept in compat mode
    const s1 = generateTexts(stories, ["Once upon a time"], { rng: new Rng(1), maxLength: 20 });
    const s2 = generateTexts(stories, ["Once upon a time"], { rng: new Rng(1), maxLength: 20, keepSpecialStrings: true });
    assert.ok(!s1[0]!.includes("<s>"));
    assert.ok(s2[0]!.startsWith("<s>"));
    // whole case with a vocabulary built from the generated words and one essence sample
    const vocab: Record<string, number> = {};
    for (const w of tfidfTerms(t1.join(" "))) if (!(w in vocab)) vocab[w] = Object.keys(vocab).length;
    const tfidf = tfidfModel(vocab, Object.keys(vocab).map((_, i) => 1 + (i % 3)));
    const snippets = indexAttributeSnippets([{ relation_id: "P103", target_id: "Q1860", samples: [{ name: "Danielle Darrieux", text: "Danielle Darrieux spoke English at home." }, { name: "Other", text: t1[0]! }] }]);
    const r = cfRecord(9, "The mother tongue of {} is", "Danielle Darrieux", "English", "French", { generationPrompts: prompts });
    const res = evaluateCounterfactCase(gpt2, r, { generation: { rng: new Rng(5), tfidf, snippets } });
    assert.deepEqual(res.post.text, t1);
    close(res.post.ngram_entropy!, ngramEntropyOfTexts(t1), 1e-12, "ngram_entropy");
    close(res.post.reference_score!, tfidfCosine(tfidf, t1.join(" "), "Danielle Darrieux spoke English at home. " + t1[0]!), 1e-12, "reference_score");
    assert.equal(res.post.essence_text, "Danielle Darrieux spoke English at home.");
    close(res.post.essence_score!, essencePerplexity(gpt2, res.post.essence_text!), 1e-9, "essence");
    const v = counterfactCaseValues(res);
    assert.ok(Number.isFinite(v["ngram_entropy"]) && Number.isFinite(v["reference_score"]));
  });

  test("ZsRE case: teacher-forced route equals the string route on GPT-2 text; per-token counts", () => {
    const tok = gpt2.tokenizer!;
    const nb = zsreNeighborhood(tok, "nq question: who played desmond doss father in hacksaw ridge", "Hugo Weaving");
    const rec: EvalRecord = {
      kind: "zsre", caseId: 0, index: 0,
      request: parseRequest({ prompt: "What university did {} attend?", subject: "Watts Humphrey", target_new: "Illinois Institute of Technology" }, 0),
      requestedRewrite: { prompt: "What university did {} attend?", subject: "Watts Humphrey", relation_id: null, target_new: { str: "Illinois Institute of Technology", id: null }, target_true: { str: "<|endoftext|>", id: null } },
      paraphrasePrompts: ["What university did Watts Humphrey take part in?"],
      neighborhoodPrompts: nb.items.map((i) => i.prompt), neighborhoodItems: nb.items, zsreNeighborhood: { question: nb.question, answerIds: nb.answerIds },
      attributePrompts: [], generationPrompts: [],
    };
    const tf = evaluateZsreCase(gpt2, rec);
    const st = evaluateZsreCase(gpt2, rec, { route: "string" });
    const rt = evaluateZsreCase(gpt2, rec, { retokenizeTargets: true });
    assert.equal(tf.post.rewrite_prompts_correct.length, 4, "one boolean per answer token");
    assert.equal(tf.post.paraphrase_prompts_correct.length, 4);
    assert.equal(tf.post.neighborhood_prompts_correct.length, 3);
    assert.deepEqual(st.post, tf.post);
    assert.deepEqual(rt.post, tf.post);
    assert.equal(st.route, "string");
    // efficacy token j: argmax after bos(ids(src)) ++ a[0..j) equals a[j]
    const a = targetIds(tok, "Illinois Institute of Technology");
    const s = scoreTokens(gpt2, [{ prefix: contextIds(tok, "What university did Watts Humphrey attend?"), continuation: a }])[0]!;
    assert.deepEqual(tf.post.rewrite_prompts_correct, s.argmax.map((x, j) => x === a[j]));
    assert.throws(() => evaluateZsreCase(gpt2, cfRecord(1, "{} is", "x", "y", "z")), /not a ZsRE record/);
  });

  test("general capability: perplexity = exp(mean token NLL), fact accuracy = first-token argmax, essence divides by L", () => {
    for (const m of [gpt2, stories]) {
      const tok = m.tokenizer!;
      const docs = ["Once upon a time there was a girl.", "The sun is hot.", "x"];
      const res = perplexity(m, docs);
      let sum = 0;
      let n = 0;
      for (const d of docs) {
        const ids = contextIds(tok, d);
        if (ids.length < 2) continue;
        const V = m.arch.vocab;
        const lsm = logSoftmax(forward(m, makeBatch([ids], 0, V), { logits: "all" }).logits!, ids.length, V);
        for (let t = 1; t < ids.length; t++) sum += lsm[(t - 1) * V + ids[t]!]!;
        n += ids.length - 1;
      }
      assert.equal(res.tokens, n);
      close(res.meanNll, -sum / n, 1e-5, "mean NLL");
      close(res.perplexity, Math.exp(-sum / n), 1e-5 * res.perplexity, "perplexity");
      const e = essencePerplexity(m, docs[0]!);
      const L = contextIds(tok, docs[0]!).length;
      const ppl1 = perplexity(m, [docs[0]!]);
      close(e, Math.exp((ppl1.meanNll * (L - 1)) / L), 1e-6 * e, "essence divides by L");
      const facts = [{ prompt: "The capital of {} is", subject: "France", target: "Paris" }, { prompt: "Once upon a", subject: "", target: "time" }];
      const fa = factAccuracy(m, facts);
      const manual = facts.map((f) => {
        const s = scoreTokens(m, [{ prefix: contextIds(tok, f.prompt.replace("{}", f.subject)), continuation: [targetIds(tok, f.target)[0]!] }])[0]!;
        return s.top1;
      });
      assert.deepEqual(fa.correct, manual);
      assert.equal(fa.accuracy, manual.filter(Boolean).length / 2);
    }
  });
});
