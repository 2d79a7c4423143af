// The merge of split-key partials (see partials.cuh): one block of 512 threads per
// (query row, kv head, b); it reads splits * (D + 2) floats, a few percent of the cache bytes the
// split kernels stream at decode sizes, so it is bound by load latency, not bandwidth: the threads
// split the sum over splits into slices with 4 loads in flight each. Measured on the H100 (B=1,
// Hq=32, Hkv=8, D=128, 66 splits): 26 us with 128 threads and one loop per dim (ncu), before this;
// with it, ncu (base clocks) shows 9 us at 128K and 6.9 us at 1K (8 splits), mostly launch and
// latency. Since session 4 the merge is a programmatic dependent launch (sm_90): it starts while
// the split kernel runs and waits for it, taking its launch off the critical path (1K: 13-15 ->
// 11-12 us per call, with more blocks at short contexts, attention_mma.cu). Session 5 issues all of
// a thread's first loads at once, before the reductions: 9.5 -> 7.7 us (ncu, 128K, 32 blocks).
// Session 6 tried one 128-thread block per (row, 32 dims), 4x the blocks: no faster in the graph
// (f16 128K 137 -> 135 us, mxfp4 79 -> 80 on the H200) and slower for turbo's whole rows, so this
// kernel stayed. ncu's numbers above come with cold caches (ncu flushes them between replays); in a
// call the partials are in L2 and the merge costs far less than they suggest.
#include "cuda/partials.cuh"

#include <atomic>
#include <mutex>
#include <string>

#include "cuda/check.cuh"
#include "cuda/device.hpp"
#include "cuda/phase_times.cuh"

namespace qsdpa::cuda {
namespace {

constexpr int kMergeThreads = 512;

// Block-wide reduction of one float per thread (max or sum); every thread gets the result.
template <bool Max>
__device__ float block_reduce(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xFFFFFFFFu, v, o);
    v = Max ? fmaxf(v, other) : v + other;
  }
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  v = scratch[0];
  for (int w = 1; w < kMergeThreads / 32; ++w) v = Max ? fmaxf(v, scratch[w]) : v + scratch[w];
  __syncthreads();
  return v;
}

