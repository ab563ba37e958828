// LayerNorm and RMSNorm, forward + backward (llm.c layout). Rows are independent and split
// statically across OpenMP threads; weight gradients are parallel over column blocks with a
// sequential loop over rows, so they are bit-identical for any thread count.
//   x, out, dout, dx: (rows, C)   weight, bias, dweight, dbias: (C)   mean, rstd: (rows)
#include <cmath>
#include <cstdint>

#include "check.h"
#include "kernels.h"

namespace deltaedit {
namespace {

constexpr int64_t kColBlock = 64;

// dweight[c] += Σ_r dout[r,c] * norm[r,c], dbias[c] += Σ_r dout[r,c], norm = (x - mean[r]) * rstd[r]
// (mean == nullptr for RMSNorm). Row order is fixed, so results do not depend on threads.
void WeightGrads(const float* dout, const float* x, const float* mean, const float* rstd, float* dweight,
                 float* dbias, int64_t rows, int64_t C) {
  const int64_t nBlocks = (C + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMinWork)
  for (int64_t blk = 0; blk < nBlocks; ++blk) {
    const int64_t c0 = blk * kColBlock, c1 = c0 + kColBlock < C ? c0 + kColBlock : C;
    double accW[kColBlock] = {0}, accB[kColBlock] = {0};
    for (int64_t r = 0; r < rows; ++r) {
      const float* dr = dout + r * C;
      const float* xr = x + r * C;
      const float m = mean ? mean[r] : 0.0f, s = rstd[r];
      for (int64_t c = c0; c < c1; ++c) {
        accW[c - c0] += static_cast<double>(dr[c]) * ((xr[c] - m) * s);
        accB[c - c0] += dr[c];
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      if (dweight) dweight[c] += static_cast<float>(accW[c - c0]);
      if (dbias) dbias[c] += static_cast<float>(accB[c - c0]);
    }
  }
}

}  // namespace

// (x, weight, bias, out, mean, rstd, rows, C, eps)
Napi::Value LayerNormForward(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "layerNormForward";
  const int64_t rows = ARG_INT(6, "rows"), C = ARG_INT(7, "C");
  const double eps = ARG_NUMBER(8, "eps");
  const float* x = ARG_F32(0, "x", Mul(rows, C));
  const float* w = ARG_F32(1, "weight", C);
  const float* b = ARG_F32(2, "bias", C);
  float* out = ARG_F32(3, "out", Mul(rows, C));
  float* mean = ARG_F32(4, "mean", rows);
  float* rstd = ARG_F32(5, "rstd", rows);
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    float* yr = out + r * C;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < C; ++c) sum += xr[c];
    const double m = C > 0 ? sum / static_cast<double>(C) : 0.0;
    double var = 0.0;
#pragma omp simd reduction(+ : var)
    for (int64_t c = 0; c < C; ++c) {
      const double d = xr[c] - m;
      var += d * d;
    }
    var = C > 0 ? var / static_cast<double>(C) : 0.0;
    const float mf = static_cast<float>(m), sf = static_cast<float>(1.0 / std::sqrt(var + eps));
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - mf) * sf * w[c] + b[c];
    mean[r] = mf;
    rstd[r] = sf;
  }
  return info.Env().Undefined();
}

// (dout, x, weight, mean, rstd, dx, dweight | null, dbias | null, rows, C)
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "layerNormBackward";
  const int64_t rows = ARG_INT(8, "rows"), C = ARG_INT(9, "C");
  const float* dout = ARG_F32(0, "dout", Mul(rows, C));
  const float* x = ARG_F32(1, "x", Mul(rows, C));
  const float* w = ARG_F32(2, "weight", C);
  const float* mean = ARG_F32(3, "mean", rows);
  const float* rstd = ARG_F32(4, "rstd", rows);
  float* dx = ARG_F32(5, "dx", Mul(rows, C));
  float* dweight = ARG_F32_OR_NULL(6, "dweight", C);
  float* dbias = ARG_F32_OR_NULL(7, "dbias", C);
  // weight grads first: dx may alias dout (both are read before dx is written per row)
  if (dweight || dbias) WeightGrads(dout, x, mean, rstd, dweight, dbias, rows, C);
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    const float* dr = dout + r * C;
    const float* xr = x + r * C;
    float* dxr = dx + r * C;
    const float m = mean[r], s = rstd[r];
    // forward was: norm = (x - mean) * rstd; out = norm * w + b
    double sumD = 0.0, sumDN = 0.0;
#pragma omp simd reduction(+ : sumD, sumDN)
    for (int64_t c = 0; c < C; ++c) {
      const double dn = static_cast<double>(w[c]) * dr[c];
      sumD += dn;
      sumDN += dn * ((xr[c] - m) * s);
    }
    const float meanD = C > 0 ? static_cast<float>(sumD / C) : 0.0f;
    const float meanDN = C > 0 ? static_cast<float>(sumDN / C) : 0.0f;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) {
      const float norm = (xr[c] - m) * s;
      dxr[c] = (w[c] * dr[c] - meanD - norm * meanDN) * s;
    }
  }
  return info.Env().Undefined();
}

// (x, weight, out, rstd, rows, C, eps)
Napi::Value RmsNormForward(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "rmsNormForward";
  const int64_t rows = ARG_INT(4, "rows"), C = ARG_INT(5, "C");
  const double eps = ARG_NUMBER(6, "eps");
  const float* x = ARG_F32(0, "x", Mul(rows, C));
  const float* w = ARG_F32(1, "weight", C);
  float* out = ARG_F32(2, "out", Mul(rows, C));
  float* rstd = ARG_F32(3, "rstd", rows);
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * C;
    float* yr = out + r * C;
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) ss += static_cast<double>(xr[c]) * xr[c];
    const double ms = C > 0 ? ss / static_cast<double>(C) : 0.0;
    const float sf = static_cast<float>(1.0 / std::sqrt(ms + eps));
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * sf * w[c];
    rstd[r] = sf;
  }
  return info.Env().Undefined();
}

// (dout, x, weight, rstd, dx, dweight | null, rows, C)
Napi::Value RmsNormBackward(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "rmsNormBackward";
  const int64_t rows = ARG_INT(6, "rows"), C = ARG_INT(7, "C");
  const float* dout = ARG_F32(0, "dout", Mul(rows, C));
  const float* x = ARG_F32(1, "x", Mul(rows, C));
  const float* w = ARG_F32(2, "weight", C);
  const float* rstd = ARG_F32(3, "rstd", rows);
  float* dx = ARG_F32(4, "dx", Mul(rows, C));
  float* dweight = ARG_F32_OR_NULL(5, "dweight", C);
  if (dweight) WeightGrads(dout, x, nullptr, rstd, dweight, nullptr, rows, C);
#pragma omp parallel for schedule(static) if (rows * C >= kParallelMinWork)
  for (int64_t r = 0; r < rows; ++r) {
    const float* dr = dout + r * C;
    const float* xr = x + r * C;
    float* dxr = dx + r * C;
    const float s = rstd[r];
    // forward was: norm = x * rstd; out = norm * w;  dx = rstd * (dnorm - norm * mean(dnorm * norm))
    double sumDN = 0.0;
#pragma omp simd reduction(+ : sumDN)
    for (int64_t c = 0; c < C; ++c) sumDN += static_cast<double>(w[c]) * dr[c] * (xr[c] * s);
    const float meanDN = C > 0 ? static_cast<float>(sumDN / C) : 0.0f;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) dxr[c] = s * (w[c] * dr[c] - xr[c] * s * meanDN);
  }
  return info.Env().Undefined();
}

}  // namespace deltaedit
