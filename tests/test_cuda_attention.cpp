// The CUDA attention against the same f64 reference and pairwise cases as the CPU
// (attention_cases.cpp): every format and the named mixed pairs, poisoned outputs, odd sizes.
// Skips with a message where there is no GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <utility>

#include "attention_cases.hpp"
#include "cuda/check.cuh"
#include "cuda/device.hpp"
#include "late_writer.hpp"
#include "test_util.hpp"
#include "tools/device_args.hpp"
#include "tools/workloads.hpp"

namespace qsdpa {
namespace {

using tools::DeviceArgs;

// key_scale_offset: see DeviceArgs.
void attention_on_gpu_with(const AttentionArgs& host, size_t key_scale_offset) {
  DeviceArgs d(host, key_scale_offset);
  attention(d.args());
  const int32_t status = d.finish();
  if (status != 0) throw Error("device status " + std::to_string(status));
}
void attention_on_gpu(const AttentionArgs& host) { attention_on_gpu_with(host, 0); }

class CudaAttention : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaAttention, MatchesF64ReferencePairwise) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const auto [kf, vf] = tools::parse_pair(GetParam());
  const auto cases = test::pairwise_cases(test::valid_dims(kf, vf), std::hash<std::string>{}(GetParam()) % 1000 + 500);
  for (const auto& c : cases) EXPECT_TRUE(test::check_case(kf, vf, c, attention_on_gpu));
}

INSTANTIATE_TEST_SUITE_P(AllFormats, CudaAttention, ::testing::ValuesIn(test::tested_formats()),
                         [](const auto& info) { return test::test_name(info.param); });

// Decode-sized shapes with an array mask (which the tensor-core kernel does not take): they take the
// f32 split-key kernel (G*Lq <= 32, G*Lq*D <= 4096), for every format.
TEST_P(CudaAttention, SplitKernelShapes) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const auto [kf, vf] = tools::parse_pair(GetParam());
  std::vector<test::AttentionCase> cases(4);
  cases[0].dim = 128, cases[0].gqa = 4, cases[0].lq = 1, cases[0].n = 1000, cases[0].mask = test::MaskKind::boolean;
  cases[1].dim = 64, cases[1].gqa = 8, cases[1].lq = 4, cases[1].n = 777, cases[1].mask = test::MaskKind::additive,
  cases[1].sinks = true, cases[1].ragged = true, cases[1].q_dtype = DType::f16;
  cases[2].dim = 256, cases[2].gqa = 1, cases[2].lq = 9, cases[2].n = 33, cases[2].mask = test::MaskKind::boolean,
  cases[2].q_dtype = DType::bf16, cases[2].q_bshd = true;
  cases[3].dim = 512, cases[3].gqa = 4, cases[3].lq = 2, cases[3].n = 300, cases[3].mask = test::MaskKind::additive;
  uint64_t seed = 900;
  for (auto& c : cases) {
    c.seed = seed++;
    const auto dims = test::valid_dims(kf, vf);
    if (std::find(dims.begin(), dims.end(), c.dim) == dims.end()) continue;
    EXPECT_TRUE(test::check_case(kf, vf, c, attention_on_gpu));
  }
}

