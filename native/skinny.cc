// Products with a few rows against a large row-major matrix W (N, K) — the vocabulary projection
// at the handful of scored positions of a target-search step (7 rows against 50 257 × 768 for
// GPT-2): BLAS packs all of W into its panel buffers for every call and runs its 16-row micro-
// kernels on 7 rows, so these calls ran at 2–7 % of the GEMM peak. Here W is streamed once, in
// tiles of kTileRows rows that stay in L2 while every block of up to 8 rows of x passes over them.
//   skinnyGemmNT: y (P, N) = x (P, K) · Wᵀ        (y[p, n] = Σ_k x[p, k] W[n, k])
//   skinnyGemmNN: dx (P, K) (+)= dy (P, N) · W     (dx[p, k] = Σ_n dy[p, n] W[n, k])
// One thread, a fixed summation order (k ascending for NT; n ascending for NN): the result does
// not depend on the thread count. AVX2+FMA where the CPU has them (checked at run time), else a
// portable loop; the two paths round differently (fused multiply-add), so results are equal to
// BLAS's and to each other up to float32 rounding, not bit for bit.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "check.h"
#include "kernels.h"
#include "vmath.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace deltaedit {
namespace {

constexpr int64_t kTileRows = 32;  // rows of W per tile (32 × K floats: 96 KB at K = 768)
constexpr int64_t kRowBlock = 8;   // rows of x per register block

// --- portable ---------------------------------------------------------------------------------

void NtPortable(const float* x, const float* w, float* y, int64_t P, int64_t N, int64_t K) {
  for (int64_t n0 = 0; n0 < N; n0 += kTileRows) {
    const int64_t n1 = n0 + kTileRows < N ? n0 + kTileRows : N;
    for (int64_t p = 0; p < P; ++p) {
      const float* xp = x + p * K;
      for (int64_t n = n0; n < n1; ++n) {
        const float* wn = w + n * K;
        float acc = 0.0f;
        for (int64_t k = 0; k < K; ++k) acc += xp[k] * wn[k];
        y[p * N + n] = acc;
      }
    }
  }
}

void NnPortable(const float* dy, const float* w, float* dx, int64_t P, int64_t N, int64_t K) {
  for (int64_t n = 0; n < N; ++n) {
    const float* wn = w + n * K;
    for (int64_t p = 0; p < P; ++p) {
      const float a = dy[p * N + n];
      float* dp = dx + p * K;
      for (int64_t k = 0; k < K; ++k) dp[k] += a * wn[k];
    }
  }
}

// --- AVX2 + FMA -------------------------------------------------------------------------------

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) inline float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[p, n] for p in [p0, p0 + R), n in [n0, n1): R accumulators over k, then the tail.
template <int R>
__attribute__((target("avx2,fma"))) void NtBlock(const float* x, const float* w, float* y, int64_t p0, int64_t n0, int64_t n1,
                                                 int64_t N, int64_t K) {
  const int64_t K8 = K & ~int64_t{7};
  for (int64_t n = n0; n < n1; ++n) {
    const float* wn = w + n * K;
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t k = 0; k < K8; k += 8) {
      const __m256 wv = _mm256_loadu_ps(wn + k);
      for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + (p0 + r) * K + k), wv, acc[r]);
    }
    for (int r = 0; r < R; ++r) {
      float s = HSum(acc[r]);
      const float* xp = x + (p0 + r) * K;
      for (int64_t k = K8; k < K; ++k) s += xp[k] * wn[k];
      y[(p0 + r) * N + n] = s;
    }
  }
}

// Calls f(std::integral_constant<int, R>) for R = min(rows, kRowBlock) in 1..8: the register block size.
template <typename F>
void ForRowBlock(int64_t rows, F&& f) {
  switch (rows < kRowBlock ? rows : kRowBlock) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 5: f(std::integral_constant<int, 5>{}); break;
    case 6: f(std::integral_constant<int, 6>{}); break;
    case 7: f(std::integral_constant<int, 7>{}); break;
    default: f(std::integral_constant<int, 8>{}); break;
  }
}

void NtAvx2(const float* x, const float* w, float* y, int64_t P, int64_t N, int64_t K) {
  for (int64_t n0 = 0; n0 < N; n0 += kTileRows) {
    const int64_t n1 = n0 + kTileRows < N ? n0 + kTileRows : N;
    for (int64_t p0 = 0; p0 < P; p0 += kRowBlock) ForRowBlock(P - p0, [&](auto R) { NtBlock<decltype(R)::value>(x, w, y, p0, n0, n1, N, K); });
  }
}

