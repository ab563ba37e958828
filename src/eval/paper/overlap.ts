/**
 * The influence / activation analysis (DeltaEdit paper; issue #13): how much the edits switch each
 * other on, and how much their written directions overlap, from the recorded factors of one edited
 * layer (evaluation spec §6.3; the notation of eval/noise.ts).
 *
 * Every update is Δ_step = Σ_j α_j β_jᵀ with, for request j (global order),
 *   α_j (C)  the influence vector (where the edit writes in the output space),
 *   β_j (F)  the activation vector (how strongly a key switches the edit on),
 *   k_j (F)  its solver key, recorded at edit time.
 * The spec's two pairwise terms (§6.3, "Decomposition"):
 *   activation term         g_ji = β_j · k_i   (j ≠ i): key i wrongly switching on edit j
 *   influence-overlap term  h_jl = α_j · α_l   (j ≠ l): edits j and l writing along the same direction
 * They are the parts of the superimposed noise ‖N_i‖² = Σ_{j≠i} g_ji² h_jj + Σ_{j≠l; j,l≠i} g_ji g_li h_jl.
 * (The issue names the activation "α_ij" and the overlap "g_ij"; the spec's names are used here.)
 *
 * After n requests, over all ordered pairs of distinct requests among the first n (request level;
 * with one request per step, as in the paper, request and step level coincide):
 *   meanAbsActivation      = mean_{i≠j} |g_ji|                      (spec's g, raw)
 *   meanAbsOverlap         = mean_{j≠l} |h_jl|                      (spec's h, raw)
 *   meanRelativeActivation = mean_{i≠j} |g_ji| / |g_jj|             (scale-free: relative to edit j's response to its own key; pairs with g_jj = 0 skipped)
 *   meanAbsCosine          = mean_{j≠l} |h_jl| / √(h_jj h_ll)       (scale-free overlap; pairs with a zero α skipped)
 *   meanOwnActivation      = mean_i |g_ii|,   meanInfluenceNorm = mean_i ‖α_i‖
 * The raw means are the spec's quantities; the scale-free ones separate "edits overlap more" from
 * "edits are larger". Sums run in float64 over the float32 matrices G = Beta Keysᵀ and H = Alpha Alphaᵀ.
 *
 * Dimension legend: n requests, C output channels (hidden), F input channels (MLP width).
 */
import * as ops from "../../kernels/ops.js";
import type { NoiseLayerFactors } from "../noise.js";

/** Pairwise activation and influence-overlap statistics after `edits` requests at one layer. */
export interface OverlapStats {
  edits: number; // n
  layer: number;
  /** mean over i ≠ j < n of |g_ji| = |β_j · k_i| */
  meanAbsActivation: number;
  /** mean over j ≠ l < n of |h_jl| = |α_j · α_l| */
  meanAbsOverlap: number;
  /** mean over i ≠ j of |g_ji| / |g_jj| (null when no pair qualifies) */
  meanRelativeActivation: number | null;
  /** mean over j ≠ l of |α_j · α_l| / (‖α_j‖ ‖α_l‖) (null when no pair qualifies) */
  meanAbsCosine: number | null;
  /** mean over i of |g_ii| = |β_i · k_i| */
  meanOwnActivation: number;
  /** mean over i of ‖α_i‖ */
  meanInfluenceNorm: number;
  /** The factors' applied update differed from α βᵀ (RECT's mask): the terms describe the unmasked factors. */
  approximate: boolean;
}

/**
 * Activation / overlap statistics of the first n requests for every n in `checkpoints` (each ≤ f.n),
 * from one G and one H over all recorded requests (O(n²(C + F)) once, then O(n²) per checkpoint).
 */
export function overlapStats(f: NoiseLayerFactors, checkpoints: readonly number[]): OverlapStats[] {
  const fn = "overlapStats";
  for (const c of checkpoints) if (!Number.isInteger(c) || c < 0 || c > f.n) throw ops.argError(fn, "checkpoints", `each must be an integer in [0, ${f.n}] (requests recorded at layer ${f.layer}), got ${c}`);
  const n = Math.max(0, ...checkpoints);
  const { C, F } = f;
  const g = new Float32Array(n * n); // (n, n) G[j,i] = β_j·k_i
  const h = new Float32Array(n * n); // (n, n) H[j,l] = α_j·α_l
  if (n > 0) {
    ops.gemm(f.beta.subarray(0, n * F), f.keys.subarray(0, n * F), g, { m: n, n, k: F, transB: true });
    ops.syrk(f.alpha.subarray(0, n * C), h, { n, k: C });
  }
  return checkpoints.map((m) => pairStats(g, h, n, m, f.layer, f.approximate));
}

/** The statistics of the leading m × m blocks of G and H (row stride n). */
function pairStats(g: Float32Array, h: Float32Array, n: number, m: number, layer: number, approximate: boolean): OverlapStats {
  let act = 0, rel = 0, relCount = 0, ov = 0, cos = 0, cosCount = 0, own = 0, norm = 0;
  for (let j = 0; j < m; j++) {
    const gjj = Math.abs(g[j * n + j]!);
    const hjj = h[j * n + j]!;
    own += gjj;
    norm += Math.sqrt(Math.max(hjj, 0));
    for (let i = 0; i < m; i++) {
      if (i === j) continue;
      const a = Math.abs(g[j * n + i]!);
      act += a;
      if (gjj > 0) {
        rel += a / gjj;
        relCount++;
      }
      const o = Math.abs(h[j * n + i]!);
      ov += o;
      const d = Math.sqrt(Math.max(hjj, 0) * Math.max(h[i * n + i]!, 0));
      if (d > 0) {
        cos += o / d;
        cosCount++;
      }
    }
  }
  const pairs = m * (m - 1);
  return {
    edits: m,
    layer,
    meanAbsActivation: pairs > 0 ? act / pairs : 0,
    meanAbsOverlap: pairs > 0 ? ov / pairs : 0,
    meanRelativeActivation: relCount > 0 ? rel / relCount : null,
    meanAbsCosine: cosCount > 0 ? cos / cosCount : null,
    meanOwnActivation: m > 0 ? own / m : 0,
    meanInfluenceNorm: m > 0 ? norm / m : 0,
    approximate,
  };
}