// Shapes the tensor-core kernel takes (no array mask, G*Lq <= 256), for every format: each
// head dim and row-tile count (tile code 0 included), more rows than one block holds (row chunks), GQA 1 to 32, odd and tiny key counts (N = 1, fewer keys than one warp
// step, not a multiple of 16, longer than one block's slice), causal, window, sinks, ragged lengths,
// q in f32/f16/bf16, BSHD strides and values two elements apart (the prologue's value-by-value
// staging; the others load q a 16-byte octet at a time).
TEST_P(CudaAttention, TensorCoreShapes) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const auto [kf, vf] = tools::parse_pair(GetParam());
  struct Shape {
    int64_t dim, gqa, lq, n;
    test::MaskKind mask;
    bool sinks, ragged;
    DType q;
  };
  const Shape shapes[] = {
      {128, 4, 1, 1, test::MaskKind::none, false, false, DType::f32},
      {128, 4, 1, 4099, test::MaskKind::none, true, false, DType::f16},
      {128, 1, 1, 7, test::MaskKind::none, false, true, DType::bf16},
      {128, 8, 2, 333, test::MaskKind::causal, false, false, DType::f32},
      {128, 4, 4, 1000, test::MaskKind::window, true, true, DType::f16},
      {64, 32, 1, 2000, test::MaskKind::none, false, false, DType::f32},
      {64, 4, 4, 17, test::MaskKind::causal, true, false, DType::f32},
      {64, 1, 3, 4, test::MaskKind::none, false, true, DType::bf16},
      {256, 4, 2, 515, test::MaskKind::causal, false, true, DType::f32},
      {256, 8, 1, 33, test::MaskKind::window, true, false, DType::f16},
      // More rows than one block's tiles: row chunks (D=128: 16 rows a block, D=256: 8, D=64: 32),
      // the last one partly filled (40 rows at D=128).
      {128, 4, 8, 777, test::MaskKind::causal, false, false, DType::f16},
      {128, 32, 1, 65, test::MaskKind::none, true, true, DType::f32},
      {128, 8, 5, 300, test::MaskKind::causal, true, false, DType::f32},
      {256, 4, 3, 100, test::MaskKind::none, false, false, DType::bf16},
      {64, 8, 5, 300, test::MaskKind::causal, true, false, DType::f32},
      // Up to 4 rows a block take tile code 0 (lo terms as columns; f16 caches excepted): each
      // head dim, sinks, ragged lengths, and rows with causal ranges of their own (Lq 2-4).
      {256, 4, 1, 1500, test::MaskKind::none, true, true, DType::f16},
      {256, 1, 4, 300, test::MaskKind::causal, false, true, DType::f32},
      {128, 1, 4, 100, test::MaskKind::causal, true, false, DType::bf16},
      {64, 2, 2, 50, test::MaskKind::causal, false, true, DType::f16},
  };
  uint64_t seed = 1900;
  const auto dims = test::valid_dims(kf, vf);
  for (const Shape& sh : shapes) {
    test::AttentionCase c;
    c.dim = sh.dim, c.gqa = sh.gqa, c.lq = sh.lq, c.n = sh.n, c.mask = sh.mask, c.sinks = sh.sinks;
    c.ragged = sh.ragged, c.q_dtype = sh.q, c.q_bshd = (seed % 3 == 0), c.q_gapped = (seed % 3 == 1), c.seed = seed++;
    if (std::find(dims.begin(), dims.end(), c.dim) == dims.end()) continue;
    EXPECT_TRUE(test::check_case(kf, vf, c, attention_on_gpu));
  }
}

// Key counts across the tensor-core kernel's split counts (B=1, Hkv=2, GQA 4; attention_mma.cu,
// mma_split): on sm_90 300 takes one 16-key step per warp of 4-warp blocks (5 splits, one
// thread-block cluster per head merging them in the kernel), 1000 one step of the 8-warp cluster
// kernel (8 splits), 1100 and 1900 two steps of it (5 and 8 splits); 2100 one step per warp of
// 4-warp blocks (33 splits: the merge kernel), 4500 and 9000 two or more steps (36 and 71 splits).
// LSE is checked always and sinks on every other case, for the main 4-bit formats, f16 and turbo3
// (un-rotated in either merge).
TEST(CudaAttentionSplits, SplitCountsAgreeWithTheReference) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  uint64_t seed = 2900;
  for (const char* name : {"f16", "mxfp4", "nvfp4", "affine4", "turbo3"})
    for (const int64_t n : {300, 1000, 1100, 1900, 2100, 4500, 9000}) {
      test::AttentionCase c;
      c.dim = 128, c.gqa = 4, c.lq = 1, c.n = n, c.sinks = (seed % 2 == 0), c.q_dtype = DType::f16, c.seed = seed++;
      const Format f = parse_format(name);
      EXPECT_TRUE(test::check_case(f, f, c, attention_on_gpu)) << name << " N=" << n;
    }
}

