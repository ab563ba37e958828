/**
 * The Llama family: Llama 2/3 (incl. rope_scaling "llama3"), Mistral, Qwen2 (q/k/v biases).
 * RMSNorm, rotary position embeddings (Hugging Face rotate-half convention, rope_theta),
 * grouped-query attention, SwiGLU MLP, tied or untied LM head. All linear weights are stored
 * (out, in) (torch Linear).
 *
 * Block l, forward (x: (BT, C)):
 *   n1  = RMSNorm(x)                                   (BT, C)      input_layernorm
 *   q   = n1·Wqᵀ (+bq), k = n1·Wkᵀ (+bk), v = n1·Wvᵀ (+bv)
 *                                                      q (BT, NH·HS), k/v (BT, NKV·HS)
 *   q, k ← RoPE(q, k) at each token's position
 *   att = causal GQA softmax attention                 (BT, NH·HS)
 *   r2  = x + att·Woᵀ                                  (BT, C)      o_proj
 *   n2  = RMSNorm(r2)                                  (BT, C)      post_attention_layernorm
 *   key = silu(n2·Wgᵀ) ⊙ (n2·Wuᵀ)                      (BT, F)      ← the key
 *   val = key·Wdᵀ                                      (BT, C)      down_proj ← the value
 *   out = r2 + val
 * With `sub` (causal tracing): attnOut = att·Woᵀ (BT, C) is formed on its own, patched rows
 * overwritten, then r2 = x + attnOut; patched rows of val are overwritten before out = r2 + val.
 */
import * as ops from "../../kernels/ops.js";
import type { AttentionShape } from "../../kernels/ops.js";
import { DeltaEditError } from "../../errors.js";
import type { ModelConfig } from "../config.js";
import { f32, str, u32, type GgufMetadata } from "../gguf/format.js";
import type { GgufArchitecture, GgufTensorMap } from "../gguf/plan.js";
import { linearBackward, linearForward, type LinearRef } from "../linear.js";
import type { ParamSpec, ParamStore } from "../params.js";
import { applyRowPatch, type Architecture, type BatchShape, type BlockActs, type EditTarget, type KVCacheLayer, type SublayerIO } from "./architecture.js";
import { ropeInvFreq, RotaryTables } from "./rope.js";

export function llamaParamSpecs(cfg: ModelConfig): ParamSpec[] {
  const C = cfg.hiddenSize;
  const F = cfg.intermediateSize;
  const QD = cfg.numHeads * cfg.headSize;
  const KD = cfg.numKvHeads * cfg.headSize;
  const specs: ParamSpec[] = [{ name: "model.embed_tokens.weight", shape: [cfg.vocabSize, C], role: "embedding", layer: null }];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    specs.push(
      { name: p + "input_layernorm.weight", shape: [C], role: "norm_weight", layer: l },
      { name: p + "self_attn.q_proj.weight", shape: [QD, C], role: "linear_weight", layer: l },
      { name: p + "self_attn.k_proj.weight", shape: [KD, C], role: "linear_weight", layer: l },
      { name: p + "self_attn.v_proj.weight", shape: [KD, C], role: "linear_weight", layer: l },
    );
    if (cfg.attentionBias) {
      specs.push(
        { name: p + "self_attn.q_proj.bias", shape: [QD], role: "linear_bias", layer: l },
        { name: p + "self_attn.k_proj.bias", shape: [KD], role: "linear_bias", layer: l },
        { name: p + "self_attn.v_proj.bias", shape: [KD], role: "linear_bias", layer: l },
      );
    }
    specs.push(
      { name: p + "self_attn.o_proj.weight", shape: [C, QD], role: "linear_weight", layer: l },
      { name: p + "post_attention_layernorm.weight", shape: [C], role: "norm_weight", layer: l },
      { name: p + "mlp.gate_proj.weight", shape: [F, C], role: "linear_weight", layer: l },
      { name: p + "mlp.up_proj.weight", shape: [F, C], role: "linear_weight", layer: l },
      { name: p + "mlp.down_proj.weight", shape: [C, F], role: "linear_weight", layer: l },
    );
    if (cfg.mlpBias) {
      specs.push(
        { name: p + "mlp.gate_proj.bias", shape: [F], role: "linear_bias", layer: l },
        { name: p + "mlp.up_proj.bias", shape: [F], role: "linear_bias", layer: l },
        { name: p + "mlp.down_proj.bias", shape: [C], role: "linear_bias", layer: l },
      );
    }
  }
  specs.push({ name: "model.norm.weight", shape: [C], role: "norm_weight", layer: null });
  if (!cfg.tieWordEmbeddings) specs.push({ name: "lm_head.weight", shape: [cfg.vocabSize, C], role: "lm_head", layer: null });
  return specs;
}

