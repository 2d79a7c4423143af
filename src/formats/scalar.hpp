// Scalar building blocks shared by every backend: the host/device qualifier, exact f16/bf16 <-> f32
// conversions written with integer ops (so the CPU and the GPU round identically), and bit casts.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define QSDPA_HD __host__ __device__ __forceinline__
#else
#define QSDPA_HD inline
#endif

namespace qsdpa::fmt {

QSDPA_HD uint32_t f32_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
#endif
}

QSDPA_HD float bits_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, 4);
  return x;
#endif
}

// IEEE binary16 -> f32, exact (subnormals, infinities and NaN included).
QSDPA_HD float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (mant << 13));
  if (exp != 0) return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
  if (mant == 0) return bits_f32(sign);
  // Subnormal: value = mant * 2^-24, exact in f32.
  const float v = float(mant) * 5.9604644775390625e-08f;
  return sign ? -v : v;
}

// f32 -> IEEE binary16 with round-to-nearest-even; overflow gives +-inf, NaN stays NaN.
QSDPA_HD uint16_t f32_to_f16(float f) {
  const uint32_t x = f32_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return uint16_t(sign | 0x7E00u);  // NaN
  if (abs >= 0x477FF000u) return uint16_t(sign | 0x7C00u);  // rounds to >= 65520: inf
  if (abs >= 0x38800000u) {                                  // normal f16 range
    const uint32_t mant_round = abs + 0xFFFu + ((abs >> 13) & 1u);
    return uint16_t(sign | ((mant_round - 0x38000000u) >> 13));
  }
  // Subnormal or zero: scale so that the f16 quantum 2^-24 becomes an integer, then round to even.
  const float a = bits_f32(abs) * 16777216.0f;  // exact: multiply by 2^24
  const float r = rintf(a);                     // ties to even
  return uint16_t(sign | uint32_t(r));
}

QSDPA_HD float bf16_to_f32(uint16_t b) { return bits_f32(uint32_t(b) << 16); }

// f32 -> bfloat16 with round-to-nearest-even; NaN stays NaN.
QSDPA_HD uint16_t f32_to_bf16(float f) {
  const uint32_t x = f32_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((x >> 16) | 0x40u);
  return uint16_t((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

QSDPA_HD bool is_finite_f32(float x) { return (f32_bits(x) & 0x7F800000u) != 0x7F800000u; }

}  // namespace qsdpa::fmt
