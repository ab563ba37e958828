/** layerNorm / rmsNorm forward + backward: native vs reference, and backward vs finite differences. */
import { describe, it } from "node:test";

import * as ops from "../../src/kernels/ops.js";
import * as ref from "../../src/kernels/reference.js";
import { assertClose, dot, finiteDiff, makeRng, pick, randn, sampleIndices } from "./_helpers.js";

// outputs are O(1): float32 rounding of a handful of ops (mean/var are accumulated in double)
const FWD_TOL = { atol: 2e-5, rtol: 2e-5 };
// weight gradients sum `rows` products: allow rows * 2^-24-ish growth
const BWD_TOL = { atol: 1e-4, rtol: 1e-4 };
// float32 backward vs float64 central differences (h = 1e-5)
const FD_TOL = { atol: 3e-4, rtol: 2e-3 };

const SHAPES = [[1, 1], [3, 17], [5, 130], [64, 768]] as const;

describe("layerNorm", () => {
  const rng = makeRng(20);
  for (const [rows, C] of SHAPES) {
    it(`forward + backward vs reference, rows=${rows} C=${C}`, () => {
      const x = randn(rng, rows * C);
      for (let i = 0; i < x.length; i++) x[i]! += 3; // a non-zero mean
      const w = randn(rng, C), b = randn(rng, C), eps = 1e-5;
      const out = new Float32Array(rows * C), mean = new Float32Array(rows), rstd = new Float32Array(rows);
      const outR = out.slice(), meanR = mean.slice(), rstdR = rstd.slice();
      ops.layerNormForward(x, w, b, out, mean, rstd, rows, C, eps);
      ref.layerNormForward(x, w, b, outR, meanR, rstdR, rows, C, eps);
      assertClose(out, outR, FWD_TOL, "out");
      assertClose(mean, meanR, FWD_TOL, "mean");
      assertClose(rstd, rstdR, FWD_TOL, "rstd");

      const dout = randn(rng, rows * C);
      const dx = new Float32Array(rows * C).fill(NaN); // overwritten
      const dw = randn(rng, C), db = randn(rng, C); // accumulated into
      const dxR = new Float32Array(rows * C), dwR = dw.slice(), dbR = db.slice();
      ops.layerNormBackward(dout, x, w, mean, rstd, dx, dw, db, rows, C);
      ref.layerNormBackward(dout, x, w, mean, rstd, dxR, dwR, dbR, rows, C);
      assertClose(dx, dxR, BWD_TOL, "dx");
      assertClose(dw, dwR, BWD_TOL, "dweight (+=)");
      assertClose(db, dbR, BWD_TOL, "dbias (+=)");
      const dx2 = new Float32Array(rows * C);
      ops.layerNormBackward(dout, x, w, mean, rstd, dx2, null, null, rows, C);
      assertClose(dx2, dxR, BWD_TOL, "dx with null weight grads");
    });
  }

  it("backward vs central finite differences of the float64 forward", () => {
    const rows = 4, C = 24, eps = 1e-5;
    const x = randn(rng, rows * C), w = randn(rng, C), b = randn(rng, C), g = randn(rng, rows * C);
    const out = new Float32Array(rows * C), mean = new Float32Array(rows), rstd = new Float32Array(rows);
    ops.layerNormForward(x, w, b, out, mean, rstd, rows, C, eps);
    const dx = new Float32Array(rows * C), dw = new Float32Array(C), db = new Float32Array(C);
    ops.layerNormBackward(g, x, w, mean, rstd, dx, dw, db, rows, C);
    const x64 = Float64Array.from(x), w64 = Float64Array.from(w), b64 = Float64Array.from(b);
    const loss = (): number => {
      const o = new Float64Array(rows * C);
      ref.layerNormForward(x64, w64, b64, o, new Float64Array(rows), new Float64Array(rows), rows, C, eps);
      return dot(o, g); // L = Σ g ⊙ out, so dL/dout = g
    };
    const ix = sampleIndices(rng, rows * C, 40);
    assertClose(pick(dx, ix), finiteDiff(x64, ix, loss), FD_TOL, "dx vs FD");
    const iw = sampleIndices(rng, C, C);
    assertClose(dw, finiteDiff(w64, iw, loss), FD_TOL, "dweight vs FD");
    assertClose(db, finiteDiff(b64, iw, loss), FD_TOL, "dbias vs FD");
  });
});

describe("rmsNorm", () => {
  const rng = makeRng(21);
  for (const [rows, C] of SHAPES) {
    it(`forward + backward vs reference, rows=${rows} C=${C}`, () => {
      const x = randn(rng, rows * C), w = randn(rng, C), eps = 1e-6;
      const out = new Float32Array(rows * C), rstd = new Float32Array(rows);
      const outR = out.slice(), rstdR = rstd.slice();
      ops.rmsNormForward(x, w, out, rstd, rows, C, eps);
      ref.rmsNormForward(x, w, outR, rstdR, rows, C, eps);
      assertClose(out, outR, FWD_TOL, "out");
      assertClose(rstd, rstdR, FWD_TOL, "rstd");

      const dout = randn(rng, rows * C);
      const dx = new Float32Array(rows * C).fill(NaN), dw = randn(rng, C);
      const dxR = new Float32Array(rows * C), dwR = dw.slice();
      ops.rmsNormBackward(dout, x, w, rstd, dx, dw, rows, C);
      ref.rmsNormBackward(dout, x, w, rstd, dxR, dwR, rows, C);
      assertClose(dx, dxR, BWD_TOL, "dx");
      assertClose(dw, dwR, BWD_TOL, "dweight (+=)");
    });
  }

  it("backward vs central finite differences of the float64 forward", () => {
    const rows = 3, C = 20, eps = 1e-6;
    const x = randn(rng, rows * C), w = randn(rng, C), g = randn(rng, rows * C);
    const out = new Float32Array(rows * C), rstd = new Float32Array(rows);
    ops.rmsNormForward(x, w, out, rstd, rows, C, eps);
    const dx = new Float32Array(rows * C), dw = new Float32Array(C);
    ops.rmsNormBackward(g, x, w, rstd, dx, dw, rows, C);
    const x64 = Float64Array.from(x), w64 = Float64Array.from(w);
    const loss = (): number => {
      const o = new Float64Array(rows * C);
      ref.rmsNormForward(x64, w64, o, new Float64Array(rows), rows, C, eps);
      return dot(o, g);
    };
    const ix = sampleIndices(rng, rows * C, rows * C);
    assertClose(pick(dx, ix), finiteDiff(x64, ix, loss), FD_TOL, "dx vs FD");
    assertClose(dw, finiteDiff(w64, sampleIndices(rng, C, C), loss), FD_TOL, "dweight vs FD");
  });
});
