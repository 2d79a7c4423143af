// Device copies of everything an AttentionArgs points to, for callers whose arrays live in host
// memory (the CLI's `attention --device cuda`, the CUDA tests): upload, run on the device, copy the
// output and LSE back. CUDA builds only.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuda/check.cuh"
#include "qsdpa/attention.hpp"

namespace qsdpa::tools {

class DeviceArgs {
 public:
  // key_scale_offset: K's scales and biases placed that many bytes past their allocation's start (the
  // CUDA tests' rows off their usual alignment).
  explicit DeviceArgs(const AttentionArgs& host, size_t key_scale_offset = 0) : host_(host), dev_(host) {
    dev_.device = Device::cuda;
    dev_.q.data = upload(host.q.data, extent_bytes(host.q));
    dev_.out.data = upload(host.out.data, extent_bytes(host.out));  // poisoned by the caller
    if (!host.mask.empty()) dev_.mask.data = upload(host.mask.data, extent_bytes(host.mask));
    for (auto [src, dst] : {std::pair{&host.k, &dev_.k}, std::pair{&host.v, &dev_.v}}) {
      const int64_t D = src->dim;
      dst->codes = static_cast<uint8_t*>(upload(src->codes, rows_extent(src->code_strides, *src, row_code_bytes(src->format, D))));
      const size_t offset = src == &host.k ? key_scale_offset : 0;
      if (src->scales)
        dst->scales = static_cast<uint8_t*>(
            upload(src->scales, rows_extent(src->scale_strides, *src, row_scale_bytes(src->format, D)), offset));
      if (src->biases)
        dst->biases = static_cast<uint8_t*>(
            upload(src->biases, rows_extent(src->bias_strides, *src, row_bias_bytes(src->format, D)), offset));
      if (src->tensor_scales)
        dst->tensor_scales = static_cast<float*>(upload(src->tensor_scales, size_t(src->tensor_scale_count) * 4));
    }
    const int64_t B = host.q.shape[0], Hq = host.q.shape[1], Lq = host.q.shape[2];
    if (host.kv_lens) dev_.kv_lens = static_cast<int64_t*>(upload(host.kv_lens, size_t(B) * 8));
    if (host.sinks) dev_.sinks = static_cast<float*>(upload(host.sinks, size_t(Hq) * 4));
    if (host.lse) dev_.lse = static_cast<float*>(upload(host.lse, size_t(B * Hq * Lq) * 4));
    int32_t zero = 0;
    dev_.status = static_cast<int32_t*>(upload(&zero, 4));
  }
  ~DeviceArgs() {
    for (void* p : allocs_) cudaFree(p);
  }
  const AttentionArgs& args() const { return dev_; }
  // Copies out and lse back into the host buffers; returns the device status word.
  int32_t finish() {
    QSDPA_CUDA_CHECK(cudaDeviceSynchronize());
    QSDPA_CUDA_CHECK(cudaMemcpy(host_.out.data, dev_.out.data, extent_bytes(host_.out), cudaMemcpyDeviceToHost));
    if (host_.lse)
      QSDPA_CUDA_CHECK(cudaMemcpy(host_.lse, dev_.lse, size_t(host_.q.shape[0] * host_.q.shape[1] * host_.q.shape[2]) * 4,
                                  cudaMemcpyDeviceToHost));
    int32_t status = 0;
    QSDPA_CUDA_CHECK(cudaMemcpy(&status, dev_.status, 4, cudaMemcpyDeviceToHost));
    return status;
  }

 private:
  static size_t extent_bytes(const TensorView& t) {
    int64_t last = 0;
    for (int i = 0; i < t.rank; ++i) last += (t.shape[i] - 1) * t.strides[i];
    return size_t(last + 1) * size_t(dtype_size(t.dtype));
  }
  static size_t rows_extent(const int64_t* strides, const CacheView& c, int64_t row_bytes) {
    return size_t((c.batch - 1) * strides[0] + (c.heads - 1) * strides[1] + (c.tokens - 1) * strides[2] + row_bytes);
  }
  void* upload(const void* src, size_t bytes, size_t offset = 0) {
    void* p = nullptr;
    QSDPA_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(bytes + offset, 16)));
    allocs_.push_back(p);
    uint8_t* at = static_cast<uint8_t*>(p) + offset;
    QSDPA_CUDA_CHECK(cudaMemcpy(at, src, bytes, cudaMemcpyHostToDevice));
    return at;
  }
  AttentionArgs host_, dev_;
  std::vector<void*> allocs_;
};

}  // namespace qsdpa::tools
