// Lloyd's algorithm on N(0,1): thresholds are midpoints of neighbouring levels, each level is the
// conditional mean of its cell, (phi(a) - phi(b)) / (Phi(b) - Phi(a)). Iterated to a fixed point in
// double precision; a few thousand sweeps reach 1e-12 for 16 levels.
#include "turbo_levels.hpp"

#include <array>
#include <cmath>
#include <mutex>
#include <vector>

namespace qsdpa::fmt {
namespace {

constexpr int kMaxBits = 4;

double pdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI); }
double cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

std::vector<double> lloyd_max(int bits) {
  const int n = 1 << bits;
  std::vector<double> c(n);
  for (int i = 0; i < n; ++i) c[i] = -2.0 + 4.0 * (i + 0.5) / n;
  for (int iter = 0; iter < 100000; ++iter) {
    double change = 0.0;
    std::vector<double> next(n);
    for (int i = 0; i < n; ++i) {
      const double a = i == 0 ? -INFINITY : 0.5 * (c[i - 1] + c[i]);
      const double b = i == n - 1 ? INFINITY : 0.5 * (c[i] + c[i + 1]);
      const double pa = std::isinf(a) ? 0.0 : pdf(a), pb = std::isinf(b) ? 0.0 : pdf(b);
      next[i] = (pa - pb) / (cdf(b) - cdf(a));
      change = std::fmax(change, std::fabs(next[i] - c[i]));
    }
    c = next;
    if (change < 1e-13) break;
  }
  return c;
}

struct Tables {
  std::array<std::vector<double>, kMaxBits + 1> f64;
  std::array<std::vector<float>, kMaxBits + 1> f32;
};

const Tables& tables() {
  static const Tables t = [] {
    Tables t;
    for (int b = 1; b <= kMaxBits; ++b) {
      t.f64[b] = lloyd_max(b);
      t.f32[b].assign(t.f64[b].begin(), t.f64[b].end());
    }
    return t;
  }();
  return t;
}

}  // namespace

const float* turbo_levels(int bits) { return tables().f32.at(bits).data(); }
const double* turbo_levels_f64(int bits) { return tables().f64.at(bits).data(); }

double lloyd_max_distortion(int bits) {
  // E[(X - Q(X))^2] = 1 - sum_i c_i^2 P(cell i) at the fixed point (centroid condition).
  const double* c = turbo_levels_f64(bits);
  const int n = 1 << bits;
  double kept = 0.0;
  for (int i = 0; i < n; ++i) {
    const double a = i == 0 ? -INFINITY : 0.5 * (c[i - 1] + c[i]);
    const double b = i == n - 1 ? INFINITY : 0.5 * (c[i] + c[i + 1]);
    kept += c[i] * c[i] * (cdf(b) - cdf(a));
  }
  return 1.0 - kept;
}

}  // namespace qsdpa::fmt
