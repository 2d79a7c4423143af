// Append (fused quantize) on the GPU, issue 3: new K and V tokens encoded into their preallocated
// caches in one launch, by the format's encode rules (formats/codec.hpp) — the rules the CPU
// quantizer runs, so the bytes match it.
// Work split: one warp per row, grid-stride over the 2 * B * Hkv * count rows (16 warps for a decode
// step at B=1, Hkv=8). Bytes: new rows in, codes/scales out — tiny, so latency is the cost. The
// lanes share a row (session 22): each takes octets of values for the group reductions (min and
// max, absmax: exact in any order) and the codes; a lane per group computes and stores its scale
// (encode_row's group and value pieces). Turbo (session 23): D / 32 values a lane, rotated in
// registers, its f64 sums by warp reductions.
// Measured on the H100 (bench `append_us`, B=1, Hkv=8, D=128, one token of K and V): the warp's
// lanes sharing a row (sessions 22-23) f16 4.5-5.1 us, affine8 6.8-7.0, affine4 6.8-7.0, mxfp8
// 7.2-7.3, mxfp4 7.5-7.7, nvfp4 7.8-8.0, turbo4 7.4, turbo3 6.6; lane 0 running the whole row's rule
// (aa68cda-6d062e4) f16 19 us, affine4 22, mxfp4 41, nvfp4 47, turbo4 87, turbo3 80; a thread per
// row before (122961e) 56 / 71 / 111 / 123 / 230 us. Staging lane 0's bytes in
// shared memory moved them by -3 to +0.9 us (session 22, not kept): the cost was the lane's serial
// arithmetic. tests/test_cuda_append.cpp passes byte for byte against the CPU quantizer.
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

// Per warp: what the lanes share while encoding a row.
struct WarpScratch {
  float x[kMaxDim];  // the row
  float oct_min[kMaxDim / 8], oct_max[kMaxDim / 8], oct_abs[kMaxDim / 8];  // per octet of values
  uint8_t level[kMaxDim];                                                  // turbo: a value's code
  fmt::GroupEncoding groups[kMaxDim / 16];                                // per group (>= 16 values)
};

// The row's D codes (code_of(i) for value i) packed and stored by the warp's lanes, an octet a
// lane at a time: an octet of b-bit codes is b whole bytes, so no two lanes share a byte.
template <class CodeOf>
__device__ void store_codes(int bits, int D, uint8_t* codes, CodeOf code_of) {
  for (int o = int(threadIdx.x & 31); o < D / 8; o += 32) {
    uint8_t bytes[8] = {};
    for (int k = 0; k < 8; ++k) fmt::put_code(bytes, k, bits, code_of(8 * o + k));
    for (int k = 0; k < bits; ++k) codes[o * bits + k] = bytes[k];
  }
}

__device__ double warp_sum(double v) {
#pragma unroll
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, m);  // the same sum on every lane
  return v;
}

