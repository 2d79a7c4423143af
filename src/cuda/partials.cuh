// Split-key partials and their merge, shared by the split kernels (attention_split.cu,
// attention_mma.cu). A partial is one slice of the keys of one (b, kv head): per query row
// r = i*G + g, the unnormalised output acc[D] (relative to exp(s - m)), then m and l, in f32:
// workspace layout [B, Hkv, splits, R, D + 2].
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>

#include "cuda/attention_common.cuh"
#include "cuda/check.cuh"

namespace qsdpa::cuda {

// A device buffer of at least `bytes` that grows on demand and is reused (allocating only when a
// call needs more than any call before it; that first call synchronizes, later ones do not). One per
// device: calls that overlap on different streams of a device would share it (docs/decisions.md).
float* partials_workspace(size_t bytes);

// Streaming multiprocessors of the current device (132 if the query fails), for sizing split grids.
int sm_count();

// Whether the current device is sm_90 or newer: programmatic dependent launch, thread-block clusters.
bool sm90_or_newer();

// Raises Kernel's dynamic shared-memory limit to `bytes` (above the default 48 KB) on the current
// device, once per device: the runtime applies cudaFuncSetAttribute to the current device only, so
// a process that calls attention on several GPUs needs it on each (host only).
constexpr int kMaxDevices = 64;
template <auto Kernel>
void raise_dynamic_smem(int bytes) {
  static std::atomic<bool> done[kMaxDevices] = {};
  int dev = 0;
  QSDPA_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev >= 0 && dev < kMaxDevices && done[dev].load(std::memory_order_acquire)) return;
  QSDPA_CUDA_CHECK(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  if (dev >= 0 && dev < kMaxDevices) done[dev].store(true, std::memory_order_release);
}

// Bytes of the partials for `splits` slices per (b, kv head).
size_t partials_bytes(const AttentionArgs& a, int splits);

// Where the partials go: the caller's workspace (AttentionArgs::workspace; checked for size and
// alignment, throwing qsdpa::Error) or else the shared buffer above.
float* partials_buffer(const AttentionArgs& a, size_t bytes);

// Programmatic dependent launch (sm_90+; nothing on older devices): a split kernel lets the merge
// kernel launch early, and the merge kernel waits here until the split kernel has finished and its
// writes are visible.
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void wait_for_prior_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

constexpr float kLog2e = 1.4426950408889634f;

// 2^x on the MUFU unit, flushing results below 2^-126 to zero (exp2f adds a range fix-up of three
// instructions around each MUFU.EX2; the softmax's weights that small are zero against its max of 1).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// ---- the merge rule, shared by the merge kernel and the split kernel's in-cluster merge ----
// Partials carry m in natural-log units; a row's merged value is sum_s w_s acc_s / sum_s w_s l_s
// with w_s = exp(m_s - top), top the largest m_s and the sink's logit, which adds its own weight to
// the denominator once.

// The weight of a partial (or of the sink) whose maximum is m, against the reference top.
__device__ __forceinline__ float partial_weight(float m, float top) {
  return (top == -INFINITY || m == -INFINITY) ? 0.0f : expf(m - top);
}

// The sink logit of query head h, -inf without sinks.
__device__ __forceinline__ float sink_of(const KernelArgs& p, int64_t h) { return p.sinks ? p.sinks[h] : -INFINITY; }

// sum / total, 0 for a row that saw no key (a NaN total, from a NaN score, stays NaN).
__device__ __forceinline__ float normalised(float sum, float total) { return total != 0.0f ? sum / total : 0.0f; }

// Where row `row` of the R = G * Lq of (b, kv head hk) goes (query head hk * G + row % G, query
// step row / G): its value d in the output, and its LSE.
__device__ __forceinline__ int64_t out_offset(const KernelArgs& p, int64_t b, int64_t hk, int G, int row, int d) {
  return p.out.offset(b, hk * G + row % G, row / G, d);
}
__device__ __forceinline__ int64_t lse_index(const KernelArgs& p, int64_t b, int64_t hk, int G, int row) {
  return (b * p.q.shape[1] + hk * G + row % G) * p.q.shape[2] + row / G;
}
__device__ __forceinline__ void store_out(const KernelArgs& p, int64_t b, int64_t hk, int G, int row, int d, float v) {
  detail::store_float(p.out.data, p.out.dtype, out_offset(p, b, hk, G, row, d), v);
}
__device__ __forceinline__ void store_lse(const KernelArgs& p, int64_t b, int64_t hk, int G, int row, float lse) {
  p.lse[lse_index(p, b, hk, G, row)] = lse;
}

// Writes merged query rows of (b, kv head hk): vals[k * D + d] (shared memory) holds the normalised
// values of row row_at(k) of the R = G * Lq (k < count), lse[k] its log-sum-exp (natural log).
// Un-rotates turbo values where `rotated` (all rows at once), stores out and LSE. Every thread of the block calls
// it; it begins and ends with a barrier, so callers may write vals and lse just before and reuse
// them just after.
template <typename RowAt>
__device__ void store_rows(const KernelArgs& p, float* vals, const float* lse, int count, int D, int64_t b, int64_t hk,
                           bool rotated, RowAt row_at) {
  __syncthreads();
  if (rotated && p.vc.kind == FormatKind::turbo) rotate_rows_shared(vals, count, D, p.vc.seed, true);  // zeros stay zeros
  // Row arithmetic in 32 bits (rows < G * Lq <= 2^31; the host checks): 64-bit divisions per element
  // were most of this store's instructions.
  const int G = int(p.q.shape[1] / p.k.heads);
  for (int idx = threadIdx.x; idx < count * D; idx += blockDim.x) store_out(p, b, hk, G, int(row_at(idx / D)), idx % D, vals[idx]);
  if (p.lse)
    for (int k = threadIdx.x; k < count; k += blockDim.x) store_lse(p, b, hk, G, int(row_at(k)), lse[k]);
  __syncthreads();
}

// A row's log-sum-exp from its weights' reference and denominator.
__device__ __forceinline__ float row_lse(float top, float total) { return total != 0.0f ? top + logf(total) : -INFINITY; }

// The largest thread-block cluster the split kernel merges in (16: Hopper's non-portable limit).
constexpr int kMaxCluster = 16;

// The in-cluster merge of the split kernel (attention_mma.cuh): recv[(j * slot_rows + k) * stride +
// ...] = acc[D], m (natural log), l of split j < C for the block's k-th row, row rank + k * C of the
// R (k < mine). Writes those rows of the output (and LSE), adding the sink once. A thread per (row,
// dim) takes the C partials' m and l itself and stores its value, with no barrier and no scratch
// (session 13). Turbo values arrive un-rotated (the pushing blocks un-rotate their partials;
// session 18). Every thread of the owner block calls it; `wait` returns once every partial has
// arrived. This is the last thing a short call does, on its critical path (session 18's probe:
// 1.2 us from the receive to the merge's end at 1K), so what does not need the partials (the
// head's G, the row's indices, output offset and sink) is computed before the wait, and the C
// partials' loads go out together, eight at a time, with no branch per partial.
template <int D, typename Wait>
__device__ inline void merge_received_rows_direct(const KernelArgs& p, const float* recv, int stride, int C, int slot_rows,
                                                  int rank, int mine, int64_t b, int64_t hk, Wait wait) {
  const int G = int(p.q.shape[1] / p.k.heads);
  int idx = int(threadIdx.x);
  if (idx >= mine * D) return;  // nothing to read or write
  struct At {
    int k, d, row;
    float sink;
    int64_t out, lse;
  };
  auto at = [&](int i) {
    At a;
    a.k = i / D, a.d = i - a.k * D, a.row = rank + a.k * C;
    a.sink = sink_of(p, int(hk) * G + a.row % G);
    a.out = out_offset(p, b, hk, G, a.row, a.d);
    a.lse = lse_index(p, b, hk, G, a.row);
    return a;
  };
  At a = at(idx);
  wait();
  // Eight partials at a time (a cluster has at most 8 in the split rules but for B > 1), each
  // chunk's loads issued together and predicated, no branch per partial (an empty partial's m is
  // -inf, so its weight exp(m - top) is 0, as partial_weight's).
  constexpr int kChunk = 8;
  float m[kChunk], l[kChunk], v[kChunk];
  for (;;) {
    auto load = [&](int j0) {
#pragma unroll
      for (int j = 0; j < kChunk; ++j) {
        const bool in = j0 + j < C;
        const float* src = recv + ((j0 + j) * slot_rows + a.k) * stride;
        m[j] = in ? src[D] : -INFINITY;
        l[j] = in ? src[D + 1] : 0.0f;
        v[j] = in ? src[a.d] : 0.0f;
      }
    };
    load(0);
    float top = a.sink;
#pragma unroll
    for (int j = 0; j < kChunk; ++j) top = fmaxf(top, m[j]);
    for (int j0 = kChunk; j0 < C; ++j0) top = fmaxf(top, recv[(j0 * slot_rows + a.k) * stride + D]);
    const float base = top == -INFINITY ? 0.0f : top;
    float total = a.sink == -INFINITY ? 0.0f : expf(a.sink - base), sum = 0.0f;
    for (int j0 = 0;;) {
#pragma unroll
      for (int j = 0; j < kChunk; ++j) {
        const float w = expf(m[j] - base);
        total += w * l[j];
        sum += w * v[j];
      }
      j0 += kChunk;
      if (j0 >= C) break;
      load(j0);
    }
    detail::store_float(p.out.data, p.out.dtype, a.out, normalised(sum, total));
    if (a.d == 0 && p.lse) p.lse[a.lse] = row_lse(top, total);
    idx += int(blockDim.x);
    if (idx >= mine * D) return;
    a = at(idx);
  }
}

// Merges `splits` partials per (row, kv head, b) by log-sum-exp, adds the sink once, normalises,
// un-rotates turbo values where `rotated` (the split kernel left them rotated) and writes out (and
// LSE).
void merge_partials(const KernelArgs& p, int rows, int splits, const float* work, bool rotated, cudaStream_t stream);

}  // namespace qsdpa::cuda