// The merge kernel's variants (partials.cu): one block per 32-dim slice of a row with 1 to 8
// splits a warp in one round of loads (more loop), for every head dim, and one block per row for
// turbo; 40000 keys of one KV head make a few hundred splits (several rounds).
TEST(CudaAttentionSplits, MergesAgreeWithTheReference) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  uint64_t seed = 3300;
  for (const char* name : {"f16", "mxfp4", "affine8", "turbo4"}) {
    const Format f = parse_format(name);
    for (const int64_t dim : test::valid_dims(f, f))
      for (const int64_t n : {2500, 6000}) {
        test::AttentionCase c;
        c.dim = dim, c.gqa = 4, c.n = n, c.sinks = (seed % 2 == 0), c.q_dtype = DType::f16, c.seed = seed++;
        EXPECT_TRUE(test::check_case(f, f, c, attention_on_gpu)) << name << " D=" << dim << " N=" << n;
      }
    test::AttentionCase c;
    c.dim = 128, c.gqa = 4, c.kv_heads = 1, c.n = 40000, c.sinks = true, c.q_dtype = DType::bf16, c.seed = seed++;
    EXPECT_TRUE(test::check_case(f, f, c, attention_on_gpu)) << name << " N=40000, one KV head";
  }
  // f16 caches take any head dim (the fallback split kernel): a last slice of 8 dims (D = 72), and
  // an odd D, whose partial rows are not 8-byte aligned (the one-block-per-row merge).
  for (const int64_t dim : {72, 41}) {
    test::AttentionCase c;
    c.dim = dim, c.gqa = 4, c.n = 3000, c.sinks = true, c.q_dtype = DType::f16, c.seed = seed++;
    EXPECT_TRUE(test::check_case(parse_format("f16"), parse_format("f16"), c, attention_on_gpu)) << "f16 D=" << dim;
  }
}

// Affine 4-bit keys and values from 8K keys run whole-SM blocks (16 warps, one block a SM,
// attention_mma.cuh whole_sm_warps): each group size's key family, both head dims it has, one and
// two row tiles (Lq 2 causal at GQA 4: 8 rows), ragged lengths and sinks.
TEST(CudaAttentionSplits, WholeSmBlocksAgreeWithTheReference) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  uint64_t seed = 3500;
  for (const char* name : {"affine4", "affine4-g32", "affine4-g128"}) {
    const Format f = parse_format(name);
    for (const int64_t dim : {int64_t(64), int64_t(128)}) {
      if (dim < f.group) continue;  // (a group spans at most a row)
      for (const int64_t n : {33000, 40001}) {
        test::AttentionCase c;
        c.dim = dim, c.gqa = 4, c.n = n, c.sinks = (seed % 2 == 0), c.q_dtype = seed % 3 == 0 ? DType::bf16 : DType::f16;
        c.ragged = n == 40001;
        if (seed % 4 == 1) c.lq = 2, c.mask = test::MaskKind::causal;
        c.seed = seed++;
        EXPECT_TRUE(test::check_case(f, f, c, attention_on_gpu)) << c.describe() << " " << name;
      }
    }
  }
}

// Whole-SM cases (B = 1, GQA 4; odd n: ragged, B = 2) against the f64 reference, each printing the
// split it ran; returns how many ran whole-SM blocks (16 warps a block), and how many of those in
// clusters.
struct WholeSmCase {
  const char* format;
  int64_t dim, kv_heads, n;
};
struct WholeSmRuns {
  int whole_sm = 0, clustered = 0;
};
template <class Shape>
WholeSmRuns check_whole_sm_cases(std::initializer_list<WholeSmCase> cases, uint64_t seed, Shape shape) {
  WholeSmRuns runs;
  for (const WholeSmCase& k : cases) {
    test::AttentionCase c;
    c.dim = k.dim, c.gqa = 4, c.kv_heads = k.kv_heads, c.n = k.n, c.sinks = (seed % 2 == 0);
    c.q_dtype = seed % 3 == 0 ? DType::bf16 : DType::f16;
    c.ragged = k.n % 2 == 1;
    c.seed = seed;
    shape(c, seed++);
    cuda::MmaPlan plan{};
    auto run = [&](const AttentionArgs& host) {
      DeviceArgs d(host, 0);
      plan = cuda::attention_mma_plan(d.args());
      attention(d.args());
      const int32_t status = d.finish();
      if (status != 0) throw Error("device status " + std::to_string(status));
    };
    const Format f = parse_format(k.format);
    EXPECT_TRUE(test::check_case(f, f, c, run)) << c.describe() << " " << k.format;
    std::printf("%s D=%lld Hkv=%lld N=%lld Lq=%lld: %d splits, cluster %d, %d warps\n", k.format, (long long)k.dim,
                (long long)k.kv_heads, (long long)k.n, (long long)c.lq, plan.splits, plan.cluster, plan.warps);
    runs.whole_sm += plan.warps == 16;
    runs.clustered += plan.cluster > 1 && plan.warps == 16;
  }
  return runs;
}
bool device0_is_sm90_or_newer() {
  int major = 0;
  QSDPA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
  return major >= 9;
}
void expect_clusters_on_sm90(const WholeSmRuns& runs) {
  if (device0_is_sm90_or_newer()) EXPECT_GT(runs.clustered, 0) << "no case ran whole-SM blocks in clusters";
}