// Turbo's rule (codec.hpp's pieces) with the row's D = 32 E values spread E to a lane: the rotation
// by rotate_row_lanes (fwht's butterflies in fwht's order, so the same f32 values), codes on every
// lane, the f64 sums by a warp reduction. Only the sums' order differs from the CPU's loop (~1e-16
// relative, under the f16 scale's rounding: the bytes agree unless a candidate scale lies that close
// to an f16 rounding boundary or the two candidates' errors that close to each other).
template <int E>
__device__ void encode_turbo_warp(const fmt::RowCodec& c, WarpScratch& w, uint8_t* codes, uint8_t* scales,
                                  fmt::EncodeStatus* st) {
  constexpr int D = 32 * E;
  const int lane = threadIdx.x & 31;
  float y[E];
  double norm2 = 0.0;
#pragma unroll
  for (int k = 0; k < E; ++k) {
    y[k] = w.x[lane * E + k];
    norm2 += double(y[k]) * double(y[k]);
  }
  norm2 = warp_sum(norm2);
  rotate_row_lanes<E>(y, lane, c.seed, false);
  const float alpha = fmt::turbo_alpha(norm2, D);
  uint32_t code[E];
  double yc = 0.0, cc = 0.0;
#pragma unroll
  for (int k = 0; k < E; ++k) {
    code[k] = fmt::turbo_code(c, alpha, y[k]);
    w.level[lane * E + k] = uint8_t(code[k]);
    yc += fmt::turbo_code_dot(c, y[k], code[k]);
    cc += fmt::turbo_code_dot(c, c.levels[code[k]], code[k]);
  }
  yc = warp_sum(yc);
  cc = warp_sum(cc);
  float cand[2];
  fmt::turbo_scale_candidates(yc, cc, alpha, cand);
  double err[2] = {0.0, 0.0};
#pragma unroll
  for (int k = 0; k < E; ++k)
    for (int j = 0; j < 2; ++j) err[j] += fmt::turbo_code_error(c, y[k], cand[j], code[k]);
  err[0] = warp_sum(err[0]);
  err[1] = warp_sum(err[1]);
  if (lane == 0) fmt::store_turbo_scale(cand, err, scales, st);
  __syncwarp();
  store_codes(c.bits, D, codes, [&](int i) { return uint32_t(w.level[i]); });
}

// The warp's encode of row x (shared memory), for the rows warp_encodes takes: what encode_row does,
// with the octets and groups (D a multiple of 8, groups of at least 16 values), or turbo's values
// (D of 64-512), spread over the lanes.
__device__ void encode_row_warp(const fmt::RowCodec& c, WarpScratch& w, int D, uint8_t* codes, uint8_t* scales,
                                uint8_t* biases, fmt::EncodeStatus* st) {
  const int lane = threadIdx.x & 31, octets = D / 8;
  bool nonfinite = false;
  for (int d = lane; d < D; d += 32) nonfinite |= !fmt::is_finite_f32(w.x[d]);
  if (__any_sync(0xFFFFFFFFu, nonfinite) && lane == 0) ++st->nonfinite;
  if (c.kind == FormatKind::f32 || c.kind == FormatKind::f16 || c.kind == FormatKind::bf16) {
    for (int d = lane; d < D; d += 32) fmt::encode_plain_value(c, w.x[d], codes, d);
    return;
  }
  if (c.kind == FormatKind::turbo) {
    switch (D) {
      case 64: encode_turbo_warp<2>(c, w, codes, scales, st); return;
      case 128: encode_turbo_warp<4>(c, w, codes, scales, st); return;
      case 256: encode_turbo_warp<8>(c, w, codes, scales, st); return;
      default: encode_turbo_warp<16>(c, w, codes, scales, st); return;  // 512 (warp_encodes)
    }
  }
  for (int o = lane; o < octets; o += 32) {
    const float* v = w.x + 8 * o;
    float mn = v[0], mx = v[0], ab = fabsf(v[0]);
    for (int k = 1; k < 8; ++k) mn = fminf(mn, v[k]), mx = fmaxf(mx, v[k]), ab = fmaxf(ab, fabsf(v[k]));
    w.oct_min[o] = mn, w.oct_max[o] = mx, w.oct_abs[o] = ab;
  }
  __syncwarp();
  const int group = int(fmt::encode_group_size(c, D)), per_group = group / 8;
  for (int g = lane; g < D / group; g += 32) {
    const int o0 = g * per_group;
    if (c.kind == FormatKind::affine) {
      float mn = w.oct_min[o0], mx = w.oct_max[o0];
      for (int o = o0 + 1; o < o0 + per_group; ++o) mn = fminf(mn, w.oct_min[o]), mx = fmaxf(mx, w.oct_max[o]);
      w.groups[g] = fmt::affine_group_encoding(c, mn, mx, scales, biases, g, st);
    } else {
      float ab = w.oct_abs[o0];
      for (int o = o0 + 1; o < o0 + per_group; ++o) ab = fmaxf(ab, w.oct_abs[o]);
      w.groups[g] = fmt::fp_group_encoding(c, ab, scales, g, st);
    }
  }
  __syncwarp();
  store_codes(c.bits, D, codes, [&](int i) { return fmt::group_value_code(c, w.groups[i / group], w.x[i]); });
}

