// Exact merge of partial attentions by log-sum-exp. Each part's output is normalised by its own
// denominator exp(lse_p); the merged output is sum_p exp(lse_p - M) out_p / sum_p exp(lse_p - M) with
// M the largest lse, and a sink logit s adds exp(s - M) to the denominator only.
#include <cmath>
#include <limits>

#include "qsdpa/attention.hpp"
#include "qsdpa/error.hpp"

namespace qsdpa {

void merge_partials(int parts, int64_t rows, int64_t dim, const float* const* outs, const float* const* lses,
                    const float* row_sinks, float* out, float* lse) {
  if (parts < 1) throw Error("merge_partials: parts must be >= 1, got " + std::to_string(parts));
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    float m = row_sinks ? row_sinks[r] : neg_inf;
    for (int p = 0; p < parts; ++p) m = std::fmax(m, lses[p][r]);
    float* o = out + r * dim;
    for (int64_t d = 0; d < dim; ++d) o[d] = 0.0f;
    if (m == neg_inf) {  // nothing visible anywhere and no sink
      if (lse) lse[r] = neg_inf;
      continue;
    }
    double denom = row_sinks ? std::exp(double(row_sinks[r]) - m) : 0.0;
    for (int p = 0; p < parts; ++p) {
      if (lses[p][r] == neg_inf) continue;
      const float w = float(std::exp(double(lses[p][r]) - m));
      denom += w;
      const float* src = outs[p] + r * dim;
      for (int64_t d = 0; d < dim; ++d) o[d] += w * src[d];
    }
    const float inv = float(1.0 / denom);
    for (int64_t d = 0; d < dim; ++d) o[d] *= inv;
    if (lse) lse[r] = m + float(std::log(denom));
  }
}

}  // namespace qsdpa