// dx[p, k0..k0+8) += Σ_{n in tile} dy[p, n] W[n, k0..k0+8) for p in [p0, p0 + R).
template <int R>
__attribute__((target("avx2,fma"))) void NnBlock(const float* dy, const float* w, float* dx, int64_t p0, int64_t n0, int64_t n1,
                                                 int64_t N, int64_t K) {
  const int64_t K8 = K & ~int64_t{7};
  for (int64_t k = 0; k < K8; k += 8) {
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_loadu_ps(dx + (p0 + r) * K + k);
    for (int64_t n = n0; n < n1; ++n) {
      const __m256 wv = _mm256_loadu_ps(w + n * K + k);
      for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(dy + (p0 + r) * N + n), wv, acc[r]);
    }
    for (int r = 0; r < R; ++r) _mm256_storeu_ps(dx + (p0 + r) * K + k, acc[r]);
  }
  for (int64_t k = K8; k < K; ++k) {
    for (int r = 0; r < R; ++r) {
      float s = dx[(p0 + r) * K + k];
      for (int64_t n = n0; n < n1; ++n) s += dy[(p0 + r) * N + n] * w[n * K + k];
      dx[(p0 + r) * K + k] = s;
    }
  }
}

void NnAvx2(const float* dy, const float* w, float* dx, int64_t P, int64_t N, int64_t K) {
  for (int64_t n0 = 0; n0 < N; n0 += kTileRows) {
    const int64_t n1 = n0 + kTileRows < N ? n0 + kTileRows : N;
    for (int64_t p0 = 0; p0 < P; p0 += kRowBlock) ForRowBlock(P - p0, [&](auto R) { NnBlock<decltype(R)::value>(dy, w, dx, p0, n0, n1, N, K); });
  }
}

bool HasAvx2Fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

}  // namespace

// (x, w, y, P, N, K): y (P, N) = x (P, K) · Wᵀ, W (N, K) row-major.
Napi::Value SkinnyGemmNT(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "skinnyGemmNT";
  const int64_t P = ARG_INT(3, "P"), N = ARG_INT(4, "N"), K = ARG_INT(5, "K");
  const float* x = ARG_F32(0, "x", Mul(P, K));
  const float* w = ARG_F32(1, "w", Mul(N, K));
  float* y = ARG_F32(2, "y", Mul(P, N));
  if (P == 0 || N == 0) return info.Env().Undefined();
#if defined(__x86_64__)
  if (HasAvx2Fma()) {
    NtAvx2(x, w, y, P, N, K);
    return info.Env().Undefined();
  }
#endif
  NtPortable(x, w, y, P, N, K);
  return info.Env().Undefined();
}

// (dy, w, dx, P, N, K, accumulate): dx (P, K) = dy (P, N) · W (+ dx when accumulate), W (N, K) row-major.
Napi::Value SkinnyGemmNN(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "skinnyGemmNN";
  const int64_t P = ARG_INT(3, "P"), N = ARG_INT(4, "N"), K = ARG_INT(5, "K");
  const bool accumulate = ARG_BOOL(6, "accumulate");
  const float* dy = ARG_F32(0, "dy", Mul(P, N));
  const float* w = ARG_F32(1, "w", Mul(N, K));
  float* dx = ARG_F32(2, "dx", Mul(P, K));
  if (!accumulate)
    for (int64_t i = 0; i < P * K; ++i) dx[i] = 0.0f;
  if (P == 0 || K == 0) return info.Env().Undefined();
#if defined(__x86_64__)
  if (HasAvx2Fma()) {
    NnAvx2(dy, w, dx, P, N, K);
    return info.Env().Undefined();
  }
#endif
  NnPortable(dy, w, dx, P, N, K);
  return info.Env().Undefined();
}

