// Attention test cases shared by the CPU and (later) CUDA tests: a pairwise covering set over the
// axes of SPEC §2 (head dim, GQA, Lq, mask, sinks, ragged lengths, N, q dtype and layout), and a
// runner that checks a backend against the f64 reference on fresh random data with poisoned outputs.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "qsdpa/qsdpa.hpp"

namespace qsdpa::test {

enum class MaskKind { none, causal, boolean, additive, window };

struct AttentionCase {
  int64_t dim = 128, gqa = 1, lq = 1, n = 33;
  int64_t kv_heads = 0;  // 0: 2 (1 from GQA 8); more reach the GPU's split rules for many heads
  MaskKind mask = MaskKind::none;
  bool sinks = false, ragged = false;
  DType q_dtype = DType::f32;
  bool q_bshd = false;  // q given as [B, Lq, Hq, D] through strides
  bool q_gapped = false;  // q's values two elements apart (stride 2 along D): no 16-byte octets to load
  uint64_t seed = 0;
  std::string describe() const;
};

// Every pair of values of any two axes appears in at least one case; `dims` are the head dims the
// format accepts. Invalid combinations (causal with Lq > N) are never generated.
std::vector<AttentionCase> pairwise_cases(const std::vector<int64_t>& dims, uint64_t seed);

// Every format of SPEC §1 plus the named mixed K:V pairs that every backend is tested on.
std::vector<std::string> tested_formats();
// The head dims of {64, 128, 256, 512} that both formats accept.
std::vector<int64_t> valid_dims(const Format& k, const Format& v);
// A gtest-safe name for a format or pair ("affine4-g32" -> "affine4_g32", "a:b" -> "a_b").
std::string test_name(const std::string& format);

using AttentionFn = std::function<void(const AttentionArgs&)>;

// Builds the case's data for formats K:V, runs `fn` and the reference, and compares out and lse.
::testing::AssertionResult check_case(const Format& kf, const Format& vf, const AttentionCase& c, const AttentionFn& fn,
                                      int threads = 0);

}  // namespace qsdpa::test
