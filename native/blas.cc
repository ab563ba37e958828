// gemm (optionally batched) and syrk over cblas, on the caller's memory (zero copies).
// Float32Array or Float64Array (all operands the same type). Row-major throughout.
#include <cblas.h>

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

// Elements spanned by `rows` rows of width `cols` with leading dimension ld.
inline uint64_t Span(uint64_t rows, uint64_t cols, uint64_t ld) {
  return rows == 0 || cols == 0 ? 0 : Add(Mul(rows - 1, ld), cols);
}

// Arguments: (a, b, c, m, n, k, transA, transB, alpha, beta, lda, ldb, ldc, batch, strideA, strideB, strideC)
template <typename T>
void GemmTyped(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "gemm";
  const int64_t m = ARG_INT(3, "m"), n = ARG_INT(4, "n"), k = ARG_INT(5, "k");
  const bool transA = ARG_BOOL(6, "transA"), transB = ARG_BOOL(7, "transB");
  const T alpha = static_cast<T>(ARG_NUMBER(8, "alpha")), beta = static_cast<T>(ARG_NUMBER(9, "beta"));
  const int64_t lda = ARG_INT(10, "lda"), ldb = ARG_INT(11, "ldb"), ldc = ARG_INT(12, "ldc");
  const int64_t batch = ARG_INT(13, "batch");
  const int64_t strideA = ARG_INT(14, "strideA"), strideB = ARG_INT(15, "strideB"), strideC = ARG_INT(16, "strideC");
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
  for (int64_t i = 0; i < batch; ++i) {
    T* ci = c + i * strideC;
    if (k == 0) {  // C = beta * C (beta == 0 never reads C, as in BLAS)
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < n; ++j) ci[r * ldc + j] = beta == T(0) ? T(0) : beta * ci[r * ldc + j];
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
