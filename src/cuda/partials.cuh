// Split-key partials and their merge, shared by the split kernels (attention_split.cu,
// attention_mma.cu). A partial is one slice of the keys of one (b, kv head): per query row
// r = i*G + g, the unnormalised output acc[D] (relative to exp(s - m)), then m and l, in f32:
// workspace layout [B, Hkv, splits, R, D + 2].
#pragma once

#include <cooperative_groups.h>
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

// ---- the merge rule, shared by the merge kernel and the split kernels' in-cluster merge ----
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
template <typename RowAt>
__device__ void store_rows(const KernelArgs& p, float* vals, const float* lse, int count, int D, int64_t b, int64_t hk,
                           RowAt row_at) {
  __syncthreads();
  if (p.vc.kind == FormatKind::turbo) rotate_rows_shared(vals, count, D, p.vc.seed, true);  // zeros stay zeros
  const int64_t Hq = p.q.shape[1], G = Hq / p.k.heads;
  for (int idx = threadIdx.x; idx < count * D; idx += blockDim.x) {
    const int64_t row = row_at(idx / D), d = idx % D;
    detail::store_float(p.out.data, p.out.dtype, p.out.offset(b, hk * G + row % G, row / G, d), vals[idx]);
  }
  if (p.lse)
    for (int k = threadIdx.x; k < count; k += blockDim.x) {
      const int64_t row = row_at(k);
      p.lse[(b * Hq + hk * G + row % G) * p.q.shape[2] + row / G] = lse[k];
    }
  __syncthreads();
}

// A row's log-sum-exp from its weights' reference and denominator.
__device__ __forceinline__ float row_lse(float top, float total) { return total != 0.0f ? top + logf(total) : -INFINITY; }

// The largest thread-block cluster the split kernels merge in (16: Hopper's non-portable limit).
constexpr int kMaxCluster = 16;

// The in-cluster merge (sm_90; elsewhere, and in launches without clusters, a cluster is one
// block). Each block of a cluster has written its partial of rows [row0, row0 + rows_here) of the
// R = `rows` of its (b, kv head) to its shared memory, part[r * (D + 2) + ...] = acc[D], m (natural
// log), l; the cluster's C blocks are consecutive splits of the same (b, kv head). Block rank c
// merges rows c, c + C, ... all at once (a warp per row finds the weights, then threads over rows
// and dims sum) over the C partials, read through distributed shared memory: if the cluster holds
// all `splits`, into the output, else into the cluster's partial, slot split / C of splits / C in
// work, which the merge kernel reads. scratch: rows_here * (D + kMaxCluster + 2) floats of shared
// memory outside part. Every thread of every block of the cluster calls it.
// Not inlined: in the kernel's body its code perturbed the register allocation of the loop before
// it (E2M1 spilled a step; session 8). p lives in the kernel's parameter space (__grid_constant__).
static __device__ __noinline__ void merge_in_cluster(const KernelArgs& p, float* part, float* scratch, int rows,
                                                     int row0, int rows_here, int D, int splits, int64_t split,
                                                     int64_t hk, int64_t b, float* work) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const cooperative_groups::cluster_group cluster = cooperative_groups::this_cluster();
  const int C = int(cluster.num_blocks()), rank = int(cluster.block_rank());
  cluster.sync();  // the peers' partials are written (the barrier releases and acquires)
  auto peer = [&](int j) { return cluster.map_shared_rank(part, j); };
#else
  constexpr int C = 1, rank = 0;
  __syncthreads();
  auto peer = [&](int) { return part; };
#endif
  const int G = int(p.q.shape[1] / p.k.heads), stride = D + 2;
  const bool final = splits == C;
  const int mine = rank < rows_here ? (rows_here - rank + C - 1) / C : 0;  // this block's rows: rank + k * C
  float* vals = scratch;                        // [mine][D]
  float* weight = vals + mine * D;              // [mine][kMaxCluster]
  float* top_of = weight + mine * kMaxCluster;  // [mine]
  float* total_of = top_of + mine;              // [mine]
  const int warps = int(blockDim.x / 32), lane = int(threadIdx.x % 32);
  for (int k = int(threadIdx.x / 32); k < mine; k += warps) {  // a warp per row, lane j: partial j
    const int r = rank + k * C, row = row0 + r;
    const float sink = final ? sink_of(p, hk * G + row % G) : -INFINITY;
    const float* src = peer(lane < C ? lane : 0) + r * stride;
    const float m = lane < C ? src[D] : -INFINITY, l = lane < C ? src[D + 1] : 0.0f;
    float top = fmaxf(m, sink);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xFFFFFFFFu, top, o));
    const float w = partial_weight(m, top);
    float total = w * l;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xFFFFFFFFu, total, o);
    if (lane < C) weight[k * kMaxCluster + lane] = w;
    if (lane == 0) top_of[k] = top, total_of[k] = total + partial_weight(sink, top);
  }
  __syncthreads();
  auto slot = [&](int r) {  // the cluster's partial of row r in work
    return work + (((b * p.k.heads + hk) * (splits / C) + split / C) * rows + row0 + r) * stride;
  };
  for (int idx = threadIdx.x; idx < mine * D; idx += blockDim.x) {
    const int k = idx / D, d = idx % D, r = rank + k * C;
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < kMaxCluster; ++j)
      if (j < C) sum += weight[k * kMaxCluster + j] * peer(j)[r * stride + d];
    if (final) vals[idx] = normalised(sum, total_of[k]);
    else slot(r)[d] = sum;
  }
  if (final) {
    for (int k = threadIdx.x; k < mine; k += blockDim.x) top_of[k] = row_lse(top_of[k], total_of[k]);
    store_rows(p, vals, top_of, mine, D, b, hk, [&](int k) { return row0 + rank + k * C; });
  } else {
    for (int k = threadIdx.x; k < mine; k += blockDim.x) {
      float* dst = slot(rank + k * C);
      dst[D] = top_of[k], dst[D + 1] = total_of[k];
    }
  }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cluster.sync();  // no block leaves while its peers may still read its shared memory
#endif
}

// Merges `splits` partials per (row, kv head, b) by log-sum-exp, adds the sink once, normalises,
// un-rotates turbo values and writes out (and LSE).
void merge_partials(const KernelArgs& p, int rows, int splits, const float* work, cudaStream_t stream);

}  // namespace qsdpa::cuda
