/**
 * attentionForward / attentionBackward: native vs reference on several layouts (contiguous,
 * packed qkv strides, padded batch strides), GQA, key masks, KV-cache decoding (qOffset > 0),
 * a fully masked query row; backward vs finite differences of the float64 reference forward.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import * as ops from "../../src/kernels/ops.js";
import type { AttentionShape } from "../../src/kernels/ops.js";
import * as ref from "../../src/kernels/reference.js";
import { assertClose, dot, finiteDiff, makeRng, pick, randn, sampleIndices } from "./_helpers.js";

// probabilities/outputs O(1); float32 dot products over HS <= 64 terms
const FWD_TOL = { atol: 2e-5, rtol: 1e-4 };
// gradients sum over T*G terms
const BWD_TOL = { atol: 1e-4, rtol: 1e-3 };
const FD_TOL = { atol: 3e-4, rtol: 3e-3 };

interface Case {
  name: string;
  shape: AttentionShape;
  packed?: boolean; // q, k, v are views into one (B, T, (NH + 2 NKV) HS) buffer (requires T == Tk)
}

/** Element counts of the q/k/v buffers for a case (also allocates packed layouts). */
function makeInputs(rng: () => number, c: Case): { q: Float32Array; k: Float32Array; v: Float32Array; shape: AttentionShape } {
  const s = c.shape;
  const { B, T, Tk, nHeads: NH, nKvHeads: NKV, headSize: HS } = s;
  if (c.packed) {
    const W = (NH + 2 * NKV) * HS;
    const qkv = randn(rng, B * T * W);
    const shape: AttentionShape = { ...s, qRowStride: W, kRowStride: W, vRowStride: W };
    return { q: qkv.subarray(0), k: qkv.subarray(NH * HS), v: qkv.subarray((NH + NKV) * HS), shape };
  }
  const span = (BS: number | undefined, RS: number | undefined, n: number, w: number): number =>
    (B - 1) * (BS ?? n * (RS ?? w)) + (n - 1) * (RS ?? w) + w;
  return {
    q: randn(rng, span(s.qBatchStride, s.qRowStride, T, NH * HS)),
    k: randn(rng, span(s.kBatchStride, s.kRowStride, Tk, NKV * HS)),
    v: randn(rng, span(s.vBatchStride, s.vRowStride, Tk, NKV * HS)),
    shape: s,
  };
}

const CASES: Case[] = [
  { name: "contiguous MHA, causal", shape: { B: 2, T: 5, Tk: 5, nHeads: 4, nKvHeads: 4, headSize: 8 } },
  { name: "GQA 4:2", shape: { B: 2, T: 6, Tk: 6, nHeads: 4, nKvHeads: 2, headSize: 16 } },
  { name: "GQA 6:1 (MQA)", shape: { B: 1, T: 7, Tk: 7, nHeads: 6, nKvHeads: 1, headSize: 4 } },
  {
    name: "packed qkv strides + left padding mask (fully masked first query of batch 1)",
    shape: { B: 2, T: 6, Tk: 6, nHeads: 3, nKvHeads: 3, headSize: 4, keyMask: Uint8Array.from([1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]) },
    packed: true,
  },
  { name: "packed GQA with mask holes", shape: { B: 2, T: 5, Tk: 5, nHeads: 4, nKvHeads: 2, headSize: 8, keyMask: Uint8Array.from([1, 0, 1, 1, 0, 1, 1, 0, 1, 1]) }, packed: true },
  { name: "decode: T=1, Tk=9 (default qOffset = 8)", shape: { B: 2, T: 1, Tk: 9, nHeads: 4, nKvHeads: 2, headSize: 8 } },
  { name: "chunk: T=3, Tk=10, qOffset=4 (keys beyond the query are hidden)", shape: { B: 1, T: 3, Tk: 10, nHeads: 2, nKvHeads: 1, headSize: 8, qOffset: 4 } },
  {
    name: "padded row and batch strides",
    shape: { B: 3, T: 4, Tk: 4, nHeads: 2, nKvHeads: 2, headSize: 6, qRowStride: 15, qBatchStride: 70, kRowStride: 13, kBatchStride: 60, vRowStride: 12, vBatchStride: 55 },
  },
  { name: "longer sequence T=Tk=128, GQA 4:1", shape: { B: 1, T: 128, Tk: 128, nHeads: 4, nKvHeads: 1, headSize: 32 } },
];