// Weights exp(m_s - top) of every split go to shared memory once; then each thread sums its dims
// over the splits with loads that are coalesced across threads. The kernel is bound by load
// latency (it reads a few percent of what the split kernel streamed), so every load of the first
// pass is issued at once, before the reductions: the partials' m and l, and kHeld values of each
// thread's (dim, slice of the splits).
// One block per SM is all its grids need (B * Hkv * rows blocks); the bound lets ptxas keep 92
// registers (it had capped the kernel at 64 and spilled once the turbo rotation went warp-per-row).
__global__ void __launch_bounds__(kMergeThreads, 1) merge_kernel(KernelArgs p, int rows, int splits, const float* work) {
  constexpr int kHeld = 16;
  const int64_t r = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
  const int64_t D = p.q.shape[3], Hq = p.q.shape[1], G = Hq / p.k.heads;
  const int64_t h = hk * G + r % G;
  extern __shared__ float weight[];  // [splits]
  __shared__ float row[512];
  __shared__ float scratch[kMergeThreads / 32];
  const int64_t stride = int64_t(rows) * (D + 2);
  const float* w = work + (b * p.k.heads + hk) * splits * stride + r * (D + 2);
  // Thread = (dim, slice of the splits); slices summed through shared memory at the end.
  const int slices = D >= kMergeThreads ? 1 : kMergeThreads / int(D);
  const int dims_per_pass = kMergeThreads / slices, slice = threadIdx.x / dims_per_pass;
  // phase_times.cuh (experiments only): the bench's unfused f32 calls, which also merge, are left out.
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 0);
  wait_for_prior_grid();  // launched early (programmatic dependent launch): the partials come now
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 1);
  float held[kHeld];
  {
    const int64_t d = threadIdx.x % dims_per_pass;
#pragma unroll
    for (int k = 0; k < kHeld; ++k) {
      const int s = slice + k * slices;
      held[k] = s < splits && d < D ? w[s * stride + d] : 0.0f;
    }
  }
  const bool mine = int(threadIdx.x) < splits;
  const float my_m = mine ? w[threadIdx.x * stride + D] : -INFINITY, my_l = mine ? w[threadIdx.x * stride + D + 1] : 0.0f;
  float top = my_m;
  for (int s = threadIdx.x + kMergeThreads; s < splits; s += kMergeThreads) top = fmaxf(top, w[s * stride + D]);
  top = block_reduce<true>(top, scratch);
  const float sink = sink_of(p, h);
  top = fmaxf(top, sink);
  float part = 0.0f;
  if (mine) {
    const float e = partial_weight(my_m, top);
    weight[threadIdx.x] = e;
    part = e * my_l;
  }
  for (int s = threadIdx.x + kMergeThreads; s < splits; s += kMergeThreads) {
    const float e = partial_weight(w[s * stride + D], top);
    weight[s] = e;
    part += e * w[s * stride + D + 1];
  }
  float total = block_reduce<false>(part, scratch);  // also orders the weight writes before their reads
  total += partial_weight(sink, top);
  __shared__ float slice_sum[kMergeThreads];
  for (int64_t d0 = 0; d0 < D; d0 += kMergeThreads) {
    const int64_t d = d0 + threadIdx.x % dims_per_pass;
    float o[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (total != 0.0f && d < D) {
      int s = slice;
      if (d0 == 0) {
#pragma unroll
        for (int k = 0; k < kHeld; ++k)
          if (slice + k * slices < splits) o[k % 4] += weight[slice + k * slices] * held[k];
        s += kHeld * slices;
      }
      for (; s + 3 * slices < splits; s += 4 * slices)
#pragma unroll
        for (int u = 0; u < 4; ++u) o[u] += weight[s + u * slices] * w[(s + u * slices) * stride + d];
      for (; s < splits; s += slices) o[0] += weight[s] * w[s * stride + d];
    }
    slice_sum[threadIdx.x] = (o[0] + o[1]) + (o[2] + o[3]);
    __syncthreads();
    if (slice == 0 && d < D) {
      float sum = 0.0f;
      for (int k = 0; k < slices; ++k) sum += slice_sum[threadIdx.x + k * dims_per_pass];
      row[d] = normalised(sum, total);
    }
    __syncthreads();
  }
  __shared__ float lse;
  if (threadIdx.x == 0) lse = row_lse(top, total);
  store_rows(p, row, &lse, 1, int(D), b, hk, [&](int) { return r; });
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 2);
}

// One block per query row: weights exp(lse_r - top) over the shards, then the weighted sum per dim.
__global__ void __launch_bounds__(128) shard_merge_kernel(const uint8_t* parts, int world, size_t part_bytes,
                                                          size_t lse_offset, TensorView out, const float* sinks,
                                                          float* lse, int64_t Hq, int64_t Lq, int64_t D) {
  const int64_t row = blockIdx.x, b = row / (Hq * Lq), h = (row / Lq) % Hq, i = row % Lq;
  auto shard_lse = [&](int r) { return reinterpret_cast<const float*>(parts + r * part_bytes + lse_offset)[row]; };
  float top = sinks ? sinks[h] : -INFINITY;
  for (int r = 0; r < world; ++r) top = fmaxf(top, shard_lse(r));
  float total = 0.0f;
  if (top != -INFINITY) {
    if (sinks) total = expf(sinks[h] - top);
    for (int r = 0; r < world; ++r) {
      const float l = shard_lse(r);
      if (l != -INFINITY) total += expf(l - top);
    }
  }
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    float o = 0.0f;
    if (total > 0.0f)
      for (int r = 0; r < world; ++r) {
        const float l = shard_lse(r);
        if (l != -INFINITY) o += expf(l - top) * detail::load_float(parts + r * part_bytes, out.dtype, row * D + d);
      }
    detail::store_float(out.data, out.dtype, out.offset(b, h, i, d), total > 0.0f ? o / total : 0.0f);
  }
  if (lse && threadIdx.x == 0) lse[row] = total > 0.0f ? top + logf(total) : -INFINITY;
}

}  // namespace

