/**
 * The typed, validated TypeScript face of the native core: exactly the functions of
 * docs/kernels.md. Everything above src/kernels/ calls native code only through this file.
 *
 * Conventions: row-major matrices; arrays are passed to C++ without copying (a `subarray()`
 * view is fine). Contiguous tensors of the fused kernels must have exactly the length given by
 * their dimensions; BLAS operands with leading dimensions/strides must be at least as long as
 * the elements they span. Every failed check throws DeltaEditError("E_ARG", "<fn>: argument
 * <name> expected …, got …").
 *
 * Dimension legend: B batch, T query length, Tk key length, NH query heads, NKV key/value heads,
 * HS head size, C channels, rows = independent rows.
 */
import { DeltaEditError } from "../errors.js";
import { loadNative, native } from "./native.js";
import type { CoreTypeSource } from "./native.js";

export type FloatArray = Float32Array | Float64Array;

// ---------------------------------------------------------------------------------------------
// Argument checks (exported for the reference kernels and for callers with their own boundaries)

const MAX_INT = 2147483647; // BLAS/LAPACK index type is int32

/** "Float32Array(12)", "number 2.5", "undefined", … */
export function describe(v: unknown): string {
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as { length?: number }).length ?? v.byteLength})`;
  if (v === null) return "null";
  if (typeof v === "number") return `number ${v}`;
  if (Array.isArray(v)) return `Array(${v.length})`;
  return typeof v;
}

export function argError(fn: string, name: string, message: string): DeltaEditError {
  return new DeltaEditError("E_ARG", `${fn}: argument ${name} ${message}`, { context: { fn, argument: name } });
}

/** A non-negative integer that fits the BLAS index type. */
export function checkInt(v: unknown, fn: string, name: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_INT) {
    throw argError(fn, name, `expected a non-negative integer, got ${describe(v)}`);
  }
  return v;
}

function checkSignedInt(v: unknown, fn: string, name: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || Math.abs(v) > MAX_INT) {
    throw argError(fn, name, `expected an integer, got ${describe(v)}`);
  }
  return v;
}

function checkNumber(v: unknown, fn: string, name: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw argError(fn, name, `expected a finite number, got ${describe(v)}`);
  return v;
}

function checkBool(v: unknown, fn: string, name: string): boolean {
  if (typeof v !== "boolean") throw argError(fn, name, `expected a boolean, got ${describe(v)}`);
  return v;
}

function optBool(v: unknown, fn: string, name: string, def = false): boolean {
  return v === undefined ? def : checkBool(v, fn, name);
}

function lengthText(len: number, dims?: string): string {
  return dims === undefined ? `${len}` : `${len} (${dims})`;
}

/** A Float32Array of exactly `len` elements (`atLeast`: of at least `len`). */
export function checkF32(x: unknown, len: number, fn: string, name: string, dims?: string, atLeast = false): Float32Array {
  const what = `Float32Array of length ${atLeast ? ">= " : ""}${lengthText(len, dims)}`;
  if (!(x instanceof Float32Array)) throw argError(fn, name, `expected ${what}, got ${describe(x)}`);
  if (atLeast ? x.length < len : x.length !== len) throw argError(fn, name, `expected ${what}, got ${x.length}`);
  return x;
}

/** A Float32Array or Float64Array; when `like` is given, of the same type as `like`. */
export function checkFloat<T extends FloatArray>(x: unknown, len: number, fn: string, name: string, like?: T, likeName?: string,
  dims?: string, atLeast = false): T {
  const ok = like === undefined ? x instanceof Float32Array || x instanceof Float64Array : x instanceof like.constructor;
  const typeText = like === undefined ? "Float32Array or Float64Array" : `${like.constructor.name} (the type of ${likeName ?? "a"})`;
  const what = `${typeText} of length ${atLeast ? ">= " : ""}${lengthText(len, dims)}`;
  if (!ok) throw argError(fn, name, `expected ${what}, got ${describe(x)}`);
  const n = (x as FloatArray).length;
  if (atLeast ? n < len : n !== len) throw argError(fn, name, `expected ${what}, got ${n}`);
  return x as T;
}

function checkOrNull(x: unknown, len: number, fn: string, name: string, dims?: string): Float32Array | null {
  return x === null ? null : checkF32(x, len, fn, name, dims);
}

/** Throws when the two views share memory (`a` is written while `b` is read, or both written). */
export function checkNoOverlap(fn: string, nameA: string, a: ArrayBufferView | null, nameB: string, b: ArrayBufferView | null): void {
  if (a === null || b === null || a.buffer !== b.buffer || a.byteLength === 0 || b.byteLength === 0) return;
  if (a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength) {
    throw argError(fn, nameA, `must not share memory with argument ${nameB}`);
  }
}

function alloc<T extends FloatArray>(like: T, len: number): T {
  return (like instanceof Float64Array ? new Float64Array(len) : new Float32Array(len)) as T;
}

function copy<T extends FloatArray>(x: T): T {
  return x.slice() as T;
}

/** Elements spanned by `rows` rows of `cols` elements with leading dimension `ld`. */
function span(rows: number, cols: number, ld: number): number {
  return rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
}

// ---------------------------------------------------------------------------------------------
// Threads and BLAS info

/** Set the compute threads (BLAS and the fused kernels). */
export function setThreads(n: number): void {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 1024) {
    throw argError("setThreads", "n", `expected an integer in [1, 1024], got ${describe(n)}`);
  }
  native().setThreads(n);
}

/** The compute threads in use. */
export function getThreads(): number {
  return native().getThreads();
}

/** Threads of the fused (OpenMP) kernels; default 1 (or OMP_NUM_THREADS), see kernels/native.ts. */
export function setKernelThreads(n: number): void {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 1024) {
    throw argError("setKernelThreads", "n", `expected an integer in [1, 1024], got ${describe(n)}`);
  }
  native().setKernelThreads(n);
}

export function getKernelThreads(): number {
  return native().getKernelThreads();
}

/** What `blasInfo` reports. */
export interface BlasInfo {
  library: string; // e.g. "OpenBLAS 0.3.21"
  config: string; // openblas_get_config()
  coreName: string; // openblas_get_corename()
  coreTypeSource: CoreTypeSource;
  threads: number; // OpenBLAS threads
  kernelThreads: number; // fused-kernel (OpenMP) threads
}

/** The BLAS library, its configuration and kernel family, and the thread counts in use. */
export function blasInfo(): BlasInfo {
  const { addon, coreTypeSource } = loadNative();
  const raw = addon.blasInfo();
  const library = raw.config.split(/\s+/).slice(0, 2).join(" ") || "unknown";
  return { library, config: raw.config, coreName: raw.coreName, coreTypeSource, threads: raw.threads, kernelThreads: raw.kernelThreads };
}

// ---------------------------------------------------------------------------------------------
// BLAS

export interface GemmOptions {
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number; // default 1
  beta?: number; // default 0
  lda?: number; // default: row width of stored A: k, or m when transA
  ldb?: number; // default: n, or k when transB
  ldc?: number; // default: n
  /**
   * Allow the skinny split (default true): with t ≥ 2 BLAS threads, a product of at most 64 rows m
   * against a wide op(B) runs as t single-threaded BLAS calls on column slabs of C, one per thread
   * (native/blas.cc); false = one BLAS call. Equal up to float32 rounding; 1 thread: one call.
   */
  split?: boolean;
}

export interface GemmBatchedOptions extends GemmOptions {
  batch: number;
  strideA: number; // elements between consecutive A matrices
  strideB: number;
  strideC: number;
}

function gemmImpl(fn: string, a: FloatArray, b: FloatArray, c: FloatArray, o: GemmOptions, batched?: GemmBatchedOptions): void {
  if (o === null || typeof o !== "object") throw argError(fn, "o", `expected an options object, got ${describe(o)}`);
  const m = checkInt(o.m, fn, "o.m"), n = checkInt(o.n, fn, "o.n"), k = checkInt(o.k, fn, "o.k");
  const transA = optBool(o.transA, fn, "o.transA"), transB = optBool(o.transB, fn, "o.transB");
  const alpha = o.alpha === undefined ? 1 : checkNumber(o.alpha, fn, "o.alpha");
  const beta = o.beta === undefined ? 0 : checkNumber(o.beta, fn, "o.beta");
  // stored shapes: A (m,k) or (k,m) when transA; B (k,n) or (n,k) when transB; C (m,n)
  const [aRows, aCols] = transA ? [k, m] : [m, k];
  const [bRows, bCols] = transB ? [n, k] : [k, n];
  const lda = o.lda === undefined ? Math.max(1, aCols) : checkInt(o.lda, fn, "o.lda");
  const ldb = o.ldb === undefined ? Math.max(1, bCols) : checkInt(o.ldb, fn, "o.ldb");
  const ldc = o.ldc === undefined ? Math.max(1, n) : checkInt(o.ldc, fn, "o.ldc");
  const split = optBool(o.split, fn, "o.split", true);
  if (lda < Math.max(1, aCols)) throw argError(fn, "o.lda", `must be >= ${Math.max(1, aCols)}, got ${lda}`);
  if (ldb < Math.max(1, bCols)) throw argError(fn, "o.ldb", `must be >= ${Math.max(1, bCols)}, got ${ldb}`);
  if (ldc < Math.max(1, n)) throw argError(fn, "o.ldc", `must be >= ${Math.max(1, n)}, got ${ldc}`);
  let batch = 1, sA = 0, sB = 0, sC = 0;
  if (batched !== undefined) {
    batch = checkInt(batched.batch, fn, "o.batch");
    sA = checkInt(batched.strideA, fn, "o.strideA");
    sB = checkInt(batched.strideB, fn, "o.strideB");
    sC = checkInt(batched.strideC, fn, "o.strideC");
  }
  const need = (one: number, stride: number): number => (batch === 0 || one === 0 ? 0 : (batch - 1) * stride + one);
  const aNeed = need(span(aRows, aCols, lda), sA);
  const av = checkFloat<FloatArray>(a, aNeed, fn, "a", undefined, undefined, transA ? "k*m, lda" : "m*k, lda", true);
  checkFloat(b, need(span(bRows, bCols, ldb), sB), fn, "b", av, "a", transB ? "n*k, ldb" : "k*n, ldb", true);
  checkFloat(c, need(span(m, n, ldc), sC), fn, "c", av, "a", "m*n, ldc", true);
  checkNoOverlap(fn, "c", c, "a", a);
  checkNoOverlap(fn, "c", c, "b", b);
  native().gemm(a, b, c, m, n, k, transA, transB, alpha, beta, lda, ldb, ldc, batch, sA, sB, sC, split);
}

/** C(m,n) = alpha * op(A)(m,k) @ op(B)(k,n) + beta * C. All Float32Array or all Float64Array. */
export function gemm<T extends FloatArray>(a: T, b: T, c: T, o: GemmOptions): void {
  gemmImpl("gemm", a, b, c, o);
}

/** `batch` independent gemms; matrix i of A starts at element i*strideA (B, C likewise). */
export function gemmBatched<T extends FloatArray>(a: T, b: T, c: T, o: GemmBatchedOptions): void {
  if (o === null || typeof o !== "object") throw argError("gemmBatched", "o", `expected an options object, got ${describe(o)}`);
  gemmImpl("gemmBatched", a, b, c, o, o);
}

/**
 * Instruction set of the skinny kernels: "auto" (the best the CPU has: AVX-512F, else AVX2+FMA, else
 * portable C++) or one of them by name (tests compare them; a set the CPU lacks is refused).
 */
export type SkinnyIsa = "auto" | "avx512" | "avx2" | "portable";
const SKINNY_ISAS: readonly SkinnyIsa[] = ["auto", "avx512", "avx2", "portable"];

/** The instruction sets the skinny kernels can run on this CPU, the one "auto" selects first. */
export function skinnyIsas(): Exclude<SkinnyIsa, "auto">[] {
  const best = native().skinnyIsa();
  return best === "avx512" ? ["avx512", "avx2", "portable"] : best === "avx2" ? ["avx2", "portable"] : ["portable"];
}

/** Options of the skinny kernels. */
export interface SkinnyOptions {
  accumulate?: boolean; // add into the output instead of overwriting it (default false)
  isa?: SkinnyIsa; // default "auto"
}

function skinnyOptions(fn: string, o: SkinnyOptions | undefined): { accumulate: boolean; isa: SkinnyIsa } {
  if (o === undefined) return { accumulate: false, isa: "auto" };
  if (o === null || typeof o !== "object") throw argError(fn, "o", `expected an options object, got ${describe(o)}`);
  if (o.accumulate !== undefined && typeof o.accumulate !== "boolean") throw argError(fn, "o.accumulate", `expected a boolean, got ${describe(o.accumulate)}`);
  if (o.isa !== undefined && !SKINNY_ISAS.includes(o.isa)) throw argError(fn, "o.isa", `expected one of ${SKINNY_ISAS.join(", ")}, got ${describe(o.isa)}`);
  return { accumulate: o.accumulate ?? false, isa: o.isa ?? "auto" };
}

/**
 * y (P, N) = x (P, K) · Wᵀ (+ y with `accumulate`) for a few rows P against a large W (N, K) stored
 * row-major: W is streamed once through register tiles (BLAS packs all of it per call), the columns
 * of y split over the BLAS threads. Every element is the same sum whatever the thread count.
 * Equal to `gemm(x, w, y, {m: P, n: N, k: K, transB: true, beta})` up to float32 rounding.
 */
export function skinnyGemmNT(x: Float32Array, w: Float32Array, y: Float32Array, P: number, N: number, K: number, o?: SkinnyOptions): void {
  const fn = "skinnyGemmNT";
  checkInt(P, fn, "P");
  checkInt(N, fn, "N");
  checkInt(K, fn, "K");
  const { accumulate, isa } = skinnyOptions(fn, o);
  checkF32(x, P * K, fn, "x", "P*K");
  checkF32(w, N * K, fn, "w", "N*K");
  checkF32(y, P * N, fn, "y", "P*N");
  checkNoOverlap(fn, "y", y, "x", x);
  checkNoOverlap(fn, "y", y, "w", w);
  native().skinnyGemmNT(x, w, y, P, N, K, accumulate, isa);
}

/**
 * dx (P, K) = dy (P, N) · W (+ dx with `accumulate`) for a few rows P against a large W (N, K)
 * stored row-major, streamed once; the columns of dx split over the BLAS threads, each element one
 * fused multiply-add chain over n ascending whatever the thread count. Equal to
 * `gemm(dy, w, dx, {m: P, n: K, k: N, beta: accumulate ? 1 : 0})` up to float32 rounding.
 */
export function skinnyGemmNN(dy: Float32Array, w: Float32Array, dx: Float32Array, P: number, N: number, K: number, o?: SkinnyOptions): void {
  const fn = "skinnyGemmNN";
  checkInt(P, fn, "P");
  checkInt(N, fn, "N");
  checkInt(K, fn, "K");
  const { accumulate, isa } = skinnyOptions(fn, o);
  checkF32(dy, P * N, fn, "dy", "P*N");
  checkF32(w, N * K, fn, "w", "N*K");
  checkF32(dx, P * K, fn, "dx", "P*K");
  checkNoOverlap(fn, "dx", dx, "dy", dy);
  checkNoOverlap(fn, "dx", dx, "w", w);
  native().skinnyGemmNN(dy, w, dx, P, N, K, accumulate, isa);
}

/** Per-row loss terms of `softmaxHead` (each (P)). */
export interface SoftmaxHeadTerms {
  target: Int32Array; // NLL target id per row, −1 = no NLL term
  nllWeight: Float32Array; // weight of −log q(target) per row
  klWeight: Float32Array; // weight of KL(q ‖ ref) per row, 0 = none
  refLogp: Float32Array | null; // (P, V) reference log-probabilities; read only at rows with klWeight ≠ 0
  klShift: Float32Array; // any constant per row (exact for every value); ≈ the reference's log-sum-exp keeps the sums small
}

/** What `softmaxHead` writes. */
export interface SoftmaxHeadOut {
  logits: Float32Array; // (P, V)
  dh: Float32Array; // (P, C) dL/dh
  lse: Float32Array; // (P) log Σ_v exp(logits)
  kl: Float32Array; // (P) KL(q ‖ ref) at KL rows, 0 elsewhere
}

/**
 * The vocabulary head fused with its softmax losses, reading W (V, C) once (native/skinny.cc):
 * logits = h·Wᵀ, L = Σ_p nllWeight_p (lse_p − logits[p, target_p]) + klWeight_p KL(q_p ‖ ref_p) with
 * q = softmax(logits), and dh = dL/dh = dlogits·W, by online softmax over vocabulary tiles on the
 * BLAS thread count (deterministic for a fixed count). Equal to gemm + log-softmax + the losses +
 * gemm up to float32 rounding (the sums are reordered).
 */
export function softmaxHead(h: Float32Array, w: Float32Array, terms: SoftmaxHeadTerms, out: SoftmaxHeadOut, P: number, V: number, C: number): void {
  const fn = "softmaxHead";
  checkInt(P, fn, "P");
  checkInt(V, fn, "V");
  checkInt(C, fn, "C");
  if (V === 0) throw argError(fn, "V", "must be positive");
  checkF32(h, P * C, fn, "h", "P*C");
  checkF32(w, V * C, fn, "w", "V*C");
  checkF32(out.logits, P * V, fn, "out.logits", "P*V");
  checkF32(out.dh, P * C, fn, "out.dh", "P*C");
  checkF32(out.lse, P, fn, "out.lse", "P");
  checkF32(out.kl, P, fn, "out.kl", "P");
  if (!(terms.target instanceof Int32Array) || terms.target.length !== P) throw argError(fn, "terms.target", `expected Int32Array of length ${P} (P), got ${describe(terms.target)}`);
  for (let p = 0; p < P; p++) {
    const t = terms.target[p]!;
    if (t < -1 || t >= V) throw argError(fn, "terms.target", `element ${p} is ${t}, outside [-1, ${V})`);
  }
  checkF32(terms.nllWeight, P, fn, "terms.nllWeight", "P");
  checkF32(terms.klWeight, P, fn, "terms.klWeight", "P");
  checkF32(terms.klShift, P, fn, "terms.klShift", "P");
  if (terms.refLogp !== null) checkF32(terms.refLogp, P * V, fn, "terms.refLogp", "P*V");
  else if (terms.klWeight.some((x) => x !== 0)) throw argError(fn, "terms.refLogp", "is null but a row has klWeight ≠ 0");
  for (const [name, x] of [["out.logits", out.logits], ["out.dh", out.dh], ["out.lse", out.lse], ["out.kl", out.kl]] as const) {
    checkNoOverlap(fn, name, x, "h", h);
    checkNoOverlap(fn, name, x, "w", w);
  }
  native().softmaxHead(h, w, out.logits, terms.target, terms.nllWeight, terms.klWeight, terms.refLogp, terms.klShift, out.dh, out.lse, out.kl, P, V, C);
}

export interface SyrkOptions {
  n: number;
  k: number;
  trans?: boolean; // false: A (n,k), C = alpha A Aᵀ + beta C; true: A (k,n), C = alpha Aᵀ A + beta C
  alpha?: number;
  beta?: number;
}

/** C(n,n) = alpha A Aᵀ + beta C (or Aᵀ A with `trans`); both triangles of C are filled. */
export function syrk<T extends FloatArray>(a: T, c: T, o: SyrkOptions): void {
  const fn = "syrk";
  if (o === null || typeof o !== "object") throw argError(fn, "o", `expected an options object, got ${describe(o)}`);
  const n = checkInt(o.n, fn, "o.n"), k = checkInt(o.k, fn, "o.k");
  const trans = optBool(o.trans, fn, "o.trans");
  const alpha = o.alpha === undefined ? 1 : checkNumber(o.alpha, fn, "o.alpha");
  const beta = o.beta === undefined ? 0 : checkNumber(o.beta, fn, "o.beta");
  const av = checkFloat<FloatArray>(a, n * k, fn, "a", undefined, undefined, trans ? "k*n" : "n*k");
  checkFloat(c, n * n, fn, "c", av, "a", "n*n");
  checkNoOverlap(fn, "c", c, "a", a);
  native().syrk(a, c, n, k, trans, alpha, beta);
}

// ---------------------------------------------------------------------------------------------
// LAPACK (inputs are not modified; results are new arrays of the input's type)

function lapackFailure(fn: string, routine: string, info: number): DeltaEditError {
  return new DeltaEditError("E_NATIVE", `${fn}: LAPACK ${routine} failed (info = ${info})`, { context: { fn, info } });
}

/** Symmetric eigendecomposition: values ascending (n); vectors (n,n) with column j for values[j]. */
export function eigh<T extends FloatArray>(a: T, n: number): { values: T; vectors: T } {
  const fn = "eigh";
  checkInt(n, fn, "n");
  checkFloat<FloatArray>(a, n * n, fn, "a", undefined, undefined, "n*n");
  const values = alloc(a, n), vectors = alloc(a, n * n);
  if (n === 0) return { values, vectors };
  const info = native().eigh(a, n, values, vectors);
  if (info !== 0) throw lapackFailure(fn, "syevd", info);
  return { values, vectors };
}

/** Thin SVD, p = min(m,n): u (m,p), s (p) descending, vt (p,n). */
export function svd<T extends FloatArray>(a: T, m: number, n: number): { u: T; s: T; vt: T } {
  const fn = "svd";
  checkInt(m, fn, "m");
  checkInt(n, fn, "n");
  checkFloat<FloatArray>(a, m * n, fn, "a", undefined, undefined, "m*n");
  const p = Math.min(m, n);
  const u = alloc(a, m * p), s = alloc(a, p), vt = alloc(a, p * n);
  if (p === 0) return { u, s, vt };
  const info = native().svd(a, m, n, u, s, vt);
  if (info !== 0) throw lapackFailure(fn, "gesdd/gesvd", info);
  return { u, s, vt };
}

/** Lower Cholesky factor L (upper part zero) with A = L Lᵀ; throws E_NOT_PD naming the leading minor. */
export function cholesky<T extends FloatArray>(a: T, n: number): T {
  const fn = "cholesky";
  checkInt(n, fn, "n");
  checkFloat<FloatArray>(a, n * n, fn, "a", undefined, undefined, "n*n");
  const l = copy(a);
  if (n === 0) return l;
  const info = native().potrf(l, n);
  if (info > 0) {
    throw new DeltaEditError("E_NOT_PD", `${fn}: argument a is not positive definite (the leading minor of order ${info} is not)`, {
      context: { fn, minor: info },
    });
  }
  if (info < 0) throw lapackFailure(fn, "potrf", info);
  return l;
}

/** Solves (L Lᵀ) X = B for X (n,nrhs) given the Cholesky factor L (n,n). */
export function choleskySolve<T extends FloatArray>(l: T, b: T, n: number, nrhs: number): T {
  const fn = "choleskySolve";
  checkInt(n, fn, "n");
  checkInt(nrhs, fn, "nrhs");
  const lv = checkFloat<FloatArray>(l, n * n, fn, "l", undefined, undefined, "n*n");
  checkFloat(b, n * nrhs, fn, "b", lv, "l", "n*nrhs");
  const x = copy(b);
  if (n === 0 || nrhs === 0) return x;
  native().potrs(l, x, n, nrhs);
  return x;
}

export interface TriangularSolveOptions {
  lower: boolean;
  transpose?: boolean;
  unitDiagonal?: boolean;
}

/** Solves op(T) X = B, T (n,n) triangular, B (n,nrhs). Throws E_NATIVE on a zero diagonal. */
export function triangularSolve<T extends FloatArray>(t: T, b: T, n: number, nrhs: number, o: TriangularSolveOptions): T {
  const fn = "triangularSolve";
  checkInt(n, fn, "n");
  checkInt(nrhs, fn, "nrhs");
  if (o === null || typeof o !== "object") throw argError(fn, "o", `expected an options object, got ${describe(o)}`);
  const lower = checkBool(o.lower, fn, "o.lower");
  const transpose = optBool(o.transpose, fn, "o.transpose"), unit = optBool(o.unitDiagonal, fn, "o.unitDiagonal");
  const tv = checkFloat<FloatArray>(t, n * n, fn, "t", undefined, undefined, "n*n");
  checkFloat(b, n * nrhs, fn, "b", tv, "t", "n*nrhs");
  const x = copy(b);
  if (n === 0) return x;
  const zero = native().trsm(t, x, n, nrhs, lower, transpose, unit);
  if (zero !== 0) {
    throw new DeltaEditError("E_NATIVE", `${fn}: argument t is singular (t[${zero - 1},${zero - 1}] = 0)`, { context: { fn, index: zero - 1 } });
  }
  return x;
}

/** Solves A X = B (LU with partial pivoting); A (n,n), B (n,nrhs). Throws E_NATIVE if A is singular. */
export function solve<T extends FloatArray>(a: T, b: T, n: number, nrhs: number): T {
  const fn = "solve";
  checkInt(n, fn, "n");
  checkInt(nrhs, fn, "nrhs");
  const av = checkFloat<FloatArray>(a, n * n, fn, "a", undefined, undefined, "n*n");
  checkFloat(b, n * nrhs, fn, "b", av, "a", "n*nrhs");
  const x = copy(b);
  if (n === 0 || nrhs === 0) return x;
  const info = native().gesv(copy(a), x, n, nrhs);
  if (info > 0) {
    throw new DeltaEditError("E_NATIVE", `${fn}: argument a is singular (U[${info - 1},${info - 1}] = 0 in its LU factorization)`, {
      context: { fn, index: info - 1 },
    });
  }
  if (info < 0) throw lapackFailure(fn, "gesv", info);
  return x;
}

// ---------------------------------------------------------------------------------------------
// Fused float32 kernels. Backward kernels overwrite input gradients and accumulate (+=) into
// weight gradients, which may be null to skip them.

/** x, out (rows,C); weight, bias (C); mean, rstd (rows) saved for backward. */
export function layerNormForward(x: Float32Array, weight: Float32Array, bias: Float32Array, out: Float32Array, mean: Float32Array,
  rstd: Float32Array, rows: number, C: number, eps: number): void {
  const fn = "layerNormForward";
  checkInt(rows, fn, "rows");
  checkInt(C, fn, "C");
  checkNumber(eps, fn, "eps");
  checkF32(x, rows * C, fn, "x", "rows*C");
  checkF32(weight, C, fn, "weight", "C");
  checkF32(bias, C, fn, "bias", "C");
  checkF32(out, rows * C, fn, "out", "rows*C");
  checkF32(mean, rows, fn, "mean", "rows");
  checkF32(rstd, rows, fn, "rstd", "rows");
  native().layerNormForward(x, weight, bias, out, mean, rstd, rows, C, eps);
}

/** dx (rows,C) overwritten; dweight, dbias (C) accumulated. */
export function layerNormBackward(dout: Float32Array, x: Float32Array, weight: Float32Array, mean: Float32Array, rstd: Float32Array,
  dx: Float32Array, dweight: Float32Array | null, dbias: Float32Array | null, rows: number, C: number): void {
  const fn = "layerNormBackward";
  checkInt(rows, fn, "rows");
  checkInt(C, fn, "C");
  checkF32(dout, rows * C, fn, "dout", "rows*C");
  checkF32(x, rows * C, fn, "x", "rows*C");
  checkF32(weight, C, fn, "weight", "C");
  checkF32(mean, rows, fn, "mean", "rows");
  checkF32(rstd, rows, fn, "rstd", "rows");
  checkF32(dx, rows * C, fn, "dx", "rows*C");
  checkOrNull(dweight, C, fn, "dweight", "C");
  checkOrNull(dbias, C, fn, "dbias", "C");
  for (const [name, g] of [["dweight", dweight], ["dbias", dbias]] as const) {
    checkNoOverlap(fn, name, g, "dout", dout);
    checkNoOverlap(fn, name, g, "x", x);
    checkNoOverlap(fn, name, g, "dx", dx);
  }
  checkNoOverlap(fn, "dx", dx, "x", x);
  native().layerNormBackward(dout, x, weight, mean, rstd, dx, dweight, dbias, rows, C);
}

/** out = x * rstd * weight, rstd = 1/sqrt(mean(x²) + eps). x, out (rows,C); rstd (rows). */
export function rmsNormForward(x: Float32Array, weight: Float32Array, out: Float32Array, rstd: Float32Array, rows: number, C: number,
  eps: number): void {
  const fn = "rmsNormForward";
  checkInt(rows, fn, "rows");
  checkInt(C, fn, "C");
  checkNumber(eps, fn, "eps");
  checkF32(x, rows * C, fn, "x", "rows*C");
  checkF32(weight, C, fn, "weight", "C");
  checkF32(out, rows * C, fn, "out", "rows*C");
  checkF32(rstd, rows, fn, "rstd", "rows");
  native().rmsNormForward(x, weight, out, rstd, rows, C, eps);
}

export function rmsNormBackward(dout: Float32Array, x: Float32Array, weight: Float32Array, rstd: Float32Array, dx: Float32Array,
  dweight: Float32Array | null, rows: number, C: number): void {
  const fn = "rmsNormBackward";
  checkInt(rows, fn, "rows");
  checkInt(C, fn, "C");
  checkF32(dout, rows * C, fn, "dout", "rows*C");
  checkF32(x, rows * C, fn, "x", "rows*C");
  checkF32(weight, C, fn, "weight", "C");
  checkF32(rstd, rows, fn, "rstd", "rows");
  checkF32(dx, rows * C, fn, "dx", "rows*C");
  checkOrNull(dweight, C, fn, "dweight", "C");
  checkNoOverlap(fn, "dweight", dweight, "dout", dout);
  checkNoOverlap(fn, "dweight", dweight, "x", x);
  checkNoOverlap(fn, "dweight", dweight, "dx", dx);
  checkNoOverlap(fn, "dx", dx, "x", x);
  native().rmsNormBackward(dout, x, weight, rstd, dx, dweight, rows, C);
}

/** GELU, tanh approximation (GPT-2 gelu_new). In place allowed (out === x). */
export function geluForward(x: Float32Array, out: Float32Array, n: number): void {
  const fn = "geluForward";
  checkInt(n, fn, "n");
  checkF32(x, n, fn, "x", "n");
  checkF32(out, n, fn, "out", "n");
  native().geluForward(x, out, n);
}

export function geluBackward(x: Float32Array, dout: Float32Array, dx: Float32Array, n: number): void {
  const fn = "geluBackward";
  checkInt(n, fn, "n");
  checkF32(x, n, fn, "x", "n");
  checkF32(dout, n, fn, "dout", "n");
  checkF32(dx, n, fn, "dx", "n");
  native().geluBackward(x, dout, dx, n);
}

/** out = silu(gate) * up. */
export function swigluForward(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): void {
  const fn = "swigluForward";
  checkInt(n, fn, "n");
  checkF32(gate, n, fn, "gate", "n");
  checkF32(up, n, fn, "up", "n");
  checkF32(out, n, fn, "out", "n");
  native().swigluForward(gate, up, out, n);
}

export function swigluBackward(gate: Float32Array, up: Float32Array, dout: Float32Array, dgate: Float32Array, dup: Float32Array,
  n: number): void {
  const fn = "swigluBackward";
  checkInt(n, fn, "n");
  checkF32(gate, n, fn, "gate", "n");
  checkF32(up, n, fn, "up", "n");
  checkF32(dout, n, fn, "dout", "n");
  checkF32(dgate, n, fn, "dgate", "n");
  checkF32(dup, n, fn, "dup", "n");
  checkNoOverlap(fn, "dgate", dgate, "dup", dup);
  checkNoOverlap(fn, "dgate", dgate, "up", up);
  checkNoOverlap(fn, "dup", dup, "gate", gate);
  native().swigluBackward(gate, up, dout, dgate, dup, n);
}

/** Row-wise max-subtracted softmax; x, out (rows, cols). */
export function softmaxForward(x: Float32Array, out: Float32Array, rows: number, cols: number): void {
  const fn = "softmaxForward";
  checkInt(rows, fn, "rows");
  checkInt(cols, fn, "cols");
  checkF32(x, rows * cols, fn, "x", "rows*cols");
  checkF32(out, rows * cols, fn, "out", "rows*cols");
  native().softmaxForward(x, out, rows, cols);
}

/** Row-wise log-softmax; x, out (rows, cols). */
export function logSoftmaxForward(x: Float32Array, out: Float32Array, rows: number, cols: number): void {
  const fn = "logSoftmaxForward";
  checkInt(rows, fn, "rows");
  checkInt(cols, fn, "cols");
  checkF32(x, rows * cols, fn, "x", "rows*cols");
  checkF32(out, rows * cols, fn, "out", "rows*cols");
  native().logSoftmaxForward(x, out, rows, cols);
}

function checkRope(fn: string, xName: string, x: Float32Array, cos: Float32Array, sin: Float32Array, positions: Int32Array,
  rows: number, nHeads: number, headSize: number): number {
  checkInt(rows, fn, "rows");
  checkInt(nHeads, fn, "nHeads");
  checkInt(headSize, fn, "headSize");
  if (headSize % 2 !== 0) throw argError(fn, "headSize", `expected an even number, got ${headSize}`);
  const h = headSize / 2;
  checkF32(x, rows * nHeads * headSize, fn, xName, "rows*nHeads*headSize");
  if (!(cos instanceof Float32Array)) throw argError(fn, "cos", `expected Float32Array (maxPos, headSize/2), got ${describe(cos)}`);
  if (h > 0 && cos.length % h !== 0) throw argError(fn, "cos", `expected a length that is a multiple of headSize/2 = ${h}, got ${cos.length}`);
  const maxPos = h > 0 ? cos.length / h : 0;
  checkF32(sin, cos.length, fn, "sin", "the length of cos");
  if (!(positions instanceof Int32Array) || positions.length !== rows) {
    throw argError(fn, "positions", `expected Int32Array of length ${rows} (rows), got ${describe(positions)}`);
  }
  if (h > 0) {
    for (let r = 0; r < rows; r++) {
      const p = positions[r]!;
      if (p < 0 || p >= maxPos) throw argError(fn, "positions", `element ${r} is ${p}, expected in [0, ${maxPos}) (rows of cos)`);
    }
  }
  return maxPos;
}

/** In place on x (rows, nHeads, headSize); rotate-half convention; cos, sin (maxPos, headSize/2). */
export function ropeForward(x: Float32Array, cos: Float32Array, sin: Float32Array, positions: Int32Array, rows: number,
  nHeads: number, headSize: number): void {
  const maxPos = checkRope("ropeForward", "x", x, cos, sin, positions, rows, nHeads, headSize);
  if (headSize === 0) return;
  native().ropeForward(x, cos, sin, positions, rows, nHeads, headSize, maxPos);
}

/** In place on dx: the transpose rotation of ropeForward. */
export function ropeBackward(dx: Float32Array, cos: Float32Array, sin: Float32Array, positions: Int32Array, rows: number,
  nHeads: number, headSize: number): void {
  const maxPos = checkRope("ropeBackward", "dx", dx, cos, sin, positions, rows, nHeads, headSize);
  if (headSize === 0) return;
  native().ropeBackward(dx, cos, sin, positions, rows, nHeads, headSize, maxPos);
}

// ---------------------------------------------------------------------------------------------
// Attention

export interface AttentionShape {
  B: number;
  T: number;
  Tk: number;
  nHeads: number;
  nKvHeads: number;
  headSize: number;
  qOffset?: number; // absolute position of query 0 (KV-cache decoding); default Tk - T
  keyMask?: Uint8Array; // (B, Tk), 1 = real token, 0 = padding; default all 1
  qRowStride?: number; // default nHeads*headSize
  qBatchStride?: number; // default T*qRowStride
  kRowStride?: number; // default nKvHeads*headSize
  kBatchStride?: number; // default Tk*kRowStride
  vRowStride?: number;
  vBatchStride?: number;
}

/** AttentionShape with every default filled in and checked. */
export interface ResolvedAttentionShape {
  B: number; T: number; Tk: number; NH: number; NKV: number; HS: number; qOffset: number;
  keyMask: Uint8Array | null;
  qRS: number; qBS: number; kRS: number; kBS: number; vRS: number; vBS: number;
  qLen: number; kLen: number; vLen: number; // elements spanned by q, k, v
}

function stridedSpan(n0: number, s0: number, n1: number, s1: number, width: number): number {
  return n0 === 0 || n1 === 0 || width === 0 ? 0 : (n0 - 1) * s0 + (n1 - 1) * s1 + width;
}

export function resolveAttentionShape(o: AttentionShape, fn: string): ResolvedAttentionShape {
  if (o === null || typeof o !== "object") throw argError(fn, "o", `expected an AttentionShape object, got ${describe(o)}`);
  const B = checkInt(o.B, fn, "o.B"), T = checkInt(o.T, fn, "o.T"), Tk = checkInt(o.Tk, fn, "o.Tk");
  const NH = checkInt(o.nHeads, fn, "o.nHeads"), NKV = checkInt(o.nKvHeads, fn, "o.nKvHeads");
  const HS = checkInt(o.headSize, fn, "o.headSize");
  if (NKV === 0 ? NH !== 0 : NH % NKV !== 0) throw argError(fn, "o.nKvHeads", `must divide nHeads = ${NH}, got ${NKV}`);
  const qOffset = o.qOffset === undefined ? Tk - T : checkSignedInt(o.qOffset, fn, "o.qOffset");
  const stride = (v: number | undefined, def: number, name: string, min: number): number => {
    const s = v === undefined ? def : checkInt(v, fn, name);
    if (s < min) throw argError(fn, name, `must be >= ${min}, got ${s}`);
    return s;
  };
  const qRS = stride(o.qRowStride, NH * HS, "o.qRowStride", NH * HS);
  const qBS = stride(o.qBatchStride, T * qRS, "o.qBatchStride", B > 1 ? T * qRS : 0);
  const kRS = stride(o.kRowStride, NKV * HS, "o.kRowStride", NKV * HS);
  const kBS = stride(o.kBatchStride, Tk * kRS, "o.kBatchStride", B > 1 ? Tk * kRS : 0);
  const vRS = stride(o.vRowStride, NKV * HS, "o.vRowStride", NKV * HS);
  const vBS = stride(o.vBatchStride, Tk * vRS, "o.vBatchStride", B > 1 ? Tk * vRS : 0);
  let keyMask: Uint8Array | null = null;
  if (o.keyMask !== undefined) {
    if (!(o.keyMask instanceof Uint8Array) || o.keyMask.length !== B * Tk) {
      throw argError(fn, "o.keyMask", `expected Uint8Array of length ${B * Tk} (B*Tk), got ${describe(o.keyMask)}`);
    }
    keyMask = o.keyMask;
  }
  return {
    B, T, Tk, NH, NKV, HS, qOffset, keyMask, qRS, qBS, kRS, kBS, vRS, vBS,
    qLen: stridedSpan(B, qBS, T, qRS, NH * HS),
    kLen: stridedSpan(B, kBS, Tk, kRS, NKV * HS),
    vLen: stridedSpan(B, vBS, Tk, vRS, NKV * HS),
  };
}

/**
 * Causal GQA attention. q (B,T,NH,HS), k/v (B,Tk,NKV,HS) (strided per `o`); out (B,T,NH,HS)
 * contiguous; probs (B,NH,T,Tk) contiguous or null (saved for backward).
 */
export function attentionForward(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, probs: Float32Array | null,
  o: AttentionShape): void {
  const fn = "attentionForward";
  const s = resolveAttentionShape(o, fn);
  checkF32(q, s.qLen, fn, "q", "strided (B,T,nHeads,headSize)", true);
  checkF32(k, s.kLen, fn, "k", "strided (B,Tk,nKvHeads,headSize)", true);
  checkF32(v, s.vLen, fn, "v", "strided (B,Tk,nKvHeads,headSize)", true);
  checkF32(out, s.B * s.T * s.NH * s.HS, fn, "out", "B*T*nHeads*headSize");
  checkOrNull(probs, s.B * s.NH * s.T * s.Tk, fn, "probs", "B*nHeads*T*Tk");
  for (const [name, w] of [["out", out], ["probs", probs]] as const) {
    checkNoOverlap(fn, name, w, "q", q);
    checkNoOverlap(fn, name, w, "k", k);
    checkNoOverlap(fn, name, w, "v", v);
  }
  checkNoOverlap(fn, "out", out, "probs", probs);
  native().attentionForward(q, k, v, out, probs, s.keyMask, s.B, s.T, s.Tk, s.NH, s.NKV, s.HS, s.qOffset,
    s.qRS, s.qBS, s.kRS, s.kBS, s.vRS, s.vBS);
}

/**
 * Backward of attentionForward given its probs. dq/dk/dv use the strides of q/k/v and are
 * overwritten at the positions they address (they may be views into one packed buffer); dk/dv are
 * summed over the query heads sharing a kv head.
 */
export function attentionBackward(dout: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array,
  dq: Float32Array, dk: Float32Array, dv: Float32Array, o: AttentionShape): void {
  const fn = "attentionBackward";
  const s = resolveAttentionShape(o, fn);
  checkF32(dout, s.B * s.T * s.NH * s.HS, fn, "dout", "B*T*nHeads*headSize");
  checkF32(q, s.qLen, fn, "q", "strided (B,T,nHeads,headSize)", true);
  checkF32(k, s.kLen, fn, "k", "strided (B,Tk,nKvHeads,headSize)", true);
  checkF32(v, s.vLen, fn, "v", "strided (B,Tk,nKvHeads,headSize)", true);
  checkF32(probs, s.B * s.NH * s.T * s.Tk, fn, "probs", "B*nHeads*T*Tk");
  checkF32(dq, s.qLen, fn, "dq", "strided like q", true);
  checkF32(dk, s.kLen, fn, "dk", "strided like k", true);
  checkF32(dv, s.vLen, fn, "dv", "strided like v", true);
  for (const [name, w] of [["dq", dq], ["dk", dk], ["dv", dv]] as const) {
    for (const [rName, r] of [["dout", dout], ["q", q], ["k", k], ["v", v], ["probs", probs]] as const) {
      checkNoOverlap(fn, name, w, rName, r);
    }
  }
  native().attentionBackward(dout, q, k, v, probs, dq, dk, dv, s.keyMask, s.B, s.T, s.Tk, s.NH, s.NKV, s.HS, s.qOffset,
    s.qRS, s.qBS, s.kRS, s.kBS, s.vRS, s.vBS);
}
