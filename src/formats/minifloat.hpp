// The small float codes of the FP formats: E2M1 (FP4), E4M3 "fn" (FP8) and E8M0 (power-of-two scales).
// Encoding rounds to nearest with ties to even and saturates at the largest finite value (±6, ±448);
// it never produces negative zero nor E4M3's NaN codes 0x7F/0xFF.
#pragma once

#include "scalar.hpp"

namespace qsdpa::fmt {

constexpr float kE2M1Max = 6.0f;
constexpr float kE4M3Max = 448.0f;

// E2M1 magnitudes of codes 0..7; bit 3 is the sign.
QSDPA_HD float e2m1_to_f32(uint32_t code) {
  const uint32_t mag = code & 7u;
  // 0, 0.5, 1, 1.5, 2, 3, 4, 6 without a table, so that the device needs no constant memory.
  const float v = mag < 2u ? 0.5f * float(mag)
                           : float(1u << ((mag >> 1) - 1u)) * (1.0f + 0.5f * float(mag & 1u));
  return (code & 8u) ? -v : v;
}

// E4M3fn: bias 7, no infinities, 0x7F / 0xFF are NaN.
QSDPA_HD float e4m3_to_f32(uint32_t code) {
  const uint32_t exp = (code >> 3) & 0xFu;
  const uint32_t mant = code & 7u;
  float v;
  if (exp == 0xF && mant == 7u) {
    v = bits_f32(0x7FC00000u);
  } else if (exp == 0) {
    v = float(mant) * 0.001953125f;  // mant * 2^-9
  } else {
    v = bits_f32(((exp + 120u) << 23) | (mant << 20));
  }
  return (code & 0x80u) ? -v : v;
}

// E8M0: byte e means 2^(e-127); 0xFF is NaN (OCP MX).
QSDPA_HD float e8m0_to_f32(uint32_t e) {
  if (e == 0xFFu) return bits_f32(0x7FC00000u);
  if (e == 0) return bits_f32(0x00400000u);  // 2^-127, a subnormal f32
  return bits_f32(e << 23);
}

// Round |x| to a minifloat with `mbits` mantissa bits and exponent bias `bias`; returns
// (exponent field << mbits | mantissa field). The caller saturates first so |x| <= max.
QSDPA_HD uint32_t minifloat_magnitude_code(float a, int mbits, int bias) {
  if (!(a > 0.0f)) return 0;
  int e2;
  frexpf(a, &e2);           // a = f * 2^e2, f in [0.5, 1)
  int exponent = e2 - 1;    // a in [2^exponent, 2^(exponent+1))
  if (exponent < 1 - bias) exponent = 1 - bias;  // subnormal range shares the smallest exponent
  // Exact: dividing by a power of two; rintf rounds ties to even, i.e. to an even mantissa.
  const uint32_t q = uint32_t(rintf(ldexpf(a, mbits - exponent)));
  if (q == 0) return 0;
  if (q < (1u << mbits)) return q;  // subnormal (exponent field 0)
  if (q == (2u << mbits)) return uint32_t(exponent + 1 + bias) << mbits;  // rounded up a binade
  return (uint32_t(exponent + bias) << mbits) | (q - (1u << mbits));
}

QSDPA_HD uint32_t f32_to_e2m1(float x) {
  float a = fabsf(x);
  if (a > kE2M1Max) a = kE2M1Max;
  const uint32_t mag = minifloat_magnitude_code(a, 1, 1);
  return (mag != 0 && x < 0.0f) ? (mag | 8u) : mag;
}

QSDPA_HD uint32_t f32_to_e4m3(float x) {
  float a = fabsf(x);
  if (a > kE4M3Max) a = kE4M3Max;
  const uint32_t mag = minifloat_magnitude_code(a, 3, 7);
  return (mag != 0 && x < 0.0f) ? (mag | 0x80u) : mag;
}

// MLX's shared exponent round(log2(absmax / elem_max)), computed exactly and clamped to E8M0's
// finite range. log2(a/M) rounds up at the half-integer, i.e. where the mantissa of a/M (in [1, 2))
// reaches sqrt(2). An all-zero group gets 127 (scale 1), as MLX writes.
QSDPA_HD uint32_t e8m0_shared_exponent(float absmax, float elem_max) {
  if (!(absmax > 0.0f)) return 127u;
  const double ratio = double(absmax) / double(elem_max);
  int e2;
  const double f = frexp(ratio, &e2);  // ratio = f * 2^e2, f in [0.5, 1)
  // log2(ratio) = e2 + log2(f), log2(f) in [-1, 0): rounds to e2 when f >= 2^-0.5, else to e2 - 1.
  int e = (f >= 0.70710678118654752440) ? e2 : e2 - 1;
  int biased = e + 127;
  if (biased < 0) biased = 0;
  if (biased > 254) biased = 254;
  return uint32_t(biased);
}

}  // namespace qsdpa::fmt