// --- the vocabulary head fused with its softmax losses ------------------------------------------
//
// softmaxHead: for a few rows h (P, C) against W (V, C), in ONE pass over W (the two skinny products
// above read all of W twice per target-search step: logits, then dL/dh):
//   logits (P, V) = h · Wᵀ;  lse_p = log Σ_v exp(logits[p, v]);
//   L = Σ_p nllWeight_p · (lse_p − logits[p, target_p])                      (target_p < 0: no term)
//     + Σ_p klWeight_p · KL_p,  KL_p = Σ_v q_v (log q_v − refLogp[p, v]),  q = softmax(logits[p]);
//   dh (P, C) = dL/dh = dlogits · W with
//   dlogits[p] = nllWeight_p (q − onehot(target_p)) + klWeight_p · q ⊙ (log q − refLogp[p] − KL_p).
// Online softmax (as in flash attention): per row a running max m, Z = Σ e_v, e_v = exp(l_v − m), and
// the running sums A = Σ e_v W_v, S = Σ e_v d_v, B = Σ e_v d_v W_v with d_v = l_v − refLogp[p, v] − c_p,
// all rescaled by exp(m_old − m_new) when the max grows. Then q·W = A/Z, and with D = S/Z:
// KL_p = D − (lse_p − c_p), and q ⊙ (log q − r − KL) · W = B/Z − D·A/Z (exact for any shift c_p;
// the caller passes c_p ≈ lse of the reference distribution so that d_v stays small).
// Threads: the vocabulary is split into t contiguous ranges (t = the BLAS thread count), each with
// its own running sums, merged in range order: deterministic for a fixed t; different t round differently.
namespace {

struct HeadPartial {
  std::vector<float> m, z, s;  // (P) running max, Σ e, Σ e·d
  std::vector<float> acc;      // (nAcc, K): A rows, then B rows of the KL rows
};

// Accumulates acc (R, K) += coef (R, n) · W[n0..n0+n) over one tile; R ≤ rows of acc.
void TileAccumulate(const float* coef, const float* w, float* acc, int64_t R, int64_t n, int64_t K) {
#if defined(__x86_64__)
  if (HasAvx2Fma()) {
    for (int64_t p0 = 0; p0 < R; p0 += kRowBlock) ForRowBlock(R - p0, [&](auto Rb) { NnBlock<decltype(Rb)::value>(coef, w, acc, p0, 0, n, n, K); });
    return;
  }
#endif
  for (int64_t j = 0; j < n; ++j)
    for (int64_t r = 0; r < R; ++r) {
      const float a = coef[r * n + j];
      for (int64_t k = 0; k < K; ++k) acc[r * K + k] += a * w[j * K + k];
    }
}

void TileLogits(const float* x, const float* w, float* y, int64_t P, int64_t n0, int64_t n1, int64_t N, int64_t K) {
#if defined(__x86_64__)
  if (HasAvx2Fma()) {
    for (int64_t p0 = 0; p0 < P; p0 += kRowBlock) ForRowBlock(P - p0, [&](auto R) { NtBlock<decltype(R)::value>(x, w, y, p0, n0, n1, N, K); });
    return;
  }
#endif
  for (int64_t p = 0; p < P; ++p)
    for (int64_t n = n0; n < n1; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc += x[p * K + k] * w[n * K + k];
      y[p * N + n] = acc;
    }
}

}  // namespace