// Whole-SM blocks of every family that has them (affine 4-bit, mxfp4 and nvfp4; attention_mma.cu,
// whole_sm_split), and whole-SM blocks merging in a thread-block cluster instead of the merge
// kernel (where a KV head's splits fit one and the GPU holds them all: on the H100 2, 3 and 4
// splits at 64, 36 and 28 KV heads here): the owners' merge of 2-4 partials a row, with ragged
// lengths, Lq 2 causal, sinks and bf16 q (mxfp4 at 16 splits of ~2K keys: whole-SM since session 40).
// The last two (D 64, 8 KV heads, 16 splits of 4100-4400 keys) run the mxfp4 / nvfp4 whole-SM
// epilogue of session 36 at D 64 without a cluster (added after that session's GPU runs).
// On sm_90 at least one case must have run in clusters, or this test would not test them.
TEST(CudaAttentionSplits, WholeSmBlocksOfEachFamilyAndInClusters) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const WholeSmRuns runs = check_whole_sm_cases(
      {{"affine4", 128, 8, 33000},
       {"affine4-g32", 128, 16, 40001},
       {"affine4", 64, 32, 33001},
       {"affine4-g128", 128, 36, 32768},
       {"affine4-g32", 64, 8, 40001},
       {"mxfp4", 128, 8, 40001},
       {"nvfp4", 128, 16, 33000},
       {"mxfp4", 64, 28, 33000},
       {"nvfp4", 64, 32, 32769},
       {"mxfp4", 128, 8, 33000},
       {"mxfp4", 64, 8, 70001},
       {"nvfp4", 64, 8, 66000}},
      3600, [](test::AttentionCase& c, uint64_t seed) {
        if (seed % 4 == 1) c.lq = 2, c.mask = test::MaskKind::causal;
      });
  expect_clusters_on_sm90(runs);
}

// mxfp4 / nvfp4 whole-SM blocks of 1024 to 4096 keys (session 40) and affine 4-bit ones from 8K keys
// (session 41; attention_mma.cu, whole_sm_split): 8K-25K keys at 8 and 32 KV heads, each head dim,
// Lq 2 causal on some. At 8 KV heads 16 splits (512 keys a block at 8K: two steps a warp), at 32
// four; odd lengths run ragged at B = 2, which halves the splits and lets some merge in clusters.
// On the H100 and H200 (132 SMs) every case runs 16 warps a block; on sm_90 at least one must, or
// the test would not test them.
TEST(CudaAttentionSplits, WholeSmBlocksFromEightKKeys) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const WholeSmRuns runs = check_whole_sm_cases(
      {{"mxfp4", 128, 8, 16384},
       {"nvfp4", 128, 8, 20001},
       {"mxfp4", 64, 8, 24577},
       {"nvfp4", 64, 8, 16500},
       {"affine4", 128, 8, 17001},
       {"affine4-g32", 64, 8, 16384},
       {"mxfp4", 128, 32, 16385},
       {"affine4", 128, 8, 8192},
       {"affine4-g32", 128, 8, 12289},
       {"affine4-g128", 128, 8, 9000},
       {"affine4", 64, 32, 8193},
       {"mxfp4", 128, 32, 8192},
       {"nvfp4", 64, 32, 10001}},
      3800, [](test::AttentionCase& c, uint64_t seed) {
        if (seed % 3 == 1) c.lq = 2, c.mask = test::MaskKind::causal;
      });
  if (device0_is_sm90_or_newer()) EXPECT_GT(runs.whole_sm, 0) << "no case ran whole-SM blocks";
}

// Whole-SM blocks in clusters at 8 rows a block (Lq 2 at GQA 4, causal: tile code 1, session 32;
// attention_mma.cuh whole_sm_warps): the owners' merge of 2-4 partials a row, with rows
// spread over the cluster's blocks. On the H100 these shapes take clusters of 3, 4 and 2 (36, 28
// and 2 x 32 KV heads); on sm_90 at least one case must run in one.
TEST(CudaAttentionSplits, WholeSmClustersOfEightRows) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const WholeSmRuns runs = check_whole_sm_cases(
      {{"affine4-g128", 128, 36, 32768}, {"mxfp4", 128, 28, 33000}, {"nvfp4", 64, 32, 32769}}, 3700,
      [](test::AttentionCase& c, uint64_t) { c.lq = 2, c.mask = test::MaskKind::causal; });
  expect_clusters_on_sm90(runs);
}

