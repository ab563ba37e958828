/**
 * Half-precision conversions on arrays: IEEE binary16 (F16) and bfloat16 (BF16) bit patterns
 * (Uint16Array) ↔ float32. f32 → half rounds to nearest even (bit-identical to numpy's
 * `astype(float16)`), overflow goes to ±Inf, NaN stays NaN. Outputs may be passed in to avoid
 * allocation; their length must equal the input's.
 */
import { DeltaEditError } from "../errors.js";

function checkOut(name: string, src: ArrayLike<number>, out: { length: number }): void {
  if (out.length !== src.length) throw new DeltaEditError("E_SHAPE", `${name}: output length ${out.length} != input length ${src.length}`);
}

/** IEEE binary16 bits → float32. */
export function f16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  checkOut("f16ToF32", src, out);
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i] as number;
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) {
      if (mant === 0) bits[i] = sign >>> 0;
      else out[i] = (sign ? -1 : 1) * mant * 5.960464477539063e-8; // subnormal: mant · 2^-24
    } else if (exp === 0x1f) {
      bits[i] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else {
      bits[i] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    }
  }
  return out;
}

/** float32 → IEEE binary16 bits, round to nearest even; overflow → ±Inf, NaN stays NaN. */
export function f32ToF16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkOut("f32ToF16", src, out);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i] as number;
    const sign = (x >>> 16) & 0x8000;
    const abs = x & 0x7fffffff;
    if (abs >= 0x7f800000) {
      out[i] = abs > 0x7f800000 ? sign | 0x7e00 | ((abs >>> 13) & 0x3ff) : sign | 0x7c00; // NaN (quiet) / Inf
    } else if (abs >= 0x477ff000) {
      out[i] = sign | 0x7c00; // ≥ 65520 rounds to Inf
    } else if (abs < 0x38800000) {
      // Result is subnormal (or zero): value = m · 2^(e-150), half unit = 2^-24.
      const e = abs >>> 23;
      const shift = 126 - e;
      if (shift > 24) {
        out[i] = sign;
      } else {
        const m = (abs & 0x7fffff) | 0x800000;
        let q = m >>> shift;
        const r = m & ((1 << shift) - 1);
        const half = 1 << (shift - 1);
        if (r > half || (r === half && (q & 1) === 1)) q++;
        out[i] = sign | q;
      }
    } else {
      let h = (abs >>> 13) - (112 << 10);
      const r = abs & 0x1fff;
      if (r > 0x1000 || (r === 0x1000 && (h & 1) === 1)) h++;
      out[i] = sign | h;
    }
  }
  return out;
}

/** bfloat16 bits → float32 (exact). */
export function bf16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  checkOut("bf16ToF32", src, out);
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = ((src[i] as number) << 16) >>> 0;
  return out;
}

/** float32 → bfloat16 bits, round to nearest even; NaN stays NaN. */
export function f32ToBf16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkOut("f32ToBf16", src, out);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i] as number;
    if ((x & 0x7fffffff) > 0x7f800000) out[i] = (x >>> 16) | 0x40;
    else out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}
