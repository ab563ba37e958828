/**
 * Low-rank factors of the accumulated updates, shared by the PEFT and GGUF LoRA exports: per edited
 * down projection, ΔW (C, F) = B·A with B = U_r diag(s_r) (C, r) and A = V_rᵀ (r, F) from its SVD —
 * exact when r ≥ the numerical rank (singular values above s₀·max(C, F)·1.2e-7), else truncated,
 * with the retained energy Σ_{i<r} s_i² / Σ s_i² reported.
 */
import { DeltaEditError } from "../../errors.js";
import * as ops from "../../kernels/ops.js";

/** One edited layer of a LoRA export: module, rank, numerical rank, retained energy. */
export interface LoraLayerReport {
  layer: number;
  module: string;
  rank: number;
  numericalRank: number;
  retainedEnergy: number; // Σ_{i<r} s_i² / Σ s_i²
  exact: boolean;
}

/** The factors of one layer's update and their report (module left for the caller to name). */
export interface LoraFactors {
  layer: number;
  rank: number; // r
  a: Float32Array; // (r, F) = V_rᵀ
  b: Float32Array; // (C, r) = U_r diag(s_r)
  numericalRank: number;
  retainedEnergy: number;
  exact: boolean;
}

/**
 * Factor every ΔW (C, F) of `deltas` (layer → out × in), in layer order; `rank` caps r (default:
 * each update's numerical rank, i.e. exact; at least 1). E_SESSION when there is no layer, or
 * `requireNonZero` and every update is zero (everything undone).
 */
export function loraFactors(deltas: ReadonlyMap<number, Float32Array>, C: number, F: number, o: { rank?: number; requireNonZero?: boolean } = {}): LoraFactors[] {
  const layers = [...deltas.keys()].sort((x, y) => x - y);
  if (layers.length === 0) throw new DeltaEditError("E_SESSION", "export: the session holds no update to export", { hint: "apply at least one edit first" });
  if (o.rank !== undefined && !(Number.isInteger(o.rank) && o.rank >= 1)) throw new DeltaEditError("E_ARG", `export: rank must be a positive integer, got ${o.rank}`, { context: { field: "rank" } });
  const out: LoraFactors[] = [];
  for (const layer of layers) {
    const d = deltas.get(layer)!;
    const { u, s, vt } = ops.svd(d, C, F); // u (C, p), s (p), vt (p, F)
    const p = s.length;
    let total = 0;
    for (let i = 0; i < p; i++) total += s[i]! * s[i]!;
    const tol = (s[0] ?? 0) * Math.max(C, F) * 1.2e-7;
    let numericalRank = 0;
    while (numericalRank < p && s[numericalRank]! > tol) numericalRank++;
    const r = Math.max(1, Math.min(o.rank ?? numericalRank, p));
    let kept = 0;
    for (let i = 0; i < r; i++) kept += s[i]! * s[i]!;
    const b = new Float32Array(C * r); // (C, r) = U_r diag(s_r)
    for (let c = 0; c < C; c++) for (let i = 0; i < r; i++) b[c * r + i] = u[c * p + i]! * s[i]!;
    const a = vt.slice(0, r * F); // (r, F)
    out.push({ layer, rank: r, a, b, numericalRank, retainedEnergy: total > 0 ? kept / total : 1, exact: r >= numericalRank });
  }
  if (o.requireNonZero && out.every((f) => f.numericalRank === 0)) {
    throw new DeltaEditError("E_SESSION", "export: every update of the session has been undone; there is nothing to put in an adapter", { hint: "apply at least one edit first" });
  }
  return out;
}
