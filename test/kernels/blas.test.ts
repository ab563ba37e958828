/** gemm / gemmBatched / syrk: native vs the naive reference on random inputs. */
import { describe, it } from "node:test";

import * as ops from "../../src/kernels/ops.js";
import * as ref from "../../src/kernels/reference.js";
import { assertClose, makeRng, randn, randn64 } from "./_helpers.js";

// float32 sums of k products of N(0,1) numbers: error ~ k * 2^-24 * |terms|; 1e-4 * k-ish bound
const F32_TOL = { atol: 2e-4, rtol: 1e-4 };
const F64_TOL = { atol: 1e-11, rtol: 1e-11 };

describe("gemm", () => {
  const rng = makeRng(1);
  for (const [m, n, k] of [[1, 1, 1], [3, 5, 7], [17, 9, 33], [64, 48, 80], [5, 0, 3], [0, 4, 2]] as const) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        it(`m=${m} n=${n} k=${k} transA=${transA} transB=${transB}`, () => {
          const a = randn(rng, m * k), b = randn(rng, k * n), c0 = randn(rng, m * n);
          const cN = c0.slice(), cR = c0.slice();
          const o = { m, n, k, transA, transB, alpha: 0.7, beta: -1.3 };
          ops.gemm(a, b, cN, o);
          ref.gemm(a, b, cR, o);
          assertClose(cN, cR, F32_TOL, "c");
        });
      }
    }
  }

  it("k = 0 scales C by beta, beta = 0 ignores NaN in C", () => {
    const c = Float32Array.from([1, 2, 3, 4]);
    ops.gemm(new Float32Array(0), new Float32Array(0), c, { m: 2, n: 2, k: 0, beta: 2 });
    assertClose(c, [2, 4, 6, 8], { atol: 0 }, "c");
    const c2 = Float32Array.from([NaN, NaN, NaN, NaN]);
    ops.gemm(Float32Array.from([1, 2]), Float32Array.from([3, 4]), c2, { m: 2, n: 2, k: 1 });
    assertClose(c2, [3, 4, 6, 8], { atol: 0 }, "c (beta = 0)");
  });

  it("leading dimensions and subarray views (byteOffset honoured)", () => {
    // A is the (6,4) top-left block of a (6,10) buffer starting at element 3 of a bigger array
    const m = 6, n = 5, k = 4, lda = 10, ldb = 7, ldc = 9;
    const bigA = randn(rng, 3 + m * lda), bigB = randn(rng, 11 + k * ldb), bigC = randn(rng, 2 + m * ldc);
    const a = bigA.subarray(3), b = bigB.subarray(11), c = bigC.subarray(2);
    const cR = c.slice();
    ops.gemm(a, b, c, { m, n, k, lda, ldb, ldc, beta: 0.5 });
    ref.gemm(a, b, cR, { m, n, k, lda, ldb, ldc, beta: 0.5 });
    assertClose(c, cR, F32_TOL, "c (strided)");
    // elements between rows of C (columns n..ldc-1) are untouched
    const before = bigC.slice();
    ops.gemm(a, b, c, { m, n, k, lda, ldb, ldc, beta: 0.5 });
    for (let r = 0; r < m; r++) for (let j = n; j < ldc && r * ldc + j < c.length; j++) {
      if (c[r * ldc + j] !== before[2 + r * ldc + j]) throw new Error(`gemm wrote outside C at row ${r} col ${j}`);
    }
  });

  it("Float64Array operands", () => {
    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const m = 13, n = 11, k = 17;
      const a = randn64(rng, m * k), b = randn64(rng, k * n), c = randn64(rng, m * n), cR = c.slice();
      ops.gemm(a, b, c, { m, n, k, transA, transB, alpha: 2, beta: 1 });
      ref.gemm(a, b, cR, { m, n, k, transA, transB, alpha: 2, beta: 1 });
      assertClose(c, cR, F64_TOL, `c f64 transA=${transA} transB=${transB}`);
    }
  });
});

describe("gemmBatched", () => {
  const rng = makeRng(2);
  it("batch 4 with padded strides, transB (attention-like)", () => {
    const batch = 4, m = 7, n = 6, k = 5;
    const o = { m, n, k, transB: true, batch, strideA: m * k + 3, strideB: n * k + 1, strideC: m * n + 2, alpha: 0.25 };
    const a = randn(rng, batch * o.strideA), b = randn(rng, batch * o.strideB), c = randn(rng, batch * o.strideC);
    const cR = c.slice();
    ops.gemmBatched(a, b, c, o);
    ref.gemmBatched(a, b, cR, o);
    assertClose(c, cR, F32_TOL, "c");
  });
  it("stride 0 broadcasts one B over the batch", () => {
    const batch = 3, m = 4, n = 3, k = 2;
    const o = { m, n, k, batch, strideA: m * k, strideB: 0, strideC: m * n };
    const a = randn(rng, batch * m * k), b = randn(rng, k * n), c = new Float32Array(batch * m * n), cR = c.slice();
    ops.gemmBatched(a, b, c, o);
    ref.gemmBatched(a, b, cR, o);
    assertClose(c, cR, F32_TOL, "c");
  });
});

describe("syrk", () => {
  const rng = makeRng(3);
  for (const trans of [false, true]) {
    for (const [n, k] of [[1, 1], [5, 3], [33, 70], [4, 0]] as const) {
      it(`n=${n} k=${k} trans=${trans}: both triangles filled`, () => {
        const a = randn(rng, n * k);
        const s = randn(rng, n * n);
        const c0 = new Float32Array(n * n); // symmetric start so that beta*C is symmetric
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) c0[i * n + j] = s[i * n + j]! + s[j * n + i]!;
        const c = c0.slice(), cR = c0.slice();
        ops.syrk(a, c, { n, k, trans, alpha: 1.5, beta: 0.5 });
        ref.syrk(a, cR, { n, k, trans, alpha: 1.5, beta: 0.5 });
        assertClose(c, cR, F32_TOL, "c");
      });
    }
  }
  it("Float64Array", () => {
    const n = 9, k = 14;
    const a = randn64(rng, n * k), c = new Float64Array(n * n), cR = c.slice();
    ops.syrk(a, c, { n, k, trans: true });
    ref.syrk(a, cR, { n, k, trans: true });
    assertClose(c, cR, F64_TOL, "c f64");
  });
});
