/**
 * Loader for the native addon `deltaedit_native` (native/*.cc).
 *
 * Before the addon (and with it OpenBLAS) is loaded, `OPENBLAS_CORETYPE` is chosen from the
 * CPU flags when the user has not set it: Debian's OpenBLAS 0.3.21 misdetects recent AMD Zen
 * CPUs and falls back to generic kernels (~60 vs ~290 GFLOP/s sgemm on 2 cores). OpenBLAS reads
 * the variable when its shared library is initialised, i.e. at the addon's dlopen, and Node's
 * `process.env` assignment calls setenv(3). A value already set is never overridden.
 *
 * Likewise, when neither `GOMP_SPINCOUNT` nor `OMP_WAIT_POLICY` is set, `GOMP_SPINCOUNT` is set to
 * `OMP_SPIN_DEFAULT` before libgomp loads: with libgomp's default (300000 spins) its idle workers
 * keep spinning while OpenBLAS's workers run the next gemm, and on a 2-core machine an
 * alternating layerNorm → gemm → gelu sequence ran 3-4x slower than its parts.
 *
 * Resolution order (better-sqlite3 style): `$DELTAEDIT_NATIVE` → `prebuilds/<platform>-<arch>/
 * deltaedit_native.node` → `build/Release/deltaedit_native.node` → `build/Debug/...`, relative to
 * the package root (the nearest directory above this file holding package.json + binding.gyp).
 * The memoised addon is the only module-level mutable state of src/.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { DeltaEditError, isDeltaEditError } from "../errors.js";

type F = Float32Array;
type FF = Float32Array | Float64Array;

/**
 * The raw native surface (native/addon.cc export table). Argument order is the C++ one; only
 * `ops.ts` calls these. Arrays are passed without copying. Dimension legend: see docs/kernels.md.
 */
export interface NativeAddon {
  setThreads(n: number): void;
  getThreads(): number;
  setKernelThreads(n: number): void;
  getKernelThreads(): number;
  blasInfo(): { config: string; coreName: string; blasThreads: number; threads: number; kernelThreads: number };
  /** C = alpha op(A) op(B) + beta C, `batch` times with element strides; `split`: allow the skinny column split (native/blas.cc). */
  gemm(a: FF, b: FF, c: FF, m: number, n: number, k: number, transA: boolean, transB: boolean, alpha: number, beta: number,
    lda: number, ldb: number, ldc: number, batch: number, strideA: number, strideB: number, strideC: number, split: boolean): void;
  syrk(a: FF, c: FF, n: number, k: number, trans: boolean, alpha: number, beta: number): void;
  /** Returns LAPACK info. */
  eigh(a: FF, n: number, values: FF, vectors: FF): number;
  svd(a: FF, m: number, n: number, u: FF, s: FF, vt: FF): number;
  /** In place on l (holds A on entry); returns info (> 0: leading minor of that order not PD). */
  potrf(l: FF, n: number): number;
  /** In place on x (holds B on entry). */
  potrs(l: FF, x: FF, n: number, nrhs: number): void;
  /** In place on x; returns 0 or i+1 for a zero diagonal t[i,i]. */
  trsm(t: FF, x: FF, n: number, nrhs: number, lower: boolean, transpose: boolean, unitDiagonal: boolean): number;
  /** In place on a (LU) and x; returns info. */
  gesv(a: FF, x: FF, n: number, nrhs: number): number;
  layerNormForward(x: F, weight: F, bias: F, out: F, mean: F, rstd: F, rows: number, C: number, eps: number): void;
  layerNormBackward(dout: F, x: F, weight: F, mean: F, rstd: F, dx: F, dweight: F | null, dbias: F | null, rows: number, C: number): void;
  rmsNormForward(x: F, weight: F, out: F, rstd: F, rows: number, C: number, eps: number): void;
  rmsNormBackward(dout: F, x: F, weight: F, rstd: F, dx: F, dweight: F | null, rows: number, C: number): void;
  geluForward(x: F, out: F, n: number): void;
  geluBackward(x: F, dout: F, dx: F, n: number): void;
  swigluForward(gate: F, up: F, out: F, n: number): void;
  swigluBackward(gate: F, up: F, dout: F, dgate: F, dup: F, n: number): void;
  softmaxForward(x: F, out: F, rows: number, cols: number): void;
  logSoftmaxForward(x: F, out: F, rows: number, cols: number): void;
  ropeForward(x: F, cos: F, sin: F, positions: Int32Array, rows: number, nHeads: number, headSize: number, maxPos: number): void;
  ropeBackward(dx: F, cos: F, sin: F, positions: Int32Array, rows: number, nHeads: number, headSize: number, maxPos: number): void;
  attentionForward(q: F, k: F, v: F, out: F, probs: F | null, keyMask: Uint8Array | null,
    B: number, T: number, Tk: number, NH: number, NKV: number, HS: number, qOffset: number,
    qRS: number, qBS: number, kRS: number, kBS: number, vRS: number, vBS: number): void;
  attentionBackward(dout: F, q: F, k: F, v: F, probs: F, dq: F, dk: F, dv: F, keyMask: Uint8Array | null,
    B: number, T: number, Tk: number, NH: number, NKV: number, HS: number, qOffset: number,
    qRS: number, qBS: number, kRS: number, kBS: number, vRS: number, vBS: number): void;
  // skinny.cc: y (P, N) (+)= x (P, K)·Wᵀ; dx (P, K) (+)= dy (P, N)·W — W (N, K) row-major, P small;
  // isa: "auto" | "avx512" | "avx2" | "portable"
  skinnyIsa(): string;
  skinnyGemmNT(x: F, w: F, y: F, P: number, N: number, K: number, accumulate: boolean, isa: string): void;
  skinnyGemmNN(dy: F, w: F, dx: F, P: number, N: number, K: number, accumulate: boolean, isa: string): void;
  softmaxHead(h: F, w: F, logits: F, target: Int32Array, nllWeight: F, klWeight: F, refLogp: F | null, klShift: F, dh: F, lse: F, kl: F, P: number, V: number, C: number): void;
}

