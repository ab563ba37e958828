/** Reading the golden files written by tools/reference/make_golden.py (independent numpy reference). */
import fs from "node:fs";
import path from "node:path";
import { repoRoot } from "./paths.js";

export interface GoldenTensor {
  file: string;
  shape: number[];
}

export interface GoldenLogitsCase extends GoldenTensor {
  case: string;
  ids: number[];
  argmax: number[];
  logsumexp: number[];
}

export interface GoldenGeneration {
  case: string;
  prompt_ids: number[];
  max_new_tokens: number;
  generated_ids: number[];
  step_top2_margin: number[];
}

export interface Golden {
  magic: string;
  version: number;
  model: string;
  config_summary: { model_type: string; vocab_size: number; hidden_size: number; num_layers: number; intermediate_size: number };
  logits: GoldenLogitsCase[];
  generation: GoldenGeneration[];
  hidden: { case: string; ids: number[]; embeddings: GoldenTensor; layers: { layer: number; block_out: GoldenTensor; mlp_down_in: GoldenTensor }[] };
  tokenizer: null | { kind: string; cases: { text: string; add_special_tokens: boolean; ids: number[] }[] };
}

export function goldenDir(): string {
  return path.join(repoRoot(), "test", "fixtures", "golden");
}

export function readGolden(model: string): Golden {
  const g = JSON.parse(fs.readFileSync(path.join(goldenDir(), `${model}.json`), "utf8")) as Golden;
  if (g.magic !== "deltaedit-golden" || g.version !== 1) throw new Error(`${model}.json: not a deltaedit golden file (magic ${g.magic}, version ${g.version})`);
  return g;
}

export function readGoldenTensor(t: GoldenTensor): Float32Array {
  const buf = fs.readFileSync(path.join(goldenDir(), t.file));
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (buf.byteLength !== 4 * n) throw new Error(`${t.file}: ${buf.byteLength} bytes, expected ${4 * n}`);
  const out = new Float32Array(n);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export const GOLDEN_MODELS = ["stories260k", "tiny-gpt2-random", "tiny-llama3-random", "tiny-qwen2-random", "tiny-mistral-random", "tiny-gpt2-prefixed-bf16", "tiny-llama-sharded-f16"];
