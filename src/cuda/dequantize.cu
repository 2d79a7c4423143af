// Dequantize on the GPU: one thread per row, each running the format's one scalar rule
// (formats/codec.hpp) — the same code the CPU reference and quantizer run. Used by tests and as the
// first half of the unfused baseline; the fused attention kernels come with the CUDA backend (issue 3).
// Work split: grid-stride over B*H*N rows. Bytes: the cache once in, rows*dim*4 out.
#include "core/row_codec.hpp"
#include "cuda/attention_common.cuh"
#include "cuda/check.cuh"
#include "cuda/device.hpp"

namespace qsdpa::cuda {
namespace {

__global__ void dequantize_rows(fmt::RowCodec codec, Levels levels, CacheView cache, const float* head_scales, float* out) {
  const int64_t rows = cache.batch * cache.heads * cache.tokens;
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < rows; r += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = r % cache.tokens, h = (r / cache.tokens) % cache.heads, b = r / (cache.tokens * cache.heads);
    fmt::RowCodec c = codec;
    c.levels = levels.v;
    if (head_scales) c.tensor_scale = cache.tensor_scale_count > 1 ? head_scales[h] : head_scales[0];
    fmt::decode_row(c, cache.code_row(b, h, n), cache.scale_row(b, h, n), cache.bias_row(b, h, n), cache.dim,
                    out + r * cache.dim);
  }
}

}  // namespace

void dequantize(const CacheView& cache, float* out, cudaStream_t stream) {
  fmt::RowCodec codec = make_row_codec(cache.format);
  const Levels levels = levels_of(cache.format);
  const int64_t rows = cache.batch * cache.heads * cache.tokens;
  if (rows == 0) return;
  const int threads = 128;
  const int blocks = int(std::min<int64_t>((rows + threads - 1) / threads, 65535));
  dequantize_rows<<<blocks, threads, 0, stream>>>(codec, levels, cache, cache.tensor_scales, out);
  QSDPA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace qsdpa::cuda
