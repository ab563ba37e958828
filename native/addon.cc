// deltaedit_native: the entire native surface on one screen. Operations only; no model concepts.
// Argument order of each function is documented in src/kernels/native.ts (NativeAddon).
#include <napi.h>

#include "kernels.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace deltaedit;
  struct Entry {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
  static const Entry kTable[] = {
      // threads.cc
      {"setThreads", SetThreads},
      {"getThreads", GetThreads},
      {"setKernelThreads", SetKernelThreads},
      {"getKernelThreads", GetKernelThreads},
      {"blasInfo", BlasInfo},
      // blas.cc
      {"gemm", Gemm},
      {"syrk", Syrk},
      // lapack.cc
      {"eigh", Eigh},
      {"svd", Svd},
      {"potrf", Potrf},
      {"potrs", Potrs},
      {"trsm", Trsm},
      {"gesv", Gesv},
      // norm.cc
      {"layerNormForward", LayerNormForward},
      {"layerNormBackward", LayerNormBackward},
      {"rmsNormForward", RmsNormForward},
      {"rmsNormBackward", RmsNormBackward},
      // pointwise.cc
      {"geluForward", GeluForward},
      {"geluBackward", GeluBackward},
      {"swigluForward", SwigluForward},
      {"swigluBackward", SwigluBackward},
      {"softmaxForward", SoftmaxForward},
      {"logSoftmaxForward", LogSoftmaxForward},
      {"ropeForward", RopeForward},
      {"ropeBackward", RopeBackward},
      // attention.cc
      {"attentionForward", AttentionForward},
      {"attentionBackward", AttentionBackward},
      // skinny.cc
      {"skinnyIsa", SkinnyIsa},
      {"skinnyGemmNT", SkinnyGemmNT},
      {"skinnyGemmNN", SkinnyGemmNN},
      {"softmaxHead", SoftmaxHead},
  };
  for (const Entry& e : kTable) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
  return exports;
}

}  // namespace

NODE_API_MODULE(deltaedit_native, Init)