/**
 * A Llama-family model in a llama.cpp GGUF file (architecture "llama"), as convert_hf_to_gguf.py
 * writes it: W_q, W_k rows permuted to llama.cpp's rotary pairing (plan.ts); `output.weight` only
 * when the LM head is not tied; Llama 3 rope scaling as the `rope_freqs.weight` tensor of
 * per-frequency divisors, linear scaling as `rope.scaling.*` keys. Mistral is written as "llama"
 * (its sliding window is not recorded: deltaedit attends fully too). Qwen2 (architecture "qwen2")
 * and checkpoints with q/k/v or MLP biases are not supported (E_CONFIG naming the field).
 */
export function llamaGgufPlan(cfg: ModelConfig, file = "config.json"): GgufArchitecture {
  if (cfg.modelType !== "llama" && cfg.modelType !== "mistral") {
    throw new DeltaEditError("E_CONFIG", `${file}: model_type "${cfg.modelType}" cannot be exported to GGUF yet (supported: llama, mistral, gpt2)`, { context: { file, field: "model_type" } });
  }
  if (cfg.attentionBias || cfg.mlpBias) {
    const field = cfg.attentionBias ? "attention_bias" : "mlp_bias";
    throw new DeltaEditError("E_CONFIG", `${file}: ${field} = true: Llama checkpoints with biases cannot be exported to GGUF yet`, { context: { file, field } });
  }
  const C = cfg.hiddenSize;
  const F = cfg.intermediateSize;
  const QD = cfg.numHeads * cfg.headSize;
  const KD = cfg.numKvHeads * cfg.headSize;
  const as = (param: string, name: string, shape: number[]): GgufTensorMap => ({ param, name, shape, reorder: { kind: "none" } });
  const t: GgufTensorMap[] = [as("model.embed_tokens.weight", "token_embd.weight", [cfg.vocabSize, C])];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const b = `blk.${l}.`;
    t.push(
      as(p + "input_layernorm.weight", b + "attn_norm.weight", [C]),
      { param: p + "self_attn.q_proj.weight", name: b + "attn_q.weight", shape: [QD, C], reorder: { kind: "ropeRows", heads: cfg.numHeads } },
      { param: p + "self_attn.k_proj.weight", name: b + "attn_k.weight", shape: [KD, C], reorder: { kind: "ropeRows", heads: cfg.numKvHeads } },
      as(p + "self_attn.v_proj.weight", b + "attn_v.weight", [KD, C]),
      as(p + "self_attn.o_proj.weight", b + "attn_output.weight", [C, QD]),
      as(p + "post_attention_layernorm.weight", b + "ffn_norm.weight", [C]),
      as(p + "mlp.gate_proj.weight", b + "ffn_gate.weight", [F, C]),
      as(p + "mlp.up_proj.weight", b + "ffn_up.weight", [F, C]),
      as(p + "mlp.down_proj.weight", b + "ffn_down.weight", [C, F]),
    );
  }
  t.push(as("model.norm.weight", "output_norm.weight", [C]));
  if (!cfg.tieWordEmbeddings) t.push(as("lm_head.weight", "output.weight", [cfg.vocabSize, C]));
  const hp: GgufMetadata = [
    ["llama.vocab_size", u32(cfg.vocabSize)],
    ["llama.context_length", u32(cfg.maxPositions)],
    ["llama.embedding_length", u32(C)],
    ["llama.block_count", u32(cfg.numLayers)],
    ["llama.feed_forward_length", u32(F)],
    ["llama.rope.dimension_count", u32(cfg.headSize)],
    ["llama.attention.head_count", u32(cfg.numHeads)],
    ["llama.attention.head_count_kv", u32(cfg.numKvHeads)],
    ["llama.attention.key_length", u32(cfg.headSize)],
    ["llama.attention.value_length", u32(cfg.headSize)],
    ["llama.rope.freq_base", f32(cfg.ropeTheta)],
    ["llama.attention.layer_norm_rms_epsilon", f32(cfg.normEps)],
  ];
  const extra: GgufArchitecture["extra"] = [];
  const rs = cfg.ropeScaling;
  if (rs?.type === "linear") hp.push(["llama.rope.scaling.type", str("linear")], ["llama.rope.scaling.factor", f32(rs.factor)]);
  else if (rs?.type === "llama3") {
    // llama.cpp divides each rotary frequency θ^(−2i/HS) by rope_freqs[i]
    const scaled = ropeInvFreq(cfg);
    const factors = new Float32Array(scaled.length); // (HS/2)
    for (let i = 0; i < scaled.length; i++) factors[i] = 1 / Math.pow(cfg.ropeTheta, (2 * i) / cfg.headSize) / scaled[i]!;
    extra.push({ name: "rope_freqs.weight", shape: [scaled.length], data: factors });
  }
  return { name: "llama", hparams: hp, tensors: t, extra };
}

