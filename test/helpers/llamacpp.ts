/**
 * A real llama.cpp for the GGUF tests: node-llama-cpp's prebuilt binaries, CPU only. node-llama-cpp is
 * not a dependency (its platform packages are ~730 MB): `node scripts/ensure-llamacpp.cjs` (npm test's
 * pretest step) installs the pinned version with only this machine's CPU platform package
 * @node-llama-cpp/<platform>-<arch> into .llamacpp/ at the repository root, and it is imported from
 * there at run time — never statically, so that tsc (lint, bench) compiles these files without it.
 * It is never downloaded or built (build: "never", skipDownload): where it is missing or cannot be
 * loaded the tests fail with the reason — they do not skip.
 *
 * Contexts use F32 K/V caches and no flash attention, so an F32 GGUF computes in float32 end to end
 * (llama.cpp's default F16 cache alone moves logits by ~5e-3), and one thread.
 */
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { repoRoot } from "./paths.js";

// ---- The part of node-llama-cpp's API the tests use (its own types are not installed for tsc). ----

/** A token id (node-llama-cpp brands it as `number & { __token: never }`). */
export type Token = number;

/** node-llama-cpp's LlamaLogLevel (a string enum). */
export type LlamaLogLevel = "disabled" | "fatal" | "error" | "warn" | "info" | "log" | "debug";

export interface Llama {
  loadModel(o: { modelPath: string; gpuLayers?: number; vocabOnly?: boolean }): Promise<LlamaModel>;
  dispose(): Promise<void>;
}

export interface LlamaModel {
  readonly tokens: { readonly bos: Token | null; readonly eos: Token | null; readonly shouldPrependBosToken: boolean };
  tokenize(text: string, specialTokens?: boolean): Token[];
  detokenize(tokens: readonly Token[]): string;
  createContext(o: {
    contextSize?: number;
    sequences?: number;
    threads?: number;
    flashAttention?: boolean;
    experimentalKvCacheKeyType?: "F32";
    experimentalKvCacheValueType?: "F32";
    lora?: { adapters: { filePath: string; scale?: number }[] };
  }): Promise<LlamaContext>;
  dispose(): Promise<void>;
}

export interface LlamaContext {
  getSequence(): LlamaContextSequence;
  dispose(): Promise<void>;
}

/** Sampling options of one generated token (temperature 0 = greedy). */
export interface SamplingOptions {
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
}

/** An input token of controlledEvaluate, optionally asking for the next token's probabilities. */
export type ControlledEvaluateInputItem = Token | readonly [token: Token, options: { generateNext?: { probabilities?: boolean; options?: SamplingOptions } }];

export interface LlamaContextSequence {
  clearHistory(): Promise<void>;
  evaluate(tokens: Token[], options?: SamplingOptions): AsyncGenerator<Token, void, void | Token | Token[]>;
  controlledEvaluate(input: ControlledEvaluateInputItem[]): Promise<({ next: { probabilities?: Map<Token, number> } } | undefined)[]>;
}

/** What readGgufFileInfo returns, as far as the tests read it. */
export interface GgufFileInfo {
  readonly version: number;
  readonly metadata: object;
  readonly tensorInfo?: readonly { readonly name: string; readonly dimensions: readonly (number | bigint)[]; readonly ggmlType: number; readonly offset: number | bigint }[];
}

/** The node-llama-cpp module's exports the tests use. */
export interface NodeLlamaCpp {
  getLlama(o: { build: "never"; gpu: false; skipDownload: boolean; usePrebuiltBinaries: boolean; progressLogs: boolean; logLevel: LlamaLogLevel }): Promise<Llama>;
  readonly LlamaLogLevel: { readonly error: LlamaLogLevel };
  /** node-llama-cpp's pure-JS GGUF parser. */
  readGgufFileInfo(file: string, o: { sourceType: "filesystem"; logWarnings?: boolean; readTensorInfo?: boolean }): Promise<GgufFileInfo>;
}

// ---- Loading it from .llamacpp/. ----

/** scripts/ensure-llamacpp.cjs: the pin, the platform package, and the check of .llamacpp/. */
interface EnsureLlamaCpp {
  VERSION: string;
  platformPackage(): string | null;
  check(): { ok: true } | { ok: false; problem: string };
  entry(): string;
}

const HOW = "run `node scripts/ensure-llamacpp.cjs` (npm test's pretest step does) to install it into .llamacpp/";
let loaded: Promise<NodeLlamaCpp> | undefined;

/** node-llama-cpp, imported from .llamacpp/node_modules (once), or throw saying what is missing and how to install it. */
export function importNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  loaded ??= (async () => {
    const ensure = createRequire(import.meta.url)(path.join(repoRoot(), "scripts", "ensure-llamacpp.cjs")) as EnsureLlamaCpp;
    const what = `node-llama-cpp@${ensure.VERSION} with ${ensure.platformPackage() ?? `a platform package for ${process.platform}-${process.arch}`}`;
    const st = ensure.check();
    if (!st.ok) throw new Error(`The GGUF tests need ${what} in .llamacpp/, but ${st.problem}: ${HOW}.`);
    try {
      return (await import(pathToFileURL(ensure.entry()).href)) as NodeLlamaCpp;
    } catch (e) {
      throw new Error(`The GGUF tests could not import ${what} from .llamacpp/ (${e instanceof Error ? e.message : String(e)}): ${HOW}.`, { cause: e });
    }
  })();
  return loaded;
}

