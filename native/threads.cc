// Thread counts: `setThreads` sets OpenBLAS's; the OpenMP-parallel fused kernels have their own
// count (`setKernelThreads`, default from OMP_NUM_THREADS, which the loader sets to 1 when unset:
// on a few cores, OpenMP workers and OpenBLAS's spinning workers fight over the cores — measured
// 1.75× slower target-vector steps on 2 cores). These two settings are the only mutable native state.
#include <cblas.h>
#include <omp.h>

#include <string>

#include "check.h"
#include "kernels.h"

namespace deltaedit {

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "setThreads";
  int n = static_cast<int>(::deltaedit::GetInt(info, kFn, 0, "n", 1, 1024));
  openblas_set_num_threads(n);
  return info.Env().Undefined();
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), openblas_get_num_threads());
}

Napi::Value SetKernelThreads(const Napi::CallbackInfo& info) {
  static constexpr const char* kFn = "setKernelThreads";
  int n = static_cast<int>(::deltaedit::GetInt(info, kFn, 0, "n", 1, 1024));
  omp_set_num_threads(n);
  return info.Env().Undefined();
}

Napi::Value GetKernelThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

Napi::Value BlasInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const char* config = openblas_get_config();
  const char* core = openblas_get_corename();
  o.Set("config", Napi::String::New(env, config ? config : ""));
  o.Set("coreName", Napi::String::New(env, core ? core : ""));
  o.Set("blasThreads", Napi::Number::New(env, openblas_get_num_threads()));
  o.Set("threads", Napi::Number::New(env, openblas_get_num_threads()));
  o.Set("kernelThreads", Napi::Number::New(env, omp_get_max_threads()));
  return o;
}

}  // namespace deltaedit
