/**
 * The Architecture interface: everything the runtime knows about one model family lives in
 * an implementation of this interface (`gpt2.ts`, `llama.ts`). Callers above `model/arch`
 * never see module-path templates, never branch on model names and never guess transposes.
 *
 * Dimension legend: B batch rows, T sequence length (padded), BT = B·T, C hidden width,
 * F = dFF (MLP inner width = down-projection input = key width), V vocabulary,
 * NH query heads, NKV key/value heads, HS head size, L number of blocks.
 */
import { DeltaEditError } from "../../errors.js";
import type { ModelConfig } from "../config.js";
import type { LinearRef, Layout } from "../linear.js";
import type { ParamSpec, ParamStore } from "../params.js";

/** Shape and masking of one padded (right-padded) batch. */
export interface BatchShape {
  B: number;
  T: number; // padded length of this call's tokens
  lengths: number[]; // (B) real tokens per row (≤ pastLength + T); only the last `T` are in this call
  positions: Int32Array; // (B·T) absolute position id of every token in this call
  keyMask: Uint8Array | null; // (B, pastLength + T): 1 = real token, null = no padding anywhere
  pastLength: number; // tokens already in the KV cache (0 without a cache)
}

/** Per-layer key/value cache: incremental decoding, and the context prefix of the target search (positions before each subject). k, v: (B, maxT, NKV·HS). */
export interface KVCacheLayer {
  k: Float32Array; // (B, maxT, NKV, HS)
  v: Float32Array; // (B, maxT, NKV, HS)
  maxT: number;
}

/** The edited matrix of a block: the MLP down projection. */
export interface EditTarget {
  name: string; // checkpoint tensor name of the weight
  biasName: string | null;
  W: Float32Array; // the live weight buffer, stored per `layout`
  dIn: number; // F: key width (input of the down projection)
  dOut: number; // C: value width
  layout: Layout; // "in_out" for GPT-2 Conv1D (stored (F, C)), "out_in" for Llama (stored (C, F))
  module: string; // module path inside the Hugging Face *ForCausalLM model (PEFT target name)
}

/**
 * Activations one block saves in its forward pass for its backward pass (and for taps).
 * `key` is the input of the down projection, `value` its output (bias included).
 */
export interface BlockActs {
  readonly rows: number; // BT this record was allocated for
  key: Float32Array; // (BT, F)
  value: Float32Array; // (BT, C)
}

/**
 * Rows of one batch (indices into BT) whose sublayer output is overwritten, and the values
 * written there: row `rows[i]` receives `values[i·C .. (i+1)·C)`. Used by causal tracing
 * (ROME's "restoration" of a clean state inside a corrupted run).
 */
export interface RowPatch {
  rows: Int32Array; // (n) indices into BT
  values: Float32Array; // (n, C)
}

/**
 * Optional read/overwrite access to a block's two sublayer outputs (what each adds to the
 * residual stream). Absent or null: the block runs exactly as without it.
 */
export interface SublayerIO {
  /**
   * (BT, C) receives the attention sublayer's output (output projection, bias included) before
   * it is added to the residual stream; patched rows hold the patched values. Required with `attnPatch`.
   */
  attnOut?: Float32Array | null;
  /** Overwrite the attention sublayer's output at these rows before it is added to the residual. */
  attnPatch?: RowPatch | null;
  /** Overwrite the MLP output (the value, `acts.value`) at these rows before it is added to the residual. */
  mlpPatch?: RowPatch | null;
}

export interface Architecture<A extends BlockActs = BlockActs> {
  readonly family: "gpt2" | "llama";
  readonly config: ModelConfig;
  readonly params: ParamStore;
  readonly numLayers: number; // L
  readonly hidden: number; // C
  readonly dFF: number; // F
  readonly vocab: number; // V

  /** x (BT, C) = token (+ position) embeddings. */
  embed(ids: Int32Array, shape: BatchShape, out: Float32Array): void;
  /** Accumulate embedding gradients from dx (BT, C). */
  embedBackward(ids: Int32Array, shape: BatchShape, dx: Float32Array, grads: ParamStore): void;

  allocActs(rows: number, shape: BatchShape): A;
  /**
   * out (BT, C) = block l applied to x (BT, C); saves what backward needs in `acts`. `sub` reads
   * or overwrites the sublayer outputs (causal tracing); a patched forward is not differentiable.
   */
  blockForward(l: number, x: Float32Array, out: Float32Array, shape: BatchShape, acts: A, kv: KVCacheLayer | null, sub?: SublayerIO | null): void;
  /**
   * Backward of block l. dout (BT, C) is the gradient of the block output; dx (BT, C) receives the
   * gradient of the block input (null: not needed). Weight gradients are accumulated into
   * `grads` for the parameter names in `want` (null: none). `kv`: the cache the forward attended
   * over (the same `kv` as `blockForward`'s); gradients flow to this call's own keys and values
   * only — the cached past is a constant.
   */
  blockBackward(l: number, x: Float32Array, dout: Float32Array, dx: Float32Array | null, shape: BatchShape, acts: A, grads: ParamStore | null, want: ReadonlySet<string> | null, kv?: KVCacheLayer | null): void;

  /** Final norm on `rows` rows: out (rows, C); saves stats in `stats` (rows·2). */
  finalNormForward(x: Float32Array, out: Float32Array, stats: Float32Array, rows: number): void;
  finalNormBackward(x: Float32Array, dout: Float32Array, dx: Float32Array, stats: Float32Array, rows: number, grads: ParamStore | null, want: ReadonlySet<string> | null): void;
  /** The unembedding as a linear map C → V. */
  lmHead(): LinearRef;
  /** Name of the parameter holding the unembedding (the token embedding when tied). */
  lmHeadName(): string;

  editTarget(l: number): EditTarget;
  /** Parameter names of block l (for "all weights of block l" selections). */
  blockParamNames(l: number): string[];
}

export type ParamSpecsFn = (config: ModelConfig) => ParamSpec[];

/** y (BT, C): overwrite the rows of `patch` with its values (validated: lengths and row range). */
export function applyRowPatch(y: Float32Array, patch: RowPatch, C: number, what: string): void {
  const n = patch.rows.length;
  if (patch.values.length !== n * C) throw new DeltaEditError("E_ARG", `${what} patch: values has length ${patch.values.length}, expected rows·C = ${n}·${C}`);
  const BT = y.length / C;
  for (let i = 0; i < n; i++) {
    const r = patch.rows[i]!;
    if (!(r >= 0 && r < BT)) throw new DeltaEditError("E_ARG", `${what} patch: row ${r} outside [0, ${BT})`);
    y.set(patch.values.subarray(i * C, (i + 1) * C), r * C);
  }
}