// One process, several GPUs: the shared partials workspace and the raised shared-memory limits are
// per device (the runtime applies cudaFuncSetAttribute to the current device only; a device's
// kernels cannot read another's buffer without peer access). Device by device, after the tests
// before it ran on the first: whole-SM blocks above 48 KB of shared memory whose partials go
// through the shared workspace and the one-warp merge (mxfp4, affine4), and clusters (nvfp4 D 64,
// 32 KV heads). Skips with fewer than 2 devices.
TEST(CudaAttentionDevices, EachDeviceOfOneProcess) {
  const int devices = cuda::device_count();
  if (devices < 2) GTEST_SKIP() << "fewer than 2 CUDA devices on this machine";
  int first = 0;
  QSDPA_CUDA_CHECK(cudaGetDevice(&first));
  struct Restore {
    int dev;
    ~Restore() { cudaSetDevice(dev); }
  } restore{first};
  for (int dev = devices - 1; dev >= 0; --dev) {
    QSDPA_CUDA_CHECK(cudaSetDevice(dev));
    std::printf("device %d:\n", dev);
    check_whole_sm_cases({{"mxfp4", 128, 8, 40001}, {"affine4", 128, 8, 33000}, {"nvfp4", 64, 32, 32769}},
                         4100 + uint64_t(dev), [](test::AttentionCase&, uint64_t) {});
  }
}

// 32 KV heads (MHA, as the bench's Hkv = 32 shape) take the split rules for many heads at once: at
// 2K-4K the wave's split count whose partials would go to the merge kernel gives way to a smaller
// one that merges in clusters (attention_mma.cu, mma_split); Lq 4 and causal masks on some cases.
TEST(CudaAttentionSplits, ManyHeadsAgreeWithTheReference) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  uint64_t seed = 3100;
  for (const char* name : {"f16", "mxfp4", "turbo3", "affine8"})
    for (const int64_t n : {700, 1900, 2048, 3001, 4096}) {
      test::AttentionCase c;
      c.dim = 128, c.gqa = 1, c.kv_heads = 32, c.n = n, c.sinks = (seed % 2 == 0), c.q_dtype = DType::f16;
      c.lq = seed % 3 == 0 ? 4 : 1;  // 4 rows a head: owners of one row each in a cluster of 8
      c.mask = seed % 4 == 1 ? test::MaskKind::causal : test::MaskKind::none;
      c.seed = seed++;
      const Format f = parse_format(name);
      EXPECT_TRUE(test::check_case(f, f, c, attention_on_gpu)) << name << " N=" << n;
    }
}

// Affine 4-bit keys load each row's scales and biases whole (the u4g32 / u4g64 / u4g128 families,
// 2 D / group bytes each) only where those rows are aligned to that; rows placed off it take the
// per-block loads, and 2-byte rows (one group a row) need no more than the format's alignment. A
// whole-row load from a misaligned address would fault (a CUDA error), not just answer wrongly.
TEST(CudaAttentionAlignment, AffineKeyScaleRowsOffTheirAlignment) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  struct Case {
    const char* format;
    int64_t dim;
    size_t offset;
  };
  const Case cases[] = {
      {"affine4", 64, 2},      {"affine4", 128, 2},     {"affine4", 256, 4},     {"affine4", 256, 2},
      {"affine4-g32", 128, 4}, {"affine4-g32", 64, 2},  {"affine4-g128", 256, 2}, {"affine4-g128", 128, 2},
  };
  uint64_t seed = 4100;
  for (const Case& k : cases)
    for (const int64_t lq : {1, 4}) {
      test::AttentionCase c;
      c.dim = k.dim, c.gqa = 4, c.lq = lq, c.n = 700, c.sinks = (seed % 2 == 0), c.q_dtype = DType::f16, c.seed = seed++;
      const Format f = parse_format(k.format);
      auto off_alignment = [offset = k.offset](const AttentionArgs& host) { attention_on_gpu_with(host, offset); };
      EXPECT_TRUE(test::check_case(f, f, c, off_alignment)) << k.format << " D=" << k.dim << " Lq=" << lq << " offset " << k.offset;
    }
}

