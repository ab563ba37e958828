/** eigh / svd / cholesky / choleskySolve / triangularSolve / solve: native vs reference. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { DeltaEditError } from "../../src/errors.js";
import * as ops from "../../src/kernels/ops.js";
import type { FloatArray } from "../../src/kernels/ops.js";
import * as ref from "../../src/kernels/reference.js";
import { assertBitIdentical, assertClose, makeRng, randn } from "./_helpers.js";

type Kind = "f32" | "f64";
const KINDS: Kind[] = ["f32", "f64"];
// tolerances for O(1)-scaled matrices of size <= 40 (relative to the matrix scale)
const TOL: Record<Kind, { atol: number; rtol: number }> = { f32: { atol: 5e-4, rtol: 5e-4 }, f64: { atol: 1e-9, rtol: 1e-9 } };

function mat(kind: Kind, x: Float32Array): FloatArray {
  return kind === "f32" ? x : Float64Array.from(x);
}

function symmetric(rng: () => number, n: number, kind: Kind): FloatArray {
  const r = randn(rng, n * n);
  const a = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = 0.5 * (r[i * n + j]! + r[j * n + i]!);
  return mat(kind, a);
}

function spd(rng: () => number, n: number, kind: Kind): FloatArray {
  const m = randn(rng, n * n);
  const a = new Float32Array(n * n);
  ref.gemm(m, m, a, { m: n, n, k: n, transB: true });
  for (let i = 0; i < n; i++) a[i * n + i]! += n;
  return mat(kind, a);
}

/** (m,k) @ (k,n) in float64 */
function mul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number, transA = false): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += (transA ? a[p * m + i]! : a[i * k + p]!) * b[p * n + j]!;
    c[i * n + j] = s;
  }
  return c;
}

function identity(n: number): Float64Array {
  const e = new Float64Array(n * n);
  for (let i = 0; i < n; i++) e[i * n + i] = 1;
  return e;
}

describe("eigh", () => {
  const rng = makeRng(10);
  for (const kind of KINDS) {
    for (const n of [1, 5, 40]) {
      it(`${kind} n=${n}: values vs reference, A V = V Λ, Vᵀ V = I, input untouched`, () => {
        const a = symmetric(rng, n, kind), a0 = a.slice();
        const { values, vectors } = ops.eigh(a, n);
        assert.equal(values.constructor, a.constructor, "values has the input's type");
        assertBitIdentical(a, a0, "input a");
        const r = ref.eigh(a, n);
        assertClose(values, r.values, TOL[kind], "values");
        for (let i = 1; i < n; i++) assert.ok(values[i]! >= values[i - 1]!, "values ascending");
        const av = mul(a, vectors, n, n, n);
        const vl = new Float64Array(n * n);
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) vl[i * n + j] = vectors[i * n + j]! * values[j]!;
        assertClose(av, vl, TOL[kind], "A V = V diag(values)");
        assertClose(mul(vectors, vectors, n, n, n, true), identity(n), TOL[kind], "Vᵀ V = I");
        // each column matches the reference eigenvector up to sign (random spectra are simple)
        for (let j = 0; j < n; j++) {
          let d = 0;
          for (let i = 0; i < n; i++) d += vectors[i * n + j]! * r.vectors[i * n + j]!;
          assert.ok(Math.abs(Math.abs(d) - 1) < (kind === "f32" ? 1e-3 : 1e-8), `column ${j}: |<v, v_ref>| = ${Math.abs(d)}`);
        }
      });
    }
  }
});

describe("svd", () => {
  const rng = makeRng(11);
  for (const kind of KINDS) {
    for (const [m, n] of [[7, 4], [4, 7], [12, 12], [30, 9], [1, 5]] as const) {
      it(`${kind} ${m}x${n}: s vs reference, U S Vᵀ = A, orthonormal factors`, () => {
        const a = mat(kind, randn(rng, m * n)), a0 = a.slice();
        const p = Math.min(m, n);
        const { u, s, vt } = ops.svd(a, m, n);
        assertBitIdentical(a, a0, "input a");
        assertClose(s, ref.svd(a, m, n).s, TOL[kind], "s");
        for (let i = 1; i < p; i++) assert.ok(s[i]! <= s[i - 1]!, "s descending");
        const us = new Float64Array(m * p);
        for (let i = 0; i < m; i++) for (let j = 0; j < p; j++) us[i * p + j] = u[i * p + j]! * s[j]!;
        assertClose(mul(us, vt, m, p, n), a, TOL[kind], "U S Vᵀ");
        assertClose(mul(u, u, p, m, p, true), identity(p), TOL[kind], "Uᵀ U = I");
        const vvt = new Float64Array(p * p);
        for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) {
          let d = 0;
          for (let c = 0; c < n; c++) d += vt[i * n + c]! * vt[j * n + c]!;
          vvt[i * p + j] = d;
        }
        assertClose(vvt, identity(p), TOL[kind], "Vᵀ rows orthonormal");
      });
    }
  }
});

