// The merge of split-key partials (see partials.cuh): one block of 128 threads per
// (query row, kv head, b); it reads splits * (D + 2) floats, a few percent of the cache bytes the
// split kernels stream at decode sizes.
#include "cuda/partials.cuh"

#include <mutex>

#include "cuda/check.cuh"

namespace qsdpa::cuda {
namespace {

constexpr int kMergeThreads = 128;

__global__ void __launch_bounds__(kMergeThreads) merge_kernel(KernelArgs p, int rows, int splits, const float* work) {
  const int64_t r = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
  const int64_t Lq = p.q.shape[2], D = p.q.shape[3], Hq = p.q.shape[1], G = Hq / p.k.heads;
  const int64_t i = r / G, h = hk * G + r % G;
  __shared__ float row[512];
  const float* w = work + (b * p.k.heads + hk) * splits * int64_t(rows) * (D + 2);
  const int64_t stride = int64_t(rows) * (D + 2);
  float top = p.sinks ? p.sinks[h] : -INFINITY;
  for (int s = 0; s < splits; ++s) top = fmaxf(top, w[s * stride + r * (D + 2) + D]);
  float total = 0.0f;
  if (top != -INFINITY) {
    if (p.sinks) total = expf(p.sinks[h] - top);
    for (int s = 0; s < splits; ++s) {
      const float ms = w[s * stride + r * (D + 2) + D];
      if (ms != -INFINITY) total += w[s * stride + r * (D + 2) + D + 1] * expf(ms - top);
    }
  }
  for (int64_t d = threadIdx.x; d < D; d += kMergeThreads) {
    float o = 0.0f;
    if (total > 0.0f)
      for (int s = 0; s < splits; ++s) {
        const float ms = w[s * stride + r * (D + 2) + D];
        if (ms != -INFINITY) o += w[s * stride + r * (D + 2) + d] * expf(ms - top);
      }
    row[d] = total > 0.0f ? o / total : 0.0f;
  }
  __syncthreads();
  if (p.vc.kind == FormatKind::turbo && total > 0.0f) rotate_shared(row, int(D), p.vc.seed, true);
  for (int64_t d = threadIdx.x; d < D; d += kMergeThreads)
    detail::store_float(p.out.data, p.out.dtype, p.out.offset(b, h, i, d), row[d]);
  if (p.lse && threadIdx.x == 0) p.lse[(b * Hq + h) * Lq + i] = total > 0.0f ? top + logf(total) : -INFINITY;
}

}  // namespace

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

void merge_partials(const KernelArgs& p, int rows, int splits, const float* work, cudaStream_t stream) {
  const unsigned B = unsigned(p.q.shape[0]), Hkv = unsigned(p.k.heads);
  merge_kernel<<<dim3(unsigned(rows), Hkv, B), kMergeThreads, 0, stream>>>(p, rows, splits, work);
  QSDPA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace qsdpa::cuda