export interface LlamaActs extends BlockActs {
  n1: Float32Array; // (BT, C)
  n1Rstd: Float32Array; // (BT)
  q: Float32Array; // (BT, NH·HS) after RoPE
  k: Float32Array; // (BT, NKV·HS) after RoPE
  v: Float32Array; // (BT, NKV·HS)
  probs: Float32Array; // (B, NH, T, Tk)
  att: Float32Array; // (BT, NH·HS)
  r2: Float32Array; // (BT, C)
  n2: Float32Array; // (BT, C)
  n2Rstd: Float32Array; // (BT)
  gate: Float32Array; // (BT, F)
  up: Float32Array; // (BT, F)
  key: Float32Array; // (BT, F)
  value: Float32Array; // (BT, C)
  // backward scratch
  dF1: Float32Array; // (BT, F)
  dF2: Float32Array; // (BT, F)
  dF3: Float32Array; // (BT, F)
  dC1: Float32Array; // (BT, max(C, NH·HS))
  dR2: Float32Array; // (BT, C)
  dq: Float32Array; // (BT, NH·HS)
  dk: Float32Array; // (BT, NKV·HS)
  dv: Float32Array; // (BT, NKV·HS)
  /** Backward over a KV cache: gradients of the cached keys / values (B, maxT, NKV·HS), allocated on first use. */
  dkCache?: Float32Array;
  dvCache?: Float32Array;
}

export class Llama implements Architecture<LlamaActs> {
  readonly family = "llama" as const;
  readonly numLayers: number;
  readonly hidden: number;
  readonly dFF: number;
  readonly vocab: number;
  private readonly NH: number;
  private readonly NKV: number;
  private readonly HS: number;
  private readonly eps: number;
  /** cos/sin (rows, HS/2), built lazily for the positions in use. */
  readonly rope: RotaryTables;

  constructor(readonly config: ModelConfig, readonly params: ParamStore) {
    this.numLayers = config.numLayers;
    this.hidden = config.hiddenSize;
    this.dFF = config.intermediateSize;
    this.vocab = config.vocabSize;
    this.NH = config.numHeads;
    this.NKV = config.numKvHeads;
    this.HS = config.headSize;
    this.eps = config.normEps;
    if (this.NH % this.NKV !== 0) throw new DeltaEditError("E_CONFIG", `num_attention_heads (${this.NH}) must be a multiple of num_key_value_heads (${this.NKV})`);
    if (this.HS % 2 !== 0) throw new DeltaEditError("E_CONFIG", `head_dim (${this.HS}) must be even for rotary embeddings`);
    this.rope = new RotaryTables(config);
  }

  private lin(name: string, inF: number, outF: number, bias: boolean): LinearRef {
    return { W: this.params.get(name + ".weight"), b: bias ? this.params.get(name + ".bias") : null, inF, outF, layout: "out_in" };
  }

