// Elementwise and row-wise kernels: GELU (tanh), SwiGLU, softmax, log-softmax, RoPE.
// Elementwise work is split into static contiguous chunks; every element's result depends
// only on its own inputs, so results are identical for any thread count.
#include <cmath>
#include <cstdint>
#include <string>

#include "check.h"
#include "kernels.h"
#include "vmath.h"

namespace deltaedit {
namespace {

constexpr float kGeluK = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kGeluC = 0.044715f;


}  // namespace

// (x, out, n)
Napi::Value GeluForward(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "geluForward";
  const int64_t n = ARG_INT(2, "n");
  const float* x = ARG_F32(0, "x", n);
  float* out = ARG_F32(1, "out", n);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinWork)
  for (int64_t i = 0; i < n; ++i) {
    // 0.5 (1 + tanh u) = sigmoid(2u): no cancellation in the negative tail
    const float v = x[i];
    out[i] = v * SigmoidF(2.0f * kGeluK * (v + kGeluC * v * v * v));
  }
  return info.Env().Undefined();
}

// (x, dout, dx, n)
Napi::Value GeluBackward(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "geluBackward";
  const int64_t n = ARG_INT(3, "n");
  const float* x = ARG_F32(0, "x", n);
  const float* dout = ARG_F32(1, "dout", n);
  float* dx = ARG_F32(2, "dx", n);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinWork)
  for (int64_t i = 0; i < n; ++i) {
    // forward was: out = v * s, s = sigmoid(2u) = 0.5 (1 + tanh u), u = k (v + c v^3)
    // d out/dv = s + v * 2 s (1 - s) du/dv, with 1 - s = e / (1 + e), e = exp(-2u) (ExpF clamps: finite)
    const float v = x[i];
    const float u = kGeluK * (v + kGeluC * v * v * v);
    const float e = ExpF(-2.0f * u);
    const float s = 1.0f / (1.0f + e), sn = e / (1.0f + e);
    const float du = kGeluK * (1.0f + 3.0f * kGeluC * v * v);
    dx[i] = dout[i] * (s + 2.0f * v * s * sn * du);
  }
  return info.Env().Undefined();
}

// (gate, up, out, n): out = silu(gate) * up
Napi::Value SwigluForward(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "swigluForward";
  const int64_t n = ARG_INT(3, "n");
  const float* gate = ARG_F32(0, "gate", n);
  const float* up = ARG_F32(1, "up", n);
  float* out = ARG_F32(2, "out", n);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinWork)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g * SigmoidF(g) * up[i];
  }
  return info.Env().Undefined();
}

// (gate, up, dout, dgate, dup, n)
Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "swigluBackward";
  const int64_t n = ARG_INT(5, "n");
  const float* gate = ARG_F32(0, "gate", n);
  const float* up = ARG_F32(1, "up", n);
  const float* dout = ARG_F32(2, "dout", n);
  float* dgate = ARG_F32(3, "dgate", n);
  float* dup = ARG_F32(4, "dup", n);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinWork)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i], u = up[i], d = dout[i];
    const float sg = SigmoidF(g);
    // forward was: out = g * sg * u;  d(g*sg)/dg = sg * (1 + g * (1 - sg))
    dgate[i] = d * u * sg * (1.0f + g * (1.0f - sg));
    dup[i] = d * g * sg;
  }
  return info.Env().Undefined();
}

namespace {

// Row-wise max-subtracted softmax (log = false) or log-softmax (log = true); x, out (rows, cols).
void SoftmaxRows(const float* x, float* out, int64_t rows, int64_t cols, bool log) {
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = out + r * cols;
    float mx = -INFINITY;
    for (int64_t c = 0; c < cols; ++c) mx = xr[c] > mx ? xr[c] : mx;
    double sum = 0.0;
    if (log) {
      for (int64_t c = 0; c < cols; ++c) sum += ExpF(xr[c] - mx);
      const float lse = mx + static_cast<float>(std::log(sum));
      for (int64_t c = 0; c < cols; ++c) yr[c] = xr[c] - lse;
    } else {
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) yr[c] = ExpF(xr[c] - mx);
      for (int64_t c = 0; c < cols; ++c) sum += yr[c];
      const float inv = static_cast<float>(1.0 / sum);
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) yr[c] *= inv;
    }
  }
}

}  // namespace