void merge_shards(const uint8_t* parts, int world, size_t part_bytes, const AttentionArgs& a, cudaStream_t stream) {
  const int64_t Hq = a.q.shape[1], Lq = a.q.shape[2], D = a.q.shape[3], rows = a.q.shape[0] * Hq * Lq;
  const size_t lse_offset = size_t(rows * D) * size_t(dtype_size(a.q.dtype));
  shard_merge_kernel<<<unsigned(rows), 128, 0, stream>>>(parts, world, part_bytes, lse_offset, a.out, a.sinks, a.lse,
                                                         Hq, Lq, D);
  QSDPA_CUDA_CHECK(cudaGetLastError());
}

float* partials_workspace(size_t bytes) {
  static std::mutex mu;
  static void* ptr = nullptr;
  static size_t size = 0;
  std::lock_guard<std::mutex> lock(mu);
  if (bytes > size) {
    if (ptr) QSDPA_CUDA_CHECK(cudaFree(ptr));
    QSDPA_CUDA_CHECK(cudaMalloc(&ptr, bytes));
    size = bytes;
  }
  return static_cast<float*>(ptr);
}

// A device attribute, asked once per device: the call's host work is part of every decode step's
// latency. `fallback` where the query fails.
template <cudaDeviceAttr Attr>
static int cached_attribute(int fallback) {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cached[kMaxDevices] = {};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) return fallback;
  int value = cached[dev].load(std::memory_order_relaxed);
  if (value == 0) {
    if (cudaDeviceGetAttribute(&value, Attr, dev) != cudaSuccess || value <= 0) value = fallback;
    cached[dev].store(value, std::memory_order_relaxed);
  }
  return value;
}

int sm_count() { return cached_attribute<cudaDevAttrMultiProcessorCount>(132); }

size_t partials_bytes(const AttentionArgs& a, int splits) {
  const int64_t B = a.q.shape[0], Hkv = a.k.heads, rows = a.q.shape[1] / Hkv * a.q.shape[2], D = a.q.shape[3];
  return size_t(B * Hkv * splits) * size_t(rows) * size_t(D + 2) * sizeof(float);
}

float* partials_buffer(const AttentionArgs& a, size_t bytes) {
  if (!a.workspace) return partials_workspace(bytes);
  if (a.workspace_bytes < bytes)
    throw Error("attention: workspace: expected at least " + std::to_string(bytes) +
                " bytes (attention_workspace_bytes), got " + std::to_string(a.workspace_bytes));
  if (reinterpret_cast<uintptr_t>(a.workspace) % 16 != 0)
    throw Error("attention: workspace: device pointers must be 16-byte aligned");
  return static_cast<float*>(a.workspace);
}

bool sm90_or_newer() { return cached_attribute<cudaDevAttrComputeCapabilityMajor>(1) >= 9; }

void merge_partials(const KernelArgs& p, int rows, int splits, const float* work, cudaStream_t stream) {
  const unsigned B = unsigned(p.q.shape[0]), Hkv = unsigned(p.k.heads);
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(unsigned(rows), Hkv, B);
  config.blockDim = dim3(kMergeThreads);
  config.dynamicSmemBytes = size_t(splits) * sizeof(float);
  config.stream = stream;
  // Programmatic dependent launch (sm_90): the merge is launched while the split kernel runs and
  // waits in wait_for_prior_grid, so its launch latency leaves the critical path (a few us, most
  // of a short-context call).
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  if (sm90_or_newer()) {
    config.attrs = attr;
    config.numAttrs = 1;
  }
  QSDPA_PHASE_HOST("the merge kernel");
  QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, merge_kernel, p, rows, splits, work));
  QSDPA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace qsdpa::cuda
