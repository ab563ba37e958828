/**
 * Regression: LAPACK workspace queries are returned in float32 for float32 routines; above 2^24 they
 * round down and ssyevd failed with an "illegal value" at n = 3072 (GPT-2 small's d_ff). n = 2900 is the
 * smallest size class that crosses 2^24 (1 + 6n + 2n² = 16 837 401).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as ops from "../../src/kernels/ops.js";

test("eigh works where the float32 workspace size exceeds 2^24", () => {
  const n = 2900;
  const a = new Float32Array(n * n);
  for (let i = 0; i < n; i++) a[i * n + i] = (i % 7) + 0.5;
  for (let i = 0; i + 1 < n; i++) a[i * n + i + 1] = a[(i + 1) * n + i] = 0.01;
  const { values, vectors } = ops.eigh(a, n);
  assert.equal(values.length, n);
  // A v = λ v for a few eigenpairs (tolerance 1e-3 absolute on O(1) entries)
  for (const j of [0, n >> 1, n - 1]) {
    let err = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = Math.max(0, i - 1); k <= Math.min(n - 1, i + 1); k++) s += a[i * n + k]! * vectors[k * n + j]!;
      err = Math.max(err, Math.abs(s - values[j]! * vectors[i * n + j]!));
    }
    assert.ok(err < 1e-3, `eigenpair ${j}: residual ${err}`);
  }
});