/** node-llama-cpp's readGgufFileInfo (an independent, pure-JS GGUF parser) on a file. */
export async function readGgufFileInfo(file: string, o: { readTensorInfo?: boolean } = {}): Promise<GgufFileInfo> {
  return (await importNodeLlamaCpp()).readGgufFileInfo(file, { sourceType: "filesystem", logWarnings: false, ...o });
}

/** Load node-llama-cpp's llama.cpp (CPU), or throw saying what is missing. */
export async function loadLlamaCpp(): Promise<Llama> {
  const { getLlama, LlamaLogLevel } = await importNodeLlamaCpp();
  try {
    return await getLlama({ build: "never", gpu: false, skipDownload: true, usePrebuiltBinaries: true, progressLogs: false, logLevel: LlamaLogLevel.error });
  } catch (e) {
    throw new Error(
      `node-llama-cpp could not load its prebuilt llama.cpp for ${process.platform}-${process.arch} (${e instanceof Error ? e.message : String(e)}). ` +
        `The GGUF tests need it: ${HOW} (it reinstalls when .llamacpp/ does not hold the pinned versions; delete .llamacpp/ to force it).`,
      { cause: e },
    );
  }
}

/** A model file and one context on it (optionally with LoRA adapters at given scales). */
export interface LlamaRun {
  model: LlamaModel;
  ctx: LlamaContext;
  seq: LlamaContextSequence;
}

export async function openGguf(llama: Llama, file: string, o: { lora?: { file: string; scale: number }[]; contextSize?: number } = {}): Promise<LlamaRun> {
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const ctx = await model.createContext({
    contextSize: o.contextSize ?? 128,
    sequences: 1,
    threads: 1, // ggml's worker threads spin-wait: on a busy 2-core machine two of them crawl (40× slower here); one is plenty for these models
    flashAttention: false,
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
    ...(o.lora ? { lora: { adapters: o.lora.map((a) => ({ filePath: a.file, scale: a.scale })) } } : {}),
  });
  return { model, ctx, seq: ctx.getSequence() };
}

/**
 * llama.cpp's next-token log-probabilities (V) after `ids` (a fresh sequence): the logarithm of the
 * full distribution its sampler reports at temperature 1 with no top-k/top-p/min-p cut, i.e. the
 * log-softmax of its logits (node-llama-cpp 3.21 exposes probabilities, not raw logits). Tokens
 * whose probability underflows to 0 are −Infinity.
 */
export async function llamaLogProbs(run: LlamaRun, ids: readonly number[], vocab: number): Promise<Float64Array> {
  await run.seq.clearHistory();
  const last = ids.length - 1;
  const full = { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } as const;
  const res = await run.seq.controlledEvaluate(ids.map((t, i) => (i === last ? ([t, { generateNext: full }] as const) : t)));
  const map = res[last]?.next?.probabilities;
  if (!map) throw new Error("llama.cpp returned no probabilities");
  const out = new Float64Array(vocab).fill(-Infinity);
  for (const [tok, p] of map) out[tok] = Math.log(p);
  return out;
}

/** log-softmax (V) of logits (V), in float64. */
export function logSoftmax64(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (v) => v - lse);
}

/** llama.cpp's own greedy sampler (temperature 0): `n` new tokens after `ids` (fewer at an end-of-generation token). */
export async function llamaGreedy(run: LlamaRun, ids: readonly number[], n: number): Promise<number[]> {
  await run.seq.clearHistory();
  const out: number[] = [];
  if (n <= 0) return out;
  for await (const t of run.seq.evaluate([...ids], { temperature: 0 })) {
    out.push(t);
    if (out.length >= n) break;
  }
  return out;
}

/**
 * Agreement of llama.cpp's log-probabilities `theirs` with deltaedit's logits `ours`, over the tokens
 * whose probability is at least `floor` (default e^-30 ≈ 1e-13; below it float32 probabilities lose
 * digits): max |Δ log p| (= max |Δ logit| after removing each side's log-sum-exp), the spread of
 * deltaedit's logits (max − min) as the scale, and their ratio.
 */
export function compareLogProbs(theirs: Float64Array, ours: Float32Array, floor = -30): { maxAbs: number; refScale: number; rel: number; compared: number } {
  const lp = logSoftmax64(ours);
  let maxAbs = 0;
  let compared = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < lp.length; i++) {
    lo = Math.min(lo, ours[i]!);
    hi = Math.max(hi, ours[i]!);
    if (lp[i]! < floor) continue;
    const d = Math.abs(theirs[i]! - lp[i]!);
    maxAbs = Math.max(maxAbs, Number.isNaN(d) ? Infinity : d);
    compared++;
  }
  const refScale = hi - lo;
  return { maxAbs, refScale, rel: maxAbs / refScale, compared };
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}