  embed(ids: Int32Array, _shape: BatchShape, out: Float32Array): void {
    const C = this.hidden;
    const E = this.params.get("model.embed_tokens.weight");
    for (let i = 0; i < ids.length; i++) out.set(E.subarray(ids[i]! * C, ids[i]! * C + C), i * C);
  }

  embedBackward(ids: Int32Array, _shape: BatchShape, dx: Float32Array, grads: ParamStore): void {
    if (!grads.has("model.embed_tokens.weight")) return;
    const C = this.hidden;
    const dE = grads.get("model.embed_tokens.weight");
    for (let i = 0; i < ids.length; i++) {
      const e = ids[i]! * C;
      const o = i * C;
      for (let c = 0; c < C; c++) dE[e + c]! += dx[o + c]!;
    }
  }

  allocActs(rows: number, shape: BatchShape): LlamaActs {
    const C = this.hidden;
    const F = this.dFF;
    const QD = this.NH * this.HS;
    const KD = this.NKV * this.HS;
    const Tk = shape.pastLength + shape.T;
    return {
      rows,
      n1: new Float32Array(rows * C),
      n1Rstd: new Float32Array(rows),
      q: new Float32Array(rows * QD),
      k: new Float32Array(rows * KD),
      v: new Float32Array(rows * KD),
      probs: new Float32Array(shape.B * this.NH * shape.T * Tk),
      att: new Float32Array(rows * QD),
      r2: new Float32Array(rows * C),
      n2: new Float32Array(rows * C),
      n2Rstd: new Float32Array(rows),
      gate: new Float32Array(rows * F),
      up: new Float32Array(rows * F),
      key: new Float32Array(rows * F),
      value: new Float32Array(rows * C),
      dF1: new Float32Array(rows * F),
      dF2: new Float32Array(rows * F),
      dF3: new Float32Array(rows * F),
      dC1: new Float32Array(rows * Math.max(C, QD)),
      dR2: new Float32Array(rows * C),
      dq: new Float32Array(rows * QD),
      dk: new Float32Array(rows * KD),
      dv: new Float32Array(rows * KD),
    };
  }

  private attnShape(shape: BatchShape, kv: KVCacheLayer | null): AttentionShape {
    const KD = this.NKV * this.HS;
    const base: AttentionShape = { B: shape.B, T: shape.T, Tk: shape.pastLength + shape.T, nHeads: this.NH, nKvHeads: this.NKV, headSize: this.HS, qOffset: shape.pastLength };
    if (shape.keyMask) base.keyMask = shape.keyMask;
    if (kv) return { ...base, kRowStride: KD, kBatchStride: kv.maxT * KD, vRowStride: KD, vBatchStride: kv.maxT * KD };
    return base;
  }

