/**
 * MT19937 with CPython's `random.Random` seeding and integer draws, bit for bit — used only to
 * reproduce the reference's seeded document sample (spec Appendix C:
 * `random.Random(1).shuffle(list(range(n_docs)))`). Everything else draws from `util/rng.ts`.
 *
 * - Seeding an integer s ≥ 0: `init_by_array(key)` with key = the 32-bit words of s, least
 *   significant first (at least one word), as CPython's `random_seed` does.
 * - `getrandbits(k)`, k ≤ 32: the next 32-bit output shifted right by 32 − k; k > 32 (up to 53
 *   here): little-endian 32-bit words, the last one shifted right to keep k bits in total.
 * - `randbelow(n)`: k = bit_length(n); draw getrandbits(k) until it is < n.
 * - `shuffle(x)`: for i = len−1 down to 1, j = randbelow(i+1), swap x[i], x[j].
 */
const N = 624; // state words
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

export class MersenneTwister {
  private readonly mt = new Uint32Array(N); // (624) generator state
  private mti = N + 1;

  /** `random.Random(seed)` for a non-negative safe integer seed. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`MersenneTwister: seed must be a non-negative safe integer, got ${seed}`);
    const key: number[] = [];
    let s = seed;
    do {
      key.push(s % 0x100000000);
      s = Math.floor(s / 0x100000000);
    } while (s > 0);
    this.initByArray(key);
  }

  private initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]!;
      // mt[i] = 1812433253 * (prev ^ (prev >> 30)) + i   (mod 2^32)
      mt[i] = (Math.imul(1812433253, (prev ^ (prev >>> 30)) >>> 0) + i) >>> 0;
    }
    this.mti = N;
  }

  private initByArray(key: readonly number[]): void {
    const mt = this.mt;
    this.initGenrand(19650218);
    let i = 1;
    let j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1]!;
      mt[i] = ((mt[i]! ^ Math.imul((prev ^ (prev >>> 30)) >>> 0, 1664525)) + key[j]! + j) >>> 0;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1]!;
      mt[i] = ((mt[i]! ^ Math.imul((prev ^ (prev >>> 30)) >>> 0, 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
  }

  /** Next 32-bit output (genrand_uint32). */
  nextU32(): number {
    const mt = this.mt;
    if (this.mti >= N) {
      let kk = 0;
      for (; kk < N - M; kk++) {
        const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
        mt[kk] = mt[kk + M]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      }
      for (; kk < N - 1; kk++) {
        const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
        mt[kk] = mt[kk + (M - N)]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      }
      const y = (mt[N - 1]! & UPPER_MASK) | (mt[0]! & LOWER_MASK);
      mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      this.mti = 0;
    }
    let y = mt[this.mti++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Python `getrandbits(k)` for 0 ≤ k ≤ 53. */
  getrandbits(k: number): number {
    if (!Number.isInteger(k) || k < 0 || k > 53) throw new RangeError(`getrandbits: k must be an integer in [0, 53], got ${k}`);
    if (k === 0) return 0;
    if (k <= 32) return this.nextU32() >>> (32 - k);
    const lo = this.nextU32(); // word 0: bits 0..31
    const hi = this.nextU32() >>> (64 - k); // word 1: the remaining k − 32 bits
    return hi * 0x100000000 + lo;
  }

  /** Python `_randbelow_with_getrandbits(n)`: uniform integer in [0, n). */
  randbelow(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`randbelow: n must be a positive safe integer, got ${n}`);
    const k = bitLength(n);
    let r = this.getrandbits(k);
    while (r >= n) r = this.getrandbits(k);
    return r;
  }

  /** Python `random.shuffle(x)` in place. */
  shuffle<T>(x: T[]): void {
    for (let i = x.length - 1; i > 0; i--) {
      const j = this.randbelow(i + 1);
      const t = x[i]!;
      x[i] = x[j]!;
      x[j] = t;
    }
  }
}

function bitLength(n: number): number {
  let k = 0;
  while (n >= 1) {
    n = Math.floor(n / 2);
    k++;
  }
  return k;
}

/**
 * The reference's document sample (Appendix C): `x = list(range(nDocs))`,
 * `random.Random(seed).shuffle(x)`, keep `x[:samples]`.
 */
export function pythonShuffledSample(nDocs: number, samples: number, seed: number): number[] {
  const x = Array.from({ length: nDocs }, (_, i) => i);
  new MersenneTwister(seed).shuffle(x);
  return x.slice(0, Math.min(samples, nDocs));
}
