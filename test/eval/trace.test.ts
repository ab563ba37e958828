/**
 * Causal tracing (evaluation spec §10):
 *  (a) the trace (prefix reuse, batched samples, forward patches) against a brute-force
 *      restoration written here: one sample at a time, block by block, with the clean state
 *      spliced in between blocks (the MLP of an attention-restored block recomputed by a
 *      handwritten MLP on the reference kernels), on both fixture families;
 *  (b) self-checks: ν = 0 gives TE = IE = 0; restoring the block-0 output everywhere gives the
 *      clean run; restoring the last block's output at the last token gives IE = TE; a fixed
 *      seed gives identical results;
 *  (c) a planted mechanism: a model whose only non-zero MLP is block k: the MLP effect at the
 *      last subject token peaks at k and the suggestion picks it;
 *  (d) the CLI: trace --json --suggest on a fixture, and the preset it writes accepted by
 *      deltaedit edit --preset FILE.json; facts and preset files rejected with clear messages.
 * Tolerances are stated at each assertion; every "zero" is a zero by mathematics, compared with
 * a tolerance because batch shapes change float32 rounding.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { main } from "../../src/cli/main.js";
import { loadPresetFile, presetFor } from "../../src/edit/presets.js";
import { targetTokenIds } from "../../src/edit/request.js";
import { EditSession } from "../../src/edit/session/session.js";
import { prepareSecondMoments } from "../../src/cli/commands/_stats.js";
import { DeltaEditError } from "../../src/errors.js";
import {
  cleanPredictions, defaultWindow, drawNoise, factRng, probOf, TRACE_VARIANTS, traceFact, windowBlocks, type FactTrace,
} from "../../src/eval/trace/causalTrace.js";
import { groupPositions, summarize } from "../../src/eval/trace/effects.js";
import { loadTraceFacts, tokenizeFact, traceFactsFromRecords, type TokenizedFact } from "../../src/eval/trace/facts.js";
import { runTrace } from "../../src/eval/trace/runTrace.js";
import { suggestLayers } from "../../src/eval/trace/suggest.js";
import { renderTraceHtml } from "../../src/eval/trace/traceReport.js";
import * as ref from "../../src/kernels/reference.js";
import { parseModelConfig } from "../../src/model/config.js";
import { makeBatch, type Position } from "../../src/model/batch.js";
import { forward } from "../../src/model/forward.js";
import { LanguageModel } from "../../src/model/model.js";
import { fixtureModel, repoRoot } from "../helpers/paths.js";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "deltaedit-trace-"));
process.env["DELTAEDIT_CACHE"] = path.join(tmp, "cache");

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

const row = (x: Float32Array, i: number, C: number): Float32Array => x.subarray(i * C, (i + 1) * C);

/** The MLP of block l on one residual row r2 (C), written out on the reference kernels. */
function mlpOf(model: LanguageModel, l: number, r2: Float32Array): Float32Array {
  const cfg = model.config;
  const C = cfg.hiddenSize;
  const F = cfg.intermediateSize;
  const P = model.params;
  const val = new Float32Array(C);
  if (cfg.family === "llama") {
    const p = `model.layers.${l}.`;
    const n2 = new Float32Array(C);
    ref.rmsNormForward(r2, P.get(p + "post_attention_layernorm.weight"), n2, new Float32Array(1), 1, C, cfg.normEps);
    const gate = new Float32Array(F);
    const up = new Float32Array(F);
    ref.gemm(n2, P.get(p + "mlp.gate_proj.weight"), gate, { m: 1, n: F, k: C, transB: true });
    ref.gemm(n2, P.get(p + "mlp.up_proj.weight"), up, { m: 1, n: F, k: C, transB: true });
    if (cfg.mlpBias) for (let f = 0; f < F; f++) (gate[f]! += P.get(p + "mlp.gate_proj.bias")[f]!), (up[f]! += P.get(p + "mlp.up_proj.bias")[f]!);
    const key = new Float32Array(F);
    ref.swigluForward(gate, up, key, F);
    ref.gemm(key, P.get(p + "mlp.down_proj.weight"), val, { m: 1, n: C, k: F, transB: true });
    if (cfg.mlpBias) for (let c = 0; c < C; c++) val[c]! += P.get(p + "mlp.down_proj.bias")[c]!;
  } else {
    const p = `h.${l}.`;
    const ln2 = new Float32Array(C);
    ref.layerNormForward(r2, P.get(p + "ln_2.weight"), P.get(p + "ln_2.bias"), ln2, new Float32Array(1), new Float32Array(1), 1, C, cfg.normEps);
    const fc = new Float32Array(F);
    ref.gemm(ln2, P.get(p + "mlp.c_fc.weight"), fc, { m: 1, n: F, k: C });
    for (let f = 0; f < F; f++) fc[f]! += P.get(p + "mlp.c_fc.bias")[f]!;
    const key = new Float32Array(F);
    ref.geluForward(fc, key, F);
    ref.gemm(key, P.get(p + "mlp.c_proj.weight"), val, { m: 1, n: C, k: F });
    for (let c = 0; c < C; c++) val[c]! += P.get(p + "mlp.c_proj.bias")[c]!;
  }
  return val;
}

