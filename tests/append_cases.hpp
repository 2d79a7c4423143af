// The append check shared by the CPU and CUDA suites: random new rows are appended into poisoned
// caches at two positions per batch, and every byte must equal what `quantize` writes for the same
// rows, with every other row untouched.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "qsdpa/qsdpa.hpp"

namespace qsdpa::test {

// A cache in host memory: its byte arrays and a view of them.
struct HostCache {
  std::vector<uint8_t> codes, scales, biases;
  float tensor_scale = 1.0f;
  CacheView view;
};

// Runs an append whose caches, rows and positions are in host memory (the CUDA runner copies them to
// the device and the cache bytes back); returns the status bits.
using AppendRunner = std::function<int32_t(const TensorView& k_new, const TensorView& v_new, HostCache& k, HostCache& v,
                                           const std::vector<int64_t>& positions)>;

::testing::AssertionResult check_append(const std::string& pair, const AppendRunner& run);

}  // namespace qsdpa::test
