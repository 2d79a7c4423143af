// Quantizes a small cache, runs fused attention, and checks the result is finite.
#include <cmath>
#include <cstdio>
#include <vector>

#include <qsdpa/qsdpa.hpp>

int main() {
  const int64_t B = 1, Hq = 4, Hkv = 2, Lq = 1, N = 100, D = 64;
  std::vector<float> q(B * Hq * Lq * D), k(B * Hkv * N * D), out(q.size());
  for (size_t i = 0; i < q.size(); ++i) q[i] = std::sin(0.1f * float(i));
  for (size_t i = 0; i < k.size(); ++i) k[i] = std::cos(0.07f * float(i));
  const qsdpa::QuantizedTensor kq = qsdpa::quantize(k.data(), {B, Hkv, N, D}, qsdpa::parse_format("affine4"));
  qsdpa::AttentionArgs a;
  a.q = qsdpa::contiguous_view(q.data(), qsdpa::DType::f32, B, Hq, Lq, D);
  a.out = qsdpa::contiguous_view(out.data(), qsdpa::DType::f32, B, Hq, Lq, D);
  a.k = a.v = kq.view();
  a.scale = 0.125f;
  qsdpa::attention(a);
  for (float v : out)
    if (!std::isfinite(v)) return 1;
  std::printf("consumer ok: qsdpa %s, out[0] = %f\n", qsdpa::build_info().version.c_str(), out[0]);
  return 0;
}