// (h, w, logits, target, nllWeight, klWeight, refLogp, klShift, dh, lse, kl, P, V, C)
Napi::Value SoftmaxHead(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "softmaxHead";
  const int64_t P = ARG_INT(11, "P"), V = ARG_INT(12, "V"), K = ARG_INT(13, "C");
  const float* h = ARG_F32(0, "h", Mul(P, K));
  const float* w = ARG_F32(1, "w", Mul(V, K));
  float* logits = ARG_F32(2, "logits", Mul(P, V));
  const int32_t* target = ARG_I32(3, "target", P);
  const float* nllW = ARG_F32(4, "nllWeight", P);
  const float* klW = ARG_F32(5, "klWeight", P);
  const float* ref = ARG_F32_OR_NULL(6, "refLogp", Mul(P, V));
  const float* shift = ARG_F32(7, "klShift", P);
  float* dh = ARG_F32(8, "dh", Mul(P, K));
  float* lse = ARG_F32(9, "lse", P);
  float* kl = ARG_F32(10, "kl", P);
  // accumulator rows: A for every row with a loss term, B for every KL row
  std::vector<int64_t> aRow(P, -1), bRow(P, -1);
  int64_t nAcc = 0;
  for (int64_t p = 0; p < P; ++p) {
    if (target[p] >= V) ThrowArg(info.Env(), ArgPrefix(kFn, 3, "target") + "element " + std::to_string(p) + " is " + std::to_string(target[p]) + ", outside [-1, " + std::to_string(V) + ")");
    if (klW[p] != 0.0f && !ref) ThrowArg(info.Env(), ArgPrefix(kFn, 6, "refLogp") + "is null but klWeight[" + std::to_string(p) + "] is not 0");
    if (nllW[p] != 0.0f || klW[p] != 0.0f) aRow[p] = nAcc++;
  }
  for (int64_t p = 0; p < P; ++p)
    if (klW[p] != 0.0f) bRow[p] = nAcc++;
  for (int64_t i = 0; i < P * K; ++i) dh[i] = 0.0f;
  if (P == 0) return info.Env().Undefined();
  if (V == 0) ThrowArg(info.Env(), ArgPrefix(kFn, 12, "V") + "must be positive");
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(openblas_get_num_threads(), V / 4096)));
  std::vector<HeadPartial> part(threads);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int64_t v0 = V * t / threads, v1 = V * (t + 1) / threads;
    HeadPartial& hp = part[t];
    hp.m.assign(P, -std::numeric_limits<float>::infinity());
    hp.z.assign(P, 0.0f);
    hp.s.assign(P, 0.0f);
    hp.acc.assign(nAcc * K, 0.0f);
    std::vector<float> coef(nAcc * kTileRows);
    for (int64_t n0 = v0; n0 < v1; n0 += kTileRows) {
      const int64_t n1 = std::min(n0 + kTileRows, v1), n = n1 - n0;
      TileLogits(h, w, logits, P, n0, n1, V, K);
      for (int64_t p = 0; p < P; ++p) {
        const float* l = logits + p * V;
        float mt = hp.m[p];
        for (int64_t j = n0; j < n1; ++j) mt = l[j] > mt ? l[j] : mt;
        if (mt > hp.m[p]) {  // rescale the running sums to the new max
          const float sc = hp.m[p] == -std::numeric_limits<float>::infinity() ? 0.0f : ExpF(hp.m[p] - mt);
          hp.z[p] *= sc;
          hp.s[p] *= sc;
          for (int64_t r : {aRow[p], bRow[p]})
            if (r >= 0)
              for (int64_t k = 0; k < K; ++k) hp.acc[r * K + k] *= sc;
          hp.m[p] = mt;
        }
        float z = 0.0f, s = 0.0f;
        for (int64_t j = 0; j < n; ++j) {
          const float e = ExpF(l[n0 + j] - mt);
          z += e;
          if (aRow[p] >= 0) coef[aRow[p] * n + j] = e;
          if (bRow[p] >= 0) {
            const float u = e * ((l[n0 + j] - ref[p * V + n0 + j]) - shift[p]);
            s += u;
            coef[bRow[p] * n + j] = u;
          }
        }
        hp.z[p] += z;
        hp.s[p] += s;
      }
      if (nAcc > 0) TileAccumulate(coef.data(), w + n0 * K, hp.acc.data(), nAcc, n, K);
    }
  }
  // merge the ranges in order, then dh
  std::vector<float> a(nAcc * K, 0.0f);
  for (int64_t p = 0; p < P; ++p) {
    float m = -std::numeric_limits<float>::infinity();
    for (const HeadPartial& hp : part) m = hp.m[p] > m ? hp.m[p] : m;
    float z = 0.0f, s = 0.0f;
    for (const HeadPartial& hp : part) {
      if (hp.m[p] == -std::numeric_limits<float>::infinity()) continue;
      const float sc = ExpF(hp.m[p] - m);
      z += sc * hp.z[p];
      s += sc * hp.s[p];
      for (int64_t r : {aRow[p], bRow[p]})
        if (r >= 0)
          for (int64_t k = 0; k < K; ++k) a[r * K + k] += sc * hp.acc[r * K + k];
    }
    lse[p] = m + std::log(z);
    kl[p] = 0.0f;
    float* d = dh + p * K;
    if (aRow[p] < 0) continue;
    const float* A = a.data() + aRow[p] * K;
    if (nllW[p] != 0.0f) {
      const float wp = nllW[p];
      const float* wt = target[p] >= 0 ? w + static_cast<int64_t>(target[p]) * K : nullptr;
      for (int64_t k = 0; k < K; ++k) d[k] += wp * (A[k] / z - (wt ? wt[k] : 0.0f));
    }
    if (bRow[p] >= 0) {
      const float D = s / z;
      kl[p] = D - (lse[p] - shift[p]);
      const float* B = a.data() + bRow[p] * K;
      for (int64_t k = 0; k < K; ++k) d[k] += klW[p] * (B[k] / z - D * (A[k] / z));
    }
  }
  return info.Env().Undefined();
}

}  // namespace deltaedit