describe("cholesky / choleskySolve", () => {
  const rng = makeRng(12);
  for (const kind of KINDS) {
    for (const n of [1, 6, 33]) {
      it(`${kind} n=${n}: L vs reference (upper zero), solve vs reference`, () => {
        const a = spd(rng, n, kind), a0 = a.slice();
        const l = ops.cholesky(a, n);
        assertBitIdentical(a, a0, "input a");
        assertClose(l, ref.cholesky(a, n), TOL[kind], "L");
        for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) assert.equal(l[i * n + j], 0, `L[${i},${j}] upper part`);
        const nrhs = 3;
        const b = mat(kind, randn(rng, n * nrhs)), b0 = b.slice();
        const x = ops.choleskySolve(l, b, n, nrhs);
        assertBitIdentical(b, b0, "input b");
        assertClose(x, ref.choleskySolve(l, b, n, nrhs), TOL[kind], "X");
        assertClose(mul(a, x, n, n, nrhs), b, TOL[kind], "A X = B");
      });
    }
  }

  it("non-PD matrix throws E_NOT_PD naming the leading minor", () => {
    const a = Float32Array.from([4, 0, 0, 0, 0, 2, 0, 0, 0, 0, -1, 0, 0, 0, 0, 3]);
    assert.throws(() => ops.cholesky(a, 4), (e: unknown) => {
      assert.ok(e instanceof DeltaEditError);
      assert.equal(e.code, "E_NOT_PD");
      assert.match(e.message, /cholesky: argument a .*order 3/);
      return true;
    });
    assert.throws(() => ops.cholesky(Float64Array.from([1, 2, 2, 1]), 2), { code: "E_NOT_PD" });
  });
});

describe("triangularSolve", () => {
  const rng = makeRng(13);
  for (const kind of KINDS) {
    for (const lower of [true, false]) for (const transpose of [false, true]) for (const unitDiagonal of [false, true]) {
      it(`${kind} lower=${lower} transpose=${transpose} unit=${unitDiagonal}`, () => {
        const n = 9, nrhs = 4;
        const r = randn(rng, n * n, 0.3);
        const t = new Float32Array(n * n);
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
          if (i === j) t[i * n + j] = 2 + Math.abs(r[i * n + j]!);
          else if ((j < i) === lower) t[i * n + j] = r[i * n + j]!;
        }
        const tk = mat(kind, t), b = mat(kind, randn(rng, n * nrhs));
        const o = { lower, transpose, unitDiagonal };
        assertClose(ops.triangularSolve(tk, b, n, nrhs, o), ref.triangularSolve(tk, b, n, nrhs, o), TOL[kind], "X");
      });
    }
  }
  it("zero diagonal throws E_NATIVE", () => {
    const t = Float32Array.from([1, 0, 5, 0]);
    assert.throws(() => ops.triangularSolve(t, Float32Array.from([1, 1]), 2, 1, { lower: true }), { code: "E_NATIVE" });
  });
});

describe("solve", () => {
  const rng = makeRng(14);
  for (const kind of KINDS) {
    for (const [n, nrhs] of [[1, 1], [8, 3], [30, 1]] as const) {
      it(`${kind} n=${n} nrhs=${nrhs}: vs reference, inputs untouched`, () => {
        const a = mat(kind, randn(rng, n * n)), b = mat(kind, randn(rng, n * nrhs));
        for (let i = 0; i < n; i++) a[i * n + i]! += 3; // keep it well conditioned
        const a0 = a.slice(), b0 = b.slice();
        const x = ops.solve(a, b, n, nrhs);
        assertBitIdentical(a, a0, "input a");
        assertBitIdentical(b, b0, "input b");
        assertClose(x, ref.solve(a, b, n, nrhs), { atol: TOL[kind].atol * 4, rtol: TOL[kind].rtol * 4 }, "X");
      });
    }
  }
  it("singular matrix throws E_NATIVE", () => {
    assert.throws(() => ops.solve(Float64Array.from([1, 2, 2, 4]), Float64Array.from([1, 1]), 2, 1), (e: unknown) => {
      assert.ok(e instanceof DeltaEditError);
      assert.equal(e.code, "E_NATIVE");
      assert.match(e.message, /solve: argument a is singular/);
      return true;
    });
  });
});
