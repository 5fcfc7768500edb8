// float <-> bfloat16, and a float's bits, in plain bit operations for facet's CPU kernels.
//
// c10::BFloat16's own conversions branch on NaN, which keeps GCC from vectorizing the loops that use them: with them
// a fused BatchNorm kernel ran at half the speed of LibTorch's operators in bf16, with these level with them. The
// max-pool kernel (max_pool.cc) reads and writes bfloat16 through these.
// Pure inline functions: thread-safe, throw nothing.
#pragma once

#include <c10/util/BFloat16.h>

#include <cstdint>
#include <cstring>

namespace facet {

// A float's bits and back, for selections by mask in facet's kernels (a select written as such, GCC may compile to
// a branch, which the data mispredicts).
inline uint32_t BitsOf(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits;
}

inline float FloatOf(uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

inline float LoadFloat(float v) { return v; }

inline float LoadFloat(c10::BFloat16 v) { return FloatOf(static_cast<uint32_t>(v.x) << 16); }

template <typename T>
T StoreAs(float v);

template <>
inline float StoreAs<float>(float v) {
  return v;
}

// Round to nearest even, as c10::BFloat16(float) does; a NaN becomes the canonical quiet NaN, chosen by a mask.
template <>
inline c10::BFloat16 StoreAs<c10::BFloat16>(float v) {
  const uint32_t bits = BitsOf(v);
  const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  const uint32_t nan = 0u - static_cast<uint32_t>(v != v);
  return c10::BFloat16(static_cast<uint16_t>((0x7FC0u & nan) | (rounded & ~nan)), c10::BFloat16::from_bits());
}

}  // namespace facet
