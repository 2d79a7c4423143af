#include <gtest/gtest.h>

#include "attention_cases.hpp"

#include <set>
#include <sstream>

#include "formats/scalar.hpp"
#include "test_util.hpp"

namespace qsdpa::test {
namespace {

const char* mask_name(MaskKind m) {
  switch (m) {
    case MaskKind::none: return "none";
    case MaskKind::causal: return "causal";
    case MaskKind::boolean: return "bool";
    case MaskKind::additive: return "additive";
    case MaskKind::window: return "window";
  }
  return "?";
}

double unit_roundoff(DType t) {
  switch (t) {
    case DType::f16: return std::ldexp(1.0, -11);
    case DType::bf16: return std::ldexp(1.0, -8);
    default: return std::ldexp(1.0, -24);
  }
}

}  // namespace

std::vector<std::string> tested_formats() {
  std::vector<std::string> f = all_format_names();
  for (const char* pair : {"mxfp8:turbo3", "mxfp8:mxfp4", "affine8:affine4", "fp8:turbo4", "turbo3:affine4-g32", "f16:nvfp4"})
    f.push_back(pair);
  return f;
}

std::vector<int64_t> valid_dims(const Format& k, const Format& v) {
  std::vector<int64_t> dims;
  for (int64_t d : {64, 128, 256, 512}) {
    try {
      check_dim(k, d);
      check_dim(v, d);
      dims.push_back(d);
    } catch (const Error&) {
    }
  }
  return dims;
}

std::string test_name(const std::string& format) {
  std::string n = format;
  for (char& c : n)
    if (c == '-' || c == ':') c = '_';
  return n;
}

std::string AttentionCase::describe() const {
  std::ostringstream s;
  s << "D=" << dim << " gqa=" << gqa << (kv_heads > 0 ? " Hkv=" + std::to_string(kv_heads) : std::string()) << " Lq=" << lq << " N=" << n << " mask=" << mask_name(mask)
    << " sinks=" << sinks << " ragged=" << ragged << " q=" << to_string(q_dtype) << (q_bshd ? " (BSHD)" : "") << (q_gapped ? " (D stride 2)" : "")
    << " seed=" << seed;
  return s.str();
}

std::vector<AttentionCase> pairwise_cases(const std::vector<int64_t>& dims, uint64_t seed) {
  const std::vector<int64_t> gqas = {1, 4, 8, 32}, lqs = {1, 4, 9, 32, 100}, ns = {1, 7, 33, 1000};
  const std::vector<int> sizes = {int(dims.size()), 4, 5, 5, 2, 2, 4, 3, 2};
  const int axes = int(sizes.size());
  // A partial assignment (-1 = unset) is invalid when causal meets Lq > N.
  auto valid = [&](const std::vector<int>& a) {
    if (a[3] < 0 || a[2] < 0 || a[6] < 0) return true;
    return !(MaskKind(a[3]) == MaskKind::causal && lqs[size_t(a[2])] > ns[size_t(a[6])]);
  };
  std::set<std::tuple<int, int, int, int>> uncovered;
  for (int x = 0; x < axes; ++x)
    for (int y = x + 1; y < axes; ++y)
      for (int vx = 0; vx < sizes[size_t(x)]; ++vx)
        for (int vy = 0; vy < sizes[size_t(y)]; ++vy) uncovered.insert({x, vx, y, vy});
  std::vector<AttentionCase> cases;
  uint64_t k = 0;
  while (!uncovered.empty()) {
    std::vector<int> a(size_t(axes), -1);
    const auto [x, vx, y, vy] = *uncovered.begin();
    a[size_t(x)] = vx;
    a[size_t(y)] = vy;
    for (int ax = 0; ax < axes; ++ax) {
      if (a[size_t(ax)] >= 0) continue;
      int best = -1, best_gain = -1;
      for (int v = 0; v < sizes[size_t(ax)]; ++v) {
        const int rotated = (v + int(k % uint64_t(sizes[size_t(ax)]))) % sizes[size_t(ax)];
        a[size_t(ax)] = rotated;
        if (!valid(a)) continue;
        int gain = 0;
        for (int o = 0; o < axes; ++o) {
          if (o == ax || a[size_t(o)] < 0) continue;
          const auto key = o < ax ? std::make_tuple(o, a[size_t(o)], ax, rotated) : std::make_tuple(ax, rotated, o, a[size_t(o)]);
          gain += int(uncovered.count(key));
        }
        if (gain > best_gain) best_gain = gain, best = rotated;
      }
      a[size_t(ax)] = best;
    }
    if (!valid(a)) {  // the seed pair itself is impossible: drop it
      uncovered.erase(uncovered.begin());
      continue;
    }
    for (int p = 0; p < axes; ++p)
      for (int q = p + 1; q < axes; ++q) uncovered.erase({p, a[size_t(p)], q, a[size_t(q)]});
    AttentionCase c;
    c.dim = dims[size_t(a[0])];
    c.gqa = gqas[size_t(a[1])];
    c.lq = lqs[size_t(a[2])];
    c.mask = MaskKind(a[3]);
    c.sinks = a[4] == 1;
    c.ragged = a[5] == 1;
    c.n = ns[size_t(a[6])];
    c.q_dtype = a[7] == 0 ? DType::f32 : a[7] == 1 ? DType::f16 : DType::bf16;
    c.q_bshd = a[8] == 1;
    c.seed = seed * 1000 + k++;
    cases.push_back(c);
  }
  return cases;
}

::testing::AssertionResult check_case(const Format& kf, const Format& vf, const AttentionCase& c, const AttentionFn& fn,
                                      int threads) {
  std::mt19937_64 rng(c.seed);
  const int64_t B = c.ragged ? 2 : 1, Hkv = c.kv_heads > 0 ? c.kv_heads : c.gqa >= 8 ? 1 : 2, Hq = Hkv * c.gqa, Lq = c.lq, D = c.dim, N = c.n;
  const int64_t cap = N + 3;  // a preallocated capacity shows in the strides
  const auto kx = random_normal(size_t(B * Hkv * cap * D), c.seed + 1);
  const auto vx = random_normal(size_t(B * Hkv * cap * D), c.seed + 2);
  const QuantizedTensor kq = quantize(kx.data(), {B, Hkv, cap, D}, kf), vq = quantize(vx.data(), {B, Hkv, cap, D}, vf);

  // q in its dtype and layout; the reference gets the same values as f32.
  const auto qx = random_normal(size_t(B * Hq * Lq * D), c.seed + 3);
  const int qsize = dtype_size(c.q_dtype);
  std::vector<uint8_t> qbuf(qx.size() * size_t(qsize) * (c.q_gapped ? 2 : 1));
  std::vector<float> q_ref(qx.size());
  AttentionArgs a;
  a.q = contiguous_view(qbuf.data(), c.q_dtype, B, Hq, Lq, D);
  if (c.q_bshd) {  // memory order [B, Lq, Hq, D]
    a.q.strides[3] = 1;
    a.q.strides[1] = D;
    a.q.strides[2] = Hq * D;
    a.q.strides[0] = Lq * Hq * D;
  }
  if (c.q_gapped)
    for (int i = 0; i < 4; ++i) a.q.strides[i] *= 2;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < Lq; ++i)
        for (int64_t d = 0; d < D; ++d) {
          const size_t src = size_t(((b * Hq + h) * Lq + i) * D + d);
          const int64_t off = a.q.offset(b, h, i, d);
          float v = qx[src];
          if (c.q_dtype == DType::f16) {
            const uint16_t hb = fmt::f32_to_f16(v);
            std::memcpy(&qbuf[size_t(off) * 2], &hb, 2);
            v = fmt::f16_to_f32(hb);
          } else if (c.q_dtype == DType::bf16) {
            const uint16_t hb = fmt::f32_to_bf16(v);
            std::memcpy(&qbuf[size_t(off) * 2], &hb, 2);
            v = fmt::bf16_to_f32(hb);
          } else {
            std::memcpy(&qbuf[size_t(off) * 4], &v, 4);
          }
          q_ref[src] = v;
        }
  std::vector<uint8_t> obuf(qx.size() * size_t(qsize));
  a.out = contiguous_view(obuf.data(), c.q_dtype, B, Hq, Lq, D);
  a.k = kq.view();
  a.v = vq.view();
  a.k.tokens = a.v.tokens = N;
  a.scale = 1.0f / std::sqrt(float(D)) * (0.5f + float(c.seed % 3));
  a.threads = threads;

