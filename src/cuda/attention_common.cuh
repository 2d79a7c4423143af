// Pieces the CUDA attention kernels share: the launch arguments as plain data, the per-head codecs,
// the device-side check of kv_lens, and the in-shared-memory turbo rotation.
#pragma once

#include <cuda_runtime.h>

#include "core/attention_common.hpp"
#include "core/row_codec.hpp"

namespace qsdpa::cuda {

// Turbo's levels travel by value with the launch (no constant-memory copy, no host sync).
struct Levels {
  float v[16];
};

inline Levels levels_of(const Format& f) {
  Levels l{};
  if (f.kind == FormatKind::turbo) {
    const float* src = fmt::turbo_levels(f.bits);
    for (int i = 0; i < (1 << f.bits); ++i) l.v[i] = src[i];
  }
  return l;
}

struct KernelArgs {
  TensorView q, out, mask;
  CacheView k, v;
  fmt::RowCodec kc, vc;
  Levels k_levels, v_levels;
  float scale;
  bool causal;
  int64_t window;
  const int64_t* kv_lens;
  const float* sinks;
  float* lse;
  int32_t* status;
};

inline KernelArgs kernel_args(const AttentionArgs& a, int32_t* status) {
  KernelArgs p;
  p.q = a.q;
  p.out = a.out;
  p.mask = a.mask;
  p.k = a.k;
  p.v = a.v;
  p.kc = make_row_codec(a.k.format);
  p.vc = make_row_codec(a.v.format);
  p.k_levels = levels_of(a.k.format);
  p.v_levels = levels_of(a.v.format);
  p.scale = a.scale;
  p.causal = a.causal;
  p.window = a.window;
  p.kv_lens = a.kv_lens;
  p.sinks = a.sinks;
  p.lse = a.lse;
  p.status = status;
  return p;
}

// The codecs of KV head hk, with their device-side levels and tensor scales.
__device__ inline void head_codecs(const KernelArgs& p, int64_t hk, const Levels& kl, const Levels& vl,
                                   fmt::RowCodec* kc, fmt::RowCodec* vc) {
  *kc = p.kc;
  *vc = p.vc;
  kc->levels = kl.v;
  vc->levels = vl.v;
  if (p.k.tensor_scales) kc->tensor_scale = p.k.tensor_scale(hk);
  if (p.v.tensor_scales) vc->tensor_scale = p.v.tensor_scale(hk);
}

// kv_lens[b], checked on the device: beyond [0, N] it is reported in the status word and clamped.
__device__ inline int64_t sequence_length(const KernelArgs& p, int64_t b) {
  int64_t n = p.k.tokens;
  if (p.kv_lens) {
    n = p.kv_lens[b];
    if (n < 0 || n > p.k.tokens) {
      if (threadIdx.x == 0 && p.status) atomicOr(p.status, 1);
      n = n < 0 ? 0 : p.k.tokens;
    }
  }
  return n;
}

// One row of L * E values held by L adjacent lanes (an aligned group: L divides 32), E consecutive
// values a lane (`lane`: the lane's place in the group), rotated in registers: butterflies of
// distance < E inside the lane, the others between lanes by shuffles (lane ^ distance / E), so no
// barrier between the log2(n) passes. Each value sees the same operations in the same order as
// fmt::fwht's. Every lane of the warp calls it.
template <int E, int L = 32>
__device__ __forceinline__ void rotate_row_lanes(float (&x)[E], int lane, uint64_t seed, bool inverse) {
  static_assert(L >= 1 && L <= 32 && 32 % L == 0 && 64 % E == 0, "a row's lanes lie in one warp");
  constexpr int n = L * E;
  const float norm = fmt::turbo_norm(n);  // a constant, rounded as the CPU's
  // The lane's E signs lie in one 64-sign word (E divides 64).
  const uint64_t signs = fmt::turbo_sign_word(seed, (lane * E) >> 6) >> ((lane * E) & 63);
#pragma unroll
  for (int k = 0; k < E; ++k)
    if (!inverse && ((signs >> k) & 1u)) x[k] = -x[k];
#pragma unroll
  for (int len = 1; len < E; len <<= 1)
#pragma unroll
    for (int k = 0; k < E; ++k)
      if (!(k & len)) {
        const float a = x[k], b = x[k + len];
        x[k] = a + b;
        x[k + len] = a - b;
      }
#pragma unroll
  for (int m = 1; m < L; m <<= 1)
#pragma unroll
    for (int k = 0; k < E; ++k) {
      const float other = __shfl_xor_sync(0xFFFFFFFFu, x[k], m);
      x[k] = (lane & m) ? other - x[k] : x[k] + other;
    }
#pragma unroll
  for (int k = 0; k < E; ++k) {
    const float y = x[k] * norm;
    x[k] = inverse && ((signs >> k) & 1u) ? -y : y;
  }
}

// Rows of 32 * E values in shared memory, a warp per row (rotate_row_lanes).
template <int E>
__device__ void rotate_rows_warps(float* v, int rows, uint64_t seed, bool inverse) {
  const int lane = threadIdx.x & 31;
  for (int r = int(threadIdx.x >> 5); r < rows; r += int(blockDim.x >> 5)) {
    float* row = v + r * 32 * E + lane * E;
    float x[E];
#pragma unroll
    for (int k = 0; k < E; ++k) x[k] = row[k];
    rotate_row_lanes<E>(x, lane, seed, inverse);
#pragma unroll
    for (int k = 0; k < E; ++k) row[k] = x[k];
  }
}

// In-place orthonormal rotation R v (or R^T v) of `rows` contiguous rows of n values in shared
// memory, all threads helping (blockDim a multiple of 32); data written by other threads must be
// ordered before the call (a barrier), and the call ends with one. Rows of 64-512 values go a warp
// per row (rotate_rows_warps: 1K turbo calls ~1 us faster than the passes below, session 9);
// other power-of-two lengths take all rows through each butterfly pass together, so the barriers
// (log2(n) + 2 of them) do not multiply with the rows.
__device__ inline void rotate_rows_shared(float* v, int rows, int n, uint64_t seed, bool inverse) {
  switch (n) {
    case 64: rotate_rows_warps<2>(v, rows, seed, inverse); __syncthreads(); return;
    case 128: rotate_rows_warps<4>(v, rows, seed, inverse); __syncthreads(); return;
    case 256: rotate_rows_warps<8>(v, rows, seed, inverse); __syncthreads(); return;
    case 512: rotate_rows_warps<16>(v, rows, seed, inverse); __syncthreads(); return;
    default: break;
  }
  if (!inverse)
    for (int i = threadIdx.x; i < rows * n; i += blockDim.x) v[i] *= fmt::turbo_sign(seed, i & (n - 1));
  __syncthreads();
  // n is a power of two: the butterflies' indices with shifts and masks (integer divisions by the
  // run-time n and len were ~20 instructions each, three per butterfly, in every block's prologue).
  const int half = n / 2, log_half = __ffs(half) - 1;
  for (int len = 1, log_len = 0; len < n; len <<= 1, ++log_len) {
    for (int p = threadIdx.x; p < rows * half; p += blockDim.x) {
      const int r = p >> log_half, q = p & (half - 1);
      float* row = v + r * n;
      const int j = ((q >> log_len) << (log_len + 1)) + (q & (len - 1));
      const float a = row[j], b = row[j + len];
      row[j] = a + b;
      row[j + len] = a - b;
    }
    __syncthreads();
  }
  const float norm = fmt::turbo_norm(n);
  for (int i = threadIdx.x; i < rows * n; i += blockDim.x)
    v[i] *= inverse ? norm * fmt::turbo_sign(seed, i & (n - 1)) : norm;
  __syncthreads();
}
__device__ inline void rotate_shared(float* v, int n, uint64_t seed, bool inverse) {
  rotate_rows_shared(v, 1, n, seed, inverse);
}

}  // namespace qsdpa::cuda
