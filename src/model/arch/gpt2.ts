/**
 * GPT-2 (Hugging Face hub layout). Conv1D weights are stored (in, out); the hub's files carry
 * no "transformer." prefix (accepted when present, see checkpoint loading); `h.N.attn.bias`
 * mask buffers are ignored; tanh-GELU ("gelu_new"); the LM head is tied to `wte`.
 *
 * Block l, forward (x: (BT, C)):
 *   ln1 = LN(x)                       (BT, C)     ln_1
 *   qkv = ln1·Wattn + b               (BT, 3C)    attn.c_attn   [q | k | v]
 *   att = causal softmax attention    (BT, C)     probs (B, NH, T, Tk)
 *   r2  = x + att·Wproj + b           (BT, C)     attn.c_proj
 *   ln2 = LN(r2)                      (BT, C)     ln_2
 *   fc  = ln2·Wfc + b                 (BT, F)     mlp.c_fc
 *   key = gelu(fc)                    (BT, F)     ← input of the down projection (the key)
 *   val = key·Wdown + b               (BT, C)     mlp.c_proj   ← the value
 *   out = r2 + val                    (BT, C)
 * With `sub` (causal tracing): attnOut = att·Wproj + b (BT, C) is formed on its own, patched rows
 * overwritten, then r2 = x + attnOut; patched rows of val are overwritten before out = r2 + val.
 */
import * as ops from "../../kernels/ops.js";
import type { AttentionShape } from "../../kernels/ops.js";
import { DeltaEditError } from "../../errors.js";
import type { ModelConfig } from "../config.js";
import { f32, u32 } from "../gguf/format.js";
import type { GgufArchitecture, GgufTensorMap } from "../gguf/plan.js";
import { linearBackward, linearForward, type LinearRef } from "../linear.js";
import type { ParamSpec, ParamStore } from "../params.js";
import { applyRowPatch, type Architecture, type BatchShape, type BlockActs, type EditTarget, type KVCacheLayer, type SublayerIO } from "./architecture.js";

export function gpt2ParamSpecs(cfg: ModelConfig): ParamSpec[] {
  const C = cfg.hiddenSize;
  const F = cfg.intermediateSize;
  const specs: ParamSpec[] = [
    { name: "wte.weight", shape: [cfg.vocabSize, C], role: "embedding", layer: null },
    { name: "wpe.weight", shape: [cfg.maxPositions, C], role: "position", layer: null },
  ];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `h.${l}.`;
    specs.push(
      { name: p + "ln_1.weight", shape: [C], role: "norm_weight", layer: l },
      { name: p + "ln_1.bias", shape: [C], role: "norm_bias", layer: l },
      { name: p + "attn.c_attn.weight", shape: [C, 3 * C], role: "linear_weight", layer: l },
      { name: p + "attn.c_attn.bias", shape: [3 * C], role: "linear_bias", layer: l },
      { name: p + "attn.c_proj.weight", shape: [C, C], role: "linear_weight", layer: l },
      { name: p + "attn.c_proj.bias", shape: [C], role: "linear_bias", layer: l },
      { name: p + "ln_2.weight", shape: [C], role: "norm_weight", layer: l },
      { name: p + "ln_2.bias", shape: [C], role: "norm_bias", layer: l },
      { name: p + "mlp.c_fc.weight", shape: [C, F], role: "linear_weight", layer: l },
      { name: p + "mlp.c_fc.bias", shape: [F], role: "linear_bias", layer: l },
      { name: p + "mlp.c_proj.weight", shape: [F, C], role: "linear_weight", layer: l },
      { name: p + "mlp.c_proj.bias", shape: [C], role: "linear_bias", layer: l },
    );
  }
  specs.push({ name: "ln_f.weight", shape: [C], role: "norm_weight", layer: null }, { name: "ln_f.bias", shape: [C], role: "norm_bias", layer: null });
  return specs;
}

/**
 * GPT-2 in a llama.cpp GGUF file (architecture "gpt2"), as convert_hf_to_gguf.py writes it: Conv1D
 * weights transposed to (out, in); the tied LM head written again as `output.weight`.
 */
