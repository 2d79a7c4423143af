// Turbo formats (TurboQuant-style): a row x of D values (D a power of two) is rotated by
// R = (1/sqrt(D)) * H_D * diag(s), with H_D the Sylvester Hadamard matrix and s a seeded sign vector,
// and each coordinate of the rotated row, divided by ||x||/sqrt(D), is coded as the index of the
// nearest Lloyd-Max level for N(0,1). Only the rotation primitives live here; the row rule is in
// codec.hpp and the levels are computed (not tabulated) in turbo_levels.cpp.
#pragma once

#include "scalar.hpp"

namespace qsdpa::fmt {

// SplitMix64 (Steele, Lea & Flood 2014): the documented generator of the sign vector.
QSDPA_HD uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Sign s_i of the rotation for `seed`: bit (i mod 64) of splitmix64(seed * 2^16 + i/64) set means -1.
// Independent of D, so a row of D values uses the first D signs.
// turbo_sign_word gives the 64 signs of i in [64w, 64w + 64) at once (bit i mod 64).
QSDPA_HD uint64_t turbo_sign_word(uint64_t seed, int64_t w) { return splitmix64((seed << 16) + uint64_t(w)); }
QSDPA_HD float turbo_sign(uint64_t seed, int64_t i) {
  return ((turbo_sign_word(seed, i >> 6) >> (i & 63)) & 1u) ? -1.0f : 1.0f;
}

// In-place fast Walsh-Hadamard transform (unnormalised Sylvester order), n a power of two.
QSDPA_HD void fwht(float* v, int n) {
  for (int len = 1; len < n; len <<= 1) {
    for (int i = 0; i < n; i += len << 1) {
      for (int j = i; j < i + len; ++j) {
        const float a = v[j], b = v[j + len];
        v[j] = a + b;
        v[j + len] = a - b;
      }
    }
  }
}

// 1 / sqrt(n), rounded as every rotation of a row of n values takes it (the GPU's too).
QSDPA_HD float turbo_norm(int n) { return 1.0f / sqrtf(float(n)); }

// v <- R v = H (s * v) / sqrt(n).
QSDPA_HD void turbo_rotate(float* v, int n, uint64_t seed) {
  for (int i = 0; i < n; ++i) v[i] *= turbo_sign(seed, i);
  fwht(v, n);
  const float norm = turbo_norm(n);
  for (int i = 0; i < n; ++i) v[i] *= norm;
}

// v <- R^T v = s * (H v) / sqrt(n)   (H is symmetric).
QSDPA_HD void turbo_unrotate(float* v, int n, uint64_t seed) {
  fwht(v, n);
  const float norm = turbo_norm(n);
  for (int i = 0; i < n; ++i) v[i] *= norm * turbo_sign(seed, i);
}

}  // namespace qsdpa::fmt
