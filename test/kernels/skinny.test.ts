/**
 * The skinny kernels (native/skinny.cc, native/skinny_tiles.inc) against a float64 product of the
 * same float32 inputs, on every instruction set this CPU can run (AVX-512F, AVX2+FMA, portable):
 * every tile remainder (rows 1..13 and beyond a block, columns across a panel and a tile of B's rows,
 * a reduction with a lane remainder and across a chunk), overwriting and accumulating.
 *
 * The tolerance is the worst-case bound of float32 summation in any order, with or without fused
 * multiply-adds: |fl(c + Σ_r a_r b_r) − (c + Σ_r a_r b_r)| ≤ γ_{R+1} (|c| + Σ_r |a_r b_r|), with
 * γ_n = n·u / (1 − n·u), u = 2⁻²⁴. It holds for every kernel family and thread count, so the test
 * does not depend on rounding luck; a missing or doubled term is far outside it at these sizes.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as ops from "../../src/kernels/ops.js";
import { linearBackward, linearForward, SKINNY_MIN_ELEMENTS, SKINNY_NN_MIN_ELEMENTS } from "../../src/model/linear.js";
import { Rng } from "../../src/util/rng.js";

function randn(n: number, rng: Rng): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

const U = 2 ** -24;
const gamma = (n: number): number => (n * U) / (1 - n * U);

/**
 * C (M, cols) = base + A (M, R) · op(B) in float64, and the bound's scale |base| + Σ|a·b|.
 * nt: op(B) = Bᵀ with B (cols, R); else B (R, cols).
 */
function reference(a: Float32Array, b: Float32Array, base: Float32Array | null, M: number, R: number, cols: number, nt: boolean): { c: Float64Array; scale: Float64Array } {
  const c = new Float64Array(M * cols);
  const scale = new Float64Array(M * cols);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < cols; j++) {
      let s = base ? base[i * cols + j]! : 0;
      let t = Math.abs(s);
      for (let r = 0; r < R; r++) {
        const p = a[i * R + r]! * (nt ? b[j * R + r]! : b[r * cols + j]!);
        s += p;
        t += Math.abs(p);
      }
      c[i * cols + j] = s;
      scale[i * cols + j] = t;
    }
  return { c, scale };
}

function assertWithinBound(got: Float32Array, ref: { c: Float64Array; scale: Float64Array }, R: number, what: string): void {
  const g = gamma(R + 1);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i]! - ref.c[i]!);
    assert.ok(err <= g * ref.scale[i]! + 1e-37, `${what}: element ${i}: ${got[i]} vs ${ref.c[i]} (|Δ| ${err}, bound ${g * ref.scale[i]!})`);
  }
}

// (M, R, cols): rows 1..13 cover every NN block (12 / 6 rows) and NT block (8 / 2 rows) remainder;
// cols cover a partial panel (32 / 16 columns) and a partial group of B's rows (3 / 4);
// R covers a lane remainder (16 / 8) and more than one NN chunk (128 r's).
const SHAPES: [number, number, number][] = [
  [1, 17, 5], [2, 16, 32], [3, 33, 7], [4, 40, 33], [5, 7, 64], [6, 129, 31], [7, 64, 70], [8, 31, 48],
  [9, 24, 97], [10, 5, 3], [11, 130, 17], [12, 48, 65], [13, 23, 100], [24, 96, 40], [25, 257, 35], [42, 70, 66],
];

for (const isa of ops.skinnyIsas()) {
  test(`skinnyGemmNT (${isa}): y (+)= x · Wᵀ within the float32 summation bound, overwriting and accumulating`, () => {
    const rng = new Rng(11);
    for (const [P, K, N] of SHAPES) {
      const x = randn(P * K, rng);
      const w = randn(N * K, rng);
      const base = randn(P * N, rng);
      for (const accumulate of [false, true]) {
        const y = base.slice();
        ops.skinnyGemmNT(x, w, y, P, N, K, { accumulate, isa });
        assertWithinBound(y, reference(x, w, accumulate ? base : null, P, K, N, true), K, `NT ${isa} P=${P} N=${N} K=${K} accumulate=${accumulate}`);
      }
    }
  });

  test(`skinnyGemmNN (${isa}): dx (+)= dy · W within the float32 summation bound, overwriting and accumulating`, () => {
    const rng = new Rng(12);
    for (const [P, N, K] of SHAPES) {
      const dy = randn(P * N, rng);
      const w = randn(N * K, rng);
      const base = randn(P * K, rng);
      for (const accumulate of [false, true]) {
        const dx = base.slice();
        ops.skinnyGemmNN(dy, w, dx, P, N, K, { accumulate, isa });
        assertWithinBound(dx, reference(dy, w, accumulate ? base : null, P, N, K, false), N, `NN ${isa} P=${P} N=${N} K=${K} accumulate=${accumulate}`);
      }
    }
  });

  test(`skinny kernels (${isa}): a reduction longer than a chunk (NT 2 048, NN 128), and an empty reduction`, () => {
    const rng = new Rng(13);
    const [P, R, cols] = [9, 2 * 2048 + 21, 37];
    const a = randn(P * R, rng);
    const wNt = randn(cols * R, rng);
    const base = randn(P * cols, rng);
    const y = base.slice();
    ops.skinnyGemmNT(a, wNt, y, P, cols, R, { accumulate: true, isa });
    assertWithinBound(y, reference(a, wNt, base, P, R, cols, true), R, `NT ${isa} long`);
    const wNn = randn(R * cols, rng);
    const dx = base.slice();
    ops.skinnyGemmNN(a, wNn, dx, P, R, cols, { accumulate: true, isa });
    assertWithinBound(dx, reference(a, wNn, base, P, R, cols, false), R, `NN ${isa} long`);
    // R = 0: overwriting gives zeros, accumulating leaves the output as it was
    const z = base.slice();
    ops.skinnyGemmNT(new Float32Array(0), new Float32Array(0), z, P, cols, 0, { isa });
    assert.ok(z.every((v) => v === 0), "NT with K = 0 overwrites with zeros");
    const keep = base.slice();
    ops.skinnyGemmNN(new Float32Array(0), new Float32Array(0), keep, P, 0, cols, { accumulate: true, isa });
    assert.deepEqual(keep, base, "NN with N = 0, accumulating, leaves dx unchanged");
  });
}