type Kind = "block" | "mlp" | "attn";

/**
 * Brute force: p(o) averaged over the samples of `eps` when the states `states` (block, kind) are set
 * back to clean at `positions`, computed one sample at a time and one block at a time.
 */
function bruteForce(model: LanguageModel, f: TokenizedFact, eps: Float32Array, S: number, states: { layer: number; kind: Kind }[], positions: number[]): { pClean: number; pRestored: number } {
  const L = model.config.numLayers;
  const C = model.config.hiddenSize;
  const T = f.ids.length;
  const V = model.config.vocabSize;
  const nS = f.subjectEnd - f.subjectStart;
  const b1 = makeBatch([f.ids], 0, V);
  const all: Position[] = f.ids.map((_, pos) => ({ row: 0, pos }));
  const layers = Array.from({ length: L }, (_, l) => l);
  const clean = forward(model, b1, { keepHidden: layers, taps: { layers, at: all, value: true }, logits: [{ row: 0, pos: T - 1 }] });
  const emb = new Float32Array(T * C);
  model.arch.embed(b1.ids, b1.shape, emb);
  const cleanIn = (l: number): Float32Array => (l === 0 ? emb : clean.hidden.get(l - 1)!);
  // clean attention output = (block output − MLP output) − block input
  const cleanAttn = (l: number, i: number): Float32Array => {
    const h = row(clean.hidden.get(l)!, i, C), v = row(clean.taps.value.get(l)!, i, C), x = row(cleanIn(l), i, C);
    return Float32Array.from(h, (hv, c) => hv - v[c]! - x[c]!);
  };
  let p = 0;
  for (let s = 0; s < S; s++) {
    let x = emb.slice();
    for (let j = 0; j < nS; j++) for (let c = 0; c < C; c++) x[(f.subjectStart + j) * C + c]! += eps[(s * nS + j) * C + c]!;
    for (let l = 0; l < L; l++) {
      const r = forward(model, b1, { startLayer: l, startHidden: x, stopAfterLayer: l, keepHidden: [l], taps: { layers: [l], at: all, value: true }, logits: "none" });
      const h = r.hidden.get(l)!.slice();
      const val = r.taps.value.get(l)!;
      for (const st of states.filter((q) => q.layer === l)) {
        for (const i of positions) {
          if (st.kind === "block") h.set(row(clean.hidden.get(l)!, i, C), i * C);
          else if (st.kind === "mlp") for (let c = 0; c < C; c++) h[i * C + c] = h[i * C + c]! - val[i * C + c]! + clean.taps.value.get(l)![i * C + c]!;
          else {
            const a = cleanAttn(l, i);
            const r2 = Float32Array.from(a, (av, c) => x[i * C + c]! + av);
            const m = mlpOf(model, l, r2);
            for (let c = 0; c < C; c++) h[i * C + c] = r2[c]! + m[c]!;
          }
        }
      }
      x = h;
    }
    const fin = forward(model, b1, { startLayer: L, startHidden: x, logits: [{ row: 0, pos: T - 1 }] });
    p += probOf(fin.logits!, 0, V, f.objectId) / S;
  }
  return { pClean: probOf(clean.logits!, 0, V, f.objectId), pRestored: p };
}

function fixtureFact(model: LanguageModel, prompt: string, subject: string): TokenizedFact {
  const tf = tokenizeFact(model.tokenizer!, { index: 0, caseId: "0", prompt, subject, object: "x" });
  const p = cleanPredictions(model, [tf], model.tokenizer!.padTokenId)[0]!;
  return { ...tf, objectId: p.argmax };
}

