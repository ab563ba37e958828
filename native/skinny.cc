// Products with a few rows against a large row-major matrix W (N, K) — the linear layers of a
// target-search step (~35 rows against 768 × 3072 for GPT-2 small, 1600 × 6400 for GPT2-XL) and the
// vocabulary projection at its handful of scored positions (7 rows against 50 257 × 768). BLAS packs
// all of W into panel buffers on every call and runs micro-kernels made for many rows (measured
// 130–200 GFLOP/s at 35–42 rows on a 305 GFLOP/s machine). Here W is streamed once through register
// tiles (skinny_tiles.inc) that keep a slice of it in L1 while every block of rows passes over it:
//   skinnyGemmNT: y (P, N) (+)= x (P, K) · Wᵀ      (y[p, n] = Σ_k x[p, k] W[n, k]; dot products)
//   skinnyGemmNN: dx (P, K) (+)= dy (P, N) · W     (dx[p, k] = Σ_n dy[p, n] W[n, k]; rows of W as vectors)
// Both split the output columns over the BLAS thread count; every output element is the same sum in
// the same order whichever thread computes it (skinny_tiles.inc), so the result does not depend on
// the thread count. Instruction set: AVX-512F, else AVX2+FMA, else a portable loop (checked at run
// time; `isa` forces one for tests). They round differently (lane counts, fused multiply-adds), so
// they equal BLAS and each other up to float32 rounding, not bit for bit.
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

constexpr int64_t kTileRows = 32;  // vocabulary rows per tile of the fused head (32 × K floats: 96 KB at K = 768)

// --- portable ---------------------------------------------------------------------------------

namespace portable {

void NnRange(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t M, int64_t R, int64_t j0,
             int64_t j1, bool accumulate) {
  for (int64_t i = 0; i < M; ++i) {
    float* ci = c + i * ldc;
    if (!accumulate)
      for (int64_t j = j0; j < j1; ++j) ci[j] = 0.0f;
    for (int64_t r = 0; r < R; ++r) {
      const float air = a[i * lda + r];
      const float* br = b + r * ldb;
      for (int64_t j = j0; j < j1; ++j) ci[j] += air * br[j];
    }
  }
}

void NtRange(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t M, int64_t R, int64_t n0,
             int64_t n1, bool accumulate) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t n = n0; n < n1; ++n) {
      const float* ai = a + i * lda;
      const float* bn = b + n * ldb;
      float s = 0.0f;
      for (int64_t r = 0; r < R; ++r) s += ai[r] * bn[r];
      c[i * ldc + n] = accumulate ? c[i * ldc + n] + s : s;
    }
}

}  // namespace portable

#if defined(__x86_64__)
// --- AVX-512F ---------------------------------------------------------------------------------
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
// GCC 12's AVX-512 intrinsics pass _mm*_undefined_*() as the unused merge operand and warn about it
// (GCC bug 105593, fixed in GCC 13): not a use of an uninitialised value.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace avx512 {
struct V {
  using Reg = __m512;
  using Mask = __mmask16;
  static constexpr int64_t kW = 16;
  static constexpr int kNnRows = 12;  // 24 accumulators + 2 of B + 1 broadcast of 32 registers
  static constexpr int kNtRows = 8;   // 24 accumulators + 3 of B + 1 of A
  static constexpr int kNtRowsB = 3;
  static inline Reg Zero() { return _mm512_setzero_ps(); }
  static inline Reg Load(const float* p) { return _mm512_loadu_ps(p); }
  static inline Reg LoadM(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static inline void Store(float* p, Reg v) { _mm512_storeu_ps(p, v); }
  static inline void StoreM(float* p, Mask m, Reg v) { _mm512_mask_storeu_ps(p, m, v); }
  static inline Reg Bcast(const float* p) { return _mm512_set1_ps(*p); }
  static inline Reg Fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static inline Mask Prefix(int64_t n) { return n >= 16 ? Mask(0xFFFF) : n <= 0 ? Mask(0) : Mask((1u << n) - 1u); }
  static inline __m256 Fold(Reg v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2))));
  }
};
#include "skinny_tiles.inc"
}  // namespace avx512
#pragma GCC diagnostic pop
#pragma GCC pop_options

