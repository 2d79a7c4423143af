// Split-key partials and their merge, shared by the split kernels (attention_split.cu,
// attention_mma.cu). A partial is one slice of the keys of one (b, kv head): per query row
// r = i*G + g, the unnormalised output acc[D] (relative to exp(s - m)), then m and l, in f32:
// workspace layout [B, Hkv, splits, R, D + 2].
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "cuda/attention_common.cuh"

namespace qsdpa::cuda {

// A device buffer of at least `bytes` that grows on demand and is reused (allocating only when a
// call needs more than any call before it; that first call synchronizes, later ones do not). One per
// process: calls that overlap on different streams would share it (docs/decisions.md).
float* partials_workspace(size_t bytes);

// Streaming multiprocessors of the current device (132 if the query fails), for sizing split grids.
int sm_count();

// Whether the current device is sm_90 or newer: programmatic dependent launch, thread-block clusters.
bool sm90_or_newer();

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

// Writes merged query rows of (b, kv head hk): vals[k * D + d] (shared memory) holds the normalised
// values of row row_at(k) of the R = G * Lq (k < count), lse[k] its log-sum-exp (natural log).
// Un-rotates turbo values (all rows at once), stores out and LSE. Every thread of the block calls
// it; it begins and ends with a barrier, so callers may write vals and lse just before and reuse
// them just after.
// One value of the output, row `row` of the R = G * Lq of (b, kv head hk), and one row's LSE.
__device__ __forceinline__ void store_out(const KernelArgs& p, int64_t b, int64_t hk, int G, int row, int d, float v) {
  detail::store_float(p.out.data, p.out.dtype, p.out.offset(b, hk * G + row % G, row / G, d), v);
}
__device__ __forceinline__ void store_lse(const KernelArgs& p, int64_t b, int64_t hk, int G, int row, float lse) {
  p.lse[(b * p.q.shape[1] + hk * G + row % G) * p.q.shape[2] + row / G] = lse;
}

template <typename RowAt>
__device__ void store_rows(const KernelArgs& p, float* vals, const float* lse, int count, int D, int64_t b, int64_t hk,
                           RowAt row_at) {
  __syncthreads();
  if (p.vc.kind == FormatKind::turbo) rotate_rows_shared(vals, count, D, p.vc.seed, true);  // zeros stay zeros
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

// The in-cluster merge of the split kernel (attention_mma.cuh), once every partial of this block's
// rows has arrived in its shared memory: recv[(j * slot_rows + k) * stride + ...] = acc[D], m
// (natural log), l of split j < C for the block's k-th row, row rank + k * C of the R (k < mine).
// Writes those rows of the output (and LSE), adding the sink once. A thread per (row, dim) takes
// the C partials' m and l itself and stores its value, with no barrier and no scratch (session 13's
// probe at 1K: the owner's merge ended 1.2-1.5 us after the last push, behind five barriers and a
// warp per row's shuffles). Turbo values arrive un-rotated (the pushing blocks un-rotate their
// partials; session 18). Called after the receive wait; every thread of the owner block calls it.
__device__ inline void merge_received_rows_direct(const KernelArgs& p, const float* recv, int stride, int C, int slot_rows,
                                                  int rank, int mine, int D, int64_t b, int64_t hk) {
  const int G = int(p.q.shape[1] / p.k.heads);
  for (int idx = threadIdx.x; idx < mine * D; idx += blockDim.x) {
    const int k = idx / D, d = idx - k * D, row = rank + k * C;
    const float sink = sink_of(p, hk * G + row % G);
    float top = sink;
    for (int j = 0; j < C; ++j) top = fmaxf(top, recv[(j * slot_rows + k) * stride + D]);
    float total = partial_weight(sink, top), sum = 0.0f;
    for (int j = 0; j < C; ++j) {
      const float* src = recv + (j * slot_rows + k) * stride;
      const float w = partial_weight(src[D], top);
      total += w * src[D + 1];
      sum += w * src[d];
    }
    store_out(p, b, hk, G, row, d, normalised(sum, total));
    if (d == 0 && p.lse) store_lse(p, b, hk, G, row, row_lse(top, total));
  }
}

// Merges `splits` partials per (row, kv head, b) by log-sum-exp, adds the sink once, normalises,
// un-rotates turbo values and writes out (and LSE).
void merge_partials(const KernelArgs& p, int rows, int splits, const float* work, cudaStream_t stream);

}  // namespace qsdpa::cuda
