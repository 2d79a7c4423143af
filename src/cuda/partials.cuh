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

// Writes one merged query row (b, h, i): row[D] (shared memory) holds its normalised values, top and
// total the reference and denominator of its weights. Un-rotates turbo values, stores out and LSE.
// Every thread of the block calls it; it begins and ends with a barrier, so callers may write row
// just before and reuse it just after.
__device__ inline void store_row(const KernelArgs& p, float* row, int D, float top, float total, int64_t b, int64_t h,
                                 int64_t i) {
  __syncthreads();
  if (p.vc.kind == FormatKind::turbo && total != 0.0f) rotate_shared(row, D, p.vc.seed, true);
  for (int d = threadIdx.x; d < D; d += blockDim.x) detail::store_float(p.out.data, p.out.dtype, p.out.offset(b, h, i, d), row[d]);
  if (p.lse && threadIdx.x == 0) p.lse[(b * p.q.shape[1] + h) * p.q.shape[2] + i] = total != 0.0f ? top + logf(total) : -INFINITY;
  __syncthreads();
}

// The largest thread-block cluster the split kernels merge in (16: Hopper's non-portable limit).
constexpr int kMaxCluster = 16;

// The in-cluster merge (sm_90; elsewhere, and in launches without clusters, a cluster is one
// block). Each block of a cluster has written its partial of rows [row0, row0 + rows_here) of the
// R = `rows` of its (b, kv head) to its shared memory, part[r * (D + 2) + ...] = acc[D], m (natural
// log), l; the cluster's C blocks are consecutive splits of the same (b, kv head). Block rank c
// merges rows c, c + C, ... over the C partials, read through distributed shared memory: if the
// cluster holds all `splits`, into the output (through scratch, D floats of shared memory outside
// part), else into the cluster's partial, slot split / C of splits / C in work, which the merge
// kernel reads. Every thread of every block of the cluster calls it.
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
  __shared__ float weight[kMaxCluster], top_total[2];
  for (int r = rank; r < rows_here; r += C) {  // uniform across the block
    const int row = row0 + r;
    const int64_t i = row / G, h = hk * G + row % G;
    if (threadIdx.x < 32) {  // lane j: the weight of partial j
      const int j = int(threadIdx.x);
      const float sink = final ? sink_of(p, h) : -INFINITY;
      const float* src = peer(j < C ? j : 0) + r * stride;
      const float m = j < C ? src[D] : -INFINITY, l = j < C ? src[D + 1] : 0.0f;
      float top = fmaxf(m, sink);
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xFFFFFFFFu, top, o));
      const float w = partial_weight(m, top);
      float total = w * l;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xFFFFFFFFu, total, o);
      if (j < C) weight[j] = w;
      if (j == 0) top_total[0] = top, top_total[1] = total + partial_weight(sink, top);
    }
    __syncthreads();
    const float top = top_total[0], total = top_total[1];
    float* dst = final ? scratch : work + (((b * p.k.heads + hk) * (splits / C) + split / C) * rows + row) * stride;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
      float sum = 0.0f;
#pragma unroll
      for (int j = 0; j < kMaxCluster; ++j)
        if (j < C) sum += weight[j] * peer(j)[r * stride + d];
      dst[d] = final ? normalised(sum, total) : sum;
    }
    if (final) store_row(p, scratch, D, top, total, b, h, i);
    else if (threadIdx.x == 0) dst[D] = top, dst[D + 1] = total;
    __syncthreads();  // weight and top_total are rewritten by the next row
  }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cluster.sync();  // no block leaves while its peers may still read its shared memory
#endif
}

// Merges `splits` partials per (row, kv head, b) by log-sum-exp, adds the sink once, normalises,
// un-rotates turbo values and writes out (and LSE).
void merge_partials(const KernelArgs& p, int rows, int splits, const float* work, cudaStream_t stream);

}  // namespace qsdpa::cuda
