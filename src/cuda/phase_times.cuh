// Where a call's time goes inside its blocks: an experiment's probe, compiled only with
// -DQSDPA_PHASE_TIMES (stage "phases" of scripts/gpu-check.sh), never in a release build.
//
// Marks 0-6 are listed in docs/gpu-tests.md (session 9); mark 7 (session 13): the block's last warp
// done with its loop (its partial in shared memory); mark 8 (session 14): a cluster owner has
// received every partial of its rows (its mbarrier's wait returned). (Session 16's probe had a mark
// 9 after turbo's rotation pass, which is now part of q's staging, before mark 1.) Mark 9 (session
// 23): the split kernel's wait for the kernel before it (programmatic dependent launch) has ended,
// so that the prologue's own time is mark 1 minus mark 9.
// Thread 0 of every block records the GPU's global timer (ns, comparable across SMs) and its SM's
// cycle counter (finer, comparable only within the block) at numbered marks; at process exit the
// latest call's marks are printed per mark as the spread over blocks: when blocks reach it (from the
// first block's start) and how long after their own start; and, per SM, when its last block
// reached marks 3 and 5 (in the split kernel: its loop's end, its partial stored). Each
// translation unit keeps its own arrays (internal linkage), so each kernel file prints its own table.
#pragma once

#ifdef QSDPA_PHASE_TIMES
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace qsdpa::cuda::phase {
namespace {

constexpr int kMaxBlocks = 8192, kMarks = 10;
__device__ unsigned long long g_ns[kMaxBlocks][kMarks];
__device__ long long g_clk[kMaxBlocks][kMarks];
__device__ unsigned g_grid;  // blocks of the latest launch
__device__ unsigned g_sm[kMaxBlocks];  // the SM each block ran on

__device__ __forceinline__ void mark(int i) {
  if (threadIdx.x != 0) return;
  const unsigned id = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  if (id >= kMaxBlocks) return;
  unsigned long long ns;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(ns));
  g_ns[id][i] = ns;
  g_clk[id][i] = clock64();
  if (i == 0) {
    unsigned sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    g_sm[id] = sm;
  }
  if (i == 0 && id == 0) g_grid = gridDim.x * gridDim.y * gridDim.z;
}

const char* g_label = "";

void dump() {
  unsigned grid = 0;
  if (cudaMemcpyFromSymbol(&grid, g_grid, sizeof grid) != cudaSuccess || grid == 0) return;
  grid = std::min<unsigned>(grid, kMaxBlocks);
  std::vector<unsigned long long> ns(size_t(kMaxBlocks) * kMarks);
  std::vector<long long> clk(size_t(kMaxBlocks) * kMarks);
  if (cudaMemcpyFromSymbol(ns.data(), g_ns, ns.size() * sizeof(ns[0])) != cudaSuccess ||
      cudaMemcpyFromSymbol(clk.data(), g_clk, clk.size() * sizeof(clk[0])) != cudaSuccess)
    return;
  unsigned long long t0 = ~0ull;
  for (unsigned b = 0; b < grid; ++b) t0 = std::min(t0, ns[b * kMarks]);
  auto q = [](const auto& v, double f) { return v[size_t(f * double(v.size() - 1) + 0.5)]; };  // quantile
  std::fprintf(stderr, "phase times of %s: %u blocks, first start at %llu ns\n", g_label, grid, t0);
  std::fprintf(stderr, "  mark  blocks  reached (us from first start: min p10 p50 p90 max)  since own start (cycles: p50 p90 max)\n");
  for (int m = 0; m < kMarks; ++m) {
    std::vector<double> at;
    std::vector<long long> since;
    for (unsigned b = 0; b < grid; ++b) {
      const unsigned long long t = ns[b * kMarks + m];
      if (t < t0 || ns[b * kMarks] == 0) continue;  // not reached in the latest launch
      at.push_back(double(t - t0) * 1e-3);
      since.push_back(clk[b * kMarks + m] - clk[b * kMarks]);
    }
    if (at.empty()) continue;
    std::sort(at.begin(), at.end());
    std::sort(since.begin(), since.end());
    std::fprintf(stderr, "  %4d  %6zu  %6.2f %6.2f %6.2f %6.2f %6.2f            %8lld %8lld %8lld\n", m, at.size(), q(at, 0.0),
                 q(at, 0.1), q(at, 0.5), q(at, 0.9), q(at, 1.0), q(since, 0.5), q(since, 0.9), q(since, 1.0));
  }
  // Every block's marks (µs from the first start, -1 where not reached) and SM, to a CSV file per
  // kernel in the folder QSDPA_PHASE_CSV names, for analyses the summary cannot do (session 24:
  // loop ends by launch rank).
  std::vector<unsigned> sm(kMaxBlocks);
  if (cudaMemcpyFromSymbol(sm.data(), g_sm, sm.size() * sizeof(sm[0])) != cudaSuccess) return;
  if (const char* dir = std::getenv("QSDPA_PHASE_CSV")) {
    std::string name = std::string(dir) + "/" + g_label + ".csv";
    for (char& ch : name) ch = ch == ' ' ? '_' : ch;
    if (FILE* f = std::fopen(name.c_str(), "w")) {
      std::fprintf(f, "block,sm");
      for (int m = 0; m < kMarks; ++m) std::fprintf(f, ",m%d", m);
      std::fprintf(f, "\n");
      for (unsigned b = 0; b < grid; ++b) {
        std::fprintf(f, "%u,%u", b, sm[b]);
        for (int m = 0; m < kMarks; ++m) {
          const unsigned long long t = ns[b * kMarks + m];
          std::fprintf(f, ",%.3f", t < t0 || ns[b * kMarks] == 0 ? -1.0 : double(t - t0) * 1e-3);
        }
        std::fprintf(f, "\n");
      }
      std::fclose(f);
    }
  }
  // Per SM: when its last block reached a mark. A spread as wide as the blocks' says the SMs, not
  // the blocks beside each other on one SM, finish unevenly (what more waves of blocks would even).
  for (int m : {3, 5}) {
    std::vector<double> last(1024, -1.0);
    std::vector<int> blocks(1024, 0);
    for (unsigned b = 0; b < grid; ++b) {
      const unsigned long long t = ns[b * kMarks + m];
      if (t < t0 || ns[b * kMarks] == 0 || sm[b] >= 1024) continue;
      last[sm[b]] = std::max(last[sm[b]], double(t - t0) * 1e-3);
      ++blocks[sm[b]];
    }
    std::vector<double> at;
    std::vector<int> counts;
    for (size_t i = 0; i < last.size(); ++i)
      if (last[i] >= 0.0) at.push_back(last[i]), counts.push_back(blocks[i]);
    if (at.empty()) continue;
    std::sort(at.begin(), at.end());
    std::sort(counts.begin(), counts.end());
    std::fprintf(stderr, "  per SM, last block at mark %d: %zu SMs, %6.2f %6.2f %6.2f %6.2f %6.2f us; blocks per SM %d..%d\n", m,
                 at.size(), q(at, 0.0), q(at, 0.1), q(at, 0.5), q(at, 0.9), q(at, 1.0), counts.front(), counts.back());
  }
}

// Called by the host before each launch; prints at exit (once per translation unit).
void at_exit_print(const char* label) {
  static const bool registered = [] { return std::atexit(dump) == 0; }();
  (void)registered;
  g_label = label;
}

}  // namespace
}  // namespace qsdpa::cuda::phase

#define QSDPA_PHASE(i) ::qsdpa::cuda::phase::mark(i)
#define QSDPA_PHASE_IF(cond, i) ((cond) ? ::qsdpa::cuda::phase::mark(i) : (void)0)
#define QSDPA_PHASE_HOST(label) ::qsdpa::cuda::phase::at_exit_print(label)
#else
#define QSDPA_PHASE(i) ((void)0)
#define QSDPA_PHASE_IF(cond, i) ((void)0)
#define QSDPA_PHASE_HOST(label) ((void)0)
#endif