  blockForward(l: number, x: Float32Array, out: Float32Array, shape: BatchShape, a: LlamaActs, kv: KVCacheLayer | null, sub?: SublayerIO | null): void {
    const C = this.hidden;
    const F = this.dFF;
    const QD = this.NH * this.HS;
    const KD = this.NKV * this.HS;
    const rows = shape.B * shape.T;
    const p = `model.layers.${l}.`;
    const P = this.params;
    const ab = this.config.attentionBias;
    const mb = this.config.mlpBias;
    ops.rmsNormForward(x, P.get(p + "input_layernorm.weight"), a.n1, a.n1Rstd, rows, C, this.eps);
    linearForward(this.lin(p + "self_attn.q_proj", C, QD, ab), a.n1, a.q, rows);
    linearForward(this.lin(p + "self_attn.k_proj", C, KD, ab), a.n1, a.k, rows);
    linearForward(this.lin(p + "self_attn.v_proj", C, KD, ab), a.n1, a.v, rows);
    const { cos, sin } = this.rope.coverPositions(shape.positions);
    ops.ropeForward(a.q, cos, sin, shape.positions, rows, this.NH, this.HS);
    ops.ropeForward(a.k, cos, sin, shape.positions, rows, this.NKV, this.HS);
    const as = this.attnShape(shape, kv);
    if (kv) {
      for (let b = 0; b < shape.B; b++) {
        for (let t = 0; t < shape.T; t++) {
          const src = (b * shape.T + t) * KD;
          const dst = (b * kv.maxT + shape.pastLength + t) * KD;
          kv.k.set(a.k.subarray(src, src + KD), dst);
          kv.v.set(a.v.subarray(src, src + KD), dst);
        }
      }
      ops.attentionForward(a.q, kv.k, kv.v, a.att, a.probs, as);
    } else {
      ops.attentionForward(a.q, a.k, a.v, a.att, a.probs, as);
    }
    if (sub?.attnOut) {
      const ao = sub.attnOut; // (BT, C) attention sublayer output
      if (ao.length !== rows * C) throw new DeltaEditError("E_ARG", `block ${l}: attnOut has length ${ao.length}, expected BT·C = ${rows * C}`);
      linearForward(this.lin(p + "self_attn.o_proj", QD, C, false), a.att, ao, rows);
      if (sub.attnPatch) applyRowPatch(ao, sub.attnPatch, C, `block ${l} attention`);
      for (let i = 0; i < rows * C; i++) a.r2[i] = x[i]! + ao[i]!;
    } else {
      if (sub?.attnPatch) throw new DeltaEditError("E_ARG", `block ${l}: an attention patch needs an attnOut buffer`);
      a.r2.set(x.subarray(0, rows * C));
      linearForward(this.lin(p + "self_attn.o_proj", QD, C, false), a.att, a.r2, rows, true);
    }
    ops.rmsNormForward(a.r2, P.get(p + "post_attention_layernorm.weight"), a.n2, a.n2Rstd, rows, C, this.eps);
    linearForward(this.lin(p + "mlp.gate_proj", C, F, mb), a.n2, a.gate, rows);
    linearForward(this.lin(p + "mlp.up_proj", C, F, mb), a.n2, a.up, rows);
    ops.swigluForward(a.gate, a.up, a.key, rows * F);
    linearForward(this.lin(p + "mlp.down_proj", F, C, mb), a.key, a.value, rows);
    if (sub?.mlpPatch) applyRowPatch(a.value, sub.mlpPatch, C, `block ${l} MLP`);
    for (let i = 0; i < rows * C; i++) out[i] = a.r2[i]! + a.value[i]!;
  }

