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

#include "cuda/attention_common.cuh"
#include "cuda/check.cuh"
#include "cuda/device.hpp"

namespace qsdpa::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kChunk = 256;
constexpr int kMaxDim = 512;

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

__global__ void __launch_bounds__(kThreads) attention_rows(KernelArgs p) {
  const int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int64_t Lq = p.q.shape[2], D = p.q.shape[3], Hq = p.q.shape[1];
  const int64_t hk = h * p.k.heads / Hq;
  __shared__ float q[kMaxDim], s[kChunk], scratch[kThreads / 32];
  fmt::RowCodec kc, vc;
  head_codecs(p, hk, p.k_levels, p.v_levels, &kc, &vc);
  const int64_t n = sequence_length(p, b);
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

}  // namespace

void attention_generic(const AttentionArgs& a, int32_t* device_status, cudaStream_t stream) {
  if (a.q.shape[3] > kMaxDim)
    throw Error("attention: head dim " + std::to_string(a.q.shape[3]) + " is not supported on cuda (at most " +
                std::to_string(kMaxDim) + ")");
  const KernelArgs p = kernel_args(a, device_status);
  const dim3 grid(unsigned(a.q.shape[2]), unsigned(a.q.shape[1]), unsigned(a.q.shape[0]));
  attention_rows<<<grid, kThreads, 0, stream>>>(p);
  QSDPA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace qsdpa::cuda