test("skinny kernels: the same inputs and thread count give bit-identical results; 1 and 2 threads agree within the bound", () => {
  const rng = new Rng(14);
  const [P, N, K] = [37, 300, 768];
  const x = randn(P * K, rng);
  const w = randn(N * K, rng);
  const before = ops.getThreads();
  try {
    const runs: Float32Array[] = [];
    for (const t of [2, 2, 1]) {
      ops.setThreads(t);
      const y = new Float32Array(P * N);
      ops.skinnyGemmNT(x, w, y, P, N, K);
      const dx = new Float32Array(P * K);
      ops.skinnyGemmNN(y, w, dx, P, N, K);
      runs.push(y, dx);
    }
    assert.deepEqual(runs[0], runs[2], "NT twice at 2 threads");
    assert.deepEqual(runs[1], runs[3], "NN twice at 2 threads");
    assertWithinBound(runs[4]!, reference(x, w, null, P, K, N, true), K, "NT at 1 thread");
    assertWithinBound(runs[0]!, reference(x, w, null, P, K, N, true), K, "NT at 2 threads");
    assertWithinBound(runs[5]!, reference(runs[4]!, w, null, P, N, K, false), N, "NN at 1 thread");
    assertWithinBound(runs[1]!, reference(runs[0]!, w, null, P, N, K, false), N, "NN at 2 threads");
  } finally {
    ops.setThreads(before);
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
  assertWithinBound(y, reference(x, W, null, rows, inF, outF, true), inF, "out_in forward (skinny NT)");
  const dy = randn(rows * outF, rng);
  const dx = new Float32Array(rows * inF);
  linearBackward(lin, x, dy, dx, null, null, rows);
  assertWithinBound(dx, reference(dy, W, null, rows, outF, inF, false), outF, "out_in backward (skinny NN)");
});

test("linearForward of a large in_out weight (GPT-2's Conv1D) with a bias runs skinnyGemmNN for ≤ 64 rows and BLAS above, both within the bound", () => {
  const rng = new Rng(4);
  const inF = 256;
  const outF = SKINNY_NN_MIN_ELEMENTS / inF + 5;
  const W = randn(inF * outF, rng).map((v) => v * 0.05);
  const b = randn(outF, rng);
  const lin = { W, b, inF, outF, layout: "in_out" as const };
  for (const rows of [35, 64, 65]) {
    const x = randn(rows * inF, rng);
    const y = new Float32Array(rows * outF);
    linearForward(lin, x, y, rows);
    const base = new Float32Array(rows * outF);
    for (let r = 0; r < rows; r++) base.set(b, r * outF);
    assertWithinBound(y, reference(x, W, base, rows, inF, outF, false), inF, `in_out forward, ${rows} rows`);
    // and accumulating into an existing output (the bias is not added again)
    const y2 = y.slice();
    linearForward({ ...lin, b: null }, x, y2, rows, true);
    assertWithinBound(y2, reference(x, W, y, rows, inF, outF, false), inF, `in_out forward accumulate, ${rows} rows`);
  }
  // out_in backward of a weight of that size: dx = dy · W through skinnyGemmNN, accumulating
  const lo = { W, b: null, inF: outF, outF: inF, layout: "out_in" as const }; // W read as (out = inF, in = outF)
  const rows = 20;
  const dy = randn(rows * inF, rng);
  const dx0 = randn(rows * outF, rng);
  const dx = dx0.slice();
  linearBackward(lo, new Float32Array(rows * outF), dy, dx, null, null, rows, true);
  assertWithinBound(dx, reference(dy, W, dx0, rows, inF, outF, false), inF, "out_in backward accumulate");
});

test("skinny kernels name the argument at fault", () => {
  assert.throws(() => ops.skinnyGemmNT(new Float32Array(3), new Float32Array(8), new Float32Array(8), 2, 4, 2), /x/);
  const shared = new Float32Array(16);
  assert.throws(() => ops.skinnyGemmNN(shared.subarray(0, 8), new Float32Array(8), shared.subarray(4, 12), 2, 4, 2), /overlap|dx/);
  assert.throws(() => ops.skinnyGemmNT(new Float32Array(4), new Float32Array(8), new Float32Array(8), 2, 4, 2, { isa: "sse" as ops.SkinnyIsa }), /isa/);
  assert.throws(() => ops.skinnyGemmNN(new Float32Array(8), new Float32Array(8), new Float32Array(4), 2, 4, 2, { accumulate: 1 as unknown as boolean }), /accumulate/);
  assert.ok(ops.skinnyIsas().includes("portable"));
});
