// Helpers shared by the tests: random data, poisoned outputs, and the SPEC §2 comparison.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "qsdpa/qsdpa.hpp"

namespace qsdpa::test {

inline std::vector<float> random_normal(size_t n, uint64_t seed, float sigma = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// A NaN bit pattern that no kernel writes: outputs are filled with it before a run.
constexpr uint32_t kPoison = 0x7FBADBADu;

inline void poison(void* data, size_t bytes) {
  auto* p = static_cast<uint8_t*>(data);
  for (size_t i = 0; i + 4 <= bytes; i += 4) std::memcpy(p + i, &kPoison, 4);
  if (bytes % 4) std::memset(p + bytes - bytes % 4, 0xFF, bytes % 4);
}

// SPEC §2: relative L2 error <= max(1e-3, 4u), every element finite, and each element within
// 1e-3*rms(ref) + 4u*|ref|. `u` is the unit roundoff of the output dtype (f32: 2^-24).
inline ::testing::AssertionResult matches_reference(const std::vector<float>& got, const std::vector<float>& ref,
                                                    double u) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i]))
      return ::testing::AssertionFailure() << "element " << i << " is not finite (" << got[i] << "): unwritten or NaN";
    num += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  const double rms = std::sqrt(den / double(std::max<size_t>(1, ref.size())));
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  const double tol = std::max(1e-3, 4 * u);
  if (rel > tol) return ::testing::AssertionFailure() << "relative L2 error " << rel << " > " << tol;
  for (size_t i = 0; i < got.size(); ++i) {
    const double bound = 1e-3 * rms + 4 * u * std::fabs(ref[i]) + 1e-30;
    if (std::fabs(double(got[i]) - ref[i]) > bound)
      return ::testing::AssertionFailure() << "element " << i << ": got " << got[i] << ", reference " << ref[i]
                                           << " (bound " << bound << ")";
  }
  return ::testing::AssertionSuccess() << "relative L2 error " << rel;
}

}  // namespace qsdpa::test
