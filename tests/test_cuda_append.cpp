// qsdpa::append on the GPU (src/cuda/append.cu): the same byte-for-byte check as the CPU suite
// (tests/append_cases.cpp), K and V in one launch; positions beyond the capacity are reported in the
// device status word. Skips without a GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include "append_cases.hpp"
#include "attention_cases.hpp"
#include "cuda/check.cuh"
#include "cuda/device.hpp"
#include "test_util.hpp"

namespace qsdpa {
namespace {

// Device buffers freed together.
struct DeviceBuffers {
  std::vector<void*> ptrs;
  void* put(const void* src, size_t bytes) {
    void* p = nullptr;
    QSDPA_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(bytes, 16)));
    QSDPA_CUDA_CHECK(cudaMemcpy(p, src, bytes, cudaMemcpyHostToDevice));
    ptrs.push_back(p);
    return p;
  }
  ~DeviceBuffers() {
    for (void* p : ptrs) cudaFree(p);
  }
};

// A device copy of a host cache, copied back by `download`.
struct DeviceCacheCopy {
  DeviceBuffers buffers;
  CacheView view;
  explicit DeviceCacheCopy(const test::HostCache& h) : view(h.view) {
    view.codes = static_cast<const uint8_t*>(buffers.put(h.codes.data(), h.codes.size()));
    if (h.view.scales) view.scales = static_cast<const uint8_t*>(buffers.put(h.scales.data(), h.scales.size()));
    if (h.view.biases) view.biases = static_cast<const uint8_t*>(buffers.put(h.biases.data(), h.biases.size()));
    if (h.view.tensor_scales)
      view.tensor_scales = static_cast<const float*>(buffers.put(h.view.tensor_scales, sizeof(float)));
  }
  void download(test::HostCache& h) const {
    QSDPA_CUDA_CHECK(cudaMemcpy(h.codes.data(), view.codes, h.codes.size(), cudaMemcpyDeviceToHost));
    if (view.scales) QSDPA_CUDA_CHECK(cudaMemcpy(h.scales.data(), view.scales, h.scales.size(), cudaMemcpyDeviceToHost));
    if (view.biases) QSDPA_CUDA_CHECK(cudaMemcpy(h.biases.data(), view.biases, h.biases.size(), cudaMemcpyDeviceToHost));
  }
};

int32_t append_on_gpu(const TensorView& kn, const TensorView& vn, test::HostCache& k, test::HostCache& v,
                      const std::vector<int64_t>& positions) {
  DeviceCacheCopy dk(k), dv(v);
  const size_t row_bytes = size_t(kn.shape[0] * kn.shape[1] * kn.shape[2] * kn.shape[3]) * 4;
  DeviceBuffers rows;
  AppendArgs a;
  a.k_new = kn, a.v_new = vn;
  a.k_new.data = rows.put(kn.data, row_bytes);
  a.v_new.data = rows.put(vn.data, row_bytes);
  a.k = dk.view, a.v = dv.view;
  a.positions = static_cast<const int64_t*>(rows.put(positions.data(), positions.size() * 8));
  const int32_t zero = 0;
  a.status = static_cast<int32_t*>(rows.put(&zero, 4));
  a.device = Device::cuda;
  append(a);
  QSDPA_CUDA_CHECK(cudaDeviceSynchronize());
  int32_t status = 0;
  QSDPA_CUDA_CHECK(cudaMemcpy(&status, a.status, 4, cudaMemcpyDeviceToHost));
  dk.download(k);
  dv.download(v);
  return status;
}

class CudaAppend : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaAppend, MatchesQuantizeBitForBit) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  EXPECT_TRUE(test::check_append(GetParam(), append_on_gpu));
}

INSTANTIATE_TEST_SUITE_P(AllFormats, CudaAppend, ::testing::ValuesIn(test::tested_formats()),
                         [](const auto& info) { return test::test_name(info.param); });

TEST(CudaAppendStatus, PositionBeyondCapacityIsReportedAndSkipped) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  int32_t seen = -1;
  const bool matched = test::check_append("affine4", [&](const TensorView& kn, const TensorView& vn, test::HostCache& k,
                                                         test::HostCache& v, const std::vector<int64_t>& pos) {
    std::vector<int64_t> bad = pos;
    bad[1] = k.view.tokens - 1;  // 3 new tokens do not fit there: batch 1's rows are skipped
    seen = append_on_gpu(kn, vn, k, v, bad);
    return seen;
  });
  EXPECT_EQ(seen, 1);
  EXPECT_FALSE(matched);
}

}  // namespace
}  // namespace qsdpa