// mxfp8 values beyond what f16 products hold exactly (E8M0 exponent > 7) are reported, not silent.
TEST(CudaAttentionStatus, ScalesBeyondF16AreReportedOnTheDevice) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const int64_t D = 128, N = 64;
  auto x = test::random_normal(size_t(N * D), 3);
  for (float& v : x) v *= 1.0e6f;
  const QuantizedTensor k = quantize(x.data(), {1, 1, N, D}, parse_format("mxfp8"));
  auto q = test::random_normal(size_t(D), 4);
  std::vector<float> out(static_cast<size_t>(D));
  AttentionArgs a;
  a.q = contiguous_view(q.data(), DType::f32, 1, 1, 1, D);
  a.out = contiguous_view(out.data(), DType::f32, 1, 1, 1, D);
  a.k = a.v = k.view();
  a.scale = 0.125f;
  DeviceArgs d(a);
  attention(d.args());
  EXPECT_EQ(d.finish(), 2);
}

// E8M0's NaN byte in a key's scale makes that key's scores NaN, as the CPU's scalar rule does: rows
// that see the key come out NaN, rows that do not (causal) stay finite. The tensor-core kernel loads
// a row's scale bytes whole and checks them once per key (its block multipliers alone would give
// infinities, and a score of -inf would silently drop the key).
TEST(CudaAttentionStatus, KeyScaleNaNByteGivesNaNWhereTheKeyIsSeen) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const int64_t Hq = 4, Lq = 2, N = 300, D = 128;
  const auto kx = test::random_normal(size_t(N * D), 41), vx = test::random_normal(size_t(N * D), 42);
  QuantizedTensor k = quantize(kx.data(), {1, 1, N, D}, parse_format("mxfp4"));
  const QuantizedTensor v = quantize(vx.data(), {1, 1, N, D}, parse_format("mxfp4"));
  ASSERT_EQ(k.scales.size(), size_t(N * D / 32));
  k.scales[size_t((N - 1) * (D / 32) + 2)] = 0xFF;  // the last key, its third block
  auto q = test::random_normal(size_t(Hq * Lq * D), 43);
  std::vector<float> cpu(q.size()), gpu(q.size());
  AttentionArgs a;
  a.q = contiguous_view(q.data(), DType::f32, 1, Hq, Lq, D);
  a.k = k.view();
  a.v = v.view();
  a.scale = 0.088f;
  a.causal = true;  // query row 0 sees keys [0, N-1), row 1 all N
  a.out = contiguous_view(cpu.data(), DType::f32, 1, Hq, Lq, D);
  attention(a);
  a.out = contiguous_view(gpu.data(), DType::f32, 1, Hq, Lq, D);
  attention_on_gpu(a);
  for (int64_t h = 0; h < Hq; ++h)
    for (int64_t i = 0; i < Lq; ++i)
      for (int64_t d = 0; d < D; ++d) {
        const size_t at = size_t((h * Lq + i) * D + d);
        EXPECT_EQ(std::isnan(cpu[at]), i == 1) << "cpu h=" << h << " i=" << i << " d=" << d;
        EXPECT_EQ(std::isnan(gpu[at]), i == 1) << "gpu h=" << h << " i=" << i << " d=" << d;
        if (i == 0) EXPECT_NEAR(gpu[at], cpu[at], 1e-3f * (1.0f + std::fabs(cpu[at])));
      }
}