export function gpt2GgufPlan(cfg: ModelConfig): GgufArchitecture {
  const C = cfg.hiddenSize;
  const F = cfg.intermediateSize;
  const t: GgufTensorMap[] = [
    { param: "wte.weight", name: "token_embd.weight", shape: [cfg.vocabSize, C], reorder: { kind: "none" } },
    { param: "wpe.weight", name: "position_embd.weight", shape: [cfg.maxPositions, C], reorder: { kind: "none" } },
  ];
  const as = (param: string, name: string, shape: number[]): GgufTensorMap => ({ param, name, shape, reorder: { kind: "none" } });
  const tr = (param: string, name: string, shape: number[]): GgufTensorMap => ({ param, name, shape, reorder: { kind: "transpose" } });
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `h.${l}.`;
    const b = `blk.${l}.`;
    t.push(
      as(p + "ln_1.weight", b + "attn_norm.weight", [C]),
      as(p + "ln_1.bias", b + "attn_norm.bias", [C]),
      tr(p + "attn.c_attn.weight", b + "attn_qkv.weight", [3 * C, C]),
      as(p + "attn.c_attn.bias", b + "attn_qkv.bias", [3 * C]),
      tr(p + "attn.c_proj.weight", b + "attn_output.weight", [C, C]),
      as(p + "attn.c_proj.bias", b + "attn_output.bias", [C]),
      as(p + "ln_2.weight", b + "ffn_norm.weight", [C]),
      as(p + "ln_2.bias", b + "ffn_norm.bias", [C]),
      tr(p + "mlp.c_fc.weight", b + "ffn_up.weight", [F, C]),
      as(p + "mlp.c_fc.bias", b + "ffn_up.bias", [F]),
      tr(p + "mlp.c_proj.weight", b + "ffn_down.weight", [C, F]),
      as(p + "mlp.c_proj.bias", b + "ffn_down.bias", [C]),
    );
  }
  t.push(as("ln_f.weight", "output_norm.weight", [C]), as("ln_f.bias", "output_norm.bias", [C]), as("wte.weight", "output.weight", [cfg.vocabSize, C]));
  return {
    name: "gpt2",
    hparams: [
      ["gpt2.block_count", u32(cfg.numLayers)],
      ["gpt2.context_length", u32(cfg.maxPositions)],
      ["gpt2.embedding_length", u32(C)],
      ["gpt2.feed_forward_length", u32(F)],
      ["gpt2.attention.head_count", u32(cfg.numHeads)],
      ["gpt2.attention.layer_norm_epsilon", f32(cfg.normEps)],
    ],
    tensors: t,
    extra: [],
  };
}

export interface Gpt2Acts extends BlockActs {
  ln1: Float32Array; // (BT, C)
  ln1Mean: Float32Array; // (BT)
  ln1Rstd: Float32Array; // (BT)
  qkv: Float32Array; // (BT, 3C)
  probs: Float32Array; // (B, NH, T, Tk)
  att: Float32Array; // (BT, C)
  r2: Float32Array; // (BT, C)
  ln2: Float32Array; // (BT, C)
  ln2Mean: Float32Array; // (BT)
  ln2Rstd: Float32Array; // (BT)
  fc: Float32Array; // (BT, F)
  key: Float32Array; // (BT, F)
  value: Float32Array; // (BT, C)
  // scratch for backward
  dA: Float32Array; // (BT, max(3C, F))
  dB: Float32Array; // (BT, max(3C, F))
  dC: Float32Array; // (BT, C)
  /** Backward over a KV cache: gradients of the cached keys / values (B, maxT, C), allocated on first use. */
  dkCache?: Float32Array;
  dvCache?: Float32Array;
}

export class Gpt2 implements Architecture<Gpt2Acts> {
  readonly family = "gpt2" as const;
  readonly numLayers: number;
  readonly hidden: number;
  readonly dFF: number;
  readonly vocab: number;
  private readonly nHeads: number;
  private readonly eps: number;

  constructor(readonly config: ModelConfig, readonly params: ParamStore) {
    this.numLayers = config.numLayers;
    this.hidden = config.hiddenSize;
    this.dFF = config.intermediateSize;
    this.vocab = config.vocabSize;
    this.nHeads = config.numHeads;
    this.eps = config.normEps;
  }

