/**
 * Determinism: for a fixed thread count every kernel is bit-identical run to run. The fused
 * kernels partition independent rows / columns / (batch, head) pairs, so they are also
 * bit-identical between 1 and 2 threads.
 */
import { after, describe, it } from "node:test";

import * as ops from "../../src/kernels/ops.js";
import { assertBitIdentical, makeRng, randn } from "./_helpers.js";

type Run = () => Float32Array[];

function fusedRuns(): Record<string, Run> {
  const rng = makeRng(50);
  const rows = 96, C = 320; // big enough to cross the parallel threshold
  const x = randn(rng, rows * C), w = randn(rng, C), b = randn(rng, C), dout = randn(rng, rows * C);
  const shape = { B: 2, T: 64, Tk: 64, nHeads: 4, nKvHeads: 2, headSize: 32, keyMask: new Uint8Array(128).fill(1) };
  shape.keyMask[70] = 0;
  const q = randn(rng, 2 * 64 * 4 * 32), k = randn(rng, 2 * 64 * 2 * 32), v = randn(rng, k.length), gout = randn(rng, q.length);
  const h = 16, maxPos = 64;
  const cos = Float32Array.from({ length: maxPos * h }, (_, i) => Math.cos(i * 0.01));
  const sin = Float32Array.from({ length: maxPos * h }, (_, i) => Math.sin(i * 0.01));
  const positions = Int32Array.from({ length: rows }, (_, i) => i % maxPos);
  return {
    layerNorm: () => {
      const out = new Float32Array(rows * C), mean = new Float32Array(rows), rstd = new Float32Array(rows);
      ops.layerNormForward(x, w, b, out, mean, rstd, rows, C, 1e-5);
      const dx = new Float32Array(rows * C), dw = new Float32Array(C), db = new Float32Array(C);
      ops.layerNormBackward(dout, x, w, mean, rstd, dx, dw, db, rows, C);
      return [out, mean, rstd, dx, dw, db];
    },
    rmsNorm: () => {
      const out = new Float32Array(rows * C), rstd = new Float32Array(rows);
      ops.rmsNormForward(x, w, out, rstd, rows, C, 1e-6);
      const dx = new Float32Array(rows * C), dw = new Float32Array(C);
      ops.rmsNormBackward(dout, x, w, rstd, dx, dw, rows, C);
      return [out, rstd, dx, dw];
    },
    pointwise: () => {
      const n = rows * C, g = new Float32Array(n), dg = new Float32Array(n), s = new Float32Array(n), ds = new Float32Array(n), du = new Float32Array(n);
      ops.geluForward(x, g, n);
      ops.geluBackward(x, dout, dg, n);
      ops.swigluForward(x, dout, s, n);
      ops.swigluBackward(x, dout, g, ds, du, n);
      const sm = new Float32Array(n), lsm = new Float32Array(n);
      ops.softmaxForward(x, sm, rows, C);
      ops.logSoftmaxForward(x, lsm, rows, C);
      const r = x.slice();
      ops.ropeForward(r, cos, sin, positions, rows, C / 32, 32);
      return [g, dg, s, ds, du, sm, lsm, r];
    },
    attention: () => {
      const out = new Float32Array(q.length), probs = new Float32Array(2 * 4 * 64 * 64);
      ops.attentionForward(q, k, v, out, probs, shape);
      const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
      ops.attentionBackward(gout, q, k, v, probs, dq, dk, dv, shape);
      return [out, probs, dq, dk, dv];
    },
  };
}

function blasRuns(): Record<string, Run> {
  const rng = makeRng(51);
  const m = 300, n = 257, kk = 190;
  const a = randn(rng, m * kk), b = randn(rng, kk * n);
  const s = new Float32Array(64 * 64);
  ops.syrk(randn(rng, 64 * 80), s, { n: 64, k: 80 });
  for (let i = 0; i < 64; i++) s[i * 64 + i]! += 100;
  return {
    gemm: () => {
      const c = new Float32Array(m * n);
      ops.gemm(a, b, c, { m, n, k: kk });
      return [c];
    },
    lapack: () => {
      const { values, vectors } = ops.eigh(s, 64);
      const l = ops.cholesky(s, 64);
      return [values, vectors, l, ops.solve(s, a.subarray(0, 64 * 3), 64, 3)];
    },
  };
}

describe("determinism", () => {
  const initial = ops.getThreads();
  const initialKernel = ops.getKernelThreads();
  const both = (n: number): void => {
    ops.setThreads(n);
    ops.setKernelThreads(n);
  };
  after(() => {
    ops.setThreads(initial);
    ops.setKernelThreads(initialKernel);
  });

  for (const [name, run] of Object.entries({ ...fusedRuns(), ...blasRuns() })) {
    it(`${name}: bit-identical run to run at 1 and at 2 threads`, () => {
      for (const threads of [1, 2]) {
        both(threads);
        const r1 = run(), r2 = run();
        r1.forEach((x, i) => assertBitIdentical(x, r2[i]!, `${name} output ${i} (threads=${threads})`));
      }
    });
  }
  for (const [name, run] of Object.entries(fusedRuns())) {
    it(`${name}: bit-identical between 1 and 2 threads`, () => {
      both(1);
      const r1 = run();
      both(2);
      const r2 = run();
      r1.forEach((x, i) => assertBitIdentical(x, r2[i]!, `${name} output ${i}`));
    });
  }
  it("setThreads / getThreads round trip", () => {
    ops.setThreads(2);
    if (ops.getThreads() !== 2) throw new Error(`getThreads() = ${ops.getThreads()} after setThreads(2)`);
    ops.setThreads(1);
    if (ops.getThreads() !== 1) throw new Error(`getThreads() = ${ops.getThreads()} after setThreads(1)`);
    ops.setKernelThreads(2);
    if (ops.getKernelThreads() !== 2) throw new Error(`getKernelThreads() = ${ops.getKernelThreads()} after setKernelThreads(2)`);
    ops.setKernelThreads(initialKernel);
  });
});