// Turbo V rows' scales go into P, normalised by the first key of each warp: scales within
// [2^-12, 2^11) of it give the CPU's answer with status 0; rows 2^14 apart (every fourth row times
// 2^14, the next odd one times 2^-14, any warp sees both and rows of 1) set status bit 2 instead of
// a silently imprecise answer.
TEST(CudaAttentionStatus, TurboValueScalesFarApartAreReported) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const int64_t Hq = 4, N = 200, D = 128;
  for (const float spread : {8.0f, 16384.0f}) {
    auto kx = test::random_normal(size_t(N * D), 51), vx = test::random_normal(size_t(N * D), 52);
    for (int64_t j = 1; j < N; j += 2)
      for (int64_t d = 0; d < D; ++d) vx[size_t(j * D + d)] *= (j % 4 == 1) ? spread : 1.0f / spread;
    const QuantizedTensor k = quantize(kx.data(), {1, 1, N, D}, parse_format("turbo4"));
    const QuantizedTensor v = quantize(vx.data(), {1, 1, N, D}, parse_format("turbo4"));
    auto q = test::random_normal(size_t(Hq * D), 53);
    std::vector<float> cpu(q.size()), gpu(q.size(), std::nanf(""));
    AttentionArgs a;
    a.q = contiguous_view(q.data(), DType::f32, 1, Hq, 1, D);
    a.k = k.view();
    a.v = v.view();
    a.scale = 0.088f;
    a.out = contiguous_view(cpu.data(), DType::f32, 1, Hq, 1, D);
    attention(a);
    a.out = contiguous_view(gpu.data(), DType::f32, 1, Hq, 1, D);
    DeviceArgs dev(a);
    attention(dev.args());
    const int32_t status = dev.finish();
    if (spread > 1000.0f) {
      EXPECT_EQ(status, 2);
      continue;
    }
    ASSERT_EQ(status, 0);
    double err = 0.0, ref = 0.0;
    for (size_t i = 0; i < cpu.size(); ++i) err += double(gpu[i] - cpu[i]) * (gpu[i] - cpu[i]), ref += double(cpu[i]) * cpu[i];
    EXPECT_LT(std::sqrt(err / ref), 1e-4) << "spread " << spread;
  }
}

// A decode call's host data (Lq 1, f32 q and out): K, V and q drawn from seeds seed, seed + 1 and
// seed + 2, K and V quantized to `format`.
struct DecodeData {
  std::vector<float> q, out;
  QuantizedTensor k, v;
  // Views of the above (build them once the data has its final home).
  AttentionArgs args(float scale) {
    const int64_t B = k.shape[0], Hq = int64_t(q.size()) / (B * k.dim());
    AttentionArgs a;
    a.q = contiguous_view(q.data(), DType::f32, B, Hq, 1, k.dim());
    a.out = contiguous_view(out.data(), DType::f32, B, Hq, 1, k.dim());
    a.k = k.view();
    a.v = v.view();
    a.scale = scale;
    return a;
  }
};
DecodeData decode_data(const std::string& format, int64_t B, int64_t Hq, int64_t Hkv, int64_t N, int64_t D, uint64_t seed) {
  DecodeData c;
  const auto kx = test::random_normal(size_t(B * Hkv * N * D), seed), vx = test::random_normal(size_t(B * Hkv * N * D), seed + 1);
  c.q = test::random_normal(size_t(B * Hq * D), seed + 2);
  c.out.resize(c.q.size());
  c.k = quantize(kx.data(), {B, Hkv, N, D}, parse_format(format));
  c.v = quantize(vx.data(), {B, Hkv, N, D}, parse_format(format));
  return c;
}

// With a caller workspace the call allocates nothing and never synchronizes: it can be captured in a
// CUDA graph, and the replay writes the same bytes as a direct call (tensor-core kernel with and
// without a merge kernel, f32 split kernel); a workspace smaller than attention_workspace_bytes is an
// error. (On sm_90 a short mxfp4 call merges in one thread-block cluster and needs no workspace.)
TEST(CudaAttentionGraph, CapturesWithACallerWorkspace) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  for (const auto& [name, N] : {std::pair{"mxfp4", int64_t(5000)}, std::pair{"mxfp4", int64_t(1000)}, std::pair{"f32", int64_t(1000)}}) {
    DecodeData data = decode_data(name, 1, 8, 2, N, 128, 31);
    const auto& out = data.out;
    std::vector<float> direct(out.size()), replayed(out.size());
    DeviceArgs d(data.args(0.1f));
    AttentionArgs da = d.args();
    const size_t bytes = attention_workspace_bytes(da);
    if (N == 5000 || std::string(name) == "f32") ASSERT_GT(bytes, 0u) << name << " N=" << N;
    void* ws = nullptr;
    QSDPA_CUDA_CHECK(cudaMalloc(&ws, std::max<size_t>(bytes, 16)));
    cudaStream_t stream;
    QSDPA_CUDA_CHECK(cudaStreamCreate(&stream));
    da.workspace = ws;
    da.workspace_bytes = bytes;
    da.stream = stream;
    attention(da);
    QSDPA_CUDA_CHECK(cudaStreamSynchronize(stream));
    QSDPA_CUDA_CHECK(cudaMemcpy(direct.data(), da.out.data, out.size() * 4, cudaMemcpyDeviceToHost));
    QSDPA_CUDA_CHECK(cudaMemset(da.out.data, 0xFF, out.size() * 4));
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    QSDPA_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    attention(da);
    QSDPA_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    QSDPA_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    QSDPA_CUDA_CHECK(cudaGraphLaunch(exec, stream));
    QSDPA_CUDA_CHECK(cudaStreamSynchronize(stream));
    QSDPA_CUDA_CHECK(cudaMemcpy(replayed.data(), da.out.data, out.size() * 4, cudaMemcpyDeviceToHost));
    EXPECT_EQ(0, std::memcmp(direct.data(), replayed.data(), direct.size() * 4)) << name << " N=" << N;
    if (bytes > 0) {
      da.workspace_bytes = bytes - 1;
      EXPECT_THROW(attention(da), Error) << name << " N=" << N;
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
    cudaFree(ws);
  }
}

