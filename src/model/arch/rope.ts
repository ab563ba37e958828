/**
 * Rotary position tables for the Llama family, built lazily: `cover(n)` returns cos/sin tables
 * (rows, HS/2) with rows ≥ n, computing only the positions a forward pass actually uses (growing
 * by doubling, never beyond max_position_embeddings). A config may allow a million positions
 * (LIMITS.maxPositions); an editing run over 100-token prompts builds ~128 rows.
 *
 * Row p of the tables depends only on p and the config, so a table grown in steps is bit-identical
 * to one built in full. The tables are a memo of the architecture object (not per-call state):
 * a pass reads them after `cover` and never keeps them across a later `cover`.
 *
 * inv_freq_i = θ^(−2i/HS), adjusted by rope_scaling ("llama3" frequency bands, or "linear");
 * angles in float64, stored float32.
 */
import { DeltaEditError } from "../../errors.js";
import type { ModelConfig } from "../config.js";

/** Smallest table built (rows). */
const MIN_ROWS = 64;

/** inv_freq (HS/2) of the config, in float64. */
export function ropeInvFreq(cfg: ModelConfig): Float64Array {
  const HS = cfg.headSize;
  const h = HS / 2;
  const invFreq = new Float64Array(h);
  for (let i = 0; i < h; i++) invFreq[i] = 1 / Math.pow(cfg.ropeTheta, (2 * i) / HS);
  const rs = cfg.ropeScaling;
  if (rs?.type === "linear") {
    for (let i = 0; i < h; i++) invFreq[i]! /= rs.factor;
  } else if (rs?.type === "llama3") {
    const lowWavelen = rs.originalMaxPositions / rs.lowFreqFactor;
    const highWavelen = rs.originalMaxPositions / rs.highFreqFactor;
    for (let i = 0; i < h; i++) {
      const f = invFreq[i]!;
      const wavelen = (2 * Math.PI) / f;
      let g = wavelen > lowWavelen ? f / rs.factor : f;
      if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
        const smooth = (rs.originalMaxPositions / wavelen - rs.lowFreqFactor) / (rs.highFreqFactor - rs.lowFreqFactor);
        g = ((1 - smooth) * g) / rs.factor + smooth * g;
      }
      invFreq[i] = g;
    }
  }
  return invFreq;
}

export class RotaryTables {
  private readonly invFreq: Float64Array; // (HS/2)
  private readonly maxPositions: number;
  private cos: Float32Array = new Float32Array(0); // (rows, HS/2)
  private sin: Float32Array = new Float32Array(0); // (rows, HS/2)
  private rows = 0;

  constructor(cfg: ModelConfig) {
    this.invFreq = ropeInvFreq(cfg);
    this.maxPositions = cfg.maxPositions;
  }

  /** Rows built so far. */
  get builtRows(): number {
    return this.rows;
  }

  /** Tables covering positions [0, n) (n ≤ max_position_embeddings, else E_ARG). */
  cover(n: number): { cos: Float32Array; sin: Float32Array } {
    if (n > this.maxPositions) {
      throw new DeltaEditError("E_ARG", `rotary embeddings: position ${n - 1} is beyond the model's max_position_embeddings (${this.maxPositions})`, {
        context: { position: n - 1, maxPositions: this.maxPositions },
      });
    }
    if (n > this.rows) this.grow(Math.min(this.maxPositions, Math.max(n, 2 * this.rows, MIN_ROWS)));
    return { cos: this.cos, sin: this.sin };
  }

  /** Tables covering every position in `positions` (B·T). */
  coverPositions(positions: Int32Array): { cos: Float32Array; sin: Float32Array } {
    let max = -1;
    for (let i = 0; i < positions.length; i++) if (positions[i]! > max) max = positions[i]!;
    return this.cover(max + 1);
  }

  private grow(rows: number): void {
    const h = this.invFreq.length;
    const cos = new Float32Array(rows * h);
    const sin = new Float32Array(rows * h);
    cos.set(this.cos);
    sin.set(this.sin);
    for (let p = this.rows; p < rows; p++) {
      for (let i = 0; i < h; i++) {
        const a = p * this.invFreq[i]!;
        cos[p * h + i] = Math.cos(a);
        sin[p * h + i] = Math.sin(a);
      }
    }
    this.cos = cos;
    this.sin = sin;
    this.rows = rows;
  }
}