  private lin(name: string, inF: number, outF: number): LinearRef {
    return { W: this.params.get(name + ".weight"), b: this.params.get(name + ".bias"), inF, outF, layout: "in_out" };
  }

  embed(ids: Int32Array, shape: BatchShape, out: Float32Array): void {
    const C = this.hidden;
    const wte = this.params.get("wte.weight");
    const wpe = this.params.get("wpe.weight");
    for (let i = 0; i < ids.length; i++) {
      const tok = ids[i]!;
      const pos = shape.positions[i]!;
      const o = i * C;
      const te = tok * C;
      const pe = pos * C;
      for (let c = 0; c < C; c++) out[o + c] = wte[te + c]! + wpe[pe + c]!;
    }
  }

  embedBackward(ids: Int32Array, shape: BatchShape, dx: Float32Array, grads: ParamStore): void {
    const C = this.hidden;
    const dwte = grads.has("wte.weight") ? grads.get("wte.weight") : null;
    const dwpe = grads.has("wpe.weight") ? grads.get("wpe.weight") : null;
    for (let i = 0; i < ids.length; i++) {
      const o = i * C;
      if (dwte) {
        const te = ids[i]! * C;
        for (let c = 0; c < C; c++) dwte[te + c]! += dx[o + c]!;
      }
      if (dwpe) {
        const pe = shape.positions[i]! * C;
        for (let c = 0; c < C; c++) dwpe[pe + c]! += dx[o + c]!;
      }
    }
  }

  allocActs(rows: number, shape: BatchShape): Gpt2Acts {
    const C = this.hidden;
    const F = this.dFF;
    const Tk = shape.pastLength + shape.T;
    const w = Math.max(3 * C, F);
    return {
      rows,
      ln1: new Float32Array(rows * C),
      ln1Mean: new Float32Array(rows),
      ln1Rstd: new Float32Array(rows),
      qkv: new Float32Array(rows * 3 * C),
      probs: new Float32Array(shape.B * this.nHeads * shape.T * Tk),
      att: new Float32Array(rows * C),
      r2: new Float32Array(rows * C),
      ln2: new Float32Array(rows * C),
      ln2Mean: new Float32Array(rows),
      ln2Rstd: new Float32Array(rows),
      fc: new Float32Array(rows * F),
      key: new Float32Array(rows * F),
      value: new Float32Array(rows * C),
      dA: new Float32Array(rows * w),
      dB: new Float32Array(rows * w),
      dC: new Float32Array(rows * C),
    };
  }

  private attnShape(shape: BatchShape, kv: KVCacheLayer | null): AttentionShape {
    const C = this.hidden;
    const HS = C / this.nHeads;
    const base = { B: shape.B, T: shape.T, Tk: shape.pastLength + shape.T, nHeads: this.nHeads, nKvHeads: this.nHeads, headSize: HS, qOffset: shape.pastLength, qRowStride: 3 * C };
    const mask = shape.keyMask ? { keyMask: shape.keyMask } : {};
    if (kv) return { ...base, ...mask, kRowStride: C, kBatchStride: kv.maxT * C, vRowStride: C, vBatchStride: kv.maxT * C };
    return { ...base, ...mask, kRowStride: 3 * C, vRowStride: 3 * C };
  }

