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
#include <cstdint>
#include <string>
#include <type_traits>

#include "check.h"
#include "kernels.h"

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

}  // namespace deltaedit