/** Where OPENBLAS_CORETYPE came from: the environment, chosen from the CPU features, or left to OpenBLAS. */
export type CoreTypeSource = "env" | "auto" | "default";

export interface LoadedNative {
  addon: NativeAddon;
  /** Where the loaded file was found. */
  path: string;
  coreTypeSource: CoreTypeSource;
}

const INSTALL_HINT =
  "Possible solutions:\n" +
  "  - install OpenBLAS and LAPACKE: apt-get install libopenblas-dev liblapacke-dev\n" +
  "  - build the addon: npm run build:native\n" +
  "  - or point DELTAEDIT_NATIVE at a built deltaedit_native.node";

/** libgomp spin iterations before an idle OpenMP worker sleeps (see the file comment). */
const OMP_SPIN_DEFAULT = "3000";

/** The only module-level mutable state allowed in src/: the memoised addon. */
let loaded: LoadedNative | undefined;

/** Choose OPENBLAS_CORETYPE from /proc/cpuinfo unless the user set it. Must run before dlopen. */
export function chooseCoreType(env: NodeJS.ProcessEnv, cpuinfo: string | undefined): { source: CoreTypeSource; value?: string } {
  const preset = env["OPENBLAS_CORETYPE"];
  if (preset !== undefined && preset !== "") return { source: "env", value: preset };
  if (cpuinfo === undefined) return { source: "default" };
  const line = cpuinfo.split("\n").find((l) => /^flags\s*:/.test(l));
  if (line === undefined) return { source: "default" };
  const flags = new Set(line.slice(line.indexOf(":") + 1).trim().split(/\s+/));
  if (["avx512f", "avx512bw", "avx512vl", "avx512dq"].every((f) => flags.has(f))) return { source: "auto", value: "SkylakeX" };
  if (flags.has("avx2") && flags.has("fma")) return { source: "auto", value: "Haswell" };
  return { source: "default" };
}

