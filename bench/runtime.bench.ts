/**
 * Runtime benchmark (`npm run bench`), printed side by side in one run:
 *  1. GEMM GFLOP/s through the native core vs numpy's own BLAS on the same machine/threads;
 *  2. forward tokens/s on random GPT-2-small-shaped and Llama-1B-shaped models;
 *  3. one forward+backward step of the target-vector optimisation on a GPT-2-small shape
 *     (7 prompts of ~12 tokens, injection at layer 7): prefix-cached vs full rerun, with the
 *     fraction of GEMM peak reached in its matmul-bound part.
 * Environment: BENCH_QUICK=1 skips the Llama-1B shape; BENCH_THREADS=n sets threads.
 */
import { execFileSync } from "node:child_process";
import * as ops from "../src/kernels/ops.js";
import { makeBatch } from "../src/model/batch.js";
import { parseModelConfig } from "../src/model/config.js";
import { backward, forward } from "../src/model/forward.js";
import { nllLoss } from "../src/model/loss.js";
import { LanguageModel } from "../src/model/model.js";
import { Rng } from "../src/util/rng.js";

const threads = Number(process.env["BENCH_THREADS"] ?? 2);
ops.setThreads(threads);
const info = ops.blasInfo();
console.log(`# deltaedit runtime benchmark`);
console.log(`blas: ${info.library} | ${info.config}`);
console.log(`kernel: ${info.coreName} (OPENBLAS_CORETYPE source: ${info.coreTypeSource}) | threads: ${info.threads}`);
console.log("");

function timeIt(fn: () => void, minMs = 1500, minReps = 3): number {
  fn(); // warm-up
  const times: number[] = [];
  const t0 = performance.now();
  while (times.length < minReps || performance.now() - t0 < minMs) {
    const s = performance.now();
    fn();
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]! / 1000; // median seconds
}

// 1. GEMM
function numpyGemm(n: number): number | null {
  const py = `
import os, time, numpy as np
n=${n}
a=np.random.rand(n,n).astype(np.float32); b=np.random.rand(n,n).astype(np.float32)
a@b
ts=[]
t0=time.perf_counter()
while len(ts)<3 or time.perf_counter()-t0<1.5:
    s=time.perf_counter(); a@b; ts.append(time.perf_counter()-s)
ts.sort(); print(ts[len(ts)//2])
`;
  try {
    const out = execFileSync("python3", ["-c", py], { env: { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) }, encoding: "utf8" });
    return Number(out.trim());
  } catch {
    return null;
  }
}

console.log("## GEMM (float32, C = A·B, square)");
console.log("| n | deltaedit GFLOP/s | numpy GFLOP/s | ratio |");
console.log("|---|---|---|---|");
let peak = 0;
for (const n of [512, 1024, 2048]) {
  const a = new Float32Array(n * n).map((_, i) => ((i * 7919) % 1000) / 1000);
  const b = new Float32Array(n * n).map((_, i) => ((i * 104729) % 1000) / 1000);
  const c = new Float32Array(n * n);
  const t = timeIt(() => ops.gemm(a, b, c, { m: n, n, k: n }));
  const g = (2 * n ** 3) / t / 1e9;
  peak = Math.max(peak, g);
  const tn = numpyGemm(n);
  const gn = tn ? (2 * n ** 3) / tn / 1e9 : null;
  console.log(`| ${n} | ${g.toFixed(1)} | ${gn ? gn.toFixed(1) : "n/a"} | ${gn ? ((100 * g) / gn).toFixed(0) + " %" : "n/a"} |`);
}
console.log("");

// 2. Forward tokens/s
function gpt2Small() {
  return parseModelConfig({ model_type: "gpt2", vocab_size: 50257, n_embd: 768, n_layer: 12, n_head: 12, n_positions: 1024, layer_norm_epsilon: 1e-5, activation_function: "gelu_new" }, "gpt2-small shape");
}
function gpt2Medium() {
  return parseModelConfig({ model_type: "gpt2", vocab_size: 50257, n_embd: 1024, n_layer: 24, n_head: 16, n_positions: 1024, layer_norm_epsilon: 1e-5, activation_function: "gelu_new" }, "gpt2-medium shape");
}
function llama1B() {
  return parseModelConfig(
    { model_type: "llama", vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, max_position_embeddings: 8192, rms_norm_eps: 1e-5, rope_theta: 500000, hidden_act: "silu", tie_word_embeddings: true },
    "llama-1B shape",
  );
}

function blockFlopsPerToken(m: LanguageModel): number {
  const c = m.config;
  const C = c.hiddenSize;
  const qd = c.numHeads * c.headSize;
  const kd = c.numKvHeads * c.headSize;
  const mlp = c.family === "gpt2" ? 2 * C * c.intermediateSize : 3 * C * c.intermediateSize;
  return 2 * (C * qd + 2 * C * kd + qd * C + mlp);
}

