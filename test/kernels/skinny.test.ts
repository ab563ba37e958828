/**
 * The skinny kernels (native/skinny.cc) against BLAS gemm on the same inputs: every row-block size
 * (1..8 and a second block), K with and without a remainder of 8, N across a tile boundary, and the
 * accumulating backward. Different summation orders (and fused multiply-adds): equal up to float32
 * rounding, bounded relative to the magnitude of the terms summed (Σ|x·w|), not to the result.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as ops from "../../src/kernels/ops.js";
import { linearBackward, linearForward, SKINNY_MIN_ELEMENTS } from "../../src/model/linear.js";
import { Rng } from "../../src/util/rng.js";

function randn(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

// |a − b| ≤ tol · scale elementwise, scale = Σ|terms| for that element
function assertClose(a: Float32Array, b: Float32Array, scale: Float64Array, what: string): void {
  for (let i = 0; i < a.length; i++) {
    const tol = 1e-5 * scale[i]! + 1e-30;
    assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `${what}: element ${i}: ${a[i]} vs ${b[i]} (scale ${scale[i]})`);
  }
}

test("skinnyGemmNT equals gemm(x, W, transB) up to rounding", () => {
  const rng = new Rng(1);
  for (const [P, N, K] of [[1, 70, 16], [3, 33, 13], [7, 100, 768 / 8], [8, 65, 24], [9, 40, 31], [16, 37, 40], [21, 5, 9]] as const) {
    const x = randn(P * K, rng);
    const w = randn(N * K, rng);
    const y1 = new Float32Array(P * N);
    const y2 = new Float32Array(P * N);
    ops.skinnyGemmNT(x, w, y1, P, N, K);
    ops.gemm(x, w, y2, { m: P, n: N, k: K, transB: true });
    const scale = new Float64Array(P * N);
    for (let p = 0; p < P; p++) for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) scale[p * N + n]! += Math.abs(x[p * K + k]! * w[n * K + k]!);
    assertClose(y1, y2, scale, `NT P=${P} N=${N} K=${K}`);
  }
});

test("skinnyGemmNN equals gemm(dy, W) up to rounding, overwriting or accumulating", () => {
  const rng = new Rng(2);
  for (const [P, N, K] of [[1, 70, 16], [5, 33, 13], [8, 100, 96], [12, 65, 27], [20, 40, 8]] as const) {
    const dy = randn(P * N, rng);
    const w = randn(N * K, rng);
    const base = randn(P * K, rng);
    for (const accumulate of [false, true]) {
      const d1 = base.slice();
      const d2 = base.slice();
      ops.skinnyGemmNN(dy, w, d1, P, N, K, accumulate);
      ops.gemm(dy, w, d2, { m: P, n: K, k: N, beta: accumulate ? 1 : 0 });
      const scale = new Float64Array(P * K);
      for (let p = 0; p < P; p++) for (let k = 0; k < K; k++) {
        scale[p * K + k] = accumulate ? Math.abs(base[p * K + k]!) : 0;
        for (let n = 0; n < N; n++) scale[p * K + k]! += Math.abs(dy[p * N + n]! * w[n * K + k]!);
      }
      assertClose(d1, d2, scale, `NN P=${P} N=${N} K=${K} accumulate=${accumulate}`);
    }
  }
});

test("linearForward / linearBackward take the skinny path for a few rows of a large out_in weight, with BLAS's results", () => {
  const rng = new Rng(3);
  const inF = 64;
  const outF = SKINNY_MIN_ELEMENTS / inF + 3;
  const W = randn(outF * inF, rng).map((v) => v * 0.05);
  const lin = { W, b: null, inF, outF, layout: "out_in" as const };
  const rows = 6;
  const x = randn(rows * inF, rng);
  const y = new Float32Array(rows * outF);
  linearForward(lin, x, y, rows);
  const ref = new Float32Array(rows * outF);
  ops.gemm(x, W, ref, { m: rows, n: outF, k: inF, transB: true });
  let maxErr = 0;
  for (let i = 0; i < y.length; i++) maxErr = Math.max(maxErr, Math.abs(y[i]! - ref[i]!));
  assert.ok(maxErr < 1e-4, `forward: max |Δ| ${maxErr}`);
  const dy = randn(rows * outF, rng);
  const dx = new Float32Array(rows * inF);
  linearBackward(lin, x, dy, dx, null, null, rows);
  const dref = new Float32Array(rows * inF);
  ops.gemm(dy, W, dref, { m: rows, n: inF, k: outF });
  let rel = 0;
  let den = 0;
  for (let i = 0; i < dx.length; i++) {
    rel += (dx[i]! - dref[i]!) ** 2;
    den += dref[i]! ** 2;
  }
  assert.ok(Math.sqrt(rel / den) < 1e-5, `backward: relative error ${Math.sqrt(rel / den)}`);
});

test("skinny kernels name the argument at fault", () => {
  assert.throws(() => ops.skinnyGemmNT(new Float32Array(3), new Float32Array(8), new Float32Array(8), 2, 4, 2), /x/);
  const shared = new Float32Array(16);
  assert.throws(() => ops.skinnyGemmNN(shared.subarray(0, 8), new Float32Array(8), shared.subarray(4, 12), 2, 4, 2), /overlap|dx/);
});
