/**
 * A real llama.cpp for the GGUF tests: node-llama-cpp's prebuilt binaries (the optional package
 * @node-llama-cpp/<platform>-<arch> that `npm ci` installs), CPU only. It is never downloaded or
 * built (build: "never", skipDownload): where it cannot be loaded the tests fail with the reason —
 * they do not skip.
 *
 * Contexts use F32 K/V caches and no flash attention, so an F32 GGUF computes in float32 end to end
 * (llama.cpp's default F16 cache alone moves logits by ~5e-3), and one thread.
 */
import { getLlama, LlamaLogLevel, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from "node-llama-cpp";

/** Load node-llama-cpp's llama.cpp (CPU), or throw saying what is missing. */
export async function loadLlamaCpp(): Promise<Llama> {
  try {
    return await getLlama({ build: "never", gpu: false, skipDownload: true, usePrebuiltBinaries: true, progressLogs: false, logLevel: LlamaLogLevel.error });
  } catch (e) {
    throw new Error(
      `node-llama-cpp could not load its prebuilt llama.cpp for ${process.platform}-${process.arch} (${e instanceof Error ? e.message : String(e)}). ` +
        `The GGUF tests need it: run \`npm ci\` so that the devDependency node-llama-cpp and its platform package @node-llama-cpp/${process.platform}-${process.arch} are installed.`,
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
  const toks = ids as readonly number[] as readonly Token[]; // node-llama-cpp brands token ids
  const full = { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } as const;
  const res = await run.seq.controlledEvaluate(toks.map((t, i) => (i === last ? ([t, { generateNext: full }] as const) : t)));
  const map = res[last]?.next?.probabilities;
  if (!map) throw new Error("llama.cpp returned no probabilities");
  const out = new Float64Array(vocab).fill(-Infinity);
  for (const [tok, p] of map) out[tok as unknown as number] = Math.log(p);
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
  for await (const t of run.seq.evaluate([...(ids as readonly number[] as readonly Token[])], { temperature: 0 })) {
    out.push(t as unknown as number);
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