for (const [name, prompt, subject] of [["stories260k", "Once upon a time, {} was very", "a little girl"], ["tiny-gpt2-random", "One day, {} saw a big", "the little dog"]] as const) {
  test(`trace = brute-force restoration, every variant, position and block: ${name}`, async (tc) => {
    const model = await LanguageModel.load(fixtureModel(name));
    const L = model.config.numLayers;
    const C = model.config.hiddenSize;
    const f = fixtureFact(model, prompt, subject);
    const S = 3;
    const W = 3;
    const nS = f.subjectEnd - f.subjectStart;
    const eps = drawNoise(factRng(5, 0), S, nS, C, 0.5);
    const t = traceFact(model, f, eps, { window: W, maxBatchTokens: 200 }, model.tokenizer!.padTokenId); // small chunks: several forwards per start block
    const T = f.ids.length;
    const corrupt = bruteForce(model, f, eps, S, [], []);
    // float32 through a few blocks in different batch shapes: probabilities agree to 1e-4 of their
    // scale (the random GPT-2's p(o) is ~1/V)
    const tol = 1e-4 * Math.max(corrupt.pClean, corrupt.pRestored);
    assert.ok(Math.abs(t.pClean - corrupt.pClean) <= tol, `p_clean ${t.pClean} vs ${corrupt.pClean}`);
    assert.ok(Math.abs(t.pCorrupt - corrupt.pRestored) <= tol, `p_corrupt ${t.pCorrupt} vs ${corrupt.pRestored}`);
    let worst = 0;
    let largest = 0;
    for (const v of TRACE_VARIANTS) {
      for (let i = f.subjectStart; i < T; i++) {
        for (let l = 0; l < L; l++) {
          const blocks = v.endsWith("Window") ? windowBlocks(l, W, L) : [l];
          const kind: Kind = v === "residual" ? "block" : v.startsWith("mlp") ? "mlp" : "attn";
          const bf = bruteForce(model, f, eps, S, blocks.map((b) => ({ layer: b, kind })), [i]);
          const ie = bf.pRestored - corrupt.pRestored;
          const d = Math.abs(t.ie[v][i]![l]! - ie);
          worst = Math.max(worst, d);
          largest = Math.max(largest, Math.abs(ie));
          assert.ok(d <= tol, `${v} at position ${i}, block ${l}: trace IE ${t.ie[v][i]![l]} vs brute force ${ie}`);
        }
      }
      for (let i = 0; i < f.subjectStart; i++) for (let l = 0; l < L; l++) assert.equal(t.ie[v][i]![l], 0, "positions before the subject are not run (IE 0 by causality)");
    }
    const subj = Array.from({ length: nS }, (_, j) => f.subjectStart + j);
    for (let l = 0; l < L; l++) {
      const ie = bruteForce(model, f, eps, S, [{ layer: l, kind: "block" }], subj).pRestored - corrupt.pRestored;
      assert.ok(Math.abs(t.subjectAll[l]! - ie) <= tol, `all subject tokens, block ${l}: ${t.subjectAll[l]} vs ${ie}`);
    }
    assert.ok(largest > 20 * tol, `the comparison is not between zeros (largest |IE| ${largest})`);
    tc.diagnostic(`max |IE trace − IE brute force| = ${worst.toExponential(2)} (tolerance ${tol.toExponential(2)}, largest |IE| ${largest.toExponential(2)})`);
  });
}