  std::vector<int64_t> kv_lens;
  if (c.ragged) {
    kv_lens = {N, int64_t(rng() % uint64_t(N + 1))};
    a.kv_lens = kv_lens.data();
  }
  std::vector<float> sinks;
  if (c.sinks) {
    sinks = random_normal(size_t(Hq), c.seed + 4, 2.0f);
    a.sinks = sinks.data();
  }
  std::vector<uint8_t> mask_bytes;
  std::vector<float> mask_f32;
  if (c.mask == MaskKind::causal) {
    a.causal = true;
  } else if (c.mask == MaskKind::window) {
    a.window = 1 + int64_t(rng() % uint64_t(N + 2));
    a.causal = (c.seed % 2 == 0) && Lq <= N;
  } else if (c.mask == MaskKind::boolean || c.mask == MaskKind::additive) {
    // Broadcast patterns vary with the seed: full, [1, 1, Lq, N], [B, 1, 1, N], [1, Hq, Lq, N].
    const int pattern = int(c.seed % 4);
    const int64_t mb = pattern == 0 || pattern == 2 ? B : 1, mh = pattern == 0 || pattern == 3 ? Hq : 1,
                  ml = pattern == 2 ? 1 : Lq;
    const size_t count = size_t(mb * mh * ml * N);
    if (c.mask == MaskKind::boolean) {
      mask_bytes.resize(count);
      for (auto& m : mask_bytes) m = (rng() % 5) != 0;
      a.mask = contiguous_view(mask_bytes.data(), DType::boolean, mb, mh, ml, N);
    } else {
      mask_f32 = random_normal(count, c.seed + 5);
      for (auto& m : mask_f32)
        if (rng() % 10 == 0) m = -INFINITY;
      a.mask = contiguous_view(mask_f32.data(), DType::f32, mb, mh, ml, N);
    }
    for (int i = 0; i < 4; ++i)
      if (a.mask.shape[i] == 1) a.mask.strides[i] = 0;
  }
  std::vector<float> lse(size_t(B * Hq * Lq)), lse_ref(lse.size()), out_ref(qx.size());
  a.lse = lse.data();
  poison(obuf.data(), obuf.size());
  poison(lse.data(), lse.size() * 4);

