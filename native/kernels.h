// Declarations of every native entry point (defined in blas.cc, lapack.cc, norm.cc,
// pointwise.cc, attention.cc, skinny.cc, threads.cc) and the shared threading helper.
// The export table that names them for JavaScript is in addon.cc.
#pragma once

#include <napi.h>

#include <cstdint>

namespace deltaedit {

// threads.cc
Napi::Value SetThreads(const Napi::CallbackInfo& info);
Napi::Value GetThreads(const Napi::CallbackInfo& info);
Napi::Value SetKernelThreads(const Napi::CallbackInfo& info);
Napi::Value GetKernelThreads(const Napi::CallbackInfo& info);
Napi::Value BlasInfo(const Napi::CallbackInfo& info);
// Work below this many scalar operations runs on the calling thread only. Results never depend
// on this choice: every parallel loop partitions independent rows/columns/(batch, head) pairs.
constexpr int64_t kParallelMinWork = 1 << 15;

// blas.cc
Napi::Value Gemm(const Napi::CallbackInfo& info);
Napi::Value Syrk(const Napi::CallbackInfo& info);

// lapack.cc
Napi::Value Eigh(const Napi::CallbackInfo& info);
Napi::Value Svd(const Napi::CallbackInfo& info);
Napi::Value Potrf(const Napi::CallbackInfo& info);
Napi::Value Potrs(const Napi::CallbackInfo& info);
Napi::Value Trsm(const Napi::CallbackInfo& info);
Napi::Value Gesv(const Napi::CallbackInfo& info);

// norm.cc
Napi::Value LayerNormForward(const Napi::CallbackInfo& info);
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info);
Napi::Value RmsNormForward(const Napi::CallbackInfo& info);
Napi::Value RmsNormBackward(const Napi::CallbackInfo& info);

// pointwise.cc
Napi::Value GeluForward(const Napi::CallbackInfo& info);
Napi::Value GeluBackward(const Napi::CallbackInfo& info);
Napi::Value SwigluForward(const Napi::CallbackInfo& info);
Napi::Value SwigluBackward(const Napi::CallbackInfo& info);
Napi::Value SoftmaxForward(const Napi::CallbackInfo& info);
Napi::Value LogSoftmaxForward(const Napi::CallbackInfo& info);
Napi::Value RopeForward(const Napi::CallbackInfo& info);
Napi::Value RopeBackward(const Napi::CallbackInfo& info);

// attention.cc
Napi::Value AttentionForward(const Napi::CallbackInfo& info);
Napi::Value AttentionBackward(const Napi::CallbackInfo& info);

// skinny.cc
Napi::Value SkinnyIsa(const Napi::CallbackInfo& info);
Napi::Value SkinnyGemmNT(const Napi::CallbackInfo& info);
Napi::Value SkinnyGemmNN(const Napi::CallbackInfo& info);
Napi::Value SoftmaxHead(const Napi::CallbackInfo& info);

}  // namespace deltaedit
