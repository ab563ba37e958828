/**
 * Run-level aggregation of case values (evaluation spec §3.4, §3.10, §4).
 *
 * For every case-level key v: mean and POPULATION std (divide by the number of cases) over the
 * cases that have a finite value; both ×100 except for `essence_score` and `time`; rounded to
 * 2 decimals; reported as `<prefix>_<key>`. NaN case values (e.g. a consistency score with an
 * all-zero TF-IDF vector, §3.8) are excluded from that key's mean and counted in `excluded`.
 * `score` is the harmonic mean of the rounded ×100 efficacy / paraphrase / neighborhood success
 * means ("larger" style only), 0 if any is 0, rounded to 2 decimals.
 */

export type Prefix = "post" | "pre";

/** Keys reported without the ×100 factor. */
export const UNSCALED_KEYS: readonly string[] = ["essence_score", "time"];

/** Mean and population std (×100, rounded) per case-level key, with NaN counts. */
export interface Aggregate {
  numCases: number;
  /** `<prefix>_<key>` → [mean, std] after scaling and rounding. */
  values: Record<string, [number, number]>;
  /** `<prefix>_<key>` → number of cases whose value was NaN (left out of that key). */
  excluded: Record<string, number>;
}

export function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Mean and population std (NaN for an empty list). */
export function meanStd(xs: readonly number[]): [number, number] {
  if (xs.length === 0) return [NaN, NaN];
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - mean) * (b - mean), 0) / xs.length;
  return [mean, Math.sqrt(v)];
}

/** Aggregate per-case value rows (keys without prefix, e.g. "rewrite_success"). */
export function aggregateCaseValues(rows: readonly Record<string, number>[], prefix: Prefix = "post"): Aggregate {
  const keys: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
  const values: Record<string, [number, number]> = {};
  const excluded: Record<string, number> = {};
  for (const k of keys) {
    const xs: number[] = [];
    let nan = 0;
    for (const r of rows) {
      const v = r[k];
      if (v === undefined) continue;
      if (Number.isNaN(v)) nan++;
      else xs.push(v);
    }
    const scale = UNSCALED_KEYS.includes(k) ? 1 : 100;
    const [m, s] = meanStd(xs);
    values[`${prefix}_${k}`] = [round2(m * scale), round2(s * scale)];
    if (nan > 0) excluded[`${prefix}_${k}`] = nan;
  }
  return { numCases: rows.length, values, excluded };
}

/** Harmonic mean `3 / (1/a + 1/b + 1/c)` of x100 values; 0 if any is 0 (§3.10). */
export function harmonicScore(es: number, ps: number, ns: number): number {
  if (es === 0 || ps === 0 || ns === 0) return 0;
  return 3 / (1 / es + 1 / ps + 1 / ns);
}