  AttentionArgs r = a;
  r.q = contiguous_view(q_ref.data(), DType::f32, B, Hq, Lq, D);
  r.out = contiguous_view(out_ref.data(), DType::f32, B, Hq, Lq, D);
  r.lse = lse_ref.data();
  attention_reference(r);
  fn(a);

  std::vector<float> got(qx.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (c.q_dtype == DType::f32) std::memcpy(&got[i], &obuf[4 * i], 4);
    else {
      uint16_t hb;
      std::memcpy(&hb, &obuf[2 * i], 2);
      got[i] = c.q_dtype == DType::f16 ? fmt::f16_to_f32(hb) : fmt::bf16_to_f32(hb);
    }
  }
  auto res = matches_reference(got, out_ref, unit_roundoff(c.q_dtype));
  if (!res) return res << " [" << to_string(kf) << ":" << to_string(vf) << " " << c.describe() << "]";
  for (size_t i = 0; i < lse.size(); ++i) {
    const bool ok = std::isinf(lse_ref[i]) ? lse[i] == lse_ref[i]
                                           : std::fabs(lse[i] - lse_ref[i]) <= 1e-4 * std::max(1.0f, std::fabs(lse_ref[i]));
    if (!ok)
      return ::testing::AssertionFailure() << "lse[" << i << "] = " << lse[i] << ", reference " << lse_ref[i] << " ["
                                           << to_string(kf) << ":" << to_string(vf) << " " << c.describe() << "]";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace qsdpa::test
