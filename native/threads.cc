// Thread count for OpenBLAS and for the OpenMP-parallel fused kernels. The OpenMP setting
// (the calling thread's nthreads ICV) is the only mutable native state.
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
  omp_set_num_threads(n);
  return info.Env().Undefined();
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
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
  o.Set("threads", Napi::Number::New(env, omp_get_max_threads()));
  return o;
}

}  // namespace deltaedit
