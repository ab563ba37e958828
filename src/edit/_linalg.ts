/**
 * Small private helpers shared by the `src/edit/` linear algebra (projector.ts, solve.ts,
 * noise.ts): argument checks that name the argument, and O(n²) reshuffles that do not deserve
 * a native kernel. Nothing here allocates per element or keeps state.
 *
 * All matrices are row-major. Dimension legend of the edit layer: dIn = input width of the
 * edited matrix (d_ff), d = hidden width, N = keys in the current batch, T = keys accumulated,
 * r = rank of the AlphaEdit projector, q = randomized-SVD rank.
 */
import { DeltaEditError } from "../errors.js";

/** Throws E_ARG unless `n` is an integer ≥ `min`. */
export function checkDim(n: number, name: string, fn: string, min = 0): void {
  if (!Number.isInteger(n) || n < min) {
    throw new DeltaEditError("E_ARG", `${fn}: argument ${name} must be an integer ≥ ${min}, got ${String(n)}`);
  }
}

/** Throws E_SHAPE unless `x` is a Float32Array of exactly `len` elements (shape given for the message). */
export function checkF32(x: unknown, len: number, name: string, fn: string, shape: string): asserts x is Float32Array {
  if (!(x instanceof Float32Array)) {
    throw new DeltaEditError("E_ARG", `${fn}: argument ${name} must be a Float32Array ${shape}, got ${describe(x)}`);
  }
  if (x.length !== len) {
    throw new DeltaEditError("E_SHAPE", `${fn}: argument ${name} must have ${len} elements ${shape}, got ${x.length}`, {
      context: { argument: name, expected: len, actual: x.length },
    });
  }
}

/** Throws E_ARG unless `v` is a finite number > 0 (or ≥ 0 with `allowZero`). */
export function checkPositive(v: number, name: string, fn: string, allowZero = false): void {
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new DeltaEditError("E_ARG", `${fn}: ${name} must be a finite number ${allowZero ? "≥" : ">"} 0, got ${String(v)}`);
  }
}

function describe(x: unknown): string {
  if (x === null) return "null";
  if (typeof x === "object") return (x as object).constructor?.name ?? "object";
  return typeof x;
}

/** (rows, cols) → (cols, rows). */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols); // (cols, rows)
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    for (let j = 0; j < cols; j++) out[j * rows + i] = a[base + j]!;
  }
  return out;
}

/** (n, n) identity. */
export function identity(n: number): Float32Array {
  const out = new Float32Array(n * n); // (n, n)
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  return out;
}

/** a (n, n) += v·I, in place. Works for Float32Array and Float64Array. */
export function addDiagonal(a: Float32Array | Float64Array, n: number, v: number): void {
  for (let i = 0; i < n; i++) a[i * n + i]! += v;
}

/** a (n, n) ← (a + aᵀ)/2, in place: removes rounding asymmetry before a Cholesky. */
export function symmetrize(a: Float32Array | Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const m = 0.5 * (a[i * n + j]! + a[j * n + i]!);
      a[i * n + j] = m;
      a[j * n + i] = m;
    }
  }
}

/** Columns `cols` of a (rows, width) as a new (rows, cols.length) matrix. */
export function gatherColumns(a: Float32Array, rows: number, width: number, cols: readonly number[]): Float32Array {
  const k = cols.length;
  const out = new Float32Array(rows * k); // (rows, k)
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < k; j++) out[i * k + j] = a[i * width + cols[j]!]!;
  }
  return out;
}

/** Copies `src` into a fresh Float32Array (never shares the buffer). */
export function copyF32(src: ArrayLike<number>): Float32Array {
  return Float32Array.from(src);
}
