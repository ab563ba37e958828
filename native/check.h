// Argument checks for the native surface. Every exported function starts with
//   static constexpr const char* kFn = "gemm";
// and reads its arguments through the ARG_* macros, whose failures throw a JS TypeError with
// `code = "E_ARG"` and a message such as
//   gemm: argument 3 (c) expected Float32Array of length >= 4096, got 100
// The TypeScript wrappers (src/kernels/ops.ts) validate first; these checks are the cheap
// second line that keeps bad calls from touching memory out of bounds.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace deltaedit {

template <typename T>
struct ArrayKind;
template <>
struct ArrayKind<float> {
  static constexpr napi_typedarray_type kType = napi_float32_array;
  static constexpr const char* kName = "Float32Array";
};
template <>
struct ArrayKind<double> {
  static constexpr napi_typedarray_type kType = napi_float64_array;
  static constexpr const char* kName = "Float64Array";
};
template <>
struct ArrayKind<int32_t> {
  static constexpr napi_typedarray_type kType = napi_int32_array;
  static constexpr const char* kName = "Int32Array";
};
template <>
struct ArrayKind<uint8_t> {
  static constexpr napi_typedarray_type kType = napi_uint8_array;
  static constexpr const char* kName = "Uint8Array";
};

inline const char* TypedArrayName(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

// A short description of a JS value for error messages ("Float64Array(12)", "number 2.5").
inline std::string Describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsTypedArray()) {
    Napi::TypedArray a = v.As<Napi::TypedArray>();
    return std::string(TypedArrayName(a.TypedArrayType())) + "(" + std::to_string(a.ElementLength()) + ")";
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    std::string s = std::to_string(d);
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) s = std::to_string(static_cast<int64_t>(d));
    return "number " + s;
  }
  if (v.IsBoolean()) return "boolean";
  if (v.IsString()) return "string";
  if (v.IsArray()) return "Array";
  if (v.IsFunction()) return "function";
  if (v.IsObject()) return "object";
  return "value";
}

[[noreturn]] inline void ThrowArg(Napi::Env env, const std::string& message) {
  Napi::Error e = Napi::TypeError::New(env, message);
  e.Set("code", Napi::String::New(env, "E_ARG"));
  throw e;
}

inline std::string ArgPrefix(const char* fn, size_t i, const char* name) {
  return std::string(fn) + ": argument " + std::to_string(i + 1) + " (" + name + ") ";
}

// Saturating product of sizes, so that an absurd request fails the length check instead of wrapping.
inline uint64_t Mul(uint64_t a, uint64_t b) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return std::numeric_limits<uint64_t>::max();
  return a * b;
}
inline uint64_t Add(uint64_t a, uint64_t b) {
  return b > std::numeric_limits<uint64_t>::max() - a ? std::numeric_limits<uint64_t>::max() : a + b;
}

inline bool IsArrayOf(const Napi::Value& v, napi_typedarray_type t) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == t;
}

template <typename T>
inline T* GetArray(const Napi::CallbackInfo& info, const char* fn, size_t i, const char* name, uint64_t minLen) {
  Napi::Value v = info[i];
  if (!IsArrayOf(v, ArrayKind<T>::kType)) {
    ThrowArg(info.Env(), ArgPrefix(fn, i, name) + "expected " + ArrayKind<T>::kName + " of length >= " +
                             std::to_string(minLen) + ", got " + Describe(v));
  }
  Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
  if (static_cast<uint64_t>(a.ElementLength()) < minLen) {
    ThrowArg(info.Env(), ArgPrefix(fn, i, name) + "expected " + ArrayKind<T>::kName + " of length >= " +
                             std::to_string(minLen) + ", got " + std::to_string(a.ElementLength()));
  }
  return a.Data();  // already includes the view's byteOffset
}

// null / undefined -> nullptr
template <typename T>
inline T* GetArrayOrNull(const Napi::CallbackInfo& info, const char* fn, size_t i, const char* name, uint64_t minLen) {
  Napi::Value v = info[i];
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  return GetArray<T>(info, fn, i, name, minLen);
}

inline int64_t GetInt(const Napi::CallbackInfo& info, const char* fn, size_t i, const char* name,
                      int64_t lo = 0, int64_t hi = std::numeric_limits<int32_t>::max()) {
  Napi::Value v = info[i];
  bool ok = v.IsNumber();
  double d = ok ? v.As<Napi::Number>().DoubleValue() : 0.0;
  ok = ok && std::isfinite(d) && d == std::floor(d) && d >= static_cast<double>(lo) && d <= static_cast<double>(hi);
  if (!ok) {
    std::string range = lo == 0 ? "a non-negative integer" : "an integer";
    ThrowArg(info.Env(), ArgPrefix(fn, i, name) + "expected " + range + " <= " + std::to_string(hi) + ", got " + Describe(v));
  }
  return static_cast<int64_t>(d);
}

inline double GetNumber(const Napi::CallbackInfo& info, const char* fn, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) {
    ThrowArg(info.Env(), ArgPrefix(fn, i, name) + "expected a finite number, got " + Describe(v));
  }
  return v.As<Napi::Number>().DoubleValue();
}

inline bool GetBool(const Napi::CallbackInfo& info, const char* fn, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsBoolean()) ThrowArg(info.Env(), ArgPrefix(fn, i, name) + "expected a boolean, got " + Describe(v));
  return v.As<Napi::Boolean>().Value();
}

}  // namespace deltaedit

#define ARG_F32(i, name, len) ::deltaedit::GetArray<float>(info, kFn, (i), (name), (len))
#define ARG_F64(i, name, len) ::deltaedit::GetArray<double>(info, kFn, (i), (name), (len))
#define ARG_ARRAY(T, i, name, len) ::deltaedit::GetArray<T>(info, kFn, (i), (name), (len))
#define ARG_F32_OR_NULL(i, name, len) ::deltaedit::GetArrayOrNull<float>(info, kFn, (i), (name), (len))
#define ARG_I32(i, name, len) ::deltaedit::GetArray<int32_t>(info, kFn, (i), (name), (len))
#define ARG_U8_OR_NULL(i, name, len) ::deltaedit::GetArrayOrNull<uint8_t>(info, kFn, (i), (name), (len))
#define ARG_INT(i, name) ::deltaedit::GetInt(info, kFn, (i), (name))
#define ARG_SIGNED_INT(i, name) \
  ::deltaedit::GetInt(info, kFn, (i), (name), std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max())
#define ARG_NUMBER(i, name) ::deltaedit::GetNumber(info, kFn, (i), (name))
#define ARG_BOOL(i, name) ::deltaedit::GetBool(info, kFn, (i), (name))