function readCpuinfo(): string | undefined {
  if (process.platform !== "linux") return undefined;
  try {
    return readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return undefined;
  }
}

/** The package root: nearest directory above `from` with package.json and binding.gyp (else package.json). */
export function findPackageRoot(from: string): string {
  let firstWithPackageJson: string | undefined;
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) {
      if (existsSync(join(dir, "binding.gyp"))) return dir;
      firstWithPackageJson ??= dir;
    }
    if (dirname(dir) === dir) break;
  }
  if (firstWithPackageJson !== undefined) return firstWithPackageJson;
  throw new DeltaEditError("E_NATIVE_LOAD", `cannot find the deltaedit package root (no package.json above ${from})`, {
    hint: INSTALL_HINT,
  });
}

/** Candidate addon paths in resolution order. */
export function candidatePaths(root: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const paths: string[] = [];
  const explicit = env["DELTAEDIT_NATIVE"];
  if (explicit !== undefined && explicit !== "") paths.push(resolve(explicit));
  paths.push(join(root, "prebuilds", `${process.platform}-${process.arch}`, "deltaedit_native.node"));
  paths.push(join(root, "build", "Release", "deltaedit_native.node"));
  paths.push(join(root, "build", "Debug", "deltaedit_native.node"));
  return paths;
}

const ERROR_CODES = new Set(["E_ARG", "E_NATIVE", "E_NOT_PD"]);

/** Wrap every native function so that its coded errors surface as DeltaEditError. */
function wrapErrors(raw: Record<string, unknown>): NativeAddon {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(raw)) {
    if (typeof fn !== "function") continue;
    const f = fn as (...args: unknown[]) => unknown;
    out[name] = (...args: unknown[]): unknown => {
      try {
        return f(...args);
      } catch (e) {
        if (isDeltaEditError(e)) throw e;
        const code = (e as { code?: unknown } | null)?.code;
        if (typeof code === "string" && ERROR_CODES.has(code)) {
          throw new DeltaEditError(code as "E_ARG", (e as Error).message, { cause: e });
        }
        throw e;
      }
    };
  }
  return out as unknown as NativeAddon;
}

/** Load (once) and return the native addon; throws E_NATIVE_LOAD listing every path tried. */
export function loadNative(): LoadedNative {
  if (loaded !== undefined) return loaded;
  const choice = chooseCoreType(process.env, readCpuinfo());
  if (choice.source === "auto" && choice.value !== undefined) process.env["OPENBLAS_CORETYPE"] = choice.value;
  if (process.env["GOMP_SPINCOUNT"] === undefined && process.env["OMP_WAIT_POLICY"] === undefined) {
    process.env["GOMP_SPINCOUNT"] = OMP_SPIN_DEFAULT;
  }
  // The fused kernels run on one thread unless OMP_NUM_THREADS says otherwise: they are small and
  // memory-bound, and on a few cores their OpenMP workers fight OpenBLAS's spinning workers
  // (measured on 2 cores: a GPT-2-small target-vector step 375 ms with 2 kernel threads, 215 ms with 1).
  // Set through the addon after loading, not through OMP_NUM_THREADS: OpenBLAS reads that variable
  // too and would drop to one BLAS thread.
  const oneKernelThread = process.env["OMP_NUM_THREADS"] === undefined;
  const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const path of candidatePaths(root)) {
    if (!existsSync(path)) {
      tried.push(`  ${path}: not found`);
      continue;
    }
    try {
      const raw = require(path) as Record<string, unknown>;
      loaded = { addon: wrapErrors(raw), path, coreTypeSource: choice.source };
      if (oneKernelThread) loaded.addon.setKernelThreads(1);
      return loaded;
    } catch (e) {
      tried.push(`  ${path}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  throw new DeltaEditError("E_NATIVE_LOAD", `cannot load the native addon deltaedit_native.node; tried:\n${tried.join("\n")}`, {
    hint: INSTALL_HINT,
    context: { tried },
  });
}

/** The loaded addon's functions. */
export function native(): NativeAddon {
  return (loaded ?? loadNative()).addon;
}