  blockBackward(l: number, x: Float32Array, dout: Float32Array, dx: Float32Array | null, shape: BatchShape, a: LlamaActs, grads: ParamStore | null, want: ReadonlySet<string> | null, kv?: KVCacheLayer | null): void {
    const C = this.hidden;
    const F = this.dFF;
    const QD = this.NH * this.HS;
    const KD = this.NKV * this.HS;
    const rows = shape.B * shape.T;
    const p = `model.layers.${l}.`;
    const P = this.params;
    const ab = this.config.attentionBias;
    const mb = this.config.mlpBias;
    const g = (name: string): Float32Array | null => (grads && want && want.has(p + name) ? grads.get(p + name) : null);
    // forward was: out = r2 + val ; val = key·Wdᵀ ; key = silu(gate) ⊙ up
    const dKey = a.dF1.subarray(0, rows * F);
    linearBackward(this.lin(p + "mlp.down_proj", F, C, mb), a.key, dout, dKey, g("mlp.down_proj.weight"), mb ? g("mlp.down_proj.bias") : null, rows);
    const dGate = a.dF2.subarray(0, rows * F);
    const dUp = a.dF3.subarray(0, rows * F);
    ops.swigluBackward(a.gate, a.up, dKey, dGate, dUp, rows * F);
    const dN2 = a.dC1.subarray(0, rows * C);
    linearBackward(this.lin(p + "mlp.gate_proj", C, F, mb), a.n2, dGate, dN2, g("mlp.gate_proj.weight"), mb ? g("mlp.gate_proj.bias") : null, rows);
    linearBackward(this.lin(p + "mlp.up_proj", C, F, mb), a.n2, dUp, dN2, g("mlp.up_proj.weight"), mb ? g("mlp.up_proj.bias") : null, rows, true);
    ops.rmsNormBackward(dN2, a.r2, P.get(p + "post_attention_layernorm.weight"), a.n2Rstd, a.dR2, g("post_attention_layernorm.weight"), rows, C);
    const dR2 = a.dR2;
    for (let i = 0; i < rows * C; i++) dR2[i]! += dout[i]!;
    // forward was: r2 = x + att·Woᵀ
    const dAtt = a.dC1.subarray(0, rows * QD);
    linearBackward(this.lin(p + "self_attn.o_proj", QD, C, false), a.att, dR2, dAtt, g("self_attn.o_proj.weight"), null, rows);
    if (kv) {
      // keys / values were read from the cache: (B, maxT, KD); this call's own are at pastLength + t
      const n = shape.B * kv.maxT * KD;
      if (!a.dkCache || a.dkCache.length !== n) {
        a.dkCache = new Float32Array(n);
        a.dvCache = new Float32Array(n);
      }
      ops.attentionBackward(dAtt, a.q, kv.k, kv.v, a.probs, a.dq, a.dkCache, a.dvCache!, this.attnShape(shape, kv));
      for (let b = 0; b < shape.B; b++) {
        const src = (b * kv.maxT + shape.pastLength) * KD;
        a.dk.set(a.dkCache.subarray(src, src + shape.T * KD), b * shape.T * KD);
        a.dv.set(a.dvCache!.subarray(src, src + shape.T * KD), b * shape.T * KD);
      }
    } else {
      ops.attentionBackward(dAtt, a.q, a.k, a.v, a.probs, a.dq, a.dk, a.dv, this.attnShape(shape, null));
    }
    // forward was: q, k ← RoPE(q, k)
    const { cos, sin } = this.rope.coverPositions(shape.positions);
    ops.ropeBackward(a.dq, cos, sin, shape.positions, rows, this.NH, this.HS);
    ops.ropeBackward(a.dk, cos, sin, shape.positions, rows, this.NKV, this.HS);
    const dN1 = a.dC1.subarray(0, rows * C);
    linearBackward(this.lin(p + "self_attn.q_proj", C, QD, ab), a.n1, a.dq, dN1, g("self_attn.q_proj.weight"), ab ? g("self_attn.q_proj.bias") : null, rows);
    linearBackward(this.lin(p + "self_attn.k_proj", C, KD, ab), a.n1, a.dk, dN1, g("self_attn.k_proj.weight"), ab ? g("self_attn.k_proj.bias") : null, rows, true);
    linearBackward(this.lin(p + "self_attn.v_proj", C, KD, ab), a.n1, a.dv, dN1, g("self_attn.v_proj.weight"), ab ? g("self_attn.v_proj.bias") : null, rows, true);
    if (dx || g("input_layernorm.weight")) {
      const dX = dx ?? new Float32Array(rows * C);
      ops.rmsNormBackward(dN1, x, P.get(p + "input_layernorm.weight"), a.n1Rstd, dX, g("input_layernorm.weight"), rows, C);
      for (let i = 0; i < rows * C; i++) dX[i]! += dR2[i]!;
    }
  }

  finalNormForward(x: Float32Array, out: Float32Array, stats: Float32Array, rows: number): void {
    ops.rmsNormForward(x, this.params.get("model.norm.weight"), out, stats.subarray(0, rows), rows, this.hidden, this.eps);
  }

  finalNormBackward(x: Float32Array, dout: Float32Array, dx: Float32Array, stats: Float32Array, rows: number, grads: ParamStore | null, want: ReadonlySet<string> | null): void {
    const gw = grads && want?.has("model.norm.weight") ? grads.get("model.norm.weight") : null;
    ops.rmsNormBackward(dout, x, this.params.get("model.norm.weight"), stats.subarray(0, rows), dx, gw, rows, this.hidden);
  }

  lmHead(): LinearRef {
    return { W: this.params.get(this.lmHeadName()), b: null, inF: this.hidden, outF: this.vocab, layout: "out_in" };
  }

  lmHeadName(): string {
    return this.config.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  }

  editTarget(l: number): EditTarget {
    const name = `model.layers.${l}.mlp.down_proj.weight`;
    return { name, biasName: this.config.mlpBias ? `model.layers.${l}.mlp.down_proj.bias` : null, W: this.params.get(name), dIn: this.dFF, dOut: this.hidden, layout: "out_in", module: `model.layers.${l}.mlp.down_proj` };
  }

  blockParamNames(l: number): string[] {
    return this.params.specs.filter((s) => s.layer === l).map((s) => s.name);
  }
}
