// Dense factorizations over LAPACKE/cblas: syevd (eigh), gesdd (svd, gesvd fallback),
// potrf (Cholesky), potrs (two triangular solves), trsm, gesv. Float32Array or Float64Array.
// The TypeScript side passes copies/outputs, so every routine here may work in place on them.
// Routines return LAPACK's `info` (0 = success) and ops.ts turns failures into DeltaEditErrors.
#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "check.h"
#include "kernels.h"

namespace deltaedit {
namespace {

// Workspace sizes: LAPACK reports a workspace query in the matrix's own precision, and a float32
// query above 2^24 rounds DOWN (e.g. ssyevd at n = 3072 needs 1 + 6n + 2n² = 18 893 953), which makes
// the call fail with an "illegal value". Every query result is therefore rounded up with a margin.
template <typename T>
lapack_int WorkSize(T q) {
  return static_cast<lapack_int>(static_cast<double>(q) * (1.0 + 1e-6)) + 8;
}

lapack_int Syevd(int n, float* a, float* w) {
  float q = 0;
  lapack_int iq = 0;
  lapack_int info = LAPACKE_ssyevd_work(LAPACK_ROW_MAJOR, 'V', 'L', n, a, n, w, &q, -1, &iq, -1);
  if (info != 0) return info;
  std::vector<float> work(static_cast<size_t>(std::max<lapack_int>(WorkSize(q), 1 + 6 * n + 2 * n * n)));
  std::vector<lapack_int> iwork(static_cast<size_t>(std::max<lapack_int>(iq, 3 + 5 * n)));
  return LAPACKE_ssyevd_work(LAPACK_ROW_MAJOR, 'V', 'L', n, a, n, w, work.data(), static_cast<lapack_int>(work.size()), iwork.data(), static_cast<lapack_int>(iwork.size()));
}
lapack_int Syevd(int n, double* a, double* w) {
  double q = 0;
  lapack_int iq = 0;
  lapack_int info = LAPACKE_dsyevd_work(LAPACK_ROW_MAJOR, 'V', 'L', n, a, n, w, &q, -1, &iq, -1);
  if (info != 0) return info;
  std::vector<double> work(static_cast<size_t>(std::max<lapack_int>(WorkSize(q), 1 + 6 * n + 2 * n * n)));
  std::vector<lapack_int> iwork(static_cast<size_t>(std::max<lapack_int>(iq, 3 + 5 * n)));
  return LAPACKE_dsyevd_work(LAPACK_ROW_MAJOR, 'V', 'L', n, a, n, w, work.data(), static_cast<lapack_int>(work.size()), iwork.data(), static_cast<lapack_int>(iwork.size()));
}
lapack_int Gesdd(int m, int n, float* a, float* s, float* u, float* vt) {
  const int k = std::min(m, n);
  float q = 0;
  std::vector<lapack_int> iwork(static_cast<size_t>(8 * k));
  lapack_int info = LAPACKE_sgesdd_work(LAPACK_ROW_MAJOR, 'S', m, n, a, n, s, u, k, vt, n, &q, -1, iwork.data());
  if (info != 0) return info;
  std::vector<float> work(static_cast<size_t>(WorkSize(q)));
  return LAPACKE_sgesdd_work(LAPACK_ROW_MAJOR, 'S', m, n, a, n, s, u, k, vt, n, work.data(), static_cast<lapack_int>(work.size()), iwork.data());
}
lapack_int Gesdd(int m, int n, double* a, double* s, double* u, double* vt) {
  const int k = std::min(m, n);
  double q = 0;
  std::vector<lapack_int> iwork(static_cast<size_t>(8 * k));
  lapack_int info = LAPACKE_dgesdd_work(LAPACK_ROW_MAJOR, 'S', m, n, a, n, s, u, k, vt, n, &q, -1, iwork.data());
  if (info != 0) return info;
  std::vector<double> work(static_cast<size_t>(WorkSize(q)));
  return LAPACKE_dgesdd_work(LAPACK_ROW_MAJOR, 'S', m, n, a, n, s, u, k, vt, n, work.data(), static_cast<lapack_int>(work.size()), iwork.data());
}
lapack_int Gesvd(int m, int n, float* a, float* s, float* u, float* vt, float* superb) {
  return LAPACKE_sgesvd(LAPACK_ROW_MAJOR, 'S', 'S', m, n, a, n, s, u, std::min(m, n), vt, n, superb);
}
lapack_int Gesvd(int m, int n, double* a, double* s, double* u, double* vt, double* superb) {
  return LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'S', 'S', m, n, a, n, s, u, std::min(m, n), vt, n, superb);
}
// Row-major lower Cholesky without a transposing copy: row-major storage read as column-major is
// Aᵀ = A (symmetric); its upper factor U (A = UᵀU, column-major) is L = Uᵀ in row-major storage.
lapack_int Potrf(int n, float* a) { return LAPACKE_spotrf(LAPACK_COL_MAJOR, 'U', n, a, n); }
lapack_int Potrf(int n, double* a) { return LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', n, a, n); }
lapack_int Gesv(int n, int nrhs, float* a, lapack_int* ipiv, float* b) {
  return LAPACKE_sgesv(LAPACK_ROW_MAJOR, n, nrhs, a, n, ipiv, b, std::max(1, nrhs));
}
lapack_int Gesv(int n, int nrhs, double* a, lapack_int* ipiv, double* b) {
  return LAPACKE_dgesv(LAPACK_ROW_MAJOR, n, nrhs, a, n, ipiv, b, std::max(1, nrhs));
}
void TrsmCall(bool lower, bool trans, bool unit, int n, int nrhs, const float* t, float* b) {
  cblas_strsm(CblasRowMajor, CblasLeft, lower ? CblasLower : CblasUpper, trans ? CblasTrans : CblasNoTrans,
              unit ? CblasUnit : CblasNonUnit, n, nrhs, 1.0f, t, n, b, nrhs);
}
void TrsmCall(bool lower, bool trans, bool unit, int n, int nrhs, const double* t, double* b) {
  cblas_dtrsm(CblasRowMajor, CblasLeft, lower ? CblasLower : CblasUpper, trans ? CblasTrans : CblasNoTrans,
              unit ? CblasUnit : CblasNonUnit, n, nrhs, 1.0, t, n, b, nrhs);
}

inline bool IsF64(const Napi::CallbackInfo& info) { return IsArrayOf(info[0], napi_float64_array); }

// (a, n, values, vectors) -> info. values (n) ascending; vectors (n,n), column j = eigenvector j.
template <typename T>
lapack_int EighTyped(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "eigh";
  const int64_t n = ARG_INT(1, "n");
  const T* a = ARG_ARRAY(T, 0, "a", Mul(n, n));
  T* values = ARG_ARRAY(T, 2, "values", n);
  T* vectors = ARG_ARRAY(T, 3, "vectors", Mul(n, n));
  if (n == 0) return 0;
  std::copy(a, a + n * n, vectors);
  return Syevd(static_cast<int>(n), vectors, values);
}

// (a, m, n, u, s, vt) -> info. Thin SVD: u (m,p), s (p) descending, vt (p,n), p = min(m,n).
template <typename T>
lapack_int SvdTyped(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "svd";
  const int64_t m = ARG_INT(1, "m"), n = ARG_INT(2, "n");
  const int64_t p = std::min(m, n);
  const T* a = ARG_ARRAY(T, 0, "a", Mul(m, n));
  T* u = ARG_ARRAY(T, 3, "u", Mul(m, p));
  T* s = ARG_ARRAY(T, 4, "s", p);
  T* vt = ARG_ARRAY(T, 5, "vt", Mul(p, n));
  if (p == 0) return 0;
  std::vector<T> work(a, a + m * n);
  lapack_int r = Gesdd(static_cast<int>(m), static_cast<int>(n), work.data(), s, u, vt);
  if (r > 0) {  // divide-and-conquer did not converge: fall back to QR iteration
    std::copy(a, a + m * n, work.begin());
    std::vector<T> superb(static_cast<size_t>(p));
    r = Gesvd(static_cast<int>(m), static_cast<int>(n), work.data(), s, u, vt, superb.data());
  }
  return r;
}

// (l, n) -> info; l holds A on entry and L (upper part zeroed) on success.
template <typename T>
lapack_int PotrfTyped(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "potrf";
  const int64_t n = ARG_INT(1, "n");
  T* l = ARG_ARRAY(T, 0, "l", Mul(n, n));
  if (n == 0) return 0;
  lapack_int r = Potrf(static_cast<int>(n), l);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) l[i * n + j] = T(0);
  return r;
}

// (l, x, n, nrhs): x holds B on entry and X with (L Lᵀ) X = B on return.
template <typename T>
void PotrsTyped(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "potrs";
  const int64_t n = ARG_INT(2, "n"), nrhs = ARG_INT(3, "nrhs");
  const T* l = ARG_ARRAY(T, 0, "l", Mul(n, n));
  T* x = ARG_ARRAY(T, 1, "x", Mul(n, nrhs));
  if (n == 0 || nrhs == 0) return;
  TrsmCall(true, false, false, static_cast<int>(n), static_cast<int>(nrhs), l, x);  // L Y = B
  TrsmCall(true, true, false, static_cast<int>(n), static_cast<int>(nrhs), l, x);   // Lᵀ X = Y
}

// (t, x, n, nrhs, lower, transpose, unitDiagonal) -> 0, or i+1 when t[i,i] == 0 (singular).
template <typename T>
lapack_int TrsmTyped(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "trsm";
  const int64_t n = ARG_INT(2, "n"), nrhs = ARG_INT(3, "nrhs");
  const bool lower = ARG_BOOL(4, "lower"), trans = ARG_BOOL(5, "transpose"), unit = ARG_BOOL(6, "unitDiagonal");
  const T* t = ARG_ARRAY(T, 0, "t", Mul(n, n));
  T* x = ARG_ARRAY(T, 1, "x", Mul(n, nrhs));
  if (!unit)
    for (int64_t i = 0; i < n; ++i)
      if (t[i * n + i] == T(0)) return static_cast<lapack_int>(i + 1);
  if (n == 0 || nrhs == 0) return 0;
  TrsmCall(lower, trans, unit, static_cast<int>(n), static_cast<int>(nrhs), t, x);
  return 0;
}

// (a, x, n, nrhs) -> info; a (a copy) is overwritten by its LU factors, x by the solution.
template <typename T>
lapack_int GesvTyped(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "gesv";
  const int64_t n = ARG_INT(2, "n"), nrhs = ARG_INT(3, "nrhs");
  T* a = ARG_ARRAY(T, 0, "a", Mul(n, n));
  T* x = ARG_ARRAY(T, 1, "x", Mul(n, nrhs));
  if (n == 0) return 0;
  std::vector<lapack_int> ipiv(static_cast<size_t>(n));
  return Gesv(static_cast<int>(n), static_cast<int>(nrhs), a, ipiv.data(), x);
}

}  // namespace

Napi::Value Eigh(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), IsF64(info) ? EighTyped<double>(info) : EighTyped<float>(info));
}
Napi::Value Svd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), IsF64(info) ? SvdTyped<double>(info) : SvdTyped<float>(info));
}
Napi::Value Potrf(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), IsF64(info) ? PotrfTyped<double>(info) : PotrfTyped<float>(info));
}
Napi::Value Potrs(const Napi::CallbackInfo& info) {
  if (IsF64(info)) PotrsTyped<double>(info);
  else PotrsTyped<float>(info);
  return info.Env().Undefined();
}
Napi::Value Trsm(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), IsF64(info) ? TrsmTyped<double>(info) : TrsmTyped<float>(info));
}
Napi::Value Gesv(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), IsF64(info) ? GesvTyped<double>(info) : GesvTyped<float>(info));
}

}  // namespace deltaedit
