/**
 * Child process of the benchmark's memory section (spawned by bench/_memory.ts, one per shape, so
 * that its peak RSS is its own). It holds what a DeltaEdit method keeps across edits and feeds it
 * synthetic edits the way `DeltaEdit.applyBatch` does, without a model:
 *   - per edit layer a null-space projector P (here a synthetic one of rank r = d_in/2, built with
 *     `NullSpaceProjector.deserialize` instead of an eigendecomposition: same arrays, same shapes)
 *     and an exact incremental solver (AlphaEditSolver): per batch `solve(K)` then `commit`;
 *   - ΔW_acc (C, d_in) += R Xᵀ at the z-layer (allocated by the first batch);
 *   - the noise monitor: per request n = ΔW_acc κ, ν = ‖n‖ with the pre-batch ΔW_acc, `observe(ν)`.
 * (The per-batch influence projector P_δ of a triggered request is transient, not state: left out.)
 * Keys, residuals and κ are Gaussian. Prints one JSON line: RSS and state size at checkpoints.
 *
 * Usage: node memory.child.js '{"C":768,"dIn":3072,"layers":5,"edits":1000,"batch":10}'
 * Dimension legend: C = hidden width, dIn = d_ff, n = requests in a batch, T = keys committed.
 */
import fs from "node:fs";
import * as ops from "../src/kernels/ops.js";
import { deltaEditDefaults } from "../src/edit/methods/deltaedit.js";
import { NoiseMonitor, noiseVector } from "../src/edit/noise.js";
import { defaultNullSpaceOptions, NullSpaceProjector } from "../src/edit/projector.js";
import { AlphaEditSolver } from "../src/edit/solve.js";
import { Rng } from "../src/util/rng.js";

export interface MemoryArgs {
  C: number;
  dIn: number;
  layers: number;
  edits: number;
  batch: number;
  threads: number;
}

export interface MemoryPoint {
  edits: number;
  rss: number; // bytes, VmRSS after a GC
  hwm: number; // bytes, VmHWM (peak RSS so far)
  stateBytes: number; // bytes held by the state's arrays (projectors, solvers, ΔW_acc)
  keyCount: number; // T per layer
  formulation: string;
}

export interface MemoryResult {
  args: MemoryArgs;
  rank: number; // r of each synthetic projector
  baselineRss: number; // before any state exists
  points: MemoryPoint[];
  seconds: number;
}

function procStatus(): { rss: number; hwm: number } {
  const s = fs.readFileSync("/proc/self/status", "utf8");
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(s);
    return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
  };
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

function settle(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

/** P = U0 U0ᵀ with U0 (dIn, r) = columns e_0, e_2, e_4, … (r ≤ dIn/2): a valid projector of rank r. */
function syntheticProjector(dIn: number, r: number): NullSpaceProjector {
  const basis = new Float32Array(dIn * r); // (dIn, r)
  for (let j = 0; j < r; j++) basis[2 * j * r + j] = 1;
  const eigenvalues = Float32Array.from({ length: dIn }, (_, i) => (i < r ? 1e-3 : 1)); // (dIn) ascending
  return NullSpaceProjector.deserialize({
    meta: {
      format: "deltaedit.nullspace-projector",
      version: 2,
      dIn,
      rank: r,
      ...defaultNullSpaceOptions,
      basisKind: "nullspace",
      hasNullBasis: true,
      cut: { rule: "absolute", applied: "absolute", effectiveThreshold: defaultNullSpaceOptions.nullspaceThreshold, lower: 1e-3, upper: 1, ratio: null, windowBestRatio: null, windowRunnerUpRatio: null, floor: 0 },
    },
    arrays: { basis, eigenvalues },
  });
}

function gaussian(rng: Rng, n: number, scale: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.normal() * scale;
  return x;
}

function run(a: MemoryArgs): MemoryResult {
  ops.setThreads(a.threads);
  const t0 = performance.now();
  settle();
  const baselineRss = procStatus().rss;
  const { C, dIn } = a;
  const r = Math.floor(dIn / 2);
  const rng = new Rng(5);
  const projectors = Array.from({ length: a.layers }, () => syntheticProjector(dIn, r));
  const solvers = projectors.map((p) => new AlphaEditSolver(p, { l2: 1 }));
  const monitor = new NoiseMonitor({ warmupRequests: deltaEditDefaults.warmupRequests, emaDecay: deltaEditDefaults.emaDecay, varMultiplier: deltaEditDefaults.varMultiplier, space: deltaEditDefaults.space });
  let deltaWAcc: Float32Array | null = null; // (C, dIn) ΔW_acc
  const points: MemoryPoint[] = [];
  const checkpoint = (edits: number): void => {
    settle();
    const { rss, hwm } = procStatus();
    let stateBytes = deltaWAcc?.byteLength ?? 0;
    for (const p of projectors) {
      const s = p.serialize();
      stateBytes += s.arrays.basis.byteLength + s.arrays.eigenvalues.byteLength + (s.arrays.nullBasis?.byteLength ?? 0);
    }
    for (const s of solvers) {
      const x = s.serialize().arrays;
      stateBytes += (x.projKeysT?.byteLength ?? 0) + (x.gramFactor?.byteLength ?? 0) + (x.primalFactor?.byteLength ?? 0);
    }
    points.push({ edits, rss, hwm, stateBytes, keyCount: solvers[0]!.pastKeyCount, formulation: solvers[0]!.currentFormulation });
  };
  const marks = new Set([0, Math.min(a.batch, a.edits), Math.floor(a.edits / 4), Math.floor(a.edits / 2), a.edits]);
  checkpoint(0);
  let done = 0;
  while (done < a.edits) {
    const n = Math.min(a.batch, a.edits - done);
    // noise monitor: every request sees the pre-batch ΔW_acc (ODD-5)
    for (let j = 0; j < n; j++) {
      const req = monitor.beginRequest();
      if (deltaWAcc) monitor.observe(req, noiseVector(deltaWAcc, gaussian(rng, dIn, 0.05), C, dIn).nu);
    }
    let xz: Float32Array | null = null; // (dIn, n) X at the z-layer (the last edit layer)
    for (const s of solvers) {
      const step = s.solve(gaussian(rng, dIn * n, 0.05), n); // keys (dIn, n)
      s.commit(step);
      xz = step.X;
    }
    const first = deltaWAcc === null;
    deltaWAcc ??= new Float32Array(C * dIn);
    ops.gemm(gaussian(rng, C * n, 0.1), xz!, deltaWAcc, { m: C, n: dIn, k: n, transB: true, beta: first ? 0 : 1 }); // += R Xᵀ, R (C, n)
    done += n;
    if (marks.has(done)) checkpoint(done);
  }
  return { args: a, rank: r, baselineRss, points, seconds: (performance.now() - t0) / 1000 };
}

const arg = process.argv[2];
if (arg === undefined) throw new Error("memory.child: expected one JSON argument {C, dIn, layers, edits, batch, threads}");
console.log(JSON.stringify(run(JSON.parse(arg) as MemoryArgs)));
