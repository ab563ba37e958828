/**
 * Dataset loaders (evaluation spec §1.2–1.4, Q15), the JSONL form, record selection, the
 * streaming JSON reader and `ensureDataset` against a local HTTP server (no real network).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { DeltaEditError } from "../../src/errors.js";
import { loadTokenizer } from "../../src/model/tokenizer.js";
import { forEachJsonArrayElement } from "../../src/eval/datasets/_jsonstream.js";
import { loadCounterfact } from "../../src/eval/datasets/counterfact.js";
import { datasetFileName, datasetUrl, ensureDataset } from "../../src/eval/datasets/download.js";
import { loadJsonl } from "../../src/eval/datasets/jsonl.js";
import { loadDataset } from "../../src/eval/datasets/load.js";
import { chunkRecords, rewritePrompt, selectRecords } from "../../src/eval/datasets/record.js";
import { loadZsre, zsreNeighborhood, ZSRE_TARGET_TRUE } from "../../src/eval/datasets/zsre.js";
import { fixtureModel } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-datasets-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cf(caseId: unknown, over: Record<string, unknown> = {}, rwOver: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    case_id: caseId,
    pararel_idx: 2796,
    requested_rewrite: {
      prompt: "The mother tongue of {} is",
      relation_id: "P103",
      target_new: { str: "English", id: "Q1860" },
      target_true: { str: "French", id: "Q150" },
      subject: "Danielle Darrieux",
      ...rwOver,
    },
    paraphrase_prompts: ["Shayna does this and Yossel goes still and dies. Danielle Darrieux, a native", "An album was recorded for Capitol Nashville but never released. Danielle Darrieux spoke the language"],
    neighborhood_prompts: ["The mother tongue of Léon Blum is", "The native language of Montesquieu is"],
    attribute_prompts: ["J.R.R. Tolkien is a native speaker of"],
    generation_prompts: ["Danielle Darrieux's mother tongue is", "Danielle Darrieux's mother tongue is"],
    ...over,
  };
}

function zsre(subject: string, src: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    subject,
    src,
    pred: "Trinity College",
    rephrase: src.replace("attend", "take part in"),
    alt: "University of Michigan",
    answers: ["Illinois Institute of Technology"],
    loc: "nq question: who played desmond doss father in hacksaw ridge",
    loc_ans: "Hugo Weaving",
    cond: "Trinity College >> University of Michigan || " + src,
    ...over,
  };
}

describe("CounterFact / MultiCounterFact loader (§1.2)", () => {
  test("valid records load; malformed ones are reported by index and field; the rest load", () => {
    const file = path.join(tmp, "multi_counterfact.json");
    const recs = [
      cf(0),
      cf(1, {}, { subject: undefined }),
      cf(2, { paraphrase_prompts: "not a list" }),
      cf(17),
      cf(17),
      cf(5, {}, { prompt: "no slot here" }),
      cf(6, {}, { target_true: undefined }),
      cf("x"),
      cf(8, { neighborhood_prompts: ["ok", 3] }),
      "not an object",
    ];
    fs.writeFileSync(file, JSON.stringify(recs));
    const ds = loadCounterfact(file, "mcf");
    assert.equal(ds.kind, "mcf");
    assert.deepEqual(ds.records.map((r) => r.caseId), [0, 17], "case ids kept as given (not contiguous)");
    assert.deepEqual(
      ds.rejected.map((r) => [r.index, r.caseId, r.field]),
      [
        [1, "1", "requested_rewrite.subject"],
        [2, "2", "paraphrase_prompts"],
        [4, "17", "case_id"],
        [5, "5", "requested_rewrite.prompt"],
        [6, "6", "requested_rewrite.target_true"],
        [7, "x", "case_id"],
        [8, "8", "neighborhood_prompts[1]"],
        [9, "9", "(record)"],
      ],
    );
    for (const r of ds.rejected) assert.match(r.message, new RegExp(`record #${r.index}`), "message names the record");
    assert.match(ds.rejected[0]!.message, /requested_rewrite\.subject/);
    const r0 = ds.records[0]!;
    assert.equal(rewritePrompt(r0), "The mother tongue of Danielle Darrieux is");
    assert.deepEqual(r0.requestedRewrite.target_new, { str: "English", id: "Q1860" });
    assert.deepEqual(r0.requestedRewrite.target_true, { str: "French", id: "Q150" });
    assert.equal(r0.requestedRewrite.relation_id, "P103");
    assert.equal(r0.request.targetNew, "English");
    assert.equal(r0.request.subject, "Danielle Darrieux");
    assert.equal(r0.paraphrasePrompts.length, 2);
    assert.equal(r0.neighborhoodPrompts.length, 2);
    assert.equal(r0.generationPrompts.length, 2, "duplicates allowed");
    assert.deepEqual(r0.neighborhoodItems, []);
    assert.equal(loadCounterfact(file, "cf", { size: 1 }).records.length, 1);
  });

  test("a file that is not an array / does not exist fails with the file name", () => {
    const file = path.join(tmp, "obj.json");
    fs.writeFileSync(file, "{}");
    assert.throws(() => loadCounterfact(file), (e: unknown) => e instanceof DeltaEditError && e.code === "E_REQUEST" && e.message.includes(file));
    assert.throws(() => loadCounterfact(path.join(tmp, "missing.json")), (e: unknown) => e instanceof DeltaEditError && e.code === "E_NOT_FOUND");
  });
});

describe("ZsRE loader (§1.3, §1.4, Q15)", () => {
  const gpt2Tok = loadTokenizer(fixtureModel("tiny-gpt2-random"));
  const storiesTok = loadTokenizer(fixtureModel("stories260k"));

  test("transformation, subject not found / found twice rejected with the case id, the rest load", () => {
    const file = path.join(tmp, "zsre_mend_eval.json");
    const raws = [
      zsre("Watts Humphrey", "What university did Watts Humphrey attend?"),
      zsre("Nobody", "What university did Watts Humphrey attend?"),
      zsre("Ana", "Did Ana meet Ana?"),
      zsre("Watts Humphrey", "What university did Watts Humphrey attend?", { loc_ans: undefined }),
      zsre("Watts Humphrey", "What university did Watts Humphrey attend?", { answers: [] }),
      zsre("Jane Doe", "Which school did Jane Doe attend?"),
    ];
    fs.writeFileSync(file, JSON.stringify(raws));
    const ds = loadZsre(file, { tokenizer: gpt2Tok });
    assert.deepEqual(ds.records.map((r) => r.caseId), [0, 5], "case_id = position in the file");
    assert.deepEqual(ds.rejected.map((r) => [r.index, r.caseId, r.field]), [[1, "1", "subject"], [2, "2", "subject"], [3, "3", "loc_ans"], [4, "4", "answers"]]);
    assert.match(ds.rejected[0]!.message, /does not occur/);
    assert.match(ds.rejected[1]!.message, /occurs 2 times/);
    const r = ds.records[0]!;
    assert.equal(r.kind, "zsre");
    assert.equal(r.requestedRewrite.prompt, "What university did {} attend?");
    assert.equal(r.requestedRewrite.subject, "Watts Humphrey");
    assert.equal(r.requestedRewrite.target_new.str, "Illinois Institute of Technology", "answers[0], not alt");
    assert.equal(r.requestedRewrite.target_true.str, ZSRE_TARGET_TRUE);
    assert.deepEqual(r.paraphrasePrompts, ["What university did Watts Humphrey take part in?"]);
    assert.deepEqual(r.attributePrompts, []);
    assert.deepEqual(r.generationPrompts, []);
    assert.equal(r.request.prompt, "What university did {} attend?");
    assert.equal(loadZsre(file, { tokenizer: gpt2Tok, size: 1 }).records.length, 1);
  });

  test("neighborhood construction: one item per answer token, prefix = decoded answer so far", () => {
    const loc = "nq question: who played desmond doss father in hacksaw ridge";
    const nb = zsreNeighborhood(gpt2Tok, loc, "Hugo Weaving");
    assert.deepEqual(nb.answerIds, gpt2Tok.encode(" Hugo Weaving"));
    assert.deepEqual(nb.items.map((i) => i.prompt), [loc + "?", loc + "? Hugo", loc + "? Hugo We"]);
    assert.deepEqual(nb.items.map((i) => i.target), [" Hugo", " We", "aving"]);
    assert.deepEqual(nb.items.map((i) => i.targetId), nb.answerIds);
    assert.equal(nb.question, loc + "?");
    // Llama-style tokenizer: clean default has no BOS item; the reference mode keeps BOS as b[0] (Q7)
    const clean = zsreNeighborhood(storiesTok, loc, "Hugo Weaving");
    assert.notEqual(clean.answerIds[0], storiesTok.bosTokenId);
    const compat = zsreNeighborhood(storiesTok, loc, "Hugo Weaving", true);
    assert.equal(compat.answerIds[0], storiesTok.bosTokenId);
    assert.equal(compat.items[0]!.target, "<s>");
    assert.ok(compat.items[1]!.prompt.includes("<s>"), "later prompts contain the literal BOS string");
    assert.equal(compat.items.length, compat.answerIds.length);
  });
});

describe("JSONL form and record selection", () => {
  test("flat and nested lines; bad JSON reported by line number; bad records by index and field", () => {
    const file = path.join(tmp, "edits.jsonl");
    const lines = [
      JSON.stringify({ prompt: "{} is located in", subject: "The Eiffel Tower", target_new: "Rome", target_true: { str: "Paris", id: "Q90" }, relation_id: "P131", neighborhood_prompts: ["The Louvre is located in"] }),
      "{not json",
      "",
      JSON.stringify(cf(42)),
      JSON.stringify({ prompt: "{} plays", subject: "X", target_new: "chess" }),
    ];
    fs.writeFileSync(file, lines.join("\n"));
    const ds = loadJsonl(file);
    assert.deepEqual(ds.records.map((r) => r.caseId), [0, 42]);
    assert.deepEqual(ds.rejected.map((r) => [r.caseId, r.field]), [["line 2", "(json)"], ["2", "target_true"]]);
    assert.match(ds.rejected[0]!.message, /edits\.jsonl:2/);
    const r = ds.records[0]!;
    assert.equal(r.requestedRewrite.target_new.id, null);
    assert.equal(r.requestedRewrite.target_true.id, "Q90");
    assert.deepEqual(r.paraphrasePrompts, []);
    assert.deepEqual(r.neighborhoodPrompts, ["The Louvre is located in"]);
  });

  test("ZsRE JSONL needs a tokenizer; selection is file order, first N, seeded shuffle", () => {
    const file = path.join(tmp, "zsre.jsonl");
    fs.writeFileSync(file, [zsre("Watts Humphrey", "What university did Watts Humphrey attend?"), zsre("Jane Doe", "Which school did Jane Doe attend?"), zsre("Q", "none")].map((x) => JSON.stringify(x)).join("\n") + "\n");
    assert.throws(() => loadJsonl(file, { kind: "zsre" }), /tokenizer/);
    const ds = loadJsonl(file, { kind: "zsre", zsre: { tokenizer: loadTokenizer(fixtureModel("tiny-gpt2-random")) } });
    assert.equal(ds.records.length, 2);
    assert.deepEqual(ds.rejected.map((r) => r.field), ["subject"]);
    const recs = loadCounterfact(writeCf(10)).records;
    assert.deepEqual(selectRecords(recs, { size: 3 }).map((r) => r.caseId), [0, 1, 2]);
    const a = selectRecords(recs, { shuffleSeed: 7 }).map((r) => r.caseId);
    assert.deepEqual(selectRecords(recs, { shuffleSeed: 7 }).map((r) => r.caseId), a, "seeded");
    assert.notDeepEqual(a, recs.map((r) => r.caseId));
    assert.deepEqual([...a].sort((x, y) => x - y), recs.map((r) => r.caseId));
    assert.deepEqual(chunkRecords(recs, 4).map((c) => c.length), [4, 4, 2]);
  });
});

function writeCf(n: number): string {
  const file = path.join(tmp, `cf${n}.json`);
  fs.writeFileSync(file, JSON.stringify(Array.from({ length: n }, (_, i) => cf(i))));
  return file;
}

test("streaming JSON array reader: elements across 4 MiB chunk boundaries, strings with brackets/escapes/UTF-8", () => {
  const file = path.join(tmp, "big.json");
  const text = 'é ] } [ { \\" "quoted" ' + "x".repeat(3000);
  const n = 3000; // ~9.5 MB
  const fd = fs.openSync(file, "w");
  fs.writeSync(fd, "[\n");
  for (let i = 0; i < n; i++) fs.writeSync(fd, JSON.stringify({ relation_id: "P" + i, samples: [{ name: "n", text }] }) + (i + 1 < n ? ",\n" : "\n"));
  fs.writeSync(fd, "]\n");
  fs.closeSync(fd);
  let count = 0;
  const total = forEachJsonArrayElement(file, (v, i) => {
    const e = v as { relation_id: string; samples: { text: string }[] };
    assert.equal(e.relation_id, "P" + i);
    assert.equal(e.samples[0]!.text, text);
    count++;
  });
  assert.equal(total, n);
  assert.equal(count, n);
  fs.writeFileSync(file, '[{"a": 1}, {"b": ');
  assert.throws(() => forEachJsonArrayElement(file, () => {}), /truncated/);
});

describe("ensureDataset (§1.1) against a local server", () => {
  let server: http.Server;
  let base = "";
  let hits = 0;
  const body = JSON.stringify([zsre("Watts Humphrey", "What university did Watts Humphrey attend?")]);
  before(async () => {
    server = http.createServer((req, res) => {
      hits++;
      if (req.url === "/dsets/zsre_mend_eval.json") {
        res.writeHead(200, { "content-length": Buffer.byteLength(body) });
        res.end(body);
      } else {
        res.writeHead(404);
        res.end("not here");
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dsets/`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("downloads into the cache (temp file + rename, progress lines), then serves the cached file", async () => {
    const cacheDir = path.join(tmp, "cache1");
    const logs: string[] = [];
    const p = await ensureDataset(datasetFileName("zsre"), { cacheDir, baseUrl: base, log: (m) => logs.push(m) });
    assert.equal(p, path.join(cacheDir, "zsre_mend_eval.json"));
    assert.equal(fs.readFileSync(p, "utf8"), body);
    assert.deepEqual(fs.readdirSync(cacheDir), ["zsre_mend_eval.json"], "no temp file left");
    assert.ok(logs.some((l) => l.includes(base + "zsre_mend_eval.json")), "progress names the URL");
    const before = hits;
    assert.equal(await ensureDataset("zsre_mend_eval.json", { cacheDir, baseUrl: base, offline: true }), p);
    assert.equal(hits, before, "cached: no request");
  });

  test("DELTAEDIT_DATA_URL overrides the remote root", async () => {
    const old = process.env["DELTAEDIT_DATA_URL"];
    process.env["DELTAEDIT_DATA_URL"] = base;
    try {
      assert.equal(datasetUrl("idf.npy"), base + "idf.npy");
      const p = await ensureDataset("zsre_mend_eval.json", { cacheDir: path.join(tmp, "cache-env") });
      assert.equal(fs.readFileSync(p, "utf8"), body);
    } finally {
      if (old === undefined) delete process.env["DELTAEDIT_DATA_URL"];
      else process.env["DELTAEDIT_DATA_URL"] = old;
    }
    assert.equal(datasetUrl("counterfact.json"), "https://memit.baulab.info/data/dsets/counterfact.json");
  });

  test("offline without a cached file → E_NOT_FOUND naming the URL and the path", async () => {
    const cacheDir = path.join(tmp, "cache2");
    await assert.rejects(ensureDataset("multi_counterfact.json", { cacheDir, offline: true }), (e: unknown) => {
      assert.ok(e instanceof DeltaEditError);
      assert.equal(e.code, "E_NOT_FOUND");
      assert.ok(e.message.includes("https://memit.baulab.info/data/dsets/multi_counterfact.json"), e.message);
      assert.ok(e.message.includes(path.join(cacheDir, "multi_counterfact.json")), e.message);
      return true;
    });
  });

  test("HTTP 404 and a refused connection → E_NETWORK naming the URL and the path; nothing left behind", async () => {
    const cacheDir = path.join(tmp, "cache3");
    await assert.rejects(ensureDataset("idf.npy", { cacheDir, baseUrl: base }), (e: unknown) => e instanceof DeltaEditError && e.code === "E_NETWORK" && e.message.includes(base + "idf.npy") && e.message.includes(path.join(cacheDir, "idf.npy")) && /404/.test(e.message));
    const dead = http.createServer();
    await new Promise<void>((resolve) => dead.listen(0, "127.0.0.1", resolve));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    await assert.rejects(ensureDataset("idf.npy", { cacheDir, baseUrl: `http://127.0.0.1:${port}/` }), (e: unknown) => e instanceof DeltaEditError && e.code === "E_NETWORK" && e.message.includes(`http://127.0.0.1:${port}/idf.npy`) && e.message.includes(path.join(cacheDir, "idf.npy")));
    assert.deepEqual(fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : [], []);
    await assert.rejects(ensureDataset("../etc/passwd", { cacheDir }), /bad file name/);
  });
});

test("loadDataset dispatches on kind and extension", () => {
  const file = writeCf(3);
  assert.equal(loadDataset("cf", file, { size: 2 }).records.length, 2);
  assert.equal(loadDataset("mcf", file).kind, "mcf");
  assert.throws(() => loadDataset("zsre", file), /tokenizer/);
  const jl = path.join(tmp, "d.jsonl");
  fs.writeFileSync(jl, JSON.stringify(cf(3)) + "\n");
  assert.deepEqual(loadDataset("mcf", jl).records.map((r) => r.caseId), [3]);
});
