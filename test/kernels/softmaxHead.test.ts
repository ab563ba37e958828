/**
 * softmaxHead (native/skinny.cc): the vocabulary head fused with its NLL and KL losses in one pass
 * over W, against the same quantities computed the reference way in float64 (logits, log-softmax,
 * the losses' gradients w.r.t. the logits, then dlogits·W) and against the float32 formulation the
 * target search used before (gemm + distributions + nllLoss + klLoss + gemm). The fused kernel sums
 * in another order (online softmax over vocabulary tiles, per-thread ranges merged in order), so
 * the comparisons carry float32 tolerances; for a fixed thread count it is deterministic.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import * as ops from "../../src/kernels/ops.js";
import { distributions, klLoss, logSoftmax, nllLoss } from "../../src/model/loss.js";
import { assertBitIdentical, makeRng, randn } from "./_helpers.js";

interface Case {
  P: number;
  V: number;
  C: number;
  h: Float32Array; // (P, C)
  w: Float32Array; // (V, C)
  terms: ops.SoftmaxHeadTerms;
}

// rows 0..P−3: NLL (weight 1/(P−2)); row P−2: KL against a perturbed copy of its own distribution; row P−1: no term
function makeCase(seed: number, P: number, V: number, C: number): Case {
  const rng = makeRng(seed);
  const h = randn(rng, P * C);
  const w = randn(rng, V * C, 0.3);
  const target = new Int32Array(P).fill(-1);
  const nllWeight = new Float32Array(P);
  const klWeight = new Float32Array(P);
  for (let p = 0; p < P - 2; p++) {
    target[p] = Math.floor(rng() * V);
    nllWeight[p] = 1 / (P - 2);
  }
  const k = P - 2;
  klWeight[k] = 0.0625;
  // reference distribution: the KL row's logits plus noise, log-softmaxed
  const l0 = new Float64Array(V);
  for (let v = 0; v < V; v++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += h[k * C + c]! * w[v * C + c]!;
    l0[v] = s + 0.3 * (rng() - 0.5);
  }
  const refLogp = new Float32Array(P * V);
  const lse0 = logSumExp(l0);
  for (let v = 0; v < V; v++) refLogp[k * V + v] = l0[v]! - lse0;
  const klShift = new Float32Array(P);
  klShift[k] = lse0;
  return { P, V, C, h, w, terms: { target, nllWeight, klWeight, refLogp, klShift } };
}

function logSumExp(x: Float64Array): number {
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  let z = 0;
  for (const v of x) z += Math.exp(v - m);
  return m + Math.log(z);
}

/** float64 reference: logits, lse, KL per row, dh. */
function reference(c: Case): { logits: Float64Array; lse: Float64Array; kl: Float64Array; dh: Float64Array } {
  const { P, V, C, h, w, terms } = c;
  const logits = new Float64Array(P * V);
  for (let p = 0; p < P; p++) for (let v = 0; v < V; v++) {
    let s = 0;
    for (let k = 0; k < C; k++) s += h[p * C + k]! * w[v * C + k]!;
    logits[p * V + v] = s;
  }
  const lse = new Float64Array(P), kl = new Float64Array(P), dh = new Float64Array(P * C);
  for (let p = 0; p < P; p++) {
    const row = logits.subarray(p * V, (p + 1) * V);
    lse[p] = logSumExp(row);
    const q = Float64Array.from(row, (x) => Math.exp(x - lse[p]!));
    const g = new Float64Array(V);
    if (terms.nllWeight[p] !== 0) {
      for (let v = 0; v < V; v++) g[v]! += terms.nllWeight[p]! * q[v]!;
      if (terms.target[p]! >= 0) g[terms.target[p]!]! -= terms.nllWeight[p]!;
    }
    if (terms.klWeight[p] !== 0) {
      let d = 0;
      for (let v = 0; v < V; v++) d += q[v]! * (row[v]! - lse[p]! - terms.refLogp![p * V + v]!);
      kl[p] = d;
      for (let v = 0; v < V; v++) g[v]! += terms.klWeight[p]! * q[v]! * (row[v]! - lse[p]! - terms.refLogp![p * V + v]! - d);
    }
    for (let v = 0; v < V; v++) if (g[v] !== 0) for (let k = 0; k < C; k++) dh[p * C + k]! += g[v]! * w[v * C + k]!;
  }
  return { logits, lse, kl, dh };
}

function run(c: Case, threads: number, shift?: Float32Array): ops.SoftmaxHeadOut {
  const initial = ops.getThreads();
  ops.setThreads(threads);
  try {
    const out = { logits: new Float32Array(c.P * c.V), dh: new Float32Array(c.P * c.C), lse: new Float32Array(c.P), kl: new Float32Array(c.P) };
    ops.softmaxHead(c.h, c.w, shift ? { ...c.terms, klShift: shift } : c.terms, out, c.P, c.V, c.C);
    return out;
  } finally {
    ops.setThreads(initial);
  }
}

// per row: ‖a − b‖₂ ≤ tol · ‖b‖₂ (+ a floor for an all-zero row)
function assertRowsClose(a: ArrayLike<number>, b: ArrayLike<number>, rows: number, width: number, tol: number, what: string): void {
  for (let r = 0; r < rows; r++) {
    let e = 0, n = 0;
    for (let i = r * width; i < (r + 1) * width; i++) {
      e += (a[i]! - b[i]!) ** 2;
      n += b[i]! ** 2;
    }
    assert.ok(Math.sqrt(e) <= tol * Math.sqrt(n) + 1e-7, `${what}: row ${r}: ‖Δ‖ ${Math.sqrt(e)} vs ‖ref‖ ${Math.sqrt(n)}`);
  }
}

