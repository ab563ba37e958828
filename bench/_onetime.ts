/**
 * One-time jobs of the benchmark, ours vs the reference's way of doing the same job, plus the
 * per-edit solve at d_in = 6400 (which reuses the projector built here):
 *  (a) second-moment statistics C0 (computeStats): one streamed pass that taps every edit layer
 *      and stops after the highest, vs one pass per layer (the reference, rome/layer_stats.py:
 *      `Trace(model, layer, retain_input=True, stop=True)`, called once per layer by get_cov);
 *  (b) the null-space projector: our symmetric eigendecomposition (syevd) of C0 and a basis of
 *      the null space, vs the reference's `U, S, _ = torch.linalg.svd(C0)` (on the CPU) and the
 *      dense P = U_J U_Jᵀ.
 *
 * Dimension legend: C = hidden width, F = d_ff = d_in, n = tokens of a document, r = rank of P.
 */
import * as ops from "../src/kernels/ops.js";
import { corpusFromDocuments } from "../src/edit/corpus.js";
import { computeStats, type SecondMoment } from "../src/edit/covariance.js";
import { NullSpaceProjector } from "../src/edit/projector.js";
import { AlphaEditSolver, denseAlphaEditSolve } from "../src/edit/solve.js";
import type { LanguageModel } from "../src/model/model.js";
import { Rng } from "../src/util/rng.js";
import { blockFlopsPerToken, fmt } from "./_common.js";

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return den > 0 ? num / den : num;
}

/**
 * (a) Statistics over `docs` documents of random GPT-2 tokens (each truncated to `maxTokens`, the
 * reference's setting: the model's context). FLOPs counted: block matmuls at every real token of
 * the blocks run, causal attention products 4·C·(t+1) per token per block, and the float32 syrk
 * F·(F+1) per token per tapped layer.
 */
export async function statsBench(label: string, model: LanguageModel, layers: number[], docs: number, maxTokens: number, peak: number): Promise<string> {
  const tok = model.tokenizer!;
  const cfg = model.config;
  const C = cfg.hiddenSize;
  const F = cfg.intermediateSize;
  const rng = new Rng(7);
  // random token ids decoded to text; computeStats re-tokenizes them, as it would any corpus
  const texts = Array.from({ length: docs }, () => tok.decode(Array.from({ length: maxTokens + 64 }, () => rng.int(50000)), { skipSpecialTokens: true }));
  const lengths = texts.map((t) => Math.min(tok.encode(t).length, maxTokens)); // (docs) n
  const tokens = lengths.reduce((a, b) => a + b, 0);
  const attn = lengths.reduce((a, n) => a + 4 * C * ((n * (n + 1)) / 2), 0); // per block, all documents
  const perBlock = blockFlopsPerToken(cfg) * tokens + attn;
  const syrk = layers.length * F * (F + 1) * tokens;
  const corpus = corpusFromDocuments(texts, "random-token documents");
  const params = { cacheDir: null, maxTokens, samples: docs };

  let t = performance.now();
  const ours = await computeStats(model, corpus, { ...params, layers });
  const tOurs = (performance.now() - t) / 1000;
  const top = Math.max(...layers);
  const flopsOurs = (top + 1) * perBlock + syrk;

  t = performance.now();
  const ref = new Map<number, SecondMoment>();
  for (const l of layers) ref.set(l, (await computeStats(model, corpus, { ...params, layers: [l] })).get(l)!);
  const tRef = (performance.now() - t) / 1000;
  const blockPasses = layers.reduce((a, l) => a + l + 1, 0);
  const flopsRef = blockPasses * perBlock + syrk;
  const diff = Math.max(...layers.map((l) => maxRelDiff(ours.get(l)!.sum, ref.get(l)!.sum)));

  const row = (job: string, blocks: number, s: number, flops: number): string => {
    const gf = flops / s / 1e9;
    return `| ${label} | ${job} | ${blocks} | ${tokens} | ${fmt(s, 1)} | ${(tokens / s).toFixed(0)} | ${gf.toFixed(1)} | ${((100 * gf) / peak).toFixed(0)} % |`;
  };
  console.log(row(`ours: one pass, taps layers ${layers.join(",")}, stops after block ${top}`, top + 1, tOurs, flopsOurs));
  console.log(row("reference way: one pass per layer, each stopping at its layer", blockPasses, tRef, flopsRef));
  return `${label}: reference way / ours = ${(tRef / tOurs).toFixed(2)}× (${docs} document${docs === 1 ? "" : "s"} of ${Math.min(...lengths)}–${Math.max(...lengths)} tokens; the two ways' sums agree to a max relative difference of ${diff.toExponential(1)})`;
}

export function statsHeader(peak: number, maxTokens: number): void {
  console.log(`Second-moment statistics (computeStats: float32, streamed, memory O(layers·F²) whatever the corpus size), documents of random GPT-2 tokens truncated to ${maxTokens} (the reference: the model's context); % of the GEMM peak ${peak.toFixed(1)} GFLOP/s:`);
  console.log("| shape | job | blocks run per token | tokens | s | tokens/s | GFLOP/s | % of GEMM peak |");
  console.log("|---|---|---|---|---|---|---|---|");
}

