// Sequence-parallel attention's argument checks (include/qsdpa/sharded.hpp): they throw before any
// CUDA or NCCL call, so they run on machines without a GPU. Its numerics are covered by the CPU merge
// test (MergePartials.*) and, on several GPUs, by `qsdpa_sharded_bench --check` (docs/multi-gpu.md).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "qsdpa/qsdpa.hpp"
#include "qsdpa/sharded.hpp"

namespace qsdpa {
namespace {

// Arguments that pass every sharded check except the one a test breaks (pointers are never used).
AttentionArgs decode_args(std::vector<float>& host, int64_t lq) {
  const int64_t D = 64;
  host.assign(size_t(4 * lq * D), 0.0f);
  AttentionArgs a;
  a.q = contiguous_view(host.data(), DType::f32, 1, 4, lq, D);
  a.out = contiguous_view(host.data(), DType::f32, 1, 4, lq, D);
  a.scale = 0.125f;
  a.device = Device::cuda;
  return a;
}

std::string error_of(const AttentionArgs& a, const ShardComm& c, void* ws) {
  try {
    sharded_attention(a, c, ws);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Sharded, RejectsAMissingCommunicator) {
  std::vector<float> host;
  const AttentionArgs a = decode_args(host, 1);
  int ws = 0;
  EXPECT_NE(error_of(a, ShardComm{nullptr, 0, 2}, &ws).find("comm: expected an NCCL communicator"), std::string::npos);
  int fake = 0;
  EXPECT_NE(error_of(a, ShardComm{&fake, 2, 2}, &ws).find("rank 2 of 2"), std::string::npos);
}

TEST(Sharded, RejectsHostArgumentsAndAMissingWorkspace) {
  std::vector<float> host;
  AttentionArgs a = decode_args(host, 1);
  int fake = 0;
  EXPECT_NE(error_of(a, ShardComm{&fake, 0, 2}, nullptr).find("workspace"), std::string::npos);
  a.device = Device::cpu;
  EXPECT_NE(error_of(a, ShardComm{&fake, 0, 2}, &fake).find("device must be cuda"), std::string::npos);
}

TEST(Sharded, RejectsMasksThatNeedGlobalPositions) {
  std::vector<float> host;
  int fake = 0;
  AttentionArgs a = decode_args(host, 4);
  a.causal = true;
  EXPECT_NE(error_of(a, ShardComm{&fake, 0, 2}, &fake).find("Lq = 1 only, got Lq = 4"), std::string::npos);
  a.causal = false;
  std::vector<uint8_t> mask(16, 1);
  a.mask = contiguous_view(mask.data(), DType::boolean, 1, 1, 4, 4);
  EXPECT_NE(error_of(a, ShardComm{&fake, 0, 2}, &fake).find("array masks"), std::string::npos);
}

TEST(Sharded, WorkspaceHoldsOnePartialPerRankPlusOurs) {
  std::vector<float> host;
  const AttentionArgs a = decode_args(host, 1);  // rows = 4, D = 64
  EXPECT_EQ(sharded_workspace_bytes(a, 4), size_t(4 * 65 * 4 * 5));
}

}  // namespace
}  // namespace qsdpa
