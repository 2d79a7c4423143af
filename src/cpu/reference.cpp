// The correctness reference of SPEC §2: dequantize K and V with the scalar format rules, then exact
// attention in f64, one query row at a time. Slow on purpose; tests compare every kernel against it.
#include <cmath>
#include <vector>

#include "core/attention_common.hpp"
#include "core/row_codec.hpp"

namespace qsdpa {

void attention_reference(const AttentionArgs& a) {
  validate(a);
  const int64_t B = a.q.shape[0], Hq = a.q.shape[1], Lq = a.q.shape[2], D = a.q.shape[3];
  const int64_t Hkv = a.k.heads, N = a.k.tokens;
  std::vector<float> krows(static_cast<size_t>(N * D)), vrows(static_cast<size_t>(N * D));
  std::vector<double> p(static_cast<size_t>(N)), acc(static_cast<size_t>(D));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = detail::kv_len(a, b);
    for (int64_t hk = 0; hk < Hkv; ++hk) {
      const fmt::RowCodec kc = make_row_codec(a.k.format, a.k.tensor_scale(hk));
      const fmt::RowCodec vc = make_row_codec(a.v.format, a.v.tensor_scale(hk));
      for (int64_t j = 0; j < n; ++j) {
        fmt::decode_row(kc, a.k.code_row(b, hk, j), a.k.scale_row(b, hk, j), a.k.bias_row(b, hk, j), D, &krows[j * D]);
        fmt::decode_row(vc, a.v.code_row(b, hk, j), a.v.scale_row(b, hk, j), a.v.bias_row(b, hk, j), D, &vrows[j * D]);
      }
      for (int64_t h = hk * (Hq / Hkv); h < (hk + 1) * (Hq / Hkv); ++h) {
        for (int64_t i = 0; i < Lq; ++i) {
          const detail::KeyRange r = detail::visible_keys(a, n, Lq, i);
          double m = a.sinks ? double(a.sinks[h]) : -INFINITY;
          for (int64_t j = r.lo; j < r.hi; ++j) {
            double s = 0.0;
            for (int64_t d = 0; d < D; ++d)
              s += double(detail::load_float(a.q.data, a.q.dtype, a.q.offset(b, h, i, d))) * double(krows[j * D + d]);
            s *= double(a.scale);
            if (!a.mask.empty()) s += double(detail::mask_term(a.mask, b, h, i, j));
            p[j] = s;
            m = std::fmax(m, s);
          }
          double denom = (a.sinks && m != -INFINITY) ? std::exp(double(a.sinks[h]) - m) : 0.0;
          std::fill(acc.begin(), acc.end(), 0.0);
          if (m != -INFINITY) {
            for (int64_t j = r.lo; j < r.hi; ++j) {
              const double e = p[j] == -INFINITY ? 0.0 : std::exp(p[j] - m);
              denom += e;
              for (int64_t d = 0; d < D; ++d) acc[d] += e * double(vrows[j * D + d]);
            }
          }
          for (int64_t d = 0; d < D; ++d)
            detail::store_float(a.out.data, a.out.dtype, a.out.offset(b, h, i, d), denom > 0.0 ? float(acc[d] / denom) : 0.0f);
          if (a.lse) a.lse[(b * Hq + h) * Lq + i] = denom > 0.0 ? float(m + std::log(denom)) : -INFINITY;
        }
      }
    }
  }
}

}  // namespace qsdpa
