// Synthetic K/V/q data for bench and eval: Gaussian, and "llm"-like keys (a few large outlier
// channels, RoPE-rotated pairs, an attention-sink token) with Gaussian values.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "qsdpa/qsdpa.hpp"

namespace qsdpa::tools {

struct Shape {
  int64_t batch = 1, hq = 32, hkv = 8, lq = 1, context = 4096, dim = 128;
};

struct Workload {
  std::vector<float> q, k, v;  // [B, Hq, Lq, D], [B, Hkv, N, D] x2
};

Workload make_workload(const Shape& s, const std::string& data, uint64_t seed);

// "f16", "mxfp8:turbo3" -> (K format, V format).
std::pair<Format, Format> parse_pair(const std::string& item);
std::vector<std::string> split_list(const std::string& s);

// The CPU model name (from /proc/cpuinfo), for result files.
std::string cpu_name();

// Views for attention over contiguous arrays.
AttentionArgs make_args(const Shape& s, const QuantizedTensor& k, const QuantizedTensor& v, float* q, float* out);

}  // namespace qsdpa::tools
