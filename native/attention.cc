// Causal, GQA-aware, key-masked scaled-dot-product attention, forward + backward.
//   q, dq: (B, T, NH, HS)   at q[b*qBS + t*qRS + h*HS + d]
//   k, dk: (B, Tk, NKV, HS) at k[b*kBS + j*kRS + kh*HS + d]    (v, dv likewise with vRS, vBS)
//   out, dout: (B, T, NH, HS) contiguous   probs: (B, NH, T, Tk) contiguous   keyMask: (B, Tk)
// Query t (absolute position qOffset + t) sees key j iff j <= qOffset + t and keyMask[b, j] != 0;
// query head h reads kv head h / (NH / NKV). Forward splits (b, h) pairs statically across
// threads; backward splits (b, kv head) pairs so that each dk/dv row has exactly one writer and
// is summed in a fixed (head, query) order: results do not depend on the thread count.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "check.h"
#include "kernels.h"
#include "vmath.h"

namespace deltaedit {
namespace {

struct Shape {
  int64_t B, T, Tk, NH, NKV, HS, qOffset;
  int64_t qRS, qBS, kRS, kBS, vRS, vBS;
};

// Reads (B, T, Tk, NH, NKV, HS, qOffset, qRS, qBS, kRS, kBS, vRS, vBS) starting at argument i0.
Shape ReadShape(const Napi::CallbackInfo& info, const char* kFn, size_t i0) {
  Shape s{};
  s.B = ARG_INT(i0 + 0, "B");
  s.T = ARG_INT(i0 + 1, "T");
  s.Tk = ARG_INT(i0 + 2, "Tk");
  s.NH = ARG_INT(i0 + 3, "nHeads");
  s.NKV = ARG_INT(i0 + 4, "nKvHeads");
  s.HS = ARG_INT(i0 + 5, "headSize");
  s.qOffset = ARG_SIGNED_INT(i0 + 6, "qOffset");
  s.qRS = ARG_INT(i0 + 7, "qRowStride");
  s.qBS = ARG_INT(i0 + 8, "qBatchStride");
  s.kRS = ARG_INT(i0 + 9, "kRowStride");
  s.kBS = ARG_INT(i0 + 10, "kBatchStride");
  s.vRS = ARG_INT(i0 + 11, "vRowStride");
  s.vBS = ARG_INT(i0 + 12, "vBatchStride");
  if (s.NKV == 0 ? s.NH != 0 : s.NH % s.NKV != 0)
    ThrowArg(info.Env(), ArgPrefix(kFn, i0 + 4, "nKvHeads") + "must divide nHeads = " + std::to_string(s.NH) +
                             ", got " + std::to_string(s.NKV));
  if (s.qRS < s.NH * s.HS) ThrowArg(info.Env(), ArgPrefix(kFn, i0 + 7, "qRowStride") + "must be >= nHeads*headSize = " + std::to_string(s.NH * s.HS) + ", got " + std::to_string(s.qRS));
  if (s.kRS < s.NKV * s.HS) ThrowArg(info.Env(), ArgPrefix(kFn, i0 + 9, "kRowStride") + "must be >= nKvHeads*headSize = " + std::to_string(s.NKV * s.HS) + ", got " + std::to_string(s.kRS));
  if (s.vRS < s.NKV * s.HS) ThrowArg(info.Env(), ArgPrefix(kFn, i0 + 11, "vRowStride") + "must be >= nKvHeads*headSize = " + std::to_string(s.NKV * s.HS) + ", got " + std::to_string(s.vRS));
  return s;
}

// Elements spanned by a (n0, n1, width) strided tensor.
inline uint64_t Span(int64_t n0, int64_t s0, int64_t n1, int64_t s1, int64_t width) {
  if (n0 == 0 || n1 == 0 || width == 0) return 0;
  return Add(Add(Mul(n0 - 1, s0), Mul(n1 - 1, s1)), width);
}

inline float Dot(const float* a, const float* b, int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t d = 0; d < n; ++d) acc += a[d] * b[d];
  return acc;
}

inline void Axpy(float* y, float alpha, const float* x, int64_t n) {
#pragma omp simd
  for (int64_t d = 0; d < n; ++d) y[d] += alpha * x[d];
}

// Number of keys query t may look at before masking: keys 0 .. end-1.
inline int64_t KeyEnd(const Shape& s, int64_t t) {
  const int64_t last = s.qOffset + t;
  return last < 0 ? 0 : (last + 1 < s.Tk ? last + 1 : s.Tk);
}

}  // namespace