/**
 * A symmetric PSD C0 (dIn, dIn) = K Kᵀ / m with K (dIn, m = dIn/2) Gaussian: its nonzero
 * eigenvalues lie in ≈ [0.17, 5.8] (Marchenko–Pastur), the other dIn/2 are rounding-level zeros,
 * so the null space at τ = 2e-2 has rank dIn/2 — dense eigenvectors, a clear cut.
 */
function syntheticSecondMoment(dIn: number): Float32Array {
  const m = dIn / 2;
  const rng = new Rng(11);
  const k = new Float32Array(dIn * m); // (dIn, m)
  for (let i = 0; i < k.length; i++) k[i] = rng.normal();
  const c0 = new Float32Array(dIn * dIn); // (dIn, dIn), both triangles
  ops.syrk(k, c0, { n: dIn, k: m, alpha: 1 / m });
  return c0;
}

/**
 * (b) The projector at d_in = `dIn`: ours (eigh + cut + null-space basis; float32, and float64) vs
 * the reference (SVD, then the dense P = U_J U_Jᵀ). Returns our float32 projector (with U0).
 */
export function projectorBench(dIn: number): NullSpaceProjector {
  const tau = 2e-2;
  const c0 = syntheticSecondMoment(dIn);
  console.log(`Null-space projector of a ${dIn} × ${dIn} C0 (PSD, half of its eigenvalues ≈ 0, τ = ${tau}):`);
  console.log("| job | arithmetic | s | ratio to ours (float32) | rank found |");
  console.log("|---|---|---|---|---|");
  let t = performance.now();
  const proj = NullSpaceProjector.fromSecondMoment(c0, dIn, { keepNullBasis: true, nullspaceThreshold: tau });
  const t32 = (performance.now() - t) / 1000;
  console.log(`| ours: eigh (LAPACK syevd) + cut + null-space basis | float32 | ${fmt(t32, 1)} | 1.00× | ${proj.rank} |`);
  t = performance.now();
  const p64 = NullSpaceProjector.fromSecondMoment(c0, dIn, { keepNullBasis: true, nullspaceThreshold: tau, nullspacePrecision: "float64" });
  const t64 = (performance.now() - t) / 1000;
  console.log(`| ours, nullspacePrecision "float64" | float64 | ${fmt(t64, 1)} | ${(t64 / t32).toFixed(2)}× | ${p64.rank} |`);
  t = performance.now();
  const { u, s } = ops.svd(c0, dIn, dIn); // u (dIn, dIn), s descending
  const tSvd = (performance.now() - t) / 1000;
  const small: number[] = [];
  for (let i = 0; i < dIn; i++) if (s[i]! < tau) small.push(i);
  const uj = new Float32Array(dIn * small.length); // (dIn, r) U_J
  for (let i = 0; i < dIn; i++) small.forEach((j, c) => (uj[i * small.length + c] = u[i * dIn + j]!));
  const pDense = new Float32Array(dIn * dIn); // (dIn, dIn) P = U_J U_Jᵀ, as the reference returns it
  ops.gemm(uj, uj, pDense, { m: dIn, n: dIn, k: small.length, transB: true });
  const tRef = (performance.now() - t) / 1000;
  console.log(`| reference: SVD (LAPACK gesdd, as torch.linalg.svd on the CPU) + dense P = U_J U_Jᵀ | float32 | ${fmt(tRef, 1)} | ${(tRef / t32).toFixed(2)}× | ${small.length} |`);
  console.log(`| of which the SVD alone | float32 | ${fmt(tSvd, 1)} | ${(tSvd / t32).toFixed(2)}× | |`);
  console.log("");
  return proj;
}

/** Per-edit solve after 0, 1000 and 3000 edits with the projector of `projectorBench`: incremental exact vs the dense reference. */
export function solveBench(proj: NullSpaceProjector): void {
  const dIn = proj.dIn;
  console.log(`Per-edit solve at d_in = ${dIn} (one key, λ = 1, null space of rank ${proj.rank}, the projector above):`);
  const rng = new Rng(3);
  const key = (): Float32Array => Float32Array.from({ length: dIn }, () => rng.normal() * 0.05); // (dIn)
  const solver = new AlphaEditSolver(proj, { l2: 1 });
  console.log("| edits so far | fast exact solve (ms) | formulation | dense reference solve (ms) | ratio |");
  console.log("|---|---|---|---|---|");
  let dense: number | null = null;
  const denseP = proj.toDense(); // (dIn, dIn)
  const pastCov = new Float32Array(dIn * dIn); // (dIn, dIn) Cpast; the dense solve's cost does not depend on it
  for (const target of [0, 1000, 3000]) {
    while (solver.pastKeyCount < target) {
      const n = Math.min(100, target - solver.pastKeyCount);
      const K = new Float32Array(dIn * n); // (dIn, n)
      for (let i = 0; i < K.length; i++) K[i] = rng.normal() * 0.05;
      solver.solveAndAppend(K, n);
    }
    const k = key();
    const times: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t = performance.now();
      solver.solve(k, 1);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const fast = times[2]!;
    if (dense === null) {
      const t = performance.now();
      denseAlphaEditSolve({ projector: denseP, pastCov, keys: k, dIn, n: 1, l2: 1 });
      dense = performance.now() - t; // O(d_in³) whatever the number of past keys
    }
    console.log(`| ${target} | ${fast.toFixed(2)} | ${solver.currentFormulation} | ${dense.toFixed(0)} | ${(dense / fast).toFixed(0)}× |`);
  }
  console.log("");
}