// (x, out, rows, cols)
Napi::Value SoftmaxForward(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "softmaxForward";
  const int64_t rows = ARG_INT(2, "rows"), cols = ARG_INT(3, "cols");
  const float* x = ARG_F32(0, "x", Mul(rows, cols));
  float* out = ARG_F32(1, "out", Mul(rows, cols));
  SoftmaxRows(x, out, rows, cols, false);
  return info.Env().Undefined();
}

// (x, out, rows, cols)
Napi::Value LogSoftmaxForward(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "logSoftmaxForward";
  const int64_t rows = ARG_INT(2, "rows"), cols = ARG_INT(3, "cols");
  const float* x = ARG_F32(0, "x", Mul(rows, cols));
  float* out = ARG_F32(1, "out", Mul(rows, cols));
  SoftmaxRows(x, out, rows, cols, true);
  return info.Env().Undefined();
}

namespace {

// In-place rotate-half RoPE on x (rows, nHeads, headSize); cos/sin (maxPos, h), h = headSize/2.
// sign = +1: forward rotation; sign = -1: its transpose (backward).
// Arguments: (x, cos, sin, positions, rows, nHeads, headSize, maxPos)
void Rope(const Napi::CallbackInfo& info, const char* kFn, float sign) {
  const int64_t rows = ARG_INT(4, "rows"), nHeads = ARG_INT(5, "nHeads"), headSize = ARG_INT(6, "headSize");
  const int64_t maxPos = ARG_INT(7, "maxPos");
  if (headSize % 2 != 0) ThrowArg(info.Env(), ArgPrefix(kFn, 6, "headSize") + "expected an even number, got " + std::to_string(headSize));
  const int64_t h = headSize / 2;
  float* x = ARG_F32(0, kFn[4] == 'F' ? "x" : "dx", Mul(Mul(rows, nHeads), headSize));
  const float* cs = ARG_F32(1, "cos", Mul(maxPos, h));
  const float* sn = ARG_F32(2, "sin", Mul(maxPos, h));
  const int32_t* pos = ARG_I32(3, "positions", rows);
  for (int64_t r = 0; r < rows; ++r)
    if (pos[r] < 0 || pos[r] >= maxPos)
      ThrowArg(info.Env(), ArgPrefix(kFn, 3, "positions") + "element " + std::to_string(r) + " is " +
                               std::to_string(pos[r]) + ", expected in [0, " + std::to_string(maxPos) + ")");
#pragma omp parallel for schedule(static) if (rows * nHeads * headSize >= kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = cs + static_cast<int64_t>(pos[r]) * h;
    const float* s = sn + static_cast<int64_t>(pos[r]) * h;
    for (int64_t hd = 0; hd < nHeads; ++hd) {
      float* xa = x + (r * nHeads + hd) * headSize;
      float* xb = xa + h;
#pragma omp simd
      for (int64_t i = 0; i < h; ++i) {
        const float a = xa[i], b = xb[i], si = sign * s[i];
        xa[i] = a * c[i] - b * si;
        xb[i] = b * c[i] + a * si;
      }
    }
  }
}

}  // namespace

Napi::Value RopeForward(const Napi::CallbackInfo& info) {
  Rope(info, "ropeForward", 1.0f);
  return info.Env().Undefined();
}

Napi::Value RopeBackward(const Napi::CallbackInfo& info) {
  Rope(info, "ropeBackward", -1.0f);
  return info.Env().Undefined();
}

}  // namespace deltaedit
