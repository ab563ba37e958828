/**
 * Tensor data in the GGML element types deltaedit writes: F32 (as is), F16 (round to nearest even,
 * half.ts) and Q8_0. A Q8_0 block holds 32 consecutive elements of a row as an f16 scale
 * d = max|x| / 127 followed by 32 int8 values q = round(x / d) (half away from zero), so
 * x ≈ d·q with an error of at most d/2 per element — llama.cpp's reference quantizer
 * (quantize_row_q8_0_ref), bit for bit up to the f16 rounding of d.
 */
import { DeltaEditError } from "../../errors.js";
import { f32ToF16 } from "../half.js";
import { GGML_TYPES, type GgmlType } from "./format.js";

/** Q8_0: `x` (n) with n a multiple of 32 → n/32 blocks of 34 bytes. */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const QK = GGML_TYPES.Q8_0.block;
  if (x.length % QK !== 0) throw new DeltaEditError("E_SHAPE", `quantizeQ8_0: ${x.length} elements are not whole blocks of ${QK}`);
  const nb = x.length / QK;
  const out = new Uint8Array(nb * GGML_TYPES.Q8_0.bytes);
  const view = new DataView(out.buffer);
  const q = new Int8Array(out.buffer);
  const d16 = new Uint16Array(1);
  const d32 = new Float32Array(1);
  for (let b = 0; b < nb; b++) {
    const x0 = b * QK;
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[x0 + j]!));
    d32[0] = amax / 127;
    const d = d32[0];
    const id = d !== 0 ? 1 / d : 0;
    f32ToF16(d32, d16);
    const o = b * GGML_TYPES.Q8_0.bytes;
    view.setUint16(o, d16[0]!, true);
    for (let j = 0; j < QK; j++) {
      const v = Math.fround(x[x0 + j]! * id);
      q[o + 2 + j] = Math.sign(v) * Math.round(Math.abs(v)); // roundf: half away from zero
    }
  }
  return out;
}

/** `x` encoded as `type` (little-endian bytes); Q8_0 needs rows of whole 32-element blocks. */
export function encodeTensorData(x: Float32Array, type: GgmlType): Uint8Array {
  switch (type) {
    case "F32":
      return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
    case "F16": {
      const h = f32ToF16(x);
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    }
    case "Q8_0":
      return quantizeQ8_0(x);
  }
}
