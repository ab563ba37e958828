// gemm (optionally batched) and syrk over cblas, on the caller's memory (zero copies).
// Float32Array or Float64Array (all operands the same type). Row-major throughout.
//
// Skinny products (a few rows m against a large op(B), the linear layers of a target-search step:
// ~35 rows against 768 × 3072): OpenBLAS packs the whole of op(B) in every call and, at this size,
// runs as fast on one thread as on two (the second core waits on the packing). With t ≥ 2 BLAS
// threads such a product is split instead into t column slabs C[:, j0:j1) = op(A) · op(B)[:, j0:j1),
// each a single-threaded BLAS call on its own thread, so each core packs only its slab. A column
// of C is the same sum over k in either case, so only the kernel's own blocking can make the two
// differ (they are equal up to float32 rounding; tests bound it). 1 BLAS thread: one call.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "check.h"
#include "kernels.h"

namespace deltaedit {
namespace {

inline void GemmCall(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float* a, int lda,
                     const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void GemmCall(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha, const double* a, int lda,
                     const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void SyrkCall(CBLAS_TRANSPOSE t, int n, int k, float alpha, const float* a, int lda, float beta, float* c) {
  cblas_ssyrk(CblasRowMajor, CblasLower, t, n, k, alpha, a, lda, beta, c, n);
}
inline void SyrkCall(CBLAS_TRANSPOSE t, int n, int k, double alpha, const double* a, int lda, double beta, double* c) {
  cblas_dsyrk(CblasRowMajor, CblasLower, t, n, k, alpha, a, lda, beta, c, n);
}

// The skinny split: at most this many rows m, slabs of at least kSplitAlign columns (a multiple
// of every x86 kernel's unroll), and enough work to pay for the fork.
constexpr int64_t kSplitMaxRows = 64;
constexpr int64_t kSplitAlign = 64;
constexpr int64_t kSplitMinWork = int64_t{1} << 21;  // m·n·k multiply-adds

// Column slabs for an (m, n, k) product with `threads` BLAS threads: 1 = one BLAS call.
inline int SplitWays(int64_t m, int64_t n, int64_t k, int threads) {
  if (threads < 2 || m > kSplitMaxRows || m * n * k < kSplitMinWork) return 1;
  const int64_t ways = std::min<int64_t>(threads, n / kSplitAlign);
  return ways < 2 ? 1 : static_cast<int>(ways);
}

// C[:, j0:j1) of C = alpha op(A) op(B) + beta C on `ways` threads, one single-threaded BLAS call
// each. OpenBLAS's thread count is a process-wide setting: it is lowered to 1 for the duration
// (the addon is called from one JavaScript thread at a time) and restored.
template <typename T>
void GemmSplit(int ways, int threads, bool transA, bool transB, int m, int n, int k, T alpha, const T* a, int lda,
               const T* b, int ldb, T beta, T* c, int ldc) {
  const int64_t chunks = n / kSplitAlign;  // slab w gets chunks [w·chunks/ways, (w+1)·chunks/ways)
  openblas_set_num_threads(1);
#pragma omp parallel for num_threads(ways) schedule(static, 1)
  for (int w = 0; w < ways; ++w) {
    const int j0 = static_cast<int>(w * chunks / ways * kSplitAlign);
    const int j1 = w == ways - 1 ? n : static_cast<int>((w + 1) * chunks / ways * kSplitAlign);
    const T* bw = transB ? b + static_cast<int64_t>(j0) * ldb : b + j0;
    GemmCall(transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, m, j1 - j0, k, alpha, a, lda, bw,
             ldb, beta, c + j0, ldc);
  }
  openblas_set_num_threads(threads);
}

// Elements spanned by `rows` rows of width `cols` with leading dimension ld.
inline uint64_t Span(uint64_t rows, uint64_t cols, uint64_t ld) {
  return rows == 0 || cols == 0 ? 0 : Add(Mul(rows - 1, ld), cols);
}

// Arguments: (a, b, c, m, n, k, transA, transB, alpha, beta, lda, ldb, ldc, batch, strideA, strideB, strideC, split)
template <typename T>
void GemmTyped(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "gemm";
  const int64_t m = ARG_INT(3, "m"), n = ARG_INT(4, "n"), k = ARG_INT(5, "k");
  const bool transA = ARG_BOOL(6, "transA"), transB = ARG_BOOL(7, "transB");
  const T alpha = static_cast<T>(ARG_NUMBER(8, "alpha")), beta = static_cast<T>(ARG_NUMBER(9, "beta"));
  const int64_t lda = ARG_INT(10, "lda"), ldb = ARG_INT(11, "ldb"), ldc = ARG_INT(12, "ldc");
  const int64_t batch = ARG_INT(13, "batch");
  const int64_t strideA = ARG_INT(14, "strideA"), strideB = ARG_INT(15, "strideB"), strideC = ARG_INT(16, "strideC");
  const bool split = ARG_BOOL(17, "split");
  // stored shapes: A (m,k) or (k,m) when transA; B (k,n) or (n,k) when transB; C (m,n)
  const int64_t aRows = transA ? k : m, aCols = transA ? m : k;
  const int64_t bRows = transB ? n : k, bCols = transB ? k : n;
  if (lda < std::max<int64_t>(1, aCols)) ThrowArg(info.Env(), ArgPrefix(kFn, 10, "lda") + "must be >= max(1, " + std::to_string(aCols) + "), got " + std::to_string(lda));
  if (ldb < std::max<int64_t>(1, bCols)) ThrowArg(info.Env(), ArgPrefix(kFn, 11, "ldb") + "must be >= max(1, " + std::to_string(bCols) + "), got " + std::to_string(ldb));
  if (ldc < std::max<int64_t>(1, n)) ThrowArg(info.Env(), ArgPrefix(kFn, 12, "ldc") + "must be >= max(1, " + std::to_string(n) + "), got " + std::to_string(ldc));
  auto need = [&](uint64_t one, int64_t stride) { return batch == 0 || one == 0 ? 0 : Add(Mul(batch - 1, stride), one); };
  const T* a = ARG_ARRAY(T, 0, "a", need(Span(aRows, aCols, lda), strideA));
  const T* b = ARG_ARRAY(T, 1, "b", need(Span(bRows, bCols, ldb), strideB));
  T* c = ARG_ARRAY(T, 2, "c", need(Span(m, n, ldc), strideC));
  if (m == 0 || n == 0) return;
  const int threads = split ? openblas_get_num_threads() : 1;
  const int ways = SplitWays(m, n, k, threads);
  for (int64_t i = 0; i < batch; ++i) {
    T* ci = c + i * strideC;
    if (k == 0) {  // C = beta * C (beta == 0 never reads C, as in BLAS)
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < n; ++j) ci[r * ldc + j] = beta == T(0) ? T(0) : beta * ci[r * ldc + j];
      continue;
    }
    if (ways > 1) {
      GemmSplit(ways, threads, transA, transB, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha,
                a + i * strideA, static_cast<int>(lda), b + i * strideB, static_cast<int>(ldb), beta, ci,
                static_cast<int>(ldc));
      continue;
    }
    GemmCall(transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, static_cast<int>(m),
             static_cast<int>(n), static_cast<int>(k), alpha, a + i * strideA, static_cast<int>(lda), b + i * strideB,
             static_cast<int>(ldb), beta, ci, static_cast<int>(ldc));
  }
}

// Arguments: (a, c, n, k, trans, alpha, beta). A (n,k), or (k,n) when trans; C (n,n) symmetric on return.
template <typename T>
void SyrkTyped(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "syrk";
  const int64_t n = ARG_INT(2, "n"), k = ARG_INT(3, "k");
  const bool trans = ARG_BOOL(4, "trans");
  const T alpha = static_cast<T>(ARG_NUMBER(5, "alpha")), beta = static_cast<T>(ARG_NUMBER(6, "beta"));
  const T* a = ARG_ARRAY(T, 0, "a", Mul(n, k));
  T* c = ARG_ARRAY(T, 1, "c", Mul(n, n));
  if (n == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < n * n; ++i) c[i] = beta == T(0) ? T(0) : beta * c[i];
  } else {
    const int64_t lda = trans ? n : k;
    SyrkCall(trans ? CblasTrans : CblasNoTrans, static_cast<int>(n), static_cast<int>(k), alpha, a,
             static_cast<int>(lda), beta, c);
  }
  // mirror the lower triangle (row-major C[i][j], j < i) into the upper one
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) c[j * n + i] = c[i * n + j];
}

}  // namespace

Napi::Value Gemm(const Napi::CallbackInfo& info) {
  if (IsArrayOf(info[0], napi_float64_array)) GemmTyped<double>(info);
  else GemmTyped<float>(info);
  return info.Env().Undefined();
}

Napi::Value Syrk(const Napi::CallbackInfo& info) {
  if (IsArrayOf(info[0], napi_float64_array)) SyrkTyped<double>(info);
  else SyrkTyped<float>(info);
  return info.Env().Undefined();
}

}  // namespace deltaedit
