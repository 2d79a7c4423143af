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

// Gaussian q, K and V for the benchmarks, filled by every OpenMP thread: chunks of 2^20 values,
// each drawn by its own engine seeded from (seed, tensor, chunk), so the data depend on the seed
// alone, never on the thread count. make_workload's one engine took most of a big shape's bench
// time on the GPU machine (session 42: ~200 s for one A B round of MHA 128K, B 8 and B 32 at 32K,
// whose 1-2G values it drew at ~25 ns each). Not the same values as make_workload's "gaussian",
// which eval keeps, so that its accuracy numbers stay reproducible.
Workload make_bench_workload(const Shape& s, uint64_t seed);

// "f16", "mxfp8:turbo3" -> (K format, V format).
std::pair<Format, Format> parse_pair(const std::string& item);
std::vector<std::string> split_list(const std::string& s);

// The CPU model name (from /proc/cpuinfo), for result files.
std::string cpu_name();

// Views for attention over contiguous arrays.
AttentionArgs make_args(const Shape& s, const QuantizedTensor& k, const QuantizedTensor& v, float* q, float* out);

}  // namespace qsdpa::tools
