/** gelu / swiglu / softmax / logSoftmax / rope: native vs reference, backward vs finite differences. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import * as ops from "../../src/kernels/ops.js";
import * as ref from "../../src/kernels/reference.js";
import { assertClose, dot, finiteDiff, makeRng, pick, randn, sampleIndices } from "./_helpers.js";

// elementwise float32 results vs float64 reference: a few ulps of O(1..10) values
const EW_TOL = { atol: 1e-5, rtol: 1e-5 };
const FD_TOL = { atol: 2e-4, rtol: 1e-3 };

describe("gelu", () => {
  const rng = makeRng(30);
  for (const n of [1, 7, 100_000]) {
    it(`forward/backward vs reference, n=${n}`, () => {
      const x = randn(rng, n, 3), dout = randn(rng, n);
      const out = new Float32Array(n), outR = new Float32Array(n);
      ops.geluForward(x, out, n);
      ref.geluForward(x, outR, n);
      assertClose(out, outR, EW_TOL, "out");
      const dx = new Float32Array(n), dxR = new Float32Array(n);
      ops.geluBackward(x, dout, dx, n);
      ref.geluBackward(x, dout, dxR, n);
      assertClose(dx, dxR, EW_TOL, "dx");
    });
  }
  it("in place (out === x) and subarray views", () => {
    const big = randn(rng, 50), x = big.subarray(5, 45), expect = new Float32Array(40);
    ref.geluForward(x, expect, 40);
    ops.geluForward(x, x, 40);
    assertClose(x, expect, EW_TOL, "in-place out");
  });
  it("backward vs finite differences", () => {
    const n = 50, x = randn(rng, n, 2), g = randn(rng, n), dx = new Float32Array(n);
    ops.geluBackward(x, g, dx, n);
    const x64 = Float64Array.from(x);
    const loss = (): number => { const o = new Float64Array(n); ref.geluForward(x64, o, n); return dot(o, g); };
    const ix = sampleIndices(rng, n, n);
    assertClose(pick(dx, ix), finiteDiff(x64, ix, loss), FD_TOL, "dx vs FD");
  });
});

describe("swiglu", () => {
  const rng = makeRng(31);
  for (const n of [1, 33, 100_000]) {
    it(`forward/backward vs reference, n=${n}`, () => {
      const gate = randn(rng, n, 3), up = randn(rng, n), dout = randn(rng, n);
      const out = new Float32Array(n), outR = new Float32Array(n);
      ops.swigluForward(gate, up, out, n);
      ref.swigluForward(gate, up, outR, n);
      assertClose(out, outR, EW_TOL, "out");
      const dg = new Float32Array(n), du = new Float32Array(n), dgR = new Float32Array(n), duR = new Float32Array(n);
      ops.swigluBackward(gate, up, dout, dg, du, n);
      ref.swigluBackward(gate, up, dout, dgR, duR, n);
      assertClose(dg, dgR, EW_TOL, "dgate");
      assertClose(du, duR, EW_TOL, "dup");
    });
  }
  it("backward vs finite differences", () => {
    const n = 40, gate = randn(rng, n, 2), up = randn(rng, n), g = randn(rng, n);
    const dg = new Float32Array(n), du = new Float32Array(n);
    ops.swigluBackward(gate, up, g, dg, du, n);
    const g64 = Float64Array.from(gate), u64 = Float64Array.from(up);
    const loss = (): number => { const o = new Float64Array(n); ref.swigluForward(g64, u64, o, n); return dot(o, g); };
    const ix = sampleIndices(rng, n, n);
    assertClose(pick(dg, ix), finiteDiff(g64, ix, loss), FD_TOL, "dgate vs FD");
    assertClose(pick(du, ix), finiteDiff(u64, ix, loss), FD_TOL, "dup vs FD");
  });
});

describe("softmax / logSoftmax", () => {
  const rng = makeRng(32);
  for (const [rows, cols] of [[1, 1], [4, 10], [37, 50257 >> 4], [2, 300]] as const) {
    it(`rows=${rows} cols=${cols}, including large logits and -Infinity entries`, () => {
      const x = randn(rng, rows * cols, 5);
      x[0]! += 1000; // max subtraction keeps this finite
      if (cols > 2) x[1] = -Infinity;
      const out = new Float32Array(rows * cols), outR = new Float32Array(rows * cols);
      ops.softmaxForward(x, out, rows, cols);
      ref.softmaxForward(x, outR, rows, cols);
      assertClose(out, outR, { atol: 1e-6, rtol: 1e-5 }, "softmax");
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let c = 0; c < cols; c++) s += out[r * cols + c]!;
        assert.ok(Math.abs(s - 1) < 1e-5, `softmax row ${r} sums to ${s}`);
      }
      ops.logSoftmaxForward(x, out, rows, cols);
      ref.logSoftmaxForward(x, outR, rows, cols);
      assertClose(out, outR, { atol: 1e-5, rtol: 1e-6 }, "logSoftmax"); // values up to ~1e3 in magnitude
    });
  }
});

describe("rope", () => {
  const rng = makeRng(33);
  function tables(maxPos: number, h: number, base = 10000): { cos: Float32Array; sin: Float32Array } {
    const cos = new Float32Array(maxPos * h), sin = new Float32Array(maxPos * h);
    for (let p = 0; p < maxPos; p++) for (let i = 0; i < h; i++) {
      const a = p / base ** ((2 * i) / (2 * h));
      cos[p * h + i] = Math.cos(a);
      sin[p * h + i] = Math.sin(a);
    }
    return { cos, sin };
  }
  for (const [rows, nHeads, headSize] of [[1, 1, 2], [5, 3, 8], [64, 8, 64]] as const) {
    it(`forward/backward vs reference, rows=${rows} nHeads=${nHeads} headSize=${headSize}`, () => {
      const maxPos = 100, { cos, sin } = tables(maxPos, headSize / 2);
      const positions = Int32Array.from({ length: rows }, () => Math.floor(rng() * maxPos));
      const x = randn(rng, rows * nHeads * headSize), xN = x.slice(), xR = x.slice();
      ops.ropeForward(xN, cos, sin, positions, rows, nHeads, headSize);
      ref.ropeForward(xR, cos, sin, positions, rows, nHeads, headSize);
      assertClose(xN, xR, EW_TOL, "rope forward");
      // backward is the transpose rotation: <R x, y> = <x, Rᵀ y>; for a rotation Rᵀ R = I
      const y = randn(rng, x.length), yN = y.slice(), yR = y.slice();
      ops.ropeBackward(yN, cos, sin, positions, rows, nHeads, headSize);
      ref.ropeBackward(yR, cos, sin, positions, rows, nHeads, headSize);
      assertClose(yN, yR, EW_TOL, "rope backward");
      const lhs = dot(xN, y), rhs = dot(x, yN);
      assert.ok(Math.abs(lhs - rhs) < 1e-3 * Math.sqrt(x.length), `<Rx,y> = ${lhs} vs <x,Rᵀy> = ${rhs}`);
      ops.ropeBackward(xN, cos, sin, positions, rows, nHeads, headSize);
      assertClose(xN, x, EW_TOL, "Rᵀ R x = x");
    });
  }
  it("backward vs finite differences of the float64 forward", () => {
    const rows = 3, nHeads = 2, headSize = 6, { cos, sin } = tables(10, 3);
    const positions = Int32Array.from([0, 7, 3]);
    const g = randn(rng, rows * nHeads * headSize), dx = g.slice();
    ops.ropeBackward(dx, cos, sin, positions, rows, nHeads, headSize);
    const x64 = Float64Array.from(randn(rng, g.length));
    const loss = (): number => { const o = x64.slice(); ref.ropeForward(o, cos, sin, positions, rows, nHeads, headSize); return dot(o, g); };
    const ix = sampleIndices(rng, g.length, g.length);
    assertClose(pick(dx, ix), finiteDiff(x64, ix, loss), FD_TOL, "dx vs FD");
  });
});

describe("exp-based kernels over the whole input range", () => {
  // gelu, swiglu and softmax use the native branch-free ExpF; sweep it through saturation
  const xs = Float32Array.from({ length: 4001 }, (_, i) => -100 + i * 0.05);
  xs[0] = -Infinity; // softmax of a masked logit must be exactly 0
  const n = xs.length;
  it("gelu / swiglu forward + backward stay finite and match the reference on [-100, 100]", () => {
    const x = xs.subarray(1), m = n - 1, ones = new Float32Array(m).fill(1);
    const out = new Float32Array(m), outR = new Float32Array(m);
    ops.geluForward(x, out, m);
    ref.geluForward(x, outR, m);
    assertClose(out, outR, { atol: 1e-6, rtol: 1e-6 }, "gelu");
    ops.geluBackward(x, ones, out, m);
    ref.geluBackward(x, ones, outR, m);
    assertClose(out, outR, { atol: 1e-6, rtol: 1e-5 }, "gelu backward");
    ops.swigluForward(x, ones, out, m);
    ref.swigluForward(x, ones, outR, m);
    assertClose(out, outR, { atol: 1e-6, rtol: 1e-6 }, "swiglu");
    const dg = new Float32Array(m), du = new Float32Array(m), dgR = new Float32Array(m), duR = new Float32Array(m);
    ops.swigluBackward(x, ones, ones, dg, du, m);
    ref.swigluBackward(x, ones, ones, dgR, duR, m);
    assertClose(dg, dgR, { atol: 1e-6, rtol: 1e-5 }, "swiglu dgate");
    assertClose(du, duR, { atol: 1e-6, rtol: 1e-6 }, "swiglu dup");
  });
  it("softmax over one wide row containing -Infinity", () => {
    const out = new Float32Array(n), outR = new Float32Array(n);
    ops.softmaxForward(xs, out, 1, n);
    ref.softmaxForward(xs, outR, 1, n);
    assert.equal(out[0], 0, "softmax(-Infinity) is exactly 0");
    assertClose(out, outR, { atol: 1e-9, rtol: 1e-5 }, "softmax");
  });
});
