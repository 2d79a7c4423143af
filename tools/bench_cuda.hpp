// The GPU side of `qsdpa bench` (compiled only with the CUDA backend).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "workloads.hpp"

namespace qsdpa::tools {

struct CudaBenchRow {
  Format k, v;
  int64_t context;
  double time_us;  // per call, the batch replayed from a CUDA graph (GPU time; SPEC §5 events)
  int64_t bytes;
  double f16_time_us, unfused_time_us;
  std::string kernel;  // the kernel attention() chose (cuda::kernel_name)
  double append_us;    // one append() of one new token of K and V per sequence (NaN if it failed)
  double eager_us;     // per call, back-to-back eager calls (host work per call included)
  int copies;          // rotating cache copies the batch cycles through (together > 2x the L2; at least 2)
  int batch_calls;     // calls per timed graph replay (at least 8 unless QSDPA_BENCH_MIN_BATCH says less)
  double sm_clock_mhz; // the SM clock right after the row's timing (cuda::sm_clock_mhz; NaN if it failed)
  bool gated;          // timed behind cuda::HostGate ("cuda-graph-gated"; QSDPA_BENCH_NO_GATE=1: "cuda-graph")
};

struct CudaBenchResult {
  std::string device_name;
  double peak_gbps = 0;  // device-to-device copy, bytes read + written
  std::vector<CudaBenchRow> rows;
};

CudaBenchResult run_cuda_bench(const Shape& shape, const std::vector<int64_t>& contexts,
                               const std::vector<std::pair<Format, Format>>& pairs, int reps, bool verbose);

}  // namespace qsdpa::tools
