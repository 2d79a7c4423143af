// Generic fused attention on the GPU: every format pair, every D the formats allow, any Lq, all of
// SPEC §2 (GQA/MQA, causal/bool/additive/window masks, sinks, ragged kv_lens, LSE), written for
// correctness first. It is the fallback the fast kernels of issue 3 will be checked against and the
// path for shapes they do not take.
//
// Work split: one block of 128 threads per query row (b, h, i). Keys are walked in chunks of 256:
// each thread scores 2 keys (decoding K values one at a time with the shared scalar rule,
// formats/codec.hpp), the block takes the chunk's max and sum (online softmax in f32), and each thread
// accumulates P*V for D/128 output dims, decoding V values the same way. Turbo: q is rotated in
// shared memory before the scores; the output is un-rotated there after normalisation.
// Bytes: every K and V row is read once per query row (no GQA sharing, no vector loads) — far from
// the memory-bandwidth design of issue 3. Measured on the H100 at B=1, Hq=32, Hkv=8, D=128, Lq=1,
// N=32K: 24.4 ms for f16, 36-40 ms for 4/8-bit formats (32 blocks for the whole GPU);
// bench/results/cuda-h100-generic-2026-11-25.md. Decode shapes now take attention_split.cu.
#include <cuda_runtime.h>

#include "core/attention_common.hpp"
#include "core/row_codec.hpp"
#include "cuda/check.cuh"
#include "cuda/device.hpp"

namespace qsdpa::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kChunk = 256;
constexpr int kMaxDim = 512;

struct Levels {
  float v[16];
};

