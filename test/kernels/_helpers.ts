/** Shared helpers for the kernel tests: seeded inputs, loud closeness checks, finite differences. */
import assert from "node:assert/strict";

/** mulberry32: a small seeded generator, enough for test inputs. */
export function makeRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal Float32Array (Box–Muller), scaled by `scale`. */
export function randn(rng: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rng(), 1e-12), v = rng();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

export function randn64(rng: () => number, n: number, scale = 1): Float64Array {
  return Float64Array.from(randn(rng, n, scale));
}

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| elementwise; on failure reports the
 * worst element with both values so that the test fails loudly and says where.
 */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: { atol: number; rtol?: number }, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length ${actual.length} vs expected ${expected.length}`);
  const rtol = tol.rtol ?? 0;
  let worst = -1, worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (Number.isNaN(a) !== Number.isNaN(e)) assert.fail(`${label}: element ${i} is ${a}, expected ${e}`);
    if (Number.isNaN(a)) continue;
    const excess = Math.abs(a - e) - (tol.atol + rtol * Math.abs(e));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    assert.fail(`${label}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
      `(|diff| = ${Math.abs(actual[worst]! - expected[worst]!)}, atol ${tol.atol}, rtol ${rtol})`);
  }
}

/** Bitwise equality of two float arrays. */
export function assertBitIdentical(a: Float32Array | Float64Array, b: Float32Array | Float64Array, label: string): void {
  assert.equal(a.length, b.length, `${label}: lengths differ`);
  const ua = new Uint8Array(a.buffer, a.byteOffset, a.byteLength), ub = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ub[i]) assert.fail(`${label}: not bit-identical at element ${Math.floor(i / a.BYTES_PER_ELEMENT)}`);
  }
}

/**
 * Central finite difference of loss() with respect to the listed indices of x (a float64
 * buffer that loss() reads); x is restored afterwards.
 */
export function finiteDiff(x: Float64Array, indices: number[], loss: () => number, h = 1e-5): Float64Array {
  const g = new Float64Array(indices.length);
  indices.forEach((i, n) => {
    const x0 = x[i]!;
    x[i] = x0 + h;
    const lp = loss();
    x[i] = x0 - h;
    const lm = loss();
    x[i] = x0;
    g[n] = (lp - lm) / (2 * h);
  });
  return g;
}

/** Up to `count` distinct indices of [0, n), deterministic. */
export function sampleIndices(rng: () => number, n: number, count: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const set = new Set<number>();
  while (set.size < count) set.add(Math.floor(rng() * n));
  return [...set].sort((a, b) => a - b);
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function pick(x: ArrayLike<number>, indices: number[]): Float64Array {
  return Float64Array.from(indices, (i) => x[i]!);
}
