// Branch-free float exp (and sigmoid on top of it), written so that GCC auto-vectorizes them
// inside `#pragma omp simd` loops with plain SSE2 (libm's expf/tanhf calls do not vectorize
// without -ffast-math, which we do not use). Cephes-style range reduction + degree-6 polynomial:
// about 1-2 ulp over the normal range. Every operation is a basic IEEE op (no FMA contraction:
// binding.gyp passes -ffp-contract=off), so vector and scalar-remainder lanes give identical bits.
#pragma once

#include <cstdint>

namespace deltaedit {

inline float ExpF(float x) {
  const float kHi = 88.3762626647949f, kLo = -87.3365447504f;
  const bool under = x < kLo;                       // result below FLT_MIN: flush to 0 (exp(-inf) = 0)
  float xc = x > kHi ? kHi : x;                     // NaN stays NaN through both selects
  xc = xc < kLo ? kLo : xc;
  const float t = xc * 1.44269504088896341f;        // x / ln 2
  const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest (|t| < 2^22)
  float r = xc - n * 0.693359375f;                  // ln 2 split in two parts
  r = r - n * -2.12194440e-4f;
  const float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  const float scale = __builtin_bit_cast(float, bits);
  const float y = p * scale;
  return under ? 0.0f : y;
}

inline float SigmoidF(float g) { return 1.0f / (1.0f + ExpF(-g)); }


}  // namespace deltaedit
