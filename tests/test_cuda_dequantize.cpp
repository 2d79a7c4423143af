// The GPU dequantize (formats' shared scalar rules compiled by nvcc) against the CPU, every format.
// Skips with a message where there is no GPU.
#include <gtest/gtest.h>

#include "cuda/check.cuh"
#include "formats/scalar.hpp"
#include "cuda/device.hpp"
#include "test_util.hpp"

namespace qsdpa {
namespace {

class CudaDequantize : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaDequantize, MatchesCpuBitForBit) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  const Format f = parse_format(GetParam());
  const int64_t B = 2, H = 3, N = 37, D = 128;
  const auto x = test::random_normal(size_t(B * H * N * D), 5);
  const QuantizedTensor q = quantize(x.data(), {B, H, N, D}, f);
  std::vector<float> want(x.size());
  dequantize(q, want.data());
  uint8_t *codes, *scales = nullptr, *biases = nullptr;
  float *out, *tensor_scale = nullptr;
  QSDPA_CUDA_CHECK(cudaMalloc(&codes, q.codes.size()));
  QSDPA_CUDA_CHECK(cudaMemcpy(codes, q.codes.data(), q.codes.size(), cudaMemcpyHostToDevice));
  if (!q.scales.empty()) {
    QSDPA_CUDA_CHECK(cudaMalloc(&scales, q.scales.size()));
    QSDPA_CUDA_CHECK(cudaMemcpy(scales, q.scales.data(), q.scales.size(), cudaMemcpyHostToDevice));
  }
  if (!q.biases.empty()) {
    QSDPA_CUDA_CHECK(cudaMalloc(&biases, q.biases.size()));
    QSDPA_CUDA_CHECK(cudaMemcpy(biases, q.biases.data(), q.biases.size(), cudaMemcpyHostToDevice));
  }
  QSDPA_CUDA_CHECK(cudaMalloc(&tensor_scale, 4));
  QSDPA_CUDA_CHECK(cudaMemcpy(tensor_scale, &q.tensor_scale, 4, cudaMemcpyHostToDevice));
  QSDPA_CUDA_CHECK(cudaMalloc(&out, want.size() * 4));
  QSDPA_CUDA_CHECK(cudaMemset(out, 0xFF, want.size() * 4));  // poison: NaN
  CacheView v = q.view();
  v.codes = codes;
  v.scales = scales;
  v.biases = biases;
  if (f.kind == FormatKind::fp8) v.tensor_scales = tensor_scale;
  cuda::dequantize(v, out, nullptr);
  std::vector<float> got(want.size());
  QSDPA_CUDA_CHECK(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < got.size(); ++i) {
    if (f.kind == FormatKind::turbo)  // the inverse rotation may round differently on the GPU
      ASSERT_NEAR(got[i], want[i], 1e-5f * (1 + std::fabs(want[i]))) << i;
    else
      ASSERT_EQ(fmt::f32_bits(got[i]), fmt::f32_bits(want[i])) << GetParam() << " element " << i;
  }
  for (void* p : {(void*)codes, (void*)scales, (void*)biases, (void*)out, (void*)tensor_scale}) cudaFree(p);
}

INSTANTIATE_TEST_SUITE_P(AllFormats, CudaDequantize, ::testing::ValuesIn(all_format_names()), [](const auto& info) {
  std::string n = info.param;
  for (char& c : n) if (c == '-') c = '_';
  return n;
});

}  // namespace
}  // namespace qsdpa