// On sm_90 the split kernel may start before the kernel ahead of it in the stream ends
// (programmatic dependent launch), and must not read its inputs until that kernel has finished.
// Here the kernel before the call lets it launch at once, then writes q only 50 us later over a
// NaN-poisoned q: the call must write the bytes of a call whose q was ready (with and without the
// merge kernel; two calls in a row, so that the second follows the first's last kernel).
TEST(CudaAttentionChained, WaitsForTheKernelBeforeIt) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  for (const int64_t N : {int64_t(1000), int64_t(5000)}) {
    DecodeData data = decode_data("mxfp4", 1, 32, 8, N, 128, 41);
    const auto& q = data.q;
    DeviceArgs d(data.args(0.125f));
    AttentionArgs da = d.args();
    const size_t bytes = q.size() * 4;
    float* ready_q = nullptr;  // q's values, copied into da.q by the late writer
    QSDPA_CUDA_CHECK(cudaMalloc(&ready_q, bytes));
    QSDPA_CUDA_CHECK(cudaMemcpy(ready_q, da.q.data, bytes, cudaMemcpyDeviceToDevice));
    cudaStream_t stream;
    QSDPA_CUDA_CHECK(cudaStreamCreate(&stream));
    da.stream = stream;
    std::vector<float> expected(q.size()), got(q.size());
    attention(da);
    QSDPA_CUDA_CHECK(cudaMemcpyAsync(expected.data(), da.out.data, bytes, cudaMemcpyDeviceToHost, stream));
    QSDPA_CUDA_CHECK(cudaStreamSynchronize(stream));
    ASSERT_TRUE(std::all_of(expected.begin(), expected.end(), [](float x) { return std::isfinite(x); })) << "N=" << N;
    for (int round = 0; round < 3; ++round) {
      QSDPA_CUDA_CHECK(cudaMemsetAsync(da.q.data, 0xFF, bytes, stream));
      QSDPA_CUDA_CHECK(cudaMemsetAsync(da.out.data, 0xFF, bytes, stream));
      test::launch_late_copy(static_cast<float*>(da.q.data), ready_q, q.size(), 50000, stream);
      attention(da);
      attention(da);
      QSDPA_CUDA_CHECK(cudaMemcpyAsync(got.data(), da.out.data, bytes, cudaMemcpyDeviceToHost, stream));
      QSDPA_CUDA_CHECK(cudaStreamSynchronize(stream));
      EXPECT_EQ(0, std::memcmp(expected.data(), got.data(), bytes)) << "N=" << N << " round " << round;
    }
    EXPECT_EQ(d.finish(), 0) << "N=" << N;
    cudaStreamDestroy(stream);
    cudaFree(ready_q);
  }
}

TEST(CudaAttentionStatus, KvLensBeyondCapacityIsReportedOnTheDevice) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const int64_t D = 64, N = 10;
  const auto x = test::random_normal(size_t(N * D), 1);
  const QuantizedTensor k = quantize(x.data(), {1, 1, N, D}, parse_format("affine4"));
  auto q = test::random_normal(size_t(D), 2);
  std::vector<float> out(static_cast<size_t>(D));
  const int64_t lens[1] = {N + 5};
  AttentionArgs a;
  a.q = contiguous_view(q.data(), DType::f32, 1, 1, 1, D);
  a.out = contiguous_view(out.data(), DType::f32, 1, 1, 1, D);
  a.k = a.v = k.view();
  a.scale = 0.125f;
  a.kv_lens = lens;
  DeviceArgs d(a);
  attention(d.args());
  EXPECT_EQ(d.finish(), 1);
}

}  // namespace
}  // namespace qsdpa
