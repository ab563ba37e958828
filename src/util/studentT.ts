/**
 * Student's t distribution: CDF, upper-tail probability and quantile for any positive degrees of
 * freedom ν (not a table), plus the standard normal quantile (ν = ∞). Used for confidence
 * intervals and paired t-tests across the orderings of a multi-seed bench (eval/report/acrossSeeds.ts).
 *
 *   tail(t; ν) = P(T > t) = ½ I_{ν/(ν+t²)}(ν/2, ½)   for t ≥ 0   (I = regularised incomplete beta)
 *   quantile:  ν = 1 and ν = 2 in closed form; otherwise a Cornish–Fisher start from the normal
 *              quantile, refined by safeguarded Newton steps on the tail (bisection whenever a step
 *              leaves the bracket); ν > 1e5: the Cornish–Fisher series alone (error < 1e-15).
 *   normal:    Φ̄(z) = ½ erfc(z/√2) = ½ Q(½, z²/2) (regularised upper incomplete gamma), quantile by
 *              Newton from the Abramowitz–Stegun 26.2.23 start.
 * Accuracy: about 1e-13 relative over 1e-12 < p < 1 − 1e-12 (the special functions converge to
 * ~1e-15; the tests compare against published values to 1e-7).
 */

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; reflection below ½). */
export function lnGamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`lnGamma: x must be positive, got ${x}`);
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGamma(1 - x);
  const y = x - 1;
  let a = LANCZOS[0]!;
  for (let i = 1; i < LANCZOS.length; i++) a += LANCZOS[i]! / (y + i);
  const t = y + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

const TINY = 1e-300;
const EPS = 1e-16;
const MAX_ITER = 20_000;

/** Continued fraction of I_x(a, b) (modified Lentz), valid for x < (a + 1)/(a + b + 2). */
function betaFraction(a: number, b: number, x: number): number {
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= MAX_ITER; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) return h;
  }
  return h; // not converged within MAX_ITER: only for extreme (a, b), which callers avoid
}

/** Regularised incomplete beta I_x(a, b), 0 ≤ x ≤ 1, a, b > 0. */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (!(x >= 0 && x <= 1)) throw new RangeError(`incompleteBeta: x must be in [0, 1], got ${x}`);
  if (x === 0 || x === 1) return x;
  const lnFront = lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  const front = Math.exp(lnFront);
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(a, b, x)) / a : 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** Regularised upper incomplete gamma Q(a, x) = Γ(a, x)/Γ(a), x ≥ 0 (series below a + 1, else continued fraction). */
export function upperIncompleteGamma(a: number, x: number): number {
  if (!(x >= 0) || !(a > 0)) throw new RangeError(`upperIncompleteGamma: need a > 0 and x ≥ 0, got a=${a}, x=${x}`);
  if (x === 0) return 1;
  const lnFront = -x + a * Math.log(x) - lnGamma(a);
  if (x < a + 1) {
    let ap = a, del = 1 / a, sum = del;
    for (let n = 0; n < MAX_ITER && Math.abs(del) > Math.abs(sum) * EPS; n++) {
      ap += 1;
      del *= x / ap;
      sum += del;
    }
    return 1 - sum * Math.exp(lnFront);
  }
  let b = x + 1 - a, c = 1 / TINY, d = 1 / b, h = d;
  for (let i = 1; i <= MAX_ITER; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return Math.exp(lnFront) * h;
}

/** P(Z > z) for a standard normal Z. */
export function normalTail(z: number): number {
  const q = 0.5 * upperIncompleteGamma(0.5, (z * z) / 2);
  return z >= 0 ? q : 1 - q;
}

/** The standard normal quantile Φ⁻¹(p), 0 < p < 1. */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile: p must be in (0, 1), got ${p}`);
  if (p === 0.5) return 0;
  const q = Math.min(p, 1 - p); // upper-tail probability of |z|
  const s = Math.sqrt(-2 * Math.log(q));
  // Abramowitz & Stegun 26.2.23 (|error| < 4.5e-4), then Newton on the tail
  let z = s - (2.515517 + 0.802853 * s + 0.010328 * s * s) / (1 + 1.432788 * s + 0.189269 * s * s + 0.001308 * s * s * s);
  for (let i = 0; i < 50; i++) {
    const pdf = Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
    const step = (normalTail(z) - q) / pdf;
    z += step;
    if (Math.abs(step) <= 1e-15 * Math.abs(z)) break;
  }
  return p > 0.5 ? z : -z;
}

/** P(T > t) for T ~ Student t with ν degrees of freedom. */
export function studentTTail(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`studentTTail: df must be positive, got ${df}`);
  if (df === Infinity) return normalTail(t);
  const half = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? half : 1 - half;
}

/** P(T ≤ t) for T ~ Student t with ν degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  return 1 - studentTTail(t, df);
}

function studentTPdf(t: number, df: number): number {
  return Math.exp(lnGamma((df + 1) / 2) - lnGamma(df / 2) - 0.5 * Math.log(df * Math.PI) - ((df + 1) / 2) * Math.log1p((t * t) / df));
}

/** Cornish–Fisher expansion of the t quantile in powers of 1/ν around the normal quantile z. */
function cornishFisher(z: number, df: number): number {
  const z2 = z * z;
  return (
    z +
    (z * (z2 + 1)) / (4 * df) +
    (z * (5 * z2 * z2 + 16 * z2 + 3)) / (96 * df * df) +
    (z * (3 * z2 * z2 * z2 + 19 * z2 * z2 + 17 * z2 - 15)) / (384 * df * df * df) +
    (z * (79 * z2 ** 4 + 776 * z2 ** 3 + 1482 * z2 * z2 - 1920 * z2 - 945)) / (92160 * df ** 4)
  );
}

/**
 * The p-quantile of Student's t with `df` degrees of freedom (df > 0, not necessarily an integer;
 * Infinity gives the normal quantile). E.g. studentTQuantile(0.975, 2) = 4.302653.
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`studentTQuantile: p must be in (0, 1), got ${p}`);
  if (!(df > 0)) throw new RangeError(`studentTQuantile: df must be positive, got ${df}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  if (df === Infinity) return normalQuantile(p);
  if (df === 1) return Math.tan(Math.PI * (p - 0.5));
  if (df === 2) return (2 * p - 1) / Math.sqrt(2 * p * (1 - p));
  const z = normalQuantile(p);
  if (df > 1e5) return cornishFisher(z, df);
  const q = 1 - p; // upper tail to match
  // the tail is decreasing in t; keep a bracket [lo, hi] around the root and bisect when Newton leaves it
  let lo = 0, hi = Infinity;
  let t = Math.max(z, cornishFisher(z, df));
  for (let i = 0; i < 500; i++) {
    const h = studentTTail(t, df) - q;
    if (h > 0) lo = t;
    else hi = t;
    let next = t + h / studentTPdf(t, df);
    if (!(next > lo && next < hi)) next = Number.isFinite(hi) ? (lo + hi) / 2 : 2 * Math.max(t, 1);
    if (Math.abs(next - t) <= 1e-14 * Math.abs(next)) return next;
    t = next;
  }
  return t;
}
