// qsdpa::append on the CPU: bytes equal `quantize`'s for every format and mixed pair, other rows
// untouched; bad arguments give clear errors.
#include <gtest/gtest.h>

#include "append_cases.hpp"
#include "attention_cases.hpp"
#include "test_util.hpp"

namespace qsdpa {
namespace {

int32_t append_on_cpu(const TensorView& kn, const TensorView& vn, test::HostCache& k, test::HostCache& v,
                      const std::vector<int64_t>& positions) {
  AppendArgs a;
  a.k_new = kn, a.v_new = vn, a.k = k.view, a.v = v.view;
  a.positions = positions.data();
  a.device = Device::cpu;
  int32_t status = 0;
  a.status = &status;
  append(a);
  return status;
}

class Append : public ::testing::TestWithParam<std::string> {};

TEST_P(Append, MatchesQuantizeBitForBit) { EXPECT_TRUE(test::check_append(GetParam(), append_on_cpu)); }

INSTANTIATE_TEST_SUITE_P(AllFormats, Append, ::testing::ValuesIn(test::tested_formats()),
                         [](const auto& info) { return test::test_name(info.param); });

std::string append_error(const AppendArgs& a) {
  try {
    append(a);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(AppendErrors, NameTheArgument) {
  const int64_t D = 64;
  auto x = test::random_normal(size_t(2 * D), 5);
  const QuantizedTensor cache = quantize(x.data(), {1, 1, 2, D}, parse_format("affine4"));
  AppendArgs a;
  a.k = a.v = cache.view();
  a.k_new = a.v_new = contiguous_view(x.data(), DType::f32, 1, 1, 1, D);
  a.device = Device::cpu;
  EXPECT_NE(append_error(a).find("append: positions"), std::string::npos);
  const int64_t beyond[1] = {2};
  a.positions = beyond;
  EXPECT_NE(append_error(a).find("positions[0]=2 with count 1"), std::string::npos);
  const int64_t ok[1] = {1};
  a.positions = ok;
  a.v_new = contiguous_view(x.data(), DType::f32, 1, 1, 2, D);
  EXPECT_NE(append_error(a).find("v_new: expected 1 new tokens"), std::string::npos);
  a.v_new = contiguous_view(x.data(), DType::f32, 1, 2, 1, D / 2);
  EXPECT_NE(append_error(a).find("v_new: expected [1, 1, count, 64]"), std::string::npos);
  a.v_new = a.k_new;
  a.k_new.dtype = DType::u8;
  EXPECT_NE(append_error(a).find("k_new: expected float32, float16 or bfloat16"), std::string::npos);
}

}  // namespace
}  // namespace qsdpa