describe("attention vs reference", () => {
  const rng = makeRng(40);
  for (const c of CASES) {
    it(c.name, () => {
      const { q, k, v, shape } = makeInputs(rng, c);
      const { B, T, Tk, nHeads: NH, headSize: HS } = shape;
      const out = new Float32Array(B * T * NH * HS).fill(NaN), probs = new Float32Array(B * NH * T * Tk).fill(NaN);
      const outR = new Float32Array(out.length), probsR = new Float32Array(probs.length);
      ops.attentionForward(q, k, v, out, probs, shape);
      ref.attentionForward(q, k, v, outR, probsR, shape);
      assertClose(out, outR, FWD_TOL, "out");
      assertClose(probs, probsR, FWD_TOL, "probs");
      const outNoProbs = new Float32Array(out.length);
      ops.attentionForward(q, k, v, outNoProbs, null, shape);
      assertClose(outNoProbs, out, { atol: 0 }, "out with probs = null (same arithmetic)");

      // backward; dq/dk/dv pre-filled with a sentinel: positions they do not address stay untouched
      const dout = randn(rng, out.length);
      const SENT = 12345;
      const dq = new Float32Array(q.length).fill(SENT), dk = new Float32Array(k.length).fill(SENT), dv = new Float32Array(v.length).fill(SENT);
      const dqR = dq.slice(), dkR = dk.slice(), dvR = dv.slice();
      ops.attentionBackward(dout, q, k, v, probs, dq, dk, dv, shape);
      ref.attentionBackward(dout, q, k, v, probs, dqR, dkR, dvR, shape);
      assertClose(dq, dqR, BWD_TOL, "dq");
      assertClose(dk, dkR, BWD_TOL, "dk");
      assertClose(dv, dvR, BWD_TOL, "dv");
    });
  }

  it("a query that sees no key outputs zeros and zero probabilities", () => {
    const shape: AttentionShape = { B: 1, T: 2, Tk: 3, nHeads: 1, nKvHeads: 1, headSize: 4, qOffset: 0, keyMask: Uint8Array.from([0, 1, 1]) };
    const q = randn(rng, 8), k = randn(rng, 12), v = randn(rng, 12);
    const out = new Float32Array(8).fill(NaN), probs = new Float32Array(6).fill(NaN);
    ops.attentionForward(q, k, v, out, probs, shape);
    assert.deepEqual(Array.from(out.subarray(0, 4)), [0, 0, 0, 0], "query 0 sees only key 0, which is masked");
    assert.deepEqual(Array.from(probs.subarray(0, 3)), [0, 0, 0]);
    assert.deepEqual(Array.from(probs.subarray(3, 6)).map((p) => p > 0), [false, true, false], "query 1 sees key 1 only");
    const dq = new Float32Array(8).fill(NaN), dk = new Float32Array(12), dv = new Float32Array(12);
    ops.attentionBackward(randn(rng, 8), q, k, v, probs, dq, dk, dv, shape);
    assert.deepEqual(Array.from(dq.subarray(0, 4)), [0, 0, 0, 0], "dq of the blind query is zero");
  });
});

describe("attention backward vs finite differences", () => {
  const rng = makeRng(41);
  const fdCases: Case[] = [
    { name: "GQA 4:2 with mask", shape: { B: 2, T: 4, Tk: 4, nHeads: 4, nKvHeads: 2, headSize: 4, keyMask: Uint8Array.from([1, 1, 1, 1, 0, 1, 1, 1]) } },
    { name: "packed qkv", shape: { B: 1, T: 5, Tk: 5, nHeads: 2, nKvHeads: 1, headSize: 6 }, packed: true },
    { name: "decode qOffset", shape: { B: 1, T: 2, Tk: 6, nHeads: 2, nKvHeads: 2, headSize: 4, qOffset: 3 } },
  ];
  for (const c of fdCases) {
    it(c.name, () => {
      const { q, k, v, shape } = makeInputs(rng, c);
      const { B, T, Tk, nHeads: NH, headSize: HS } = shape;
      const g = randn(rng, B * T * NH * HS);
      const out = new Float32Array(g.length), probs = new Float32Array(B * NH * T * Tk);
      ops.attentionForward(q, k, v, out, probs, shape);
      const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
      ops.attentionBackward(g, q, k, v, probs, dq, dk, dv, shape);
      // float64 copies; packed views share one float64 buffer exactly as the float32 ones do
      const base = new Float64Array(q.buffer.byteLength / 4);
      base.set(new Float32Array(q.buffer));
      const view = (x: Float32Array): Float64Array => (x.buffer === q.buffer ? base.subarray(x.byteOffset / 4, x.byteOffset / 4 + x.length) : Float64Array.from(x));
      const q64 = view(q), k64 = c.packed ? view(k) : Float64Array.from(k), v64 = c.packed ? view(v) : Float64Array.from(v);
      const loss = (): number => {
        const o = new Float64Array(g.length);
        ref.attentionForward(q64, k64, v64, o, null, shape);
        return dot(o, g);
      };
      for (const [name, grad, x64] of [["dq", dq, q64], ["dk", dk, k64], ["dv", dv, v64]] as const) {
        // only the positions the layout addresses (packed views overlap other tensors)
        const addressed: number[] = [];
        const rs = name === "dq" ? shape.qRowStride : name === "dk" ? shape.kRowStride : shape.vRowStride;
        const width = (name === "dq" ? NH : shape.nKvHeads) * HS, rows = name === "dq" ? T : Tk;
        const rowStride = rs ?? width;
        for (let b = 0; b < B; b++) for (let t = 0; t < rows; t++) for (let d = 0; d < width; d++) addressed.push((b * rows + t) * rowStride + d);
        const ix = sampleIndices(rng, addressed.length, 40).map((i) => addressed[i]!);
        assertClose(pick(grad, ix), finiteDiff(x64, ix, loss), FD_TOL, `${name} vs FD`);
      }
    });
  }
});