console.log("## Forward (random weights; all blocks + logits at the last position of each row)");
console.log("| model | params | batch × tokens | tokens/s | GFLOP/s (matmul) | % of GEMM peak |");
console.log("|---|---|---|---|---|---|");
const shapes: [string, () => ReturnType<typeof gpt2Small>][] = [["GPT-2 small", gpt2Small]];
if (process.env["BENCH_QUICK"] !== "1") shapes.push(["Llama 1B", llama1B]);
for (const [label, mk] of shapes) {
  const model = LanguageModel.random(mk(), 1, 0.02, "uniform");
  for (const [B, T] of [[1, 128], [4, 128]] as const) {
    const rng = new Rng(2);
    const seqs = Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(model.config.vocabSize)));
    const batch = makeBatch(seqs, 0);
    const last = seqs.map((_, row) => ({ row, pos: T - 1 }));
    const t = timeIt(() => forward(model, batch, { logits: last }), 2000, 2);
    const flops = B * T * model.config.numLayers * blockFlopsPerToken(model) + B * 2 * model.config.hiddenSize * model.config.vocabSize;
    const g = flops / t / 1e9;
    console.log(`| ${label} | ${(model.params.count() / 1e6).toFixed(0)} M | ${B} × ${T} | ${((B * T) / t).toFixed(0)} | ${g.toFixed(1)} | ${((100 * g) / peak).toFixed(0)} % |`);
  }
}
console.log("");

// 3. Target-vector optimisation step
console.log("## Target-vector optimisation step (GPT-2-small shape, 7 prompts × ~12 tokens, injection at layer 7)");
{
  const model = LanguageModel.random(gpt2Small(), 1, 0.02, "uniform");
  const rng = new Rng(4);
  const lens = [12, 13, 11, 12, 14, 12, 8];
  const seqs = lens.map((n) => Array.from({ length: n }, () => rng.int(50257)));
  const batch = makeBatch(seqs, 0);
  const L = 7;
  const at = seqs.map((s, row) => ({ row, pos: Math.min(4, s.length - 1) }));
  // 6 rewriting rows × 2 target tokens + the KL row's position
  const logitPos = seqs.slice(0, 6).flatMap((s, row) => [{ row, pos: s.length - 2 }, { row, pos: s.length - 1 }]).concat([{ row: 6, pos: at[6]!.pos }]);
  const terms = logitPos.slice(0, 12).map((_, i) => ({ row: i, target: (i * 31) % 50257, weight: 1 / 12 }));
  const delta = new Float32Array(768).map(() => 0.01 * rng.normal());
  const prefix = forward(model, batch, { stopAfterLayer: L, keepHidden: [L], logits: "none" });
  const h = prefix.hidden.get(L)!;
  const step = (cached: boolean) => {
    const res = cached
      ? forward(model, batch, { startLayer: L + 1, startHidden: h, injection: { layer: L, vector: delta, at }, logits: logitPos, forBackward: true })
      : forward(model, batch, { injection: { layer: L, vector: delta, at }, logits: logitPos, forBackward: true });
    const loss = nllLoss(res.logits!, logitPos.length, 50257, terms);
    backward(model, res.saved!, loss.dlogits, { injection: true });
  };
  const tc = timeIt(() => step(true), 3000, 5);
  const tf = timeIt(() => step(false), 3000, 5);
  const BT = batch.B * batch.T;
  const layers = 12 - (L + 1);
  // matmul flops: forward blocks + head on P rows; backward: dX GEMMs only (no weight grads) ≈ forward's
  const mm = 2 * (BT * layers * blockFlopsPerToken(model) + 2 * logitPos.length * 768 * 50257);
  console.log("| variant | ms / step | matmul GFLOP/s | % of GEMM peak |");
  console.log("|---|---|---|---|");
  console.log(`| prefix-cached (blocks 8..11) | ${(tc * 1000).toFixed(1)} | ${(mm / tc / 1e9).toFixed(1)} | ${((100 * mm) / tc / 1e9 / peak).toFixed(0)} % |`);
  const mmFull = mm + 2 * BT * (L + 1) * blockFlopsPerToken(model) * 0.5; // full rerun adds forward of blocks 0..7 (no backward there)
  console.log(`| full rerun (blocks 0..11) | ${(tf * 1000).toFixed(1)} | ${(mmFull / tf / 1e9).toFixed(1)} | ${((100 * mmFull) / tf / 1e9 / peak).toFixed(0)} % |`);
  console.log(`speed-up of prefix caching: ${(tf / tc).toFixed(2)}×  (padded batch ${batch.B} × ${batch.T}; GEMM peak ${peak.toFixed(1)} GFLOP/s)`);
}
