/**
 * Non-finite scan of loaded weights: one pass over the float data, counting NaN and ±Inf
 * (`x − x` is 0 for every finite x and NaN otherwise).
 */

/** Number of non-finite elements of `data` and the index of the first (−1 when all are finite). */
export function nonFinite(data: Float32Array): { count: number; first: number } {
  let count = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (x - x !== 0) {
      if (count === 0) first = i;
      count++;
    }
  }
  return { count, first };
}