describe("softmaxHead: one pass over W, equal to logits + log-softmax + NLL/KL gradients + dlogits·W", () => {
  const c = makeCase(11, 8, 9001, 99); // V crosses tile and thread-range boundaries, C has a remainder of 8
  const ref = reference(c);
  for (const threads of [1, 2, 3]) {
    it(`${threads} thread(s): against the float64 reference`, () => {
      const out = run(c, threads);
      // logits: float32 sums of C products (|terms| ≲ 3·0.3·C^½ scale): per-row relative 1e-5
      assertRowsClose(out.logits, ref.logits, c.P, c.V, 1e-5, "logits");
      for (let p = 0; p < c.P; p++) assert.ok(Math.abs(out.lse[p]! - ref.lse[p]!) <= 1e-5 * Math.abs(ref.lse[p]!) + 1e-5, `lse row ${p}: ${out.lse[p]} vs ${ref.lse[p]}`);
      // KL = D − (lse − shift): rounding of terms of size ~|logits| (≈ 10): absolute 5e-5, relative 1e-3
      for (let p = 0; p < c.P; p++) assert.ok(Math.abs(out.kl[p]! - ref.kl[p]!) <= 1e-3 * ref.kl[p]! + 5e-5, `KL row ${p}: ${out.kl[p]} vs ${ref.kl[p]}`);
      assert.ok(ref.kl[c.P - 2]! > 1e-3, "the KL row has a KL well above the tolerance");
      // dh: float32 sums of V terms: per-row relative 1e-4; the no-term row is exactly 0 (never accumulated)
      assertRowsClose(out.dh, ref.dh, c.P, c.C, 1e-4, "dh");
      assert.ok(out.dh.subarray((c.P - 1) * c.C).every((x) => x === 0), "row without a loss term has dh = 0");
      assertBitIdentical(out.dh, run(c, threads).dh, "run twice (same thread count)");
    });
  }

  it("the shift is exact algebra: shift 0 gives the same KL and dh within a looser bound (cancellation at |d| ≈ lse)", () => {
    const out = run(c, 2, new Float32Array(c.P));
    for (let p = 0; p < c.P; p++) assert.ok(Math.abs(out.kl[p]! - ref.kl[p]!) <= 1e-3 * ref.kl[p]! + 2e-4, `KL row ${p}: ${out.kl[p]} vs ${ref.kl[p]}`);
    assertRowsClose(out.dh, ref.dh, c.P, c.C, 1e-3, "dh (shift 0)");
  });

  it("equals the float32 formulation it replaces (gemm, distributions, nllLoss, klLoss, gemm) within float32 tolerance", () => {
    const { P, V, C, h, w, terms } = c;
    const logits = new Float32Array(P * V);
    ops.gemm(h, w, logits, { m: P, n: V, k: C, transB: true });
    const dist = distributions(logits, P, V);
    const nllTerms = [];
    for (let p = 0; p < P; p++) if (terms.target[p]! >= 0) nllTerms.push({ row: p, target: terms.target[p]!, weight: terms.nllWeight[p]! });
    const nll = nllLoss(logits, P, V, nllTerms, undefined, dist);
    const k = P - 2;
    const kl = klLoss(logits, P, V, [k], terms.refLogp!.slice(k * V, (k + 1) * V), terms.klWeight[k]!, nll.dlogits, dist);
    const dh = new Float32Array(P * C);
    ops.gemm(kl.dlogits, w, dh, { m: P, n: C, k: V });
    const out = run(c, 2);
    let loss = 0;
    for (let p = 0; p < P; p++) {
      if (terms.target[p]! >= 0) loss += terms.nllWeight[p]! * (out.lse[p]! - out.logits[p * V + terms.target[p]!]!);
      loss += terms.klWeight[p]! * out.kl[p]!;
    }
    assert.ok(Math.abs(loss - (nll.loss + kl.loss)) <= 1e-5 * Math.abs(nll.loss + kl.loss) + 1e-5, `loss ${loss} vs ${nll.loss + kl.loss}`);
    assertRowsClose(out.dh, dh, P, C, 2e-4, "dh vs the float32 formulation");
    const lsm = logSoftmax(logits, P, V);
    for (let p = 0; p < P; p++) assert.ok(Math.abs(-lsm[p * V]! + logits[p * V]! - out.lse[p]!) <= 2e-5 * Math.abs(out.lse[p]!) + 1e-5, `lse row ${p}`);
  });

  it("names the argument at fault", () => {
    const P = 2, V = 5, C = 3;
    const terms = { target: Int32Array.from([0, 7]), nllWeight: new Float32Array(P), klWeight: new Float32Array(P), refLogp: null, klShift: new Float32Array(P) };
    const out = { logits: new Float32Array(P * V), dh: new Float32Array(P * C), lse: new Float32Array(P), kl: new Float32Array(P) };
    assert.throws(() => ops.softmaxHead(new Float32Array(P * C), new Float32Array(V * C), terms, out, P, V, C), /softmaxHead: .*terms\.target.*element 1 is 7/);
    assert.throws(() => ops.softmaxHead(new Float32Array(P * C), new Float32Array(V * C), { ...terms, target: Int32Array.from([0, 1]), klWeight: Float32Array.from([0, 1]) }, out, P, V, C), /refLogp/);
  });
});