// --- AVX2 + FMA -------------------------------------------------------------------------------
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
struct V {
  using Reg = __m256;
  using Mask = __m256i;
  static constexpr int64_t kW = 8;
  static constexpr int kNnRows = 6;  // 12 accumulators + 2 of B + 1 broadcast of 16 registers
  static constexpr int kNtRows = 2;  // 8 accumulators + 4 of B + 1 of A
  static constexpr int kNtRowsB = 4;
  static inline Reg Zero() { return _mm256_setzero_ps(); }
  static inline Reg Load(const float* p) { return _mm256_loadu_ps(p); }
  static inline Reg LoadM(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static inline void Store(float* p, Reg v) { _mm256_storeu_ps(p, v); }
  static inline void StoreM(float* p, Mask m, Reg v) { _mm256_maskstore_ps(p, m, v); }
  static inline Reg Bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static inline Reg Fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static inline Mask Prefix(int64_t n) {
    const int k = static_cast<int>(n < 0 ? 0 : n > 8 ? 8 : n);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static inline __m256 Fold(Reg v) { return v; }
};
#include "skinny_tiles.inc"
}  // namespace avx2
#pragma GCC pop_options
#endif

// The instruction set of the skinny kernels: 0 portable, 1 AVX2+FMA, 2 AVX-512F.
int BestIsa() {
#if defined(__x86_64__)
  static const int best = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
  return best;
#else
  return 0;
#endif
}

using RangeFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t, int64_t, int64_t, int64_t, bool);

struct IsaKernels {
  RangeFn nn, nt;
  int64_t panel;  // column alignment of a thread's slab for NN (a tile's columns)
  int64_t group;  // column alignment of a thread's slab for NT (a tile's rows of B)
};

IsaKernels KernelsFor(int isa) {
#if defined(__x86_64__)
  if (isa == 2) return {avx512::NnRange, avx512::NtRange, 2 * avx512::V::kW, avx512::V::kNtRowsB};
  if (isa == 1) return {avx2::NnRange, avx2::NtRange, 2 * avx2::V::kW, avx2::V::kNtRowsB};
#endif
  return {portable::NnRange, portable::NtRange, 1, 1};
}

// Reads the `isa` argument: "auto" (the best this CPU has) or "avx512" / "avx2" / "portable"
// (refused when this CPU lacks it).
int ArgIsa(const Napi::CallbackInfo& info, const char* fn, size_t i) {
  if (info.Length() <= i || !info[i].IsString()) ThrowArg(info.Env(), ArgPrefix(fn, i, "isa") + "expected a string, got " + (info.Length() <= i ? std::string("nothing") : Describe(info[i])));
  const std::string s = info[i].As<Napi::String>().Utf8Value();
  const int want = s == "auto" ? BestIsa() : s == "avx512" ? 2 : s == "avx2" ? 1 : s == "portable" ? 0 : -1;
  if (want < 0) ThrowArg(info.Env(), ArgPrefix(fn, i, "isa") + "expected \"auto\", \"avx512\", \"avx2\" or \"portable\", got \"" + s + "\"");
  if (want > BestIsa()) ThrowArg(info.Env(), ArgPrefix(fn, i, "isa") + "\"" + s + "\" is not supported by this CPU");
  return want;
}

