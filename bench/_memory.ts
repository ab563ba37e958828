/**
 * Memory section of the benchmark: the RSS of a DeltaEdit method's cross-edit state after 0 and
 * 1 000 edits, measured in a child process per shape (bench/memory.child.ts) so that its peak
 * RSS (VmHWM) is its own. Shows the growth per edit is O(d_in) per edit layer (the solver's
 * projected key, plus one row of its T × T Cholesky factor), not O(d²).
 *
 * Dimension legend: C = hidden width, dIn = d_ff, T = keys committed per layer, r = rank of P.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { MiB } from "./_common.js";
import type { MemoryArgs, MemoryResult } from "./memory.child.js";

const mib = (b: number): string => (b / MiB).toFixed(1);

function runChild(a: MemoryArgs): MemoryResult {
  const child = path.join(path.dirname(fileURLToPath(import.meta.url)), "memory.child.js");
  // large arrays from mmap, so that freed ones leave the RSS at once (glibc's adaptive threshold would keep them in the heap)
  const env = { ...process.env, MALLOC_MMAP_THRESHOLD_: "131072" };
  const r = spawnSync(process.execPath, ["--expose-gc", child, JSON.stringify(a)], { encoding: "utf8", maxBuffer: 1 << 20, env });
  if (r.status !== 0) throw new Error(`memory.child exited with ${r.status ?? r.signal}: ${r.stderr}`);
  const line = r.stdout.trim().split("\n").pop()!;
  return JSON.parse(line) as MemoryResult;
}

export function memoryHeader(): void {
  console.log("DeltaEdit state (5 edit layers: projector + exact incremental solver each; ΔW_acc at the z-layer; noise monitor) fed synthetic edits in a child process (RSS after a GC; MALLOC_MMAP_THRESHOLD_=131072):");
  console.log("| shape | edits | keys per layer T (solver form) | state arrays (MiB) | RSS (MiB) | peak RSS (MiB) |");
  console.log("|---|---|---|---|---|---|");
}

/** Runs one shape; prints its rows and returns the summary line printed under the table. */
export function memoryBench(label: string, a: MemoryArgs): string {
  const res = runChild(a);
  for (const p of res.points) {
    console.log(`| ${label} | ${p.edits} | ${p.keyCount} (${p.formulation}) | ${mib(p.stateBytes)} | ${mib(p.rss)} | ${mib(p.hwm)} |`);
  }
  const p0 = res.points[0]!;
  const p1 = res.points[1]!; // after the first batch: ΔW_acc exists
  const pn = res.points[res.points.length - 1]!;
  const span = pn.edits - p1.edits;
  const perEditState = (pn.stateBytes - p1.stateBytes) / span;
  const perEditRss = (pn.rss - p1.rss) / span;
  const dense = a.layers * a.C * a.dIn * 4; // one dense C × d_in update per layer per edit
  const square = a.layers * a.dIn * a.dIn * 4; // one d_in × d_in matrix per layer per edit
  return (
    `${label}: per edit (from ${p1.edits} to ${pn.edits} edits) the state grows by ${(perEditState / 1024).toFixed(1)} KiB ` +
    `(RSS ${(perEditRss / 1024).toFixed(1)} KiB; the solver's key store doubles its capacity, so RSS grows in steps) ≈ ${a.layers} layers × (d_in + 2T) floats (each key's projected column, d_in = ${a.dIn}, and the growth of the dual form's T × T Cholesky factor; beyond T > r the primal form's fixed r × r factor replaces both); ` +
    `an O(d²)-per-edit state would add ${mib(dense)} MiB (a dense C × d_in update per layer) or ${mib(square)} MiB (a d_in × d_in matrix per layer) per edit. ` +
    `Fixed part: projectors ${mib(p0.stateBytes)} MiB (synthetic, rank ${res.rank} = d_in/2), ΔW_acc ${mib(a.C * a.dIn * 4)} MiB from the first edit; Node + addon baseline ${mib(res.baselineRss)} MiB. ` +
    `${a.edits} edits fed in batches of ${a.batch} (the state's shapes depend only on the number of keys), ${res.seconds.toFixed(1)} s.`
  );
}
