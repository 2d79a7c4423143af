// Fused CPU attention against the f64 reference (SPEC §2's tolerance), for every format and the
// named mixed pairs, over a pairwise covering set of head dim x GQA x Lq x mask x sinks x ragged x
// N x q dtype/layout; plus the exact merge of partials, the unfused baseline and the benchmarks' data.
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "attention_cases.hpp"
#include "core/attention_common.hpp"
#include "test_util.hpp"
#include "tools/workloads.hpp"

namespace qsdpa {
namespace {

using test::tested_formats;
using test::test_name;
using test::valid_dims;

class CpuAttention : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuAttention, MatchesF64ReferencePairwise) {
  const auto [kf, vf] = tools::parse_pair(GetParam());
  const auto cases = test::pairwise_cases(valid_dims(kf, vf), std::hash<std::string>{}(GetParam()) % 1000);
  ASSERT_GE(cases.size(), 25u);
  int i = 0;
  for (const auto& c : cases) {
    const int threads = 1 + (i++ % 3);  // 1, 2 and 3 threads: different split plans
    EXPECT_TRUE(test::check_case(kf, vf, c, [](const AttentionArgs& a) { attention(a); }, threads));
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, CpuAttention, ::testing::ValuesIn(tested_formats()),
                         [](const auto& info) { return test_name(info.param); });

TEST(CpuAttentionCoverage, PairwiseSetCoversEveryPairOfValues) {
  const auto cases = test::pairwise_cases({64, 128, 256, 512}, 1);
  std::set<std::pair<int64_t, int64_t>> dim_lq, gqa_n, mask_lq;
  std::set<std::pair<int, int64_t>> sinks_dim;
  for (const auto& c : cases) {
    dim_lq.insert({c.dim, c.lq});
    gqa_n.insert({c.gqa, c.n});
    mask_lq.insert({int(c.mask), c.lq});
    sinks_dim.insert({int(c.sinks), c.dim});
    if (c.mask == test::MaskKind::causal) EXPECT_LE(c.lq, c.n) << "invalid case generated";
  }
  EXPECT_EQ(dim_lq.size(), 20u);
  EXPECT_EQ(gqa_n.size(), 16u);
  EXPECT_EQ(mask_lq.size(), 25u);
  EXPECT_EQ(sinks_dim.size(), 8u);
}

// The CUDA kernel's divisions by host-known divisors (G, split and row-chunk counts): every
// quotient exact, checked against integer division for each divisor up to 4096 and the divisors
// near powers of two up to 2^20, at numerators where floor(n / d) steps, the ends of the range
// and random ones.
TEST(Divider, QuotientsAreExactBelowTwoToThe31) {
  std::vector<int> divisors;
  for (int d = 1; d <= 4096; ++d) divisors.push_back(d);
  for (int k = 12; k <= 20; ++k)
    for (int d : {(1 << k) - 1, 1 << k, (1 << k) + 1}) divisors.push_back(d);
  uint64_t state = 12345;
  auto next = [&] { return int((state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33); };
  const int kMax = 0x7FFFFFFF;
  for (int d : divisors) {
    const qsdpa::detail::Divider div = qsdpa::detail::Divider::of(d);
    ASSERT_EQ(div.divisor, d);
    std::vector<int> ns = {0, 1, d - 1, d, d + 1, kMax, kMax - 1, kMax - d, kMax / d * d, kMax / d * d - 1};
    for (int i = 0; i < 64; ++i) ns.push_back(next());
    for (int i = 0; i < 16; ++i) {
      const int q = next() % (kMax / d);
      ns.push_back(q * d - 1), ns.push_back(q * d), ns.push_back(q * d + d - 1);
    }
    for (int n : ns) {
      if (n < 0) continue;
      ASSERT_EQ(div.quotient(n), n / d) << n << " / " << d;
    }
  }
}

TEST(CpuAttentionUnfused, MatchesReference) {
  for (const char* f : {"affine4", "mxfp4", "turbo3", "f16"}) {
    const Format fmt = parse_format(f);
    test::AttentionCase c;
    c.dim = 128;
    c.gqa = 4;
    c.lq = 3;
    c.n = 300;
    c.sinks = true;
    c.mask = test::MaskKind::causal;
    EXPECT_TRUE(test::check_case(fmt, fmt, c, [](const AttentionArgs& a) {
      const size_t n = size_t(a.k.batch * a.k.heads * a.k.tokens * a.k.dim);
      std::vector<float> kb(n), vb(n);
      attention_unfused(a, kb.data(), vb.data());
    }));
  }
}

// Splitting a cache into pieces, attending to each without sinks (with LSE) and merging with the
// sinks added once equals attention over the whole cache with sinks.
class MergePartials : public ::testing::TestWithParam<std::string> {};

TEST_P(MergePartials, EqualsSingleShard) {
  const Format f = parse_format(GetParam());
  const int64_t B = 1, Hkv = 2, G = 4, Hq = Hkv * G, Lq = 3, D = 128, N = 777;
  const auto kx = test::random_normal(size_t(B * Hkv * N * D), 1), vx = test::random_normal(size_t(B * Hkv * N * D), 2);
  auto q = test::random_normal(size_t(B * Hq * Lq * D), 3);
  const QuantizedTensor kq = quantize(kx.data(), {B, Hkv, N, D}, f), vq = quantize(vx.data(), {B, Hkv, N, D}, f);
  for (bool with_sinks : {false, true}) {
    const auto sinks = test::random_normal(size_t(Hq), 4, 3.0f);
    std::vector<float> whole(q.size()), whole_lse(size_t(B * Hq * Lq));
    AttentionArgs a;
    a.q = contiguous_view(q.data(), DType::f32, B, Hq, Lq, D);
    a.out = contiguous_view(whole.data(), DType::f32, B, Hq, Lq, D);
    a.k = kq.view();
    a.v = vq.view();
    a.scale = 0.09f;
    a.sinks = with_sinks ? sinks.data() : nullptr;
    a.lse = whole_lse.data();
    attention(a);

    const int64_t cuts[] = {0, 100, 101, 500, N};
    const int parts = 4;
    std::vector<std::vector<float>> outs(parts, std::vector<float>(q.size())), lses(parts, std::vector<float>(whole_lse.size()));
    for (int p = 0; p < parts; ++p) {
      AttentionArgs s = a;
      s.sinks = nullptr;  // partials meant for merging carry no sink
      s.out = contiguous_view(outs[size_t(p)].data(), DType::f32, B, Hq, Lq, D);
      s.lse = lses[size_t(p)].data();
      for (CacheView* c : {&s.k, &s.v}) {
        c->codes += cuts[p] * c->code_strides[2];
        if (c->scales) c->scales += cuts[p] * c->scale_strides[2];
        if (c->biases) c->biases += cuts[p] * c->bias_strides[2];
        c->tokens = cuts[p + 1] - cuts[p];
      }
      attention(s);
    }
    // Row r = (b, h, i): the sink of head h.
    std::vector<float> row_sinks(whole_lse.size());
    for (size_t r = 0; r < row_sinks.size(); ++r) row_sinks[r] = sinks[(r / size_t(Lq)) % size_t(Hq)];
    std::vector<const float*> op, lp;
    for (int p = 0; p < parts; ++p) {
      op.push_back(outs[size_t(p)].data());
      lp.push_back(lses[size_t(p)].data());
    }
    std::vector<float> merged(q.size()), merged_lse(whole_lse.size());
    merge_partials(parts, int64_t(whole_lse.size()), D, op.data(), lp.data(), with_sinks ? row_sinks.data() : nullptr,
                   merged.data(), merged_lse.data());
    EXPECT_TRUE(test::matches_reference(merged, std::vector<float>(whole), std::ldexp(1.0, -24))) << "sinks=" << with_sinks;
    for (size_t r = 0; r < merged_lse.size(); ++r) EXPECT_NEAR(merged_lse[r], whole_lse[r], 1e-4f * std::fabs(whole_lse[r]) + 1e-5f);
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, MergePartials, ::testing::ValuesIn(all_format_names()),
                         [](const auto& info) { return test_name(info.param); });

TEST(CpuAttentionEdges, RowThatSeesNothingGivesZerosAndLse) {
  const int64_t D = 64, N = 8;
  const auto kx = test::random_normal(size_t(N * D), 1);
  const QuantizedTensor kq = quantize(kx.data(), {1, 1, N, D}, parse_format("affine4"));
  auto q = test::random_normal(size_t(D), 2);
  std::vector<float> out(static_cast<size_t>(D)), lse(1);
  std::vector<uint8_t> mask(size_t(N), 0);  // everything masked
  AttentionArgs a;
  a.q = contiguous_view(q.data(), DType::f32, 1, 1, 1, D);
  a.out = contiguous_view(out.data(), DType::f32, 1, 1, 1, D);
  a.k = a.v = kq.view();
  a.scale = 0.125f;
  a.mask = contiguous_view(mask.data(), DType::boolean, 1, 1, 1, N);
  a.lse = lse.data();
  test::poison(out.data(), out.size() * 4);
  attention(a);
  for (float v : out) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(lse[0], -INFINITY);
  const float sink = 1.5f;
  a.sinks = &sink;
  attention(a);
  for (float v : out) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(lse[0], sink);
}

// NaN in, NaN out (docs/decisions.md): an E8M0 NaN scale byte in one key makes the output and LSE of
// every row that sees the key NaN (the vector exp once turned the NaN score into 0, dropping the key),
// while rows that do not see it (causal) stay as they were.
TEST(CpuAttentionEdges, NaNScoreGivesNaNWhereTheKeyIsSeen) {
  const int64_t Hq = 4, Lq = 2, N = 300, D = 128;
  const auto kx = test::random_normal(size_t(N * D), 41), vx = test::random_normal(size_t(N * D), 42);
  const QuantizedTensor k = quantize(kx.data(), {1, 1, N, D}, parse_format("mxfp4"));
  const QuantizedTensor v = quantize(vx.data(), {1, 1, N, D}, parse_format("mxfp4"));
  QuantizedTensor bad = k;
  bad.scales[size_t((N - 1) * (D / 32) + 2)] = 0xFF;  // the last key, its third block
  auto q = test::random_normal(size_t(Hq * Lq * D), 43);
  std::vector<float> clean(q.size()), out(q.size()), lse(size_t(Hq * Lq));
  AttentionArgs a;
  a.q = contiguous_view(q.data(), DType::f32, 1, Hq, Lq, D);
  a.v = v.view();
  a.scale = 0.088f;
  a.causal = true;  // query row 0 sees keys [0, N-1), row 1 all N
  a.k = k.view();
  a.out = contiguous_view(clean.data(), DType::f32, 1, Hq, Lq, D);
  attention(a);
  for (int threads : {1, 2}) {
    a.k = bad.view();
    a.out = contiguous_view(out.data(), DType::f32, 1, Hq, Lq, D);
    a.lse = lse.data();
    a.threads = threads;
    attention(a);
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < Lq; ++i) {
        EXPECT_EQ(std::isnan(lse[size_t(h * Lq + i)]), i == 1) << "h=" << h << " i=" << i;
        for (int64_t d = 0; d < D; ++d) {
          const size_t at = size_t((h * Lq + i) * D + d);
          if (i == 1) EXPECT_TRUE(std::isnan(out[at])) << "h=" << h << " d=" << d;
          else EXPECT_EQ(out[at], clean[at]) << "h=" << h << " d=" << d;
        }
      }
  }
}

// The benchmarks' data (tools/workloads.hpp, make_bench_workload) depend on the seed alone: one
// thread and all of them draw the same values, chunk by chunk (a K of 1.3M values spans a full and
// a partial chunk of 2^20), and they look like N(0, 1).
TEST(BenchWorkload, SameValuesForAnyThreadCountAndGaussian) {
  tools::Shape shape;
  shape.batch = 1, shape.hq = 4, shape.hkv = 2, shape.lq = 3, shape.context = 5000, shape.dim = 128;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const tools::Workload one = tools::make_bench_workload(shape, 1234);
  omp_set_num_threads(std::max(2, threads));
  const tools::Workload all = tools::make_bench_workload(shape, 1234);
  const tools::Workload other = tools::make_bench_workload(shape, 1235);
  omp_set_num_threads(threads);
  ASSERT_EQ(one.k.size(), size_t(2 * 5000 * 128));
  ASSERT_EQ(one.q.size(), size_t(4 * 3 * 128));
  EXPECT_EQ(one.q, all.q);
  EXPECT_EQ(one.k, all.k);
  EXPECT_EQ(one.v, all.v);
  EXPECT_NE(one.k, other.k);
  EXPECT_NE(one.k, one.v);
  const size_t chunk = size_t(1) << 20;  // the second chunk does not repeat the first
  EXPECT_FALSE(std::equal(one.k.begin(), one.k.begin() + 64, one.k.begin() + chunk));
  for (const std::vector<float>* x : {&one.k, &one.v}) {
    double sum = 0.0, sq = 0.0;
    for (float f : *x) sum += f, sq += double(f) * f;
    const double mean = sum / double(x->size()), var = sq / double(x->size()) - mean * mean;
    EXPECT_NEAR(mean, 0.0, 0.01);
    EXPECT_NEAR(var, 1.0, 0.02);
  }
}

}  // namespace
}  // namespace qsdpa
