/**
 * What the editing benchmark's sections share: environment knobs, the GEMM peak they are measured
 * against, GPT-2-shaped random models with GPT-2's tokenizer, the request stream, FLOP formulas.
 * Functions only (importing this file runs nothing).
 *
 * Dimension legend: C = hidden width, F = d_ff, V = vocabulary, L = blocks.
 */
import path from "node:path";
import * as ops from "../src/kernels/ops.js";
import type { EditRequest } from "../src/edit/request.js";
import { parseModelConfig, type ModelConfig } from "../src/model/config.js";
import { LanguageModel } from "../src/model/model.js";
import { loadTokenizer } from "../src/model/tokenizer.js";

/** A non-negative integer from the environment, or `def`; anything else is an error naming the variable. */
export function envInt(name: string, def: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return def;
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return v;
}

/** A comma-separated list of positive integers from the environment, or `def`. */
export function envInts(name: string, def: readonly number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return [...def];
  const v = raw.split(",").map((s) => Number(s.trim()));
  if (v.length === 0 || v.some((x) => !Number.isSafeInteger(x) || x < 1)) throw new Error(`${name} must be a comma-separated list of positive integers, got ${JSON.stringify(raw)}`);
  return v;
}

export function envFlag(name: string): boolean {
  return process.env[name] === "1";
}

/** Best-of-5 float32 GEMM rate at 1024³ (GFLOP/s): the "peak" every "% of GEMM peak" refers to. */
export function gemmPeak(): number {
  const n = 1024;
  const a = new Float32Array(n * n).fill(0.5); // (n, n)
  const c = new Float32Array(n * n); // (n, n)
  ops.gemm(a, a, c, { m: n, n, k: n });
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    ops.gemm(a, a, c, { m: n, n, k: n });
    best = Math.min(best, performance.now() - t);
  }
  return (2 * n ** 3) / (best / 1000) / 1e9;
}

export function gpt2Shape(layers: number, C: number, heads: number): ModelConfig {
  return parseModelConfig(
    { model_type: "gpt2", vocab_size: 50257, n_embd: C, n_layer: layers, n_head: heads, n_positions: 1024, layer_norm_epsilon: 1e-5, activation_function: "gelu_new" },
    `gpt2 ${layers}x${C}`,
  );
}

/** A model of shape `cfg` with random weights (seed 1) and GPT-2's tokenizer (from the test fixture). */
export function benchModel(root: string, cfg: ModelConfig): LanguageModel {
  const tok = loadTokenizer(path.join(root, "test", "fixtures", "models", "tiny-gpt2-random"));
  const base = LanguageModel.random(cfg, 1, 0.02, "uniform");
  return new LanguageModel(cfg, base.params, tok, null, null);
}

/**
 * Matmul FLOPs of one block's forward per token (2·(q,k,v,o projections + MLP)); 24·C² for GPT-2.
 * The backward with respect to the block's input (no weight gradients) does the same matmuls again.
 * Attention's own products (≈ 4·C·positions per token) are not included.
 */
export function blockFlopsPerToken(cfg: ModelConfig): number {
  const C = cfg.hiddenSize;
  const qd = cfg.numHeads * cfg.headSize;
  const kd = cfg.numKvHeads * cfg.headSize;
  const mlp = cfg.family === "gpt2" ? 2 * C * cfg.intermediateSize : 3 * C * cfg.intermediateSize;
  return 2 * (C * qd + 2 * C * kd + qd * C + mlp);
}

export const SUBJECTS = ["Danielle Darrieux", "Edwin of Northumbria", "Toko Yasuda", "Autonomous University of Madrid", "Thomas Joannes Stieltjes", "Anaal Nathrakh", "Apple A5", "Go Hyeon-jeong"];
const FIRST = ["Anna", "Boris", "Chiara", "Dmitri", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas"];
const LAST = ["Lindqvist", "Moreau", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka", "Umarov", "Varga"];
export const PROMPTS = ["The mother tongue of {} is", "{} is a native speaker of", "{} was born in", "{} is affiliated with the religion", "The headquarters of {} is in"];
export const TARGETS = ["English", "French", "Paris", "Christianity", "Sweden"];

/**
 * Request i of the benchmark stream: the eight CounterFact-like subjects first, then distinct
 * made-up names (first × last), so that a batch of 100 holds 100 different subjects.
 */
export function request(i: number): EditRequest {
  const subject = i < SUBJECTS.length ? SUBJECTS[i]! : `${FIRST[i % 10]!} ${LAST[Math.floor(i / 10) % 10]!}${i >= 100 ? ` ${Math.floor(i / 100)}` : ""}`;
  return { caseId: String(i), index: i, prompt: PROMPTS[i % PROMPTS.length]!, subject, targetNew: TARGETS[(i * 3) % TARGETS.length]!, targetTrue: null, relationId: null };
}

export function requests(from: number, n: number): EditRequest[] {
  return Array.from({ length: n }, (_, k) => request(from + k));
}

export const MiB = 1024 * 1024;

export function fmt(x: number, digits = 3): string {
  return x.toFixed(digits);
}