// (q, k, v, out, probs | null, keyMask | null, B, T, Tk, NH, NKV, HS, qOffset, qRS, qBS, kRS, kBS, vRS, vBS)
Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "attentionForward";
  const Shape s = ReadShape(info, kFn, 6);
  const float* q = ARG_F32(0, "q", Span(s.B, s.qBS, s.T, s.qRS, s.NH * s.HS));
  const float* k = ARG_F32(1, "k", Span(s.B, s.kBS, s.Tk, s.kRS, s.NKV * s.HS));
  const float* v = ARG_F32(2, "v", Span(s.B, s.vBS, s.Tk, s.vRS, s.NKV * s.HS));
  float* out = ARG_F32(3, "out", Mul(Mul(s.B, s.T), Mul(s.NH, s.HS)));
  float* probs = ARG_F32_OR_NULL(4, "probs", Mul(Mul(s.B, s.NH), Mul(s.T, s.Tk)));
  const uint8_t* mask = ARG_U8_OR_NULL(5, "keyMask", Mul(s.B, s.Tk));
  if (s.NH == 0) return info.Env().Undefined();
  const int64_t G = s.NH / s.NKV, HS = s.HS, Tk = s.Tk;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS > 0 ? HS : 1));
  const int64_t work = s.B * s.NH * s.T * (Tk + 1) * (HS + 1);
#pragma omp parallel if (work >= kParallelMinWork)
  {
    std::vector<float> scratch(probs ? 0 : static_cast<size_t>(Tk));
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < s.B * s.NH; ++bh) {
      const int64_t b = bh / s.NH, h = bh % s.NH, kh = h / G;
      const float* kb = k + b * s.kBS + kh * HS;  // key j at kb + j*kRS
      const float* vb = v + b * s.vBS + kh * HS;
      const uint8_t* mb = mask ? mask + b * Tk : nullptr;
      for (int64_t t = 0; t < s.T; ++t) {
        const float* qt = q + b * s.qBS + t * s.qRS + h * HS;
        float* ot = out + ((b * s.T + t) * s.NH + h) * HS;
        float* pr = probs ? probs + ((b * s.NH + h) * s.T + t) * Tk : scratch.data();
        const int64_t jEnd = KeyEnd(s, t);
        // scores = q·k * scale over visible keys
        float mx = -INFINITY;
        bool any = false;
        for (int64_t j = 0; j < jEnd; ++j) {
          if (mb && !mb[j]) continue;
          const float sc = Dot(qt, kb + j * s.kRS, HS) * scale;
          pr[j] = sc;
          mx = sc > mx ? sc : mx;
          any = true;
        }
        for (int64_t d = 0; d < HS; ++d) ot[d] = 0.0f;
        if (!any) {  // a query that sees no key outputs zeros
          if (probs)
            for (int64_t j = 0; j < Tk; ++j) pr[j] = 0.0f;
          continue;
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < jEnd; ++j) {
          if (mb && !mb[j]) {
            pr[j] = 0.0f;
            continue;
          }
          const float e = ExpF(pr[j] - mx);
          pr[j] = e;
          sum += e;
        }
        const float inv = 1.0f / sum;
        // out = Σ_j p_j v_j
        for (int64_t j = 0; j < jEnd; ++j) {
          if (mb && !mb[j]) continue;
          const float p = pr[j] * inv;
          pr[j] = p;
          Axpy(ot, p, vb + j * s.vRS, HS);
        }
        if (probs)
          for (int64_t j = jEnd; j < Tk; ++j) pr[j] = 0.0f;
      }
    }
  }
  return info.Env().Undefined();
}

