/**
 * Seeded pseudo-random numbers. Every random choice in deltaedit (context templates, top-k
 * sampling, randomized SVD test matrices, data shuffles) draws from an `Rng` whose state is
 * owned by the caller (a session, a command run), never from a module-level generator.
 *
 * Generator: xoshiro128** (32-bit state words, period 2^128 − 1), seeded through splitmix32.
 * The state can be saved and restored exactly (`state()` / `Rng.fromState`), so a resumed
 * session continues the same stream.
 */
export class Rng {
  private s: Uint32Array; // (4) generator state

  constructor(seed: number | bigint = 0) {
    this.s = new Uint32Array(4);
    let x = Number(BigInt.asUintN(32, BigInt(seed))) >>> 0;
    let hi = Number(BigInt.asUintN(32, BigInt(seed) >> 32n)) >>> 0;
    x = (x ^ Math.imul(hi, 0x9e3779b9)) >>> 0;
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.s[0]! | this.s[1]! | this.s[2]! | this.s[3]!) === 0) this.s[0] = 1;
  }

  /** A generator continuing from a state saved with `state()`. */
  static fromState(state: readonly number[]): Rng {
    if (state.length !== 4) throw new RangeError(`Rng.fromState: expected 4 state words, got ${state.length}`);
    const r = new Rng(0);
    for (let i = 0; i < 4; i++) r.s[i] = state[i]! >>> 0;
    return r;
  }

  /** A copy of the 4 state words (JSON-serialisable). */
  state(): number[] {
    return Array.from(this.s);
  }

  /** Next uniformly distributed 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2] = (s[2]! ^ s[0]!) >>> 0;
    s[3] = (s[3]! ^ s[1]!) >>> 0;
    s[1] = (s[1]! ^ s[2]!) >>> 0;
    s[0] = (s[0]! ^ s[3]!) >>> 0;
    s[2] = (s[2]! ^ t) >>> 0;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const a = this.nextU32() >>> 5; // 27 bits
    const b = this.nextU32() >>> 6; // 26 bits
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(n > 0) || !Number.isInteger(n)) throw new RangeError(`Rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal deviate (Box–Muller, one value per call; deterministic). */
  normal(): number {
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Draw an index from unnormalised non-negative weights. */
  categorical(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) total += weights[i]!;
    let u = this.uniform() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i]!;
      if (u < 0) return i;
    }
    return weights.length - 1;
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = xs[i]!;
      xs[i] = xs[j]!;
      xs[j] = t;
    }
    return xs;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
