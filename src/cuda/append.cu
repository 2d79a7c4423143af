// Append (fused quantize) on the GPU, issue 3: new K and V tokens encoded into their preallocated
// caches in one launch. One thread per new row (K rows, then V rows), each running the format's one
// scalar encode rule (formats/codec.hpp) — the rule the CPU quantizer runs, so the bytes match it.
// Work split: grid-stride over 2 * B * Hkv * count rows; a decode step (count = 1) at B=1, Hkv=8 is
// 16 threads, so the launch, not the work, is the cost. Bytes: new rows in, codes/scales out.
// Not yet run on a GPU (written when session 2's device time was spent): tests/test_cuda_append.cpp.
#include "core/attention_common.hpp"
#include "core/row_codec.hpp"
#include "cuda/attention_common.cuh"
#include "cuda/check.cuh"
#include "cuda/device.hpp"

namespace qsdpa::cuda {
namespace {

constexpr int kMaxDim = 512;

struct AppendSide {
  TensorView x;     // [B, Hkv, count, D] new rows
  CacheView cache;  // where they go
  fmt::RowCodec codec;
  Levels levels;
};

__device__ void append_row(const AppendSide& s, int64_t b, int64_t h, int64_t t, const int64_t* positions,
                           int64_t count, int32_t* status) {
  const int64_t pos = positions[b];
  if (pos < 0 || pos + count > s.cache.tokens) {
    if (status) atomicOr(status, 1);
    return;
  }
  const int64_t D = s.cache.dim, n = pos + t;
  float x[kMaxDim], work[kMaxDim];
  for (int64_t d = 0; d < D; ++d) x[d] = detail::load_float(s.x.data, s.x.dtype, s.x.offset(b, h, t, d));
  fmt::RowCodec c = s.codec;
  c.levels = s.levels.v;
  if (s.cache.tensor_scales) c.tensor_scale = s.cache.tensor_scale(h);
  fmt::EncodeStatus st{};
  // The cache's memory is the caller's and writable; CacheView keeps const pointers for readers.
  fmt::encode_row(c, x, D, const_cast<uint8_t*>(s.cache.code_row(b, h, n)), const_cast<uint8_t*>(s.cache.scale_row(b, h, n)),
                  const_cast<uint8_t*>(s.cache.bias_row(b, h, n)), work, &st);
  if (status) {
    const int32_t bits = detail::append_status_bits(st);
    if (bits) atomicOr(status, bits);
  }
}

__global__ void append_rows(AppendSide k, AppendSide v, const int64_t* positions, int64_t count, int32_t* status) {
  const int64_t H = k.x.shape[1], per_side = k.x.shape[0] * H * count;
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < 2 * per_side;
       r += int64_t(gridDim.x) * blockDim.x) {
    const int64_t rr = r % per_side, t = rr % count, h = (rr / count) % H, b = rr / (count * H);
    if (r < per_side) append_row(k, b, h, t, positions, count, status);
    else append_row(v, b, h, t, positions, count, status);
  }
}

AppendSide side_of(const TensorView& x, const CacheView& cache) {
  AppendSide s;
  s.x = x;
  s.cache = cache;
  s.codec = make_row_codec(cache.format);
  s.levels = levels_of(cache.format);
  return s;
}

}  // namespace

void append(const AppendArgs& a, cudaStream_t stream) {
  const int64_t rows = 2 * a.k_new.shape[0] * a.k_new.shape[1] * a.k_new.shape[2];
  if (rows == 0) return;
  if (a.k.dim > kMaxDim || a.v.dim > kMaxDim)
    throw Error("append: dim: expected at most " + std::to_string(kMaxDim) + " on cuda, got " + std::to_string(a.k.dim));
  const int threads = 64;
  const int blocks = int(std::min<int64_t>((rows + threads - 1) / threads, 4096));
  append_rows<<<blocks, threads, 0, stream>>>(side_of(a.k_new, a.k), side_of(a.v_new, a.v), a.positions,
                                              a.k_new.shape[2], a.status);
  QSDPA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace qsdpa::cuda