// (dout, q, k, v, probs, dq, dk, dv, keyMask | null, B, T, Tk, NH, NKV, HS, qOffset, qRS, qBS, kRS, kBS, vRS, vBS)
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "attentionBackward";
  const Shape s = ReadShape(info, kFn, 9);
  const uint64_t qLen = Span(s.B, s.qBS, s.T, s.qRS, s.NH * s.HS);
  const uint64_t kLen = Span(s.B, s.kBS, s.Tk, s.kRS, s.NKV * s.HS);
  const uint64_t vLen = Span(s.B, s.vBS, s.Tk, s.vRS, s.NKV * s.HS);
  const float* dout = ARG_F32(0, "dout", Mul(Mul(s.B, s.T), Mul(s.NH, s.HS)));
  const float* q = ARG_F32(1, "q", qLen);
  const float* k = ARG_F32(2, "k", kLen);
  const float* v = ARG_F32(3, "v", vLen);
  const float* probs = ARG_F32(4, "probs", Mul(Mul(s.B, s.NH), Mul(s.T, s.Tk)));
  float* dq = ARG_F32(5, "dq", qLen);
  float* dk = ARG_F32(6, "dk", kLen);
  float* dv = ARG_F32(7, "dv", vLen);
  const uint8_t* mask = ARG_U8_OR_NULL(8, "keyMask", Mul(s.B, s.Tk));
  if (s.NH == 0) return info.Env().Undefined();
  const int64_t G = s.NH / s.NKV, HS = s.HS, Tk = s.Tk;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS > 0 ? HS : 1));
  const int64_t work = s.B * s.NH * s.T * (Tk + 1) * (HS + 1);
#pragma omp parallel if (work >= kParallelMinWork)
  {
    std::vector<float> dp(static_cast<size_t>(Tk));
#pragma omp for schedule(static)
    for (int64_t bk = 0; bk < s.B * s.NKV; ++bk) {
      const int64_t b = bk / s.NKV, kh = bk % s.NKV;
      const float* kb = k + b * s.kBS + kh * HS;
      const float* vb = v + b * s.vBS + kh * HS;
      float* dkb = dk + b * s.kBS + kh * HS;
      float* dvb = dv + b * s.vBS + kh * HS;
      const uint8_t* mb = mask ? mask + b * Tk : nullptr;
      for (int64_t j = 0; j < Tk; ++j)
        for (int64_t d = 0; d < HS; ++d) {
          dkb[j * s.kRS + d] = 0.0f;
          dvb[j * s.vRS + d] = 0.0f;
        }
      for (int64_t h = kh * G; h < (kh + 1) * G; ++h) {
        for (int64_t t = 0; t < s.T; ++t) {
          const float* pr = probs + ((b * s.NH + h) * s.T + t) * Tk;
          const float* dot = dout + ((b * s.T + t) * s.NH + h) * HS;
          const float* qt = q + b * s.qBS + t * s.qRS + h * HS;
          float* dqt = dq + b * s.qBS + t * s.qRS + h * HS;
          const int64_t jEnd = KeyEnd(s, t);
          // forward was: p = softmax(scale * q·k), out = Σ_j p_j v_j
          // dp_j = dout·v_j; dv_j += p_j dout; ds_j = p_j (dp_j - Σ_i p_i dp_i)
          float sumPdP = 0.0f;
          for (int64_t j = 0; j < jEnd; ++j) {
            if (mb && !mb[j]) continue;
            const float p = pr[j];
            dp[j] = Dot(dot, vb + j * s.vRS, HS);
            sumPdP += p * dp[j];
            Axpy(dvb + j * s.vRS, p, dot, HS);
          }
          for (int64_t d = 0; d < HS; ++d) dqt[d] = 0.0f;
          for (int64_t j = 0; j < jEnd; ++j) {
            if (mb && !mb[j]) continue;
            const float ds = pr[j] * (dp[j] - sumPdP) * scale;
            Axpy(dqt, ds, kb + j * s.kRS, HS);
            Axpy(dkb + j * s.kRS, ds, qt, HS);
          }
        }
      }
    }
  }
  return info.Env().Undefined();
}

}  // namespace deltaedit