test("self-checks: ν = 0 gives TE = IE = 0; block-0 output restored everywhere = clean run; last block at the last token: IE = TE", async () => {
  const model = await LanguageModel.load(fixtureModel("stories260k"));
  const L = model.config.numLayers;
  const C = model.config.hiddenSize;
  const V = model.config.vocabSize;
  const f = fixtureFact(model, "The cat and {} were", "the dog");
  const T = f.ids.length;
  const nS = f.subjectEnd - f.subjectStart;
  const pad = model.tokenizer!.padTokenId;
  // Probabilities from runs batched differently differ by float32 rounding only: measured ≤ 1.2e-6 on
  // Haswell and SkylakeX kernels; TOL leaves a wide margin for other kernels and thread counts and is
  // still far below the effects checked against it (TE ≥ 0.01 below).
  const TOL = 5e-5;
  // ν = 0: the corrupted run is the clean run; every effect is 0 up to rounding
  const t0 = traceFact(model, f, drawNoise(factRng(0, 0), 4, nS, C, 0), { window: 3, maxBatchTokens: 4096 }, pad);
  assert.ok(Math.abs(t0.te) <= TOL, `TE at ν = 0: ${t0.te}`);
  for (const v of TRACE_VARIANTS) for (const r of t0.ie[v]) for (const x of r) assert.ok(Math.abs(x) <= TOL, `${v} IE at ν = 0: ${x}`);
  for (const x of t0.subjectAll) assert.ok(Math.abs(x) <= TOL);

  // ν > 0: restoring every position's block-0 output gives the clean prediction (up to rounding)
  const S = 4;
  const eps = drawNoise(factRng(0, 0), S, nS, C, 1.0);
  const t = traceFact(model, f, eps, { window: 3, maxBatchTokens: 4096 }, pad);
  assert.ok(t.te > 0.01, `the noise has an effect (TE ${t.te})`);
  const batch = makeBatch(Array.from({ length: S }, () => f.ids), pad, V);
  const emb = new Float32Array(S * T * C);
  model.arch.embed(batch.ids, batch.shape, emb);
  for (let s = 0; s < S; s++) for (let j = 0; j < nS; j++) for (let c = 0; c < C; c++) emb[(s * T + f.subjectStart + j) * C + c]! += eps[(s * nS + j) * C + c]!;
  const clean = forward(model, makeBatch([f.ids], pad, V), { keepHidden: [0], logits: "none" }).hidden.get(0)!; // (T, C)
  const at: Position[] = [];
  const values = new Float32Array(S * T * C);
  for (let s = 0; s < S; s++) for (let pos = 0; pos < T; pos++) (at.push({ row: s, pos }), values.set(row(clean, pos, C), (s * T + pos) * C));
  const last: Position[] = Array.from({ length: S }, (_, r) => ({ row: r, pos: T - 1 }));
  const res = forward(model, batch, { startHidden: emb, patches: [{ layer: 0, kind: "block", at, values }], logits: last });
  for (let s = 0; s < S; s++) {
    const p = probOf(res.logits!, s, V, f.objectId);
    assert.ok(Math.abs(p - t.pClean) <= TOL, `sample ${s}: restored ${p} vs clean ${t.pClean}`);
  }
  // the last block's output at the last token is all the head reads: IE = TE (up to rounding)
  assert.ok(Math.abs(t.ie.residual[T - 1]![L - 1]! - t.te) <= TOL, `IE ${t.ie.residual[T - 1]![L - 1]} vs TE ${t.te}`);
  // the last block's output at any other position is read by nothing: IE = 0 (up to rounding)
  for (let i = f.subjectStart; i < T - 1; i++) assert.ok(Math.abs(t.ie.residual[i]![L - 1]!) <= TOL);
});

test("forward patches are validated", async () => {
  const model = await LanguageModel.load(fixtureModel("tiny-gpt2-random"));
  const C = model.config.hiddenSize;
  const b = makeBatch([[1, 2, 3]], 0, model.config.vocabSize);
  const v = new Float32Array(C);
  const bad = (opts: Parameters<typeof forward>[2], re: RegExp): void => assert.throws(() => forward(model, b, opts), (e: unknown) => e instanceof DeltaEditError && e.code === "E_ARG" && re.test(e.message));
  bad({ patches: [{ layer: 5, kind: "mlp", at: [{ row: 0, pos: 0 }], values: v }] }, /patches\[0\]: mlp patch at layer 5 is not in the blocks run/);
  bad({ patches: [{ layer: 0, kind: "attn", at: [{ row: 0, pos: 0 }], values: new Float32Array(3) }] }, /values has length 3, expected/);
  bad({ patches: [{ layer: 0, kind: "block", at: [{ row: 0, pos: 7 }], values: v }] }, /outside the batch/);
  bad({ patches: [{ layer: 0, kind: "oops" as "mlp", at: [], values: new Float32Array(0) }] }, /kind "oops"/);
  bad({ forBackward: true, patches: [{ layer: 0, kind: "mlp", at: [{ row: 0, pos: 0 }], values: v }] }, /forBackward/);
  bad({ startLayer: 1, startHidden: new Float32Array(3 * C), patches: [{ layer: -1, kind: "block", at: [{ row: 0, pos: 0 }], values: v }] }, /not in the blocks run \(1\.\.1\) nor the input boundary 0/);
  // a block patch at layer −1 overwrites the embeddings: the same as passing them as startHidden (1e-6)
  const emb = Float32Array.from({ length: 3 * C }, (_, i) => Math.sin(0.37 * i));
  const all: Position[] = [0, 1, 2].map((pos) => ({ row: 0, pos }));
  const viaPatch = forward(model, b, { patches: [{ layer: -1, kind: "block", at: all, values: emb }] }).logits!;
  const viaStart = forward(model, b, { startHidden: emb }).logits!;
  const plain = forward(model, b).logits!;
  let d = 0;
  let moved = 0;
  for (let i = 0; i < plain.length; i++) (d = Math.max(d, Math.abs(viaPatch[i]! - viaStart[i]!))), (moved = Math.max(moved, Math.abs(viaPatch[i]! - plain[i]!)));
  assert.ok(d <= 1e-6, `layer −1 patch vs startHidden: ${d}`);
  assert.ok(moved > 1e-3, "the patch changed the embeddings");
});