struct Params {
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

__device__ float block_reduce(float v, bool is_max, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(0xFFFFFFFFu, v, o);
    v = is_max ? fmaxf(v, w) : v + w;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float r = scratch[0];
  for (int w = 1; w < kThreads / 32; ++w) r = is_max ? fmaxf(r, scratch[w]) : r + scratch[w];
  return r;
}

// In-place orthonormal rotation (or its inverse) of a row in shared memory, all threads helping.
__device__ void rotate_shared(float* v, int n, uint64_t seed, bool inverse) {
  if (!inverse)
    for (int i = threadIdx.x; i < n; i += blockDim.x) v[i] *= fmt::turbo_sign(seed, i);
  __syncthreads();
  for (int len = 1; len < n; len <<= 1) {
    for (int p = threadIdx.x; p < n / 2; p += blockDim.x) {
      const int j = (p / len) * 2 * len + p % len;
      const float a = v[j], b = v[j + len];
      v[j] = a + b;
      v[j + len] = a - b;
    }
    __syncthreads();
  }
  const float norm = rsqrtf(float(n));
  for (int i = threadIdx.x; i < n; i += blockDim.x) v[i] *= inverse ? norm * fmt::turbo_sign(seed, i) : norm;
  __syncthreads();
}

__global__ void __launch_bounds__(kThreads) attention_rows(Params p) {
  const int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int64_t Lq = p.q.shape[2], D = p.q.shape[3], Hq = p.q.shape[1];
  const int64_t hk = h * p.k.heads / Hq;
  __shared__ float q[kMaxDim], s[kChunk], scratch[kThreads / 32];
  fmt::RowCodec kc = p.kc, vc = p.vc;
  kc.levels = p.k_levels.v;
  vc.levels = p.v_levels.v;
  if (p.k.tensor_scales) kc.tensor_scale = p.k.tensor_scale(hk);
  if (p.v.tensor_scales) vc.tensor_scale = p.v.tensor_scale(hk);

  int64_t n = p.k.tokens;
  if (p.kv_lens) {
    n = p.kv_lens[b];
    if (n < 0 || n > p.k.tokens) {
      if (threadIdx.x == 0 && p.status) atomicOr(p.status, 1);  // kv_lens beyond capacity: reported, clamped
      n = n < 0 ? 0 : p.k.tokens;
    }
  }
  for (int64_t d = threadIdx.x; d < D; d += kThreads)
    q[d] = detail::load_float(p.q.data, p.q.dtype, p.q.offset(b, h, i, d)) * p.scale;
  __syncthreads();
  if (kc.kind == FormatKind::turbo) rotate_shared(q, int(D), kc.seed, false);

  const detail::KeyRange range = detail::visible_keys(p.causal, p.window, n, Lq, i);
  float m = -INFINITY, l = 0.0f, acc[kMaxDim / kThreads] = {};
  for (int64_t c0 = range.lo; c0 < range.hi; c0 += kChunk) {
    const int64_t cnt = range.hi - c0 < kChunk ? range.hi - c0 : kChunk;
    for (int64_t t = threadIdx.x; t < kChunk; t += kThreads) {
      float score = -INFINITY;
      if (t < cnt) {
        const int64_t j = c0 + t;
        const uint8_t *codes = p.k.code_row(b, hk, j), *scales = p.k.scale_row(b, hk, j), *biases = p.k.bias_row(b, hk, j);
        float dot = 0.0f;
        for (int64_t d = 0; d < D; ++d) dot = fmaf(q[d], fmt::decode_value(kc, codes, scales, biases, d), dot);
        score = dot;
        if (p.mask.data) score += detail::mask_term(p.mask, b, h, i, j);
      }
      s[t] = score;
    }
    __syncthreads();
    float local = -INFINITY;
    for (int t = threadIdx.x; t < kChunk; t += kThreads) local = fmaxf(local, s[t]);
    const float m_new = fmaxf(m, block_reduce(local, true, scratch));
    if (m_new == -INFINITY) {  // nothing visible yet
      __syncthreads();
      continue;
    }
    const float alpha = m == -INFINITY ? 0.0f : __expf(m - m_new);
    float part = 0.0f;
    for (int t = threadIdx.x; t < kChunk; t += kThreads) {
      const float e = s[t] == -INFINITY ? 0.0f : expf(s[t] - m_new);
      s[t] = e;
      part += e;
    }
    l = l * alpha + block_reduce(part, false, scratch);  // (its barriers also publish s)
    m = m_new;
    for (int u = 0; u < kMaxDim / kThreads; ++u) {
      const int64_t d = threadIdx.x + int64_t(u) * kThreads;
      if (d >= D) break;
      float a = acc[u] * alpha;
      for (int64_t t = 0; t < cnt; ++t) {
        if (s[t] == 0.0f) continue;
        const int64_t j = c0 + t;
        a = fmaf(s[t], fmt::decode_value(vc, p.v.code_row(b, hk, j), p.v.scale_row(b, hk, j), p.v.bias_row(b, hk, j), d), a);
      }
      acc[u] = a;
    }
    __syncthreads();
  }

  // Sink, normalisation, V's rotation undone, output and LSE.
  float total = l, top = m;
  if (p.sinks) {
    const float sink = p.sinks[h];
    top = fmaxf(m, sink);
    total = (m == -INFINITY ? 0.0f : l * expf(m - top)) + expf(sink - top);
  }
  const float scale_acc = (m == -INFINITY || total == 0.0f) ? 0.0f : expf(m - top) / total;
  __syncthreads();
  for (int u = 0; u < kMaxDim / kThreads; ++u) {
    const int64_t d = threadIdx.x + int64_t(u) * kThreads;
    if (d < D) q[d] = acc[u] * scale_acc;  // q's buffer reused for the output row
  }
  __syncthreads();
  if (vc.kind == FormatKind::turbo && scale_acc != 0.0f) rotate_shared(q, int(D), vc.seed, true);
  for (int64_t d = threadIdx.x; d < D; d += kThreads) detail::store_float(p.out.data, p.out.dtype, p.out.offset(b, h, i, d), q[d]);
  if (p.lse && threadIdx.x == 0) p.lse[(b * Hq + h) * Lq + i] = total > 0.0f ? top + logf(total) : -INFINITY;
}

Levels levels_of(const Format& f) {
  Levels l{};
  if (f.kind == FormatKind::turbo) {
    const float* src = fmt::turbo_levels(f.bits);
    for (int i = 0; i < (1 << f.bits); ++i) l.v[i] = src[i];
  }
  return l;
}

}  // namespace

void attention_generic(const AttentionArgs& a, int32_t* device_status, cudaStream_t stream) {
  if (a.q.shape[3] > kMaxDim)
    throw Error("attention: head dim " + std::to_string(a.q.shape[3]) + " is not supported on cuda (at most " +
                std::to_string(kMaxDim) + ")");
  Params p;
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
  p.status = device_status;
  const dim3 grid(unsigned(a.q.shape[2]), unsigned(a.q.shape[1]), unsigned(a.q.shape[0]));
  attention_rows<<<grid, kThreads, 0, stream>>>(p);
  QSDPA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace qsdpa::cuda