// Whether encode_row_warp takes rows of this codec (else lane 0 runs encode_row).
__host__ __device__ inline bool warp_encodes(const fmt::RowCodec& c, int64_t dim) {
  if (c.kind == FormatKind::turbo) return dim == 64 || dim == 128 || dim == 256 || dim == 512;
  if (dim % 8 != 0) return false;
  if (c.kind == FormatKind::f32 || c.kind == FormatKind::f16 || c.kind == FormatKind::bf16) return true;
  const int64_t group = c.group > 0 ? c.group : dim;
  return group >= 16 && group % 8 == 0 && dim % group == 0 && c.bits <= 8;
}

// One warp per row: the lanes load the row into shared memory together (coalesced), then encode it
// (encode_row_warp), or lane 0 runs the scalar rule on it there (rows warp_encodes does not take:
// D not a multiple of 8, groups under 16 values). (A thread per row with the row in local memory took
// 56 us for f16 and up to 230 us for turbo on the H100 at B=1, Hkv=8: serial global loads and
// local-memory traffic, not the encoding.)
__device__ void append_row(const AppendSide& s, int64_t b, int64_t h, int64_t t, const int64_t* positions,
                           int64_t count, int32_t* status, WarpScratch& w) {
  const int64_t pos = positions[b];
  const int lane = threadIdx.x & 31;
  if (pos < 0 || pos + count > s.cache.tokens) {
    if (status && lane == 0) atomicOr(status, 1);
    return;
  }
  const int64_t D = s.cache.dim, n = pos + t;
  for (int64_t d = lane; d < D; d += 32) w.x[d] = detail::load_float(s.x.data, s.x.dtype, s.x.offset(b, h, t, d));
  __syncwarp();
  fmt::RowCodec c = s.codec;
  c.levels = s.levels.v;
  if (s.cache.tensor_scales) c.tensor_scale = s.cache.tensor_scale(h);
  fmt::EncodeStatus st{};
  // The cache's memory is the caller's and writable; CacheView keeps const pointers for readers.
  uint8_t* codes = const_cast<uint8_t*>(s.cache.code_row(b, h, n));
  uint8_t* scales = const_cast<uint8_t*>(s.cache.scale_row(b, h, n));
  uint8_t* biases = const_cast<uint8_t*>(s.cache.bias_row(b, h, n));
  if (warp_encodes(c, D))
    encode_row_warp(c, w, int(D), codes, scales, biases, &st);
  else if (lane == 0)  // no turbo row comes here (check_dim: D of 64-512), so no rotation space
    fmt::encode_row(c, w.x, D, codes, scales, biases, /*work=*/nullptr, &st);
  if (status) {
    const int32_t bits = detail::append_status_bits(st);
    if (bits) atomicOr(status, bits);
  }
  __syncwarp();
}

constexpr int kWarpsPerBlock = 4;

__global__ void __launch_bounds__(32 * kWarpsPerBlock)
    append_rows(AppendSide k, AppendSide v, const int64_t* positions, int64_t count, int32_t* status) {
  __shared__ WarpScratch scratch[kWarpsPerBlock];
  const int warp = threadIdx.x >> 5;
  const int64_t H = k.x.shape[1], per_side = k.x.shape[0] * H * count;
  for (int64_t r = blockIdx.x * int64_t(kWarpsPerBlock) + warp; r < 2 * per_side;
       r += int64_t(gridDim.x) * kWarpsPerBlock) {
    const int64_t rr = r % per_side, t = rr % count, h = (rr / count) % H, b = rr / (count * H);
    append_row(r < per_side ? k : v, b, h, t, positions, count, status, scratch[warp]);
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