test("a fixed seed gives identical results; another seed different ones", async () => {
  const model = await LanguageModel.load(fixtureModel("stories260k"));
  const facts = knownFacts(model).map((x, i) => ({ index: i, caseId: String(i), ...x }));
  const opts = { samples: 3, noise: { kind: "sigma" as const, multiplier: 3 }, window: 3, seed: 7, maxBatchTokens: 1024 };
  const a = runTrace(model, facts, opts);
  const b = runTrace(model, facts, opts);
  assert.ok(a.facts.length >= 2, `facts known by the fixture: ${a.facts.length}`);
  assert.deepEqual(b.facts, a.facts);
  assert.deepEqual(b.summary, a.summary);
  const c = runTrace(model, facts, { ...opts, seed: 8 });
  assert.notDeepEqual(c.facts.map((t) => t.pCorrupt), a.facts.map((t) => t.pCorrupt));
});

test("window and position groups follow ROME", () => {
  assert.equal(defaultWindow(48), 10);
  assert.equal(defaultWindow(32), 7);
  assert.equal(defaultWindow(8), 3);
  assert.equal(defaultWindow(6), 3);
  assert.deepEqual(windowBlocks(20, 10, 48), [15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
  assert.deepEqual(windowBlocks(0, 3, 6), [0, 1]);
  assert.deepEqual(windowBlocks(5, 3, 6), [4, 5]);
  assert.deepEqual(windowBlocks(2, 4, 6), [0, 1, 2, 3]);
  assert.deepEqual(groupPositions(10, 2, 6), { firstSubject: [2], middleSubject: [3, 4], lastSubject: [5], firstAfter: [6], further: [7, 8], last: [9] });
  assert.deepEqual(groupPositions(4, 1, 2), { firstSubject: [1], middleSubject: [], lastSubject: [1], firstAfter: [2], further: [], last: [3] });
  assert.deepEqual(groupPositions(3, 1, 3), { firstSubject: [1], middleSubject: [], lastSubject: [2], firstAfter: [], further: [], last: [2] });
});

test("planted mechanism: the subject reaches the answer only through block k's MLP → the MLP effect at the last subject token peaks at k and --suggest picks it", () => {
  const cfg = parseModelConfig({
    model_type: "llama", vocab_size: 41, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 5, num_attention_heads: 4, num_key_value_heads: 2,
    max_position_embeddings: 32, rms_norm_eps: 1e-5, rope_theta: 10000, hidden_act: "silu", tie_word_embeddings: false,
  }, "planted test config");
  const model = LanguageModel.random(cfg, 11, 0.3);
  const L = cfg.numLayers;
  const C = cfg.hiddenSize;
  const k = 2;
  const END = 30; // the prompt's last token
  // Wiring (prompt = [subject, END]): the only MLP is block k, scaled up so that it dominates the
  // subject's residual; the only attention is block k+1, with q = 0 (uniform attention); END's embedding
  // is 0, so END's own value, MLP input and residual are 0 until block k+1 copies the subject's block-k
  // output into it. The answer is therefore a function of the subject's block-k output alone, and every
  // other MLP and attention output is exactly 0; a sharp head (×10) makes p(o) clean close to 1.
  for (let l = 0; l < L; l++) {
    const down = model.params.get(`model.layers.${l}.mlp.down_proj.weight`);
    if (l === k) for (let i = 0; i < down.length; i++) down[i]! *= 50;
    else down.fill(0);
    if (l === k + 1) model.params.get(`model.layers.${l}.self_attn.q_proj.weight`).fill(0);
    else model.params.get(`model.layers.${l}.self_attn.o_proj.weight`).fill(0);
  }
  model.params.get("model.embed_tokens.weight").fill(0, END * C, (END + 1) * C);
  const head = model.params.get("lm_head.weight");
  for (let i = 0; i < head.length; i++) head[i]! *= 10;
  const facts: TokenizedFact[] = [17, 11, 13, 19, 23, 29].map((s, i) => ({
    fact: { index: i, caseId: String(i), prompt: "{}", subject: "s", object: "o" }, text: "", ids: [s, END], tokens: [String(s), String(END)], subjectStart: 0, subjectEnd: 1, objectId: 0, warning: null,
  }));
  const preds = cleanPredictions(model, facts, 0);
  facts.forEach((f, i) => (f.objectId = preds[i]!.argmax));
  const trace = (window: number): FactTrace[] => facts.map((f) => traceFact(model, f, drawNoise(factRng(1, f.fact.index), 10, 1, C, 1.5), { window, maxBatchTokens: 4096 }, 0));
  const single = summarize(trace(1), L);
  const curve = single.aie.mlp.lastSubject.aie;
  assert.ok(single.ate > 0.3, `the noise has an effect (ATE ${single.ate})`);
  assert.ok(curve[k]! >= 0.8 * single.ate, `planted block ${k}: AIE ${curve[k]} (expected most of the ATE ${single.ate})`);
  // runs batched differently agree up to float32 rounding (≤ 1.2e-6 measured); 5e-5 leaves margin for any kernel
  for (let l = 0; l < L; l++) if (l !== k) assert.ok(Math.abs(curve[l]!) <= 5e-5, `block ${l} has no MLP: AIE ${curve[l]} (0 up to rounding)`);
  const s1 = suggestLayers(single);
  assert.equal(s1.peak, k);
  assert.equal(s1.romeLayer, k);
  assert.equal(s1.targetLayer, k);
  assert.deepEqual(s1.editLayers, [k - 1, k]); // min(5, max(2, ⌈5/8⌉)) = 2 blocks ending at z
  // with a window of 3 every window holding block k restores the same computation: the peak is one of them
  const w3 = suggestLayers(summarize(trace(3), L));
  assert.ok([k - 1, k, k + 1].includes(w3.peak), `windowed peak ${w3.peak}`);
  assert.ok(Math.abs(w3.peakAie - curve[k]!) <= 5e-5, `windowed peak AIE ${w3.peakAie} vs single ${curve[k]}`);
});

test("the suggestion never puts the z-layer on the last block", () => {
  const s = summarize([], 6);
  s.aie.mlpWindow.lastSubject.aie = [0.1, 0.2, 0.1, 0.2, 0.3, 0.9];
  const g = suggestLayers(s);
  assert.equal(g.peak, 5);
  assert.equal(g.targetLayer, 4);
  assert.deepEqual(g.editLayers, [3, 4]);
  const big = summarize([], 48);
  big.aie.mlpWindow.lastSubject.aie = Array.from({ length: 48 }, (_, l) => -Math.abs(l - 17));
  assert.deepEqual(suggestLayers(big).editLayers, [13, 14, 15, 16, 17]); // MEMIT's GPT2-XL range
});

/** Facts the stories260k fixture knows (object = its own argmax), found by a clean run. */
function knownFacts(model: LanguageModel): { prompt: string; subject: string; object: string }[] {
  const tok = model.tokenizer!;
  const cands = [["Once upon a time, {} was very", "a little girl"], ["The cat and {} were", "the dog"], ["{} went to the", "Lily"], ["{} and her mom went to the", "Sue"], ["One day, {} saw a big", "the little dog"]] as const;
  const out: { prompt: string; subject: string; object: string }[] = [];
  for (const [prompt, subject] of cands) {
    const f = fixtureFact(model, prompt, subject);
    const object = tok.decode([f.objectId]).trim();
    if (object.length > 0 && targetTokenIds(tok, object)[0] === f.objectId) out.push({ prompt, subject, object });
  }
  return out;
}

test("facts: CounterFact records, the simple form, and rejections by index and field", () => {
  const r = traceFactsFromRecords([
    { case_id: 4, requested_rewrite: { prompt: "{} was born in", subject: "Ann", target_new: { str: "Rome" }, target_true: { str: "Paris" } } },
    { prompt: "Bob works as a", subject: "Bob", object: "painter" },
    { prompt: "The sport of {} is", subject: "Cy", target: { str: "golf" } },
    { prompt: "The sport of Dee is", subject: "Eve", object: "golf" },
    { prompt: "{} plays", subject: "Fay", object: "" },
    { prompt: "{} and {} play", subject: "Gus", object: "chess" },
  ], "facts.json");
  assert.deepEqual(r.facts.map((f) => [f.index, f.caseId, f.prompt, f.subject, f.object]), [
    [0, "4", "{} was born in", "Ann", "Paris"], [1, "1", "{} works as a", "Bob", "painter"], [2, "2", "The sport of {} is", "Cy", "golf"],
  ]);
  assert.deepEqual(r.rejected.map((x) => [x.index, x.field]), [[3, "subject"], [4, "object"], [5, "prompt"]]);
  assert.match(r.rejected[0]!.message, /^facts\.json: fact #3 \(case_id 3\): the subject "Eve" does not occur in the prompt/);
  assert.match(r.rejected[1]!.message, /fact #4 .*"object" is missing or empty/);
});

test("cli: trace --json --suggest on a fixture; the preset it writes is accepted by edit --preset FILE.json", async () => {
  const dir = fixtureModel("stories260k");
  const model = await LanguageModel.load(dir);
  const known = knownFacts(model);
  assert.ok(known.length >= 2);
  const factsFile = path.join(tmp, "facts.jsonl");
  const lines = [...known, { prompt: "{} went to the", subject: "Lily", object: "zebra" }, { prompt: "Tom went home", subject: "Lily", object: "park" }];
  fs.writeFileSync(factsFile, lines.map((x) => JSON.stringify(x)).join("\n") + "\n");
  const out = path.join(tmp, "trace-out");
  const r = await run(["trace", "--model", dir, "--facts", factsFile, "--samples", "3", "--json", "--suggest", "--out", out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /rejected: .*fact #\d+ .*does not occur in the prompt/);
  const j = JSON.parse(r.out) as { summary: { facts: number; numLayers: number }; dropped: number; rejected: number; suggestion: { editLayers: number[]; targetLayer: number; romeLayer: number }; files: Record<string, string> };
  assert.equal(j.summary.facts, known.length);
  assert.equal(j.dropped, 1);
  assert.equal(j.rejected, 1);
  assert.equal(j.summary.numLayers, 5);
  const full = JSON.parse(fs.readFileSync(path.join(out, "trace.json"), "utf8")) as { facts: unknown[]; format: string };
  assert.equal(full.format, "deltaedit-trace");
  assert.equal(full.facts.length, known.length);
  const html = fs.readFileSync(path.join(out, "report.html"), "utf8");
  for (const id of ["aie:residual", "aie:mlpWindow", "aie:attnWindow"]) assert.ok(html.includes(`data-plot="${id}"`), id);
  assert.doesNotMatch(html, /<script/);
  const presetFile = path.join(out, "preset.json");
  const preset = loadPresetFile(presetFile);
  assert.deepEqual(preset.methods.memit?.["editLayers"], j.suggestion.editLayers);

  const session = path.join(tmp, "session");
  const e = await run(["edit", "--model", dir, "--method", "memit", "--edits", path.join(repoRoot(), "test", "fixtures", "edits", "stories-64.jsonl"), "--session", session,
    "--stats-corpus", path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt"), "--limit", "1", "--set", "numGradSteps=2", "--preset", presetFile]);
  assert.equal(e.code, 0, e.err);
  const s = await EditSession.open(session, { secondMoments: (m, l) => prepareSecondMoments(m, l, { corpus: path.join(repoRoot(), "test", "fixtures", "corpus", "stories.txt") }, () => {}) });
  assert.equal(s.manifest.preset, preset.name);
  assert.deepEqual(s.manifest.params["editLayers"], j.suggestion.editLayers);
  assert.equal(s.manifest.params["targetLayer"], j.suggestion.targetLayer);
});

test("cli: bad inputs are messages, not stack traces", async () => {
  const dir = fixtureModel("stories260k");
  const r1 = await run(["trace", "--model", dir, "--facts", path.join(tmp, "missing.jsonl")]);
  assert.equal(r1.code, 1);
  assert.match(r1.err, /cannot read facts from/);
  const r2 = await run(["trace", "--model", dir, "--facts", path.join(tmp, "x.jsonl"), "--noise", "three"]);
  assert.equal(r2.code, 2);
  assert.match(r2.err, /--noise expects/);
  const unknown = path.join(tmp, "unknown.jsonl");
  fs.writeFileSync(unknown, JSON.stringify({ prompt: "{} went to the", subject: "Lily", object: "zebra" }) + "\n");
  const r3 = await run(["trace", "--model", dir, "--facts", unknown]);
  assert.equal(r3.code, 1);
  assert.match(r3.err, /none of the 1 facts examined is known/);
  for (const r of [r1, r2, r3]) assert.doesNotMatch(r.err, /internal error/);
  const h = await run(["trace", "--help"]);
  assert.equal(h.code, 0);
  assert.match(h.out, /--suggest/);
});

test("preset files: validated, errors name the file and the field", async () => {
  const model = await LanguageModel.load(fixtureModel("stories260k"));
  const write = (name: string, v: unknown): string => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, typeof v === "string" ? v : JSON.stringify(v));
    return f;
  };
  const ok = write("ok.json", { name: "mine", numLayers: 5, hidden: 64, methods: { memit: { editLayers: [1, 2], targetLayer: 2, lossLayer: 4 }, rome: { layer: 2, lossLayer: 4 } } });
  assert.equal(presetFor(model.config, ok).name, "mine");
  const cases: [unknown, RegExp][] = [
    [{ name: "x", numLayers: 5, hidden: 64, methods: { memit: { editLayers: [1, 7] } } }, /field "methods\.memit\.editLayers\[1\]" must be a block index in \[0, 4\]/],
    [{ name: "x", numLayers: 5, hidden: 64, methods: { memitt: {} } }, /field "methods\.memitt" is not a method/],
    [{ name: "x", numLayers: 5, hidden: 64, methods: {}, layers: 3 }, /field "layers" is not a preset field/],
    [{ numLayers: 5, hidden: 64, methods: {} }, /field "name" is missing/],
    [{ name: "x", numLayers: 5, hidden: 64, methods: { rome: { layer: -1 } } }, /field "methods\.rome\.layer"/],
    ["{not json", /not valid JSON/],
  ];
  cases.forEach(([v, re], i) => {
    const f = write(`bad${i}.json`, v);
    assert.throws(() => loadPresetFile(f), (e: unknown) => e instanceof DeltaEditError && e.message.startsWith(f) && re.test(e.message), `case ${i}`);
  });
  const other = write("other.json", { name: "six", numLayers: 6, hidden: 64, methods: {} });
  assert.throws(() => presetFor(model.config, other), /is for 6-block models, this model has 5/);
  assert.throws(() => presetFor(model.config, "nope"), /unknown preset "nope"/);
});

test("the report renders every panel, example facts and the suggestion", async () => {
  const model = await LanguageModel.load(fixtureModel("stories260k"));
  const facts = knownFacts(model).map((x, i) => ({ index: i, caseId: String(i), ...x }));
  const r = runTrace(model, facts, { samples: 2, noise: { kind: "fixed", nu: 0.5 }, window: 3, seed: 0, maxBatchTokens: 4096 });
  const html = renderTraceHtml(r, suggestLayers(r.summary));
  for (const id of ["aie:residual", "aie:mlpWindow", "aie:attnWindow", "aie:mlp", "aie:attn", "subject-last-vs-all"]) assert.ok(html.includes(`data-plot="${id}"`), id);
  assert.ok(html.includes(`data-plot="fact:${r.facts[0]!.index}:residual"`));
  assert.match(html, /Layer suggestion/);
  // 5 group panels of 6 groups × 5 blocks, then 3 panels of T tokens × 5 blocks per example fact (at most 3)
  assert.equal((html.match(/class="cell"/g) ?? []).length, 5 * 6 * 5 + r.facts.slice(0, 3).reduce((a, t) => a + 3 * t.tokens.length * 5, 0));
  assert.equal(loadTraceFacts(path.join(repoRoot(), "worlds", "factworld-v1", "world", "control-facts.jsonl")).rejected.length, 0);
});
