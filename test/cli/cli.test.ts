/**
 * The CLI end to end (in process, captured output): tokenize / logits / generate give the
 * golden ids and logits on both real fixture models; usage errors are clear, not stack traces.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { main } from "../../src/cli/main.js";
import { maxAbsDiff, readGolden, readGoldenTensor } from "../helpers/golden.js";
import { fixtureModel } from "../helpers/paths.js";

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

for (const name of ["stories260k", "tiny-gpt2-random"]) {
  const g = readGolden(name);
  const dir = fixtureModel(name);
  const tol = name === "tiny-gpt2-random" ? 5e-5 : 5e-4;

  test(`cli tokenize --json: ${name}`, async () => {
    for (const c of g.tokenizer!.cases.filter((c) => c.add_special_tokens)) {
      const r = await run(["tokenize", "--model", dir, "--text", c.text, "--json"]);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(JSON.parse(r.out), { ids: c.ids }, `ids of ${JSON.stringify(c.text)}`);
    }
  });

  test(`cli logits --json: ${name}`, async () => {
    const c = g.logits[1]!;
    const r = await run(["logits", "--model", dir, "--ids", c.ids.join(","), "--json"]);
    assert.equal(r.code, 0, r.err);
    const parsed = JSON.parse(r.out) as { ids: number[]; logits: number[][] };
    assert.deepEqual(parsed.ids, c.ids);
    assert.equal(parsed.logits.length, c.ids.length);
    const d = maxAbsDiff(parsed.logits.flat(), readGoldenTensor(c));
    assert.ok(d <= tol, `max |Δlogit| ${d} > ${tol}`);
  });

  test(`cli generate --greedy --json: ${name}`, async () => {
    const c = g.generation[0]!;
    let n = 0;
    while (n < c.generated_ids.length && c.step_top2_margin[n]! > 4 * tol) n++;
    const r = await run(["generate", "--model", dir, "--ids", c.prompt_ids.join(","), "--max-new-tokens", String(n), "--greedy", "--json"]);
    assert.equal(r.code, 0, r.err);
    const parsed = JSON.parse(r.out) as { generated: number[]; text: string };
    assert.deepEqual(parsed.generated, c.generated_ids.slice(0, n));
    assert.equal(typeof parsed.text, "string");
  });
}

test("cli generate --top-k is deterministic for a seed", async () => {
  const dir = fixtureModel("stories260k");
  const a = await run(["generate", "--model", dir, "--prompt", "Once upon a time", "--max-new-tokens", "16", "--top-k", "5", "--seed", "3", "--json"]);
  const b = await run(["generate", "--model", dir, "--prompt", "Once upon a time", "--max-new-tokens", "16", "--top-k", "5", "--seed", "3", "--json"]);
  assert.equal(a.code, 0, a.err);
  assert.equal(a.out, b.out);
  assert.equal((JSON.parse(a.out) as { generated: number[] }).generated.length, 16);
});

test("cli errors are messages, not stack traces", async () => {
  const r1 = await run(["logits", "--model", fixtureModel("stories260k"), "--idz", "1"]);
  assert.equal(r1.code, 2);
  assert.match(r1.err, /unknown option --idz/);
  assert.match(r1.err, /did you mean --ids/);
  const r2 = await run(["logits", "--model", "/nonexistent/model/dir", "--ids", "1"]);
  assert.equal(r2.code, 1);
  assert.doesNotMatch(r2.err, /internal error/);
  const r3 = await run(["logits", "--model", fixtureModel("stories260k"), "--ids", "1,99999"]);
  assert.equal(r3.code, 2);
  assert.match(r3.err, /outside the vocabulary/);
  const r4 = await run(["generate", "--help"]);
  assert.equal(r4.code, 0);
  assert.match(r4.out, /--max-new-tokens/);
});

test("cli world train --help: the defaults it states are the trainer's and the world's", async () => {
  const { trainCommand } = await import("../../src/cli/commands/world.js");
  const { WORLD_TRAIN_DEFAULTS } = await import("../../src/eval/world/trainworld.js");
  const { WORLD_DEFAULTS } = await import("../../src/eval/world/world.js");
  const { TRAIN_DEFAULTS } = await import("../../src/model/train.js");
  const train = { ...TRAIN_DEFAULTS, ...WORLD_TRAIN_DEFAULTS };
  const stated = (option: string): string => {
    const m = /default ([0-9.e-]+)\)/.exec(trainCommand.options[option]!.description);
    assert.ok(m, `--${option} states its default: ${trainCommand.options[option]!.description}`);
    return m[1]!;
  };
  const expected: Record<string, number> = {
    steps: train.steps, lr: train.lr, "batch-size": train.batchSize, "seq-len": train.seqLen, "grad-accum": train.gradAccum,
    warmup: train.warmupSteps, "eval-every": train.evalEvery, "checkpoint-every": train.checkpointEvery,
    people: WORLD_DEFAULTS.kb.people, repeats: WORLD_DEFAULTS.corpus.repeatsPerFact, "filler-ratio": WORLD_DEFAULTS.corpus.fillerRatio,
    vocab: WORLD_DEFAULTS.vocabSize, hidden: WORLD_DEFAULTS.model.hiddenSize, layers: WORLD_DEFAULTS.model.numLayers,
    intermediate: WORLD_DEFAULTS.model.intermediateSize, "edit-count": WORLD_DEFAULTS.editCount,
  };
  for (const [option, value] of Object.entries(expected)) assert.equal(Number(stated(option)), value, `--${option}`);
});
