// Append (fused quantize) on the GPU, issue 3: new K and V tokens encoded into their preallocated
// caches in one launch. One thread per new row (K rows, then V rows), each running the format's one
// scalar encode rule (formats/codec.hpp) — the rule the CPU quantizer runs, so the bytes match it.
// Work split: one warp per row, grid-stride over the 2 * B * Hkv * count rows (16 warps for a decode
// step at B=1, Hkv=8). Bytes: new rows in, codes/scales out — tiny, so latency is the cost.
// Measured on the H100 (bench `append_us`, B=1, Hkv=8, D=128, one token of K and V): commit aa68cda
// (this version) f16 19 us, affine4 22, mxfp4 41, nvfp4 47, turbo4 88 — lane 0 still runs the scalar
// rule over the whole row (mx: scale search, turbo: rotation); a thread per row before (122961e) took
// 56 / 71 / 111 / 123 / 230 us. tests/test_cuda_append.cpp passes byte for byte against the CPU
// quantizer.
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

// One warp per row: the lanes load the row into shared memory together (coalesced), then lane 0
// runs the scalar encode rule on it there. (A thread per row with the row in local memory took
// 56 us for f16 and up to 230 us for turbo on the H100 at B=1, Hkv=8: serial global loads and
// local-memory traffic, not the encoding.)
__device__ void append_row(const AppendSide& s, int64_t b, int64_t h, int64_t t, const int64_t* positions,
                           int64_t count, int32_t* status, float* x, float* work) {
  const int64_t pos = positions[b];
  const int lane = threadIdx.x & 31;
  if (pos < 0 || pos + count > s.cache.tokens) {
    if (status && lane == 0) atomicOr(status, 1);
    return;
  }
  const int64_t D = s.cache.dim, n = pos + t;
  for (int64_t d = lane; d < D; d += 32) x[d] = detail::load_float(s.x.data, s.x.dtype, s.x.offset(b, h, t, d));
  __syncwarp();
  if (lane == 0) {
    fmt::RowCodec c = s.codec;
    c.levels = s.levels.v;
    if (s.cache.tensor_scales) c.tensor_scale = s.cache.tensor_scale(h);
    fmt::EncodeStatus st{};
    // The cache's memory is the caller's and writable; CacheView keeps const pointers for readers.
    fmt::encode_row(c, x, D, const_cast<uint8_t*>(s.cache.code_row(b, h, n)),
                    const_cast<uint8_t*>(s.cache.scale_row(b, h, n)), const_cast<uint8_t*>(s.cache.bias_row(b, h, n)),
                    work, &st);
    if (status) {
      const int32_t bits = detail::append_status_bits(st);
      if (bits) atomicOr(status, bits);
    }
  }
  __syncwarp();
}

constexpr int kWarpsPerBlock = 4;

__global__ void __launch_bounds__(32 * kWarpsPerBlock)
    append_rows(AppendSide k, AppendSide v, const int64_t* positions, int64_t count, int32_t* status) {
  __shared__ float rows[kWarpsPerBlock][2][kMaxDim];  // x and the encoder's work space, per warp
  const int warp = threadIdx.x >> 5;
  const int64_t H = k.x.shape[1], per_side = k.x.shape[0] * H * count;
  for (int64_t r = blockIdx.x * int64_t(kWarpsPerBlock) + warp; r < 2 * per_side;
       r += int64_t(gridDim.x) * kWarpsPerBlock) {
    const int64_t rr = r % per_side, t = rr % count, h = (rr / count) % H, b = rr / (count * H);
    append_row(r < per_side ? k : v, b, h, t, positions, count, status, rows[warp][0], rows[warp][1]);
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
  const int blocks = int(std::min<int64_t>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock, 4096));
  append_rows<<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(side_of(a.k_new, a.k), side_of(a.v_new, a.v), a.positions,
                                              a.k_new.shape[2], a.status);
  QSDPA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace qsdpa::cuda
