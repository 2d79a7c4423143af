// Portable building blocks: the format's scalar rule per row, and plain loops the compiler may
// vectorise. Used on CPUs without AVX-512 and for head dims the fast kernels do not take.
#include <algorithm>
#include <cmath>

#include "cpu/kernels.hpp"

namespace qsdpa::cpu {
namespace {

void decode_generic(const fmt::RowCodec& c, const CacheView& cache, int64_t b, int64_t h, int64_t t0, int count,
                    float* out) {
  for (int t = 0; t < count; ++t)
    fmt::decode_row(c, cache.code_row(b, h, t0 + t), cache.scale_row(b, h, t0 + t), cache.bias_row(b, h, t0 + t),
                    cache.dim, out + int64_t(t) * cache.dim, /*rotated_basis=*/true);
}

void scores_generic(const float* q, int64_t rows4, const float* k, int tokens4, int64_t dim, float* s, int s_stride) {
  for (int64_t r = 0; r < rows4; ++r)
    for (int t = 0; t < tokens4; ++t) {
      float acc = 0.0f;
      for (int64_t d = 0; d < dim; ++d) acc += q[r * dim + d] * k[int64_t(t) * dim + d];
      s[r * s_stride + t] = acc;
    }
}

void accumulate_generic(const float* p, int p_stride, int64_t rows4, const float* v, int tokens, int64_t dim,
                        float* acc) {
  for (int64_t r = 0; r < rows4; ++r)
    for (int t = 0; t < tokens; ++t) {
      const float w = p[r * p_stride + t];
      if (w == 0.0f) continue;
      for (int64_t d = 0; d < dim; ++d) acc[r * dim + d] += w * v[int64_t(t) * dim + d];
    }
}

float softmax_row_generic(float* s, int n, float m_old, float* m_new) {
  float m = m_old;
  for (int t = 0; t < n; ++t) m = std::fmax(m, s[t]);
  *m_new = m;
  float sum = 0.0f;
  for (int t = 0; t < n; ++t) {
    s[t] = m == -INFINITY ? 0.0f : std::exp(s[t] - m);
    sum += s[t];
  }
  return sum;
}

}  // namespace

const DenseKernels& generic_dense() {
  static const DenseKernels k{scores_generic, accumulate_generic, softmax_row_generic};
  return k;
}

TileDecoder generic_decoder(const Format&) { return {decode_generic, TileOrder::natural}; }

void to_tile_order(TileOrder order, const float* natural, float* tiled, int64_t dim) {
  if (order == TileOrder::natural) {
    std::copy(natural, natural + dim, tiled);
    return;
  }
  for (int64_t c = 0; c < dim; c += 32)
    for (int j = 0; j < 16; ++j) {
      tiled[c + j] = natural[c + 2 * j];
      tiled[c + 16 + j] = natural[c + 2 * j + 1];
    }
}

void from_tile_order(TileOrder order, const float* tiled, float* natural, int64_t dim) {
  if (order == TileOrder::natural) {
    std::copy(tiled, tiled + dim, natural);
    return;
  }
  for (int64_t c = 0; c < dim; c += 32)
    for (int j = 0; j < 16; ++j) {
      natural[c + 2 * j] = tiled[c + j];
      natural[c + 2 * j + 1] = tiled[c + 16 + j];
    }
}

}  // namespace qsdpa::cpu
