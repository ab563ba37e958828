/** gemm / gemmBatched / syrk: native vs the naive reference on random inputs. */
import { describe, it } from "node:test";

import * as ops from "../../src/kernels/ops.js";
import * as ref from "../../src/kernels/reference.js";
import { assertBitIdentical, assertClose, makeRng, randn, randn64 } from "./_helpers.js";

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

// The skinny split (native/blas.cc): with t ≥ 2 BLAS threads a product of ≤ 64 rows against a wide
// op(B) runs as t single-threaded calls on column slabs of C. Every column of C is the same sum
// over k, so the split equals one BLAS call up to the kernels' own rounding (a float32 bound on Σ|terms|).
describe("gemm skinny split (column slabs on t threads)", () => {
  const rng = makeRng(7);
  const initial = ops.getThreads();
  // |split − one call| ≤ 4·k·2⁻²⁴·Σ_k |a·b| elementwise (both are float32 sums of the same k products)
  function assertSplitClose(split: Float32Array, one: Float32Array, a: Float32Array, b: Float32Array, m: number, n: number, k: number, transA: boolean, transB: boolean, label: string): void {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += Math.abs((transA ? a[p * m + i]! : a[i * k + p]!) * (transB ? b[j * k + p]! : b[p * n + j]!));
        const tol = 4 * k * 2 ** -24 * s + 1e-30;
        const d = Math.abs(split[i * n + j]! - one[i * n + j]!);
        if (!(d <= tol)) throw new Error(`${label}: C[${i},${j}] split ${split[i * n + j]} vs one call ${one[i * n + j]} (|Δ| ${d} > ${tol})`);
      }
    }
  }
  for (const threads of [2, 3]) {
    for (const [m, n, k] of [[1, 3000, 700], [35, 2341, 768], [64, 200, 300], [17, 130, 1000]] as const) {
      for (const [transA, transB] of [[false, false], [false, true], [true, false]] as const) {
        it(`threads=${threads} m=${m} n=${n} k=${k} transA=${transA} transB=${transB}: equals one BLAS call and the reference`, () => {
          ops.setThreads(threads);
          try {
            const a = randn(rng, m * k), b = randn(rng, k * n), c0 = randn(rng, m * n);
            const o = { m, n, k, transA, transB, alpha: 0.7, beta: -1.3 };
            const cS = c0.slice(), cO = c0.slice(), cR = c0.slice(), cS2 = c0.slice();
            ops.gemm(a, b, cS, o);
            ops.gemm(a, b, cO, { ...o, split: false });
            ref.gemm(a, b, cR, o);
            // one call with alpha/beta: compare the alpha·AB parts through the bound, the beta·C part is exact scaling
            assertSplitClose(cS.map((v, i) => (v - -1.3 * c0[i]!) / 0.7), cO.map((v, i) => (v - -1.3 * c0[i]!) / 0.7), a, b, m, n, k, transA, transB, "split vs one call");
            assertClose(cS, cR, { atol: 2e-3, rtol: 1e-4 }, "split vs reference");
            ops.gemm(a, b, cS2, o); // deterministic for a fixed thread count
            assertBitIdentical(cS, cS2, "split run twice");
          } finally {
            ops.setThreads(initial);
          }
        });
      }
    }
  }

  it("1 thread: one BLAS call (split allowed or not gives the same bits); rows > 64 and C with ldc > n are handled", () => {
    const m = 35, n = 1000, k = 512;
    const a = randn(rng, m * k), b = randn(rng, k * n);
    ops.setThreads(1);
    try {
      const c1 = new Float32Array(m * n), c2 = new Float32Array(m * n);
      ops.gemm(a, b, c1, { m, n, k });
      ops.gemm(a, b, c2, { m, n, k, split: false });
      assertBitIdentical(c1, c2, "1 thread");
    } finally {
      ops.setThreads(initial);
    }
    ops.setThreads(2);
    try {
      // C as the left n columns of a (m, n + 5) buffer: the slabs write only their own columns
      const ldc = n + 5;
      const big = randn(rng, m * ldc), before = big.slice(), cR = big.slice();
      ops.gemm(a, b, big, { m, n, k, ldc, beta: 1 });
      ref.gemm(a, b, cR, { m, n, k, ldc, beta: 1 });
      assertClose(big, cR, { atol: 2e-3, rtol: 1e-4 }, "ldc > n");
      for (let r = 0; r < m; r++) for (let j = n; j < ldc; j++) if (big[r * ldc + j] !== before[r * ldc + j]) throw new Error(`split gemm wrote outside C at (${r}, ${j})`);
      // batched: every matrix of the batch split alike
      const batch = 3;
      const A = randn(rng, batch * m * k), C = new Float32Array(batch * m * n), CR = new Float32Array(batch * m * n);
      ops.gemmBatched(A, b, C, { m, n, k, batch, strideA: m * k, strideB: 0, strideC: m * n });
      ref.gemmBatched(A, b, CR, { m, n, k, batch, strideA: m * k, strideB: 0, strideC: m * n });
      assertClose(C, CR, { atol: 2e-3, rtol: 1e-4 }, "batched");
      // 65 rows: not split, one call
      const m2 = 65, a2 = randn(rng, m2 * k), d1 = new Float32Array(m2 * n), d2 = new Float32Array(m2 * n);
      ops.gemm(a2, b, d1, { m: m2, n, k });
      ops.gemm(a2, b, d2, { m: m2, n, k, split: false });
      assertBitIdentical(d1, d2, "65 rows");
    } finally {
      ops.setThreads(initial);
    }
  });
});
