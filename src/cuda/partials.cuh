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

// Merges `splits` partials per (row, kv head, b) by log-sum-exp, adds the sink once, normalises,
// un-rotates turbo values and writes out (and LSE).
void merge_partials(const KernelArgs& p, int rows, int splits, const float* work, cudaStream_t stream);

}  // namespace qsdpa::cuda
