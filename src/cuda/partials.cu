// The merge of split-key partials (see partials.cuh). It reads splits * (D + 2) floats per row, a
// few percent of the cache bytes the split kernels stream at decode sizes, so it is bound by the
// latency of its loads, not by bandwidth, and it runs after the split kernel on every call's
// critical path. Since session 4 it is a programmatic dependent launch (sm_90): launched while the
// split kernel runs, it waits for it in wait_for_prior_grid, which takes its launch off that path.
// History (H100, B=1, Hq=32, Hkv=8, D=128, ncu at base clocks): 128 threads and one loop per dim,
// 26 us at 128K; one block of 512 threads per row (32 blocks) with slices of the splits, 9 us at
// 128K and 6.9 us at 1K; its first loads issued at once, 7.7 us at 128K (session 5), each block
// ~7500 cycles of load latency and block-wide reductions on one SM. Session 6: one block of 128
// threads per (row, 32 dims), 4x the blocks (128 at B=1), warp-level reductions of m and l, one
// barrier. A first version looped over the splits, 4 loads in flight a thread: ~5 dependent
// rounds of loads, and every call got 2-7 us slower (H200); all loads now go in one round.
#include "cuda/partials.cuh"

#include <atomic>
#include <mutex>
#include <string>

#include "cuda/check.cuh"
#include "cuda/device.hpp"

namespace qsdpa::cuda {
namespace {

constexpr int kMergeThreads = 128;
constexpr int kMergeWarps = kMergeThreads / 32;
constexpr int kMaxDim = 512;

// One block per (query row, 32-dim chunk, kv head, b); turbo rows, whose inverse rotation mixes
// every dim, take the whole row in one block (a round per 32 dims). Thread (lane, warp) sums dim
// lane of its chunk over the splits s = warp mod 4. The kernel is bound by the latency of its
// loads (the partials sit in L2), so a thread issues all of them in one round before any
// arithmetic: the splits' m and l for the warp-level reductions (lanes over splits, then
// shuffles: no block-wide barrier), and for kHeld of its splits both m and the value; splits
// beyond 4 * kHeld take a loop. One barrier adds the 4 warps' sums.
__global__ void __launch_bounds__(kMergeThreads) merge_kernel(KernelArgs p, int rows, int splits, const float* work,
                                                              int chunks) {
  constexpr int kStats = 4, kHeld = 24;
  const int64_t r = blockIdx.x / chunks, hk = blockIdx.y, b = blockIdx.z;
  const int chunk = int(blockIdx.x % chunks);
  const int64_t Lq = p.q.shape[2], D = p.q.shape[3], Hq = p.q.shape[1], G = Hq / p.k.heads;
  const int64_t i = r / G, h = hk * G + r % G;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int width = int(D) / chunks, d0 = chunk * width;  // this block's dims
  __shared__ float part[kMergeWarps][kMaxDim];
  __shared__ float row[kMaxDim];
  const int64_t stride = int64_t(rows) * (D + 2);
  const float* w = work + (b * p.k.heads + hk) * splits * stride + r * (D + 2);
  wait_for_prior_grid();  // launched early (programmatic dependent launch): the partials come now

  float ms[kStats], ls[kStats], held_m[kHeld], held_x[kHeld];
#pragma unroll
  for (int u = 0; u < kStats; ++u) {
    const int s = lane + 32 * u;
    ms[u] = s < splits ? w[s * stride + D] : -INFINITY;
    ls[u] = s < splits ? w[s * stride + D + 1] : 0.0f;
  }
  auto load_held = [&](int d) {
#pragma unroll
    for (int k = 0; k < kHeld; ++k) {
      const int s = warp + kMergeWarps * k;
      held_m[k] = s < splits ? w[s * stride + D] : -INFINITY;
      held_x[k] = s < splits ? w[s * stride + d] : 0.0f;
    }
  };
  load_held(d0 + lane);

  float top = -INFINITY;
#pragma unroll
  for (int u = 0; u < kStats; ++u) top = fmaxf(top, ms[u]);
  for (int s = lane + 32 * kStats; s < splits; s += 32) top = fmaxf(top, w[s * stride + D]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xFFFFFFFFu, top, o));
  const float sink = p.sinks ? p.sinks[h] : -INFINITY;
  top = fmaxf(top, sink);
  auto weigh = [&](float m) { return (top == -INFINITY || m == -INFINITY) ? 0.0f : expf(m - top); };
  float total = 0.0f;
#pragma unroll
  for (int u = 0; u < kStats; ++u) total += weigh(ms[u]) * ls[u];
  for (int s = lane + 32 * kStats; s < splits; s += 32) total += weigh(w[s * stride + D]) * w[s * stride + D + 1];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xFFFFFFFFu, total, o);
  if (p.sinks && top != -INFINITY) total += expf(sink - top);

  for (int k0 = 0; k0 < width; k0 += 32) {
    const int d = d0 + k0 + lane;
    if (k0 > 0) load_held(d);
    float o[2] = {0.0f, 0.0f};
#pragma unroll
    for (int k = 0; k < kHeld; ++k) o[k % 2] += weigh(held_m[k]) * held_x[k];
    for (int s = warp + kMergeWarps * kHeld; s < splits; s += kMergeWarps) o[0] += weigh(w[s * stride + D]) * w[s * stride + d];
    part[warp][k0 + lane] = o[0] + o[1];
  }
  __syncthreads();
  for (int x = threadIdx.x; x < width; x += kMergeThreads) {
    const float sum = (part[0][x] + part[1][x]) + (part[2][x] + part[3][x]);
    row[x] = total != 0.0f ? sum / total : 0.0f;  // a NaN total (a NaN score) gives NaN, not 0
  }
  __syncthreads();
  if (p.vc.kind == FormatKind::turbo && total != 0.0f) rotate_shared(row, int(D), p.vc.seed, true);  // whole rows
  for (int x = threadIdx.x; x < width; x += kMergeThreads)
    detail::store_float(p.out.data, p.out.dtype, p.out.offset(b, h, i, d0 + x), row[x]);
  if (p.lse && chunk == 0 && threadIdx.x == 0) p.lse[(b * Hq + h) * Lq + i] = total != 0.0f ? top + logf(total) : -INFINITY;
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

static bool dependent_launch_supported() {
  return cached_attribute<cudaDevAttrComputeCapabilityMajor>(1) >= 9;
}

void merge_partials(const KernelArgs& p, int rows, int splits, const float* work, cudaStream_t stream) {
  const unsigned B = unsigned(p.q.shape[0]), Hkv = unsigned(p.k.heads);
  const int64_t D = p.q.shape[3];
  if (D % 32 != 0 || D > kMaxDim) throw Error("attention: merge: head dim " + std::to_string(D) + " not supported");
  const int chunks = p.vc.kind == FormatKind::turbo ? 1 : int(D / 32);
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(unsigned(rows * chunks), Hkv, B);
  config.blockDim = dim3(kMergeThreads);
  config.stream = stream;
  // Programmatic dependent launch (sm_90): the merge is launched while the split kernel runs and
  // waits in wait_for_prior_grid, so its launch latency leaves the critical path (a few us, most
  // of a short-context call).
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  if (dependent_launch_supported()) {
    config.attrs = attr;
    config.numAttrs = 1;
  }
  QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, merge_kernel, p, rows, splits, work, chunks));
  QSDPA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace qsdpa::cuda