// Output columns [0, cols) over t threads in slabs aligned to `align`; t from the BLAS thread count,
// at most one thread per 2^18 multiply-adds.
void ParallelColumns(RangeFn f, int64_t align, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                     int64_t M, int64_t R, int64_t cols, bool accumulate) {
  const int64_t chunks = (cols + align - 1) / align;
  const int64_t byWork = std::max<int64_t>(1, M * R * cols >> 18);
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({openblas_get_num_threads(), chunks, byWork})));
  if (threads == 1) {
    f(a, lda, b, ldb, c, ldc, M, R, 0, cols, accumulate);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num();
    const int64_t j0 = std::min(cols, chunks * t / threads * align), j1 = std::min(cols, chunks * (t + 1) / threads * align);
    if (j1 > j0) f(a, lda, b, ldb, c, ldc, M, R, j0, j1, accumulate);
  }
}

}  // namespace

// (): the instruction set "auto" selects on this CPU: "avx512", "avx2" or "portable".
Napi::Value SkinnyIsa(const Napi::CallbackInfo& info) {
  static const char* const kNames[] = {"portable", "avx2", "avx512"};
  return Napi::String::New(info.Env(), kNames[BestIsa()]);
}

// (x, w, y, P, N, K, accumulate, isa): y (P, N) (+)= x (P, K) · Wᵀ, W (N, K) row-major.
Napi::Value SkinnyGemmNT(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "skinnyGemmNT";
  const int64_t P = ARG_INT(3, "P"), N = ARG_INT(4, "N"), K = ARG_INT(5, "K");
  const bool accumulate = ARG_BOOL(6, "accumulate");
  const int isa = ArgIsa(info, kFn, 7);
  const float* x = ARG_F32(0, "x", Mul(P, K));
  const float* w = ARG_F32(1, "w", Mul(N, K));
  float* y = ARG_F32(2, "y", Mul(P, N));
  if (P == 0 || N == 0) return info.Env().Undefined();
  if (K == 0) {
    if (!accumulate) std::fill(y, y + P * N, 0.0f);
    return info.Env().Undefined();
  }
  const IsaKernels k = KernelsFor(isa);
  ParallelColumns(k.nt, k.group, x, K, w, K, y, N, P, K, N, accumulate);
  return info.Env().Undefined();
}

// (dy, w, dx, P, N, K, accumulate, isa): dx (P, K) (+)= dy (P, N) · W, W (N, K) row-major.
Napi::Value SkinnyGemmNN(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "skinnyGemmNN";
  const int64_t P = ARG_INT(3, "P"), N = ARG_INT(4, "N"), K = ARG_INT(5, "K");
  const bool accumulate = ARG_BOOL(6, "accumulate");
  const int isa = ArgIsa(info, kFn, 7);
  const float* dy = ARG_F32(0, "dy", Mul(P, N));
  const float* w = ARG_F32(1, "w", Mul(N, K));
  float* dx = ARG_F32(2, "dx", Mul(P, K));
  if (P == 0 || K == 0) return info.Env().Undefined();
  if (N == 0) {
    if (!accumulate) std::fill(dx, dx + P * K, 0.0f);
    return info.Env().Undefined();
  }
  const IsaKernels k = KernelsFor(isa);
  ParallelColumns(k.nn, k.panel, dy, N, w, K, dx, K, P, N, K, accumulate);
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
void TileAccumulate(const IsaKernels& k, const float* coef, const float* w, float* acc, int64_t R, int64_t n, int64_t K) {
  k.nn(coef, n, w, K, acc, K, R, n, 0, K, true);
}

// logits[:, n0:n1) = h (P, K) · W[n0:n1)ᵀ.
void TileLogits(const IsaKernels& k, const float* h, const float* w, float* logits, int64_t P, int64_t n0, int64_t n1, int64_t V,
                int64_t K) {
  k.nt(h, K, w, K, logits, V, P, K, n0, n1, false);
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
  const IsaKernels kern = KernelsFor(BestIsa());
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
      TileLogits(kern, h, w, logits, P, n0, n1, V, K);
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
      if (nAcc > 0) TileAccumulate(kern, coef.data(), w + n0 * K, hp.acc.data(), nAcc, n, K);
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