  blockForward(l: number, x: Float32Array, out: Float32Array, shape: BatchShape, a: Gpt2Acts, kv: KVCacheLayer | null, sub?: SublayerIO | null): void {
    const C = this.hidden;
    const F = this.dFF;
    const rows = shape.B * shape.T;
    const p = `h.${l}.`;
    const P = this.params;
    ops.layerNormForward(x, P.get(p + "ln_1.weight"), P.get(p + "ln_1.bias"), a.ln1, a.ln1Mean, a.ln1Rstd, rows, C, this.eps);
    linearForward(this.lin(p + "attn.c_attn", C, 3 * C), a.ln1, a.qkv, rows);
    const as = this.attnShape(shape, kv);
    if (kv) {
      // append this call's keys/values to the cache at positions pastLength..pastLength+T-1
      for (let b = 0; b < shape.B; b++) {
        for (let t = 0; t < shape.T; t++) {
          const src = (b * shape.T + t) * 3 * C;
          const dst = (b * kv.maxT + shape.pastLength + t) * C;
          kv.k.set(a.qkv.subarray(src + C, src + 2 * C), dst);
          kv.v.set(a.qkv.subarray(src + 2 * C, src + 3 * C), dst);
        }
      }
      ops.attentionForward(a.qkv, kv.k, kv.v, a.att, a.probs, as);
    } else {
      ops.attentionForward(a.qkv, a.qkv.subarray(C), a.qkv.subarray(2 * C), a.att, a.probs, as);
    }
    if (sub?.attnOut) {
      const ao = sub.attnOut; // (BT, C) attention sublayer output, bias included
      if (ao.length !== rows * C) throw new DeltaEditError("E_ARG", `block ${l}: attnOut has length ${ao.length}, expected BT·C = ${rows * C}`);
      linearForward(this.lin(p + "attn.c_proj", C, C), a.att, ao, rows);
      if (sub.attnPatch) applyRowPatch(ao, sub.attnPatch, C, `block ${l} attention`);
      for (let i = 0; i < rows * C; i++) a.r2[i] = x[i]! + ao[i]!;
    } else {
      if (sub?.attnPatch) throw new DeltaEditError("E_ARG", `block ${l}: an attention patch needs an attnOut buffer`);
      a.r2.set(x.subarray(0, rows * C));
      linearForward(this.lin(p + "attn.c_proj", C, C), a.att, a.r2, rows, true);
      addBias(a.r2, P.get(p + "attn.c_proj.bias"), rows, C);
    }
    ops.layerNormForward(a.r2, P.get(p + "ln_2.weight"), P.get(p + "ln_2.bias"), a.ln2, a.ln2Mean, a.ln2Rstd, rows, C, this.eps);
    linearForward(this.lin(p + "mlp.c_fc", C, F), a.ln2, a.fc, rows);
    ops.geluForward(a.fc, a.key, rows * F);
    linearForward(this.lin(p + "mlp.c_proj", F, C), a.key, a.value, rows);
    if (sub?.mlpPatch) applyRowPatch(a.value, sub.mlpPatch, C, `block ${l} MLP`);
    for (let i = 0; i < rows * C; i++) out[i] = a.r2[i]! + a.value[i]!;
  }

  blockBackward(l: number, x: Float32Array, dout: Float32Array, dx: Float32Array | null, shape: BatchShape, a: Gpt2Acts, grads: ParamStore | null, want: ReadonlySet<string> | null, kv?: KVCacheLayer | null): void {
    const C = this.hidden;
    const F = this.dFF;
    const rows = shape.B * shape.T;
    const p = `h.${l}.`;
    const P = this.params;
    const g = (name: string): Float32Array | null => (grads && want && want.has(p + name) ? grads.get(p + name) : null);
    const dKey = a.dA.subarray(0, rows * F);
    const dFc = a.dB.subarray(0, rows * F);
    const dR2 = a.dC; // (BT, C): gradient w.r.t. r2, starts as dout (residual)
    // forward was: out = r2 + val ; val = key·Wdown + b
    linearBackward(this.lin(p + "mlp.c_proj", F, C), a.key, dout, dKey, g("mlp.c_proj.weight"), g("mlp.c_proj.bias"), rows);
    ops.geluBackward(a.fc, dKey, dFc, rows * F);
    const dLn2 = a.dA.subarray(0, rows * C);
    linearBackward(this.lin(p + "mlp.c_fc", C, F), a.ln2, dFc, dLn2, g("mlp.c_fc.weight"), g("mlp.c_fc.bias"), rows);
    const dR2ln = a.dB.subarray(0, rows * C);
    ops.layerNormBackward(dLn2, a.r2, P.get(p + "ln_2.weight"), a.ln2Mean, a.ln2Rstd, dR2ln, g("ln_2.weight"), g("ln_2.bias"), rows, C);
    for (let i = 0; i < rows * C; i++) dR2[i] = dout[i]! + dR2ln[i]!;
    // forward was: r2 = x + att·Wproj + b
    const dAtt = a.dA.subarray(0, rows * C);
    linearBackward(this.lin(p + "attn.c_proj", C, C), a.att, dR2, dAtt, g("attn.c_proj.weight"), g("attn.c_proj.bias"), rows);
    const dQkv = a.dB.subarray(0, rows * 3 * C);
    if (kv) {
      // keys / values were read from the cache: (B, maxT, C); this call's own are at pastLength + t
      const n = shape.B * kv.maxT * C;
      if (!a.dkCache || a.dkCache.length !== n) {
        a.dkCache = new Float32Array(n);
        a.dvCache = new Float32Array(n);
      }
      ops.attentionBackward(dAtt, a.qkv, kv.k, kv.v, a.probs, dQkv, a.dkCache, a.dvCache!, this.attnShape(shape, kv));
      for (let b = 0; b < shape.B; b++) {
        for (let t = 0; t < shape.T; t++) {
          const src = (b * kv.maxT + shape.pastLength + t) * C;
          const dst = (b * shape.T + t) * 3 * C;
          dQkv.set(a.dkCache.subarray(src, src + C), dst + C);
          dQkv.set(a.dvCache!.subarray(src, src + C), dst + 2 * C);
        }
      }
    } else {
      ops.attentionBackward(dAtt, a.qkv, a.qkv.subarray(C), a.qkv.subarray(2 * C), a.probs, dQkv, dQkv.subarray(C), dQkv.subarray(2 * C), this.attnShape(shape, null));
    }
    const dLn1 = a.dA.subarray(0, rows * C);
    linearBackward(this.lin(p + "attn.c_attn", C, 3 * C), a.ln1, dQkv, dLn1, g("attn.c_attn.weight"), g("attn.c_attn.bias"), rows);
    if (dx || g("ln_1.weight") || g("ln_1.bias")) {
      const dX = dx ?? new Float32Array(rows * C);
      ops.layerNormBackward(dLn1, x, P.get(p + "ln_1.weight"), a.ln1Mean, a.ln1Rstd, dX, g("ln_1.weight"), g("ln_1.bias"), rows, C);
      for (let i = 0; i < rows * C; i++) dX[i]! += dR2[i]!;
    }
  }

  finalNormForward(x: Float32Array, out: Float32Array, stats: Float32Array, rows: number): void {
    ops.layerNormForward(x, this.params.get("ln_f.weight"), this.params.get("ln_f.bias"), out, stats.subarray(0, rows), stats.subarray(rows, 2 * rows), rows, this.hidden, this.eps);
  }

  finalNormBackward(x: Float32Array, dout: Float32Array, dx: Float32Array, stats: Float32Array, rows: number, grads: ParamStore | null, want: ReadonlySet<string> | null): void {
    const gw = grads && want?.has("ln_f.weight") ? grads.get("ln_f.weight") : null;
    const gb = grads && want?.has("ln_f.bias") ? grads.get("ln_f.bias") : null;
    ops.layerNormBackward(dout, x, this.params.get("ln_f.weight"), stats.subarray(0, rows), stats.subarray(rows, 2 * rows), dx, gw, gb, rows, this.hidden);
  }

  lmHead(): LinearRef {
    return { W: this.params.get("wte.weight"), b: null, inF: this.hidden, outF: this.vocab, layout: "out_in" };
  }

  lmHeadName(): string {
    return "wte.weight";
  }

  editTarget(l: number): EditTarget {
    const name = `h.${l}.mlp.c_proj.weight`;
    return { name, biasName: `h.${l}.mlp.c_proj.bias`, W: this.params.get(name), dIn: this.dFF, dOut: this.hidden, layout: "in_out", module: `transformer.h.${l}.mlp.c_proj` };
  }

  blockParamNames(l: number): string[] {
    return this.params.specs.filter((s) => s.layer === l).map((s) => s.name);
  }
}

function addBias(y: Float32Array, b: Float32Array, rows: number, n: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    for (let j = 0; j < n; j++) y[o + j]! += b[j]!;
  }
}
