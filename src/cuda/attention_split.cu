// Split-key fused attention on f32 CUDA cores for decode-sized query blocks (rows R = G*Lq with
// R*D <= 4096) that the tensor-core kernel (attention_mma.cuh) does not take: array masks, f32/bf16
// caches, more rows than its accumulators hold.
//
// Work split: grid (splits, Hkv, B); a block of 128 threads serves every query row that reads its KV
// head (GQA sharing: each K/V row is read once per block, not once per query head) over one slice of
// the keys. Per chunk of 128 keys: thread t scores key t for all R rows (K values decoded one at a time
// with the shared scalar rule, q from shared memory), each warp runs the online softmax of R/4 rows,
// then thread t accumulates P*V for D/128 output dims of all R rows. Partials (m, l, unnormalised out)
// go to a workspace; a second kernel merges the splits by log-sum-exp, adds the sink once,
// normalises, un-rotates turbo values and writes out/LSE.
// Still CUDA-core f32 and per-value decoding: the vector loads, fast decoders and tensor cores of
// issue 3 come next. Measured on the H100 (B=1, Hq=32, Hkv=8, D=128, Lq=1, q f16): N=32K f16 888 µs,
// affine4 1062 µs, mxfp4 1045 µs (151 / 36 / 34 GB/s of a 2993 GB/s copy peak) — bound by the
// per-value decode and the byte-wise row reads of one thread per key, not by memory. cuDNN's f16 SDPA
// takes ~65 µs there. bench/results/cuda-h100-split-2026-11-25.md.
#include <cuda_runtime.h>

#include "cuda/attention_common.cuh"
#include "cuda/check.cuh"
#include "cuda/device.hpp"
#include "cuda/partials.cuh"

namespace qsdpa::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kMaxRowsTimesDim = 4096;  // R*D: keeps q in 16 KB of shared memory, <= 32 accumulators
constexpr int kMaxRows = 32;

struct SplitParams : KernelArgs {
  int rows;    // R = G * Lq
  int splits;  // key slices per (b, kv head)
  float* work; // [B, Hkv, splits, R, D + 2]: acc[D], m, l
};

__global__ void __launch_bounds__(kThreads) split_partials(SplitParams p) {
  const int64_t split = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
  const int64_t Lq = p.q.shape[2], D = p.q.shape[3], Hq = p.q.shape[1], G = Hq / p.k.heads;
  const int R = p.rows;
  __shared__ float q_s[kMaxRowsTimesDim];
  __shared__ float s_s[kMaxRows][kThreads];
  __shared__ float m_s[kMaxRows], l_s[kMaxRows], alpha_s[kMaxRows];
  fmt::RowCodec kc, vc;
  head_codecs(p, hk, p.k_levels, p.v_levels, &kc, &vc);
  const int64_t n = sequence_length(p, b);
  // Rows r = i * G + g: query head hk*G + g at position i.
  for (int r = 0; r < R; ++r) {
    const int64_t i = r / G, h = hk * G + r % G;
    for (int64_t d = threadIdx.x; d < D; d += kThreads)
      q_s[r * D + d] = detail::load_float(p.q.data, p.q.dtype, p.q.offset(b, h, i, d)) * p.scale;
  }
  if (threadIdx.x < R) {
    m_s[threadIdx.x] = -INFINITY;
    l_s[threadIdx.x] = 0.0f;
  }
  __syncthreads();
  if (kc.kind == FormatKind::turbo) rotate_rows_shared(q_s, int(R), int(D), kc.seed, false);

  // This block's keys: its slice, narrowed to what any of its rows can see.
  int64_t lo = n * split / p.splits, hi = n * (split + 1) / p.splits;
  {
    const detail::KeyRange first = detail::visible_keys(p.causal, p.window, n, Lq, 0);
    const detail::KeyRange last = detail::visible_keys(p.causal, p.window, n, Lq, Lq - 1);
    lo = lo > first.lo ? lo : first.lo;
    hi = hi < last.hi ? hi : last.hi;
  }
  const int dims = int((D + kThreads - 1) / kThreads);
  float acc[kMaxRowsTimesDim / kThreads];
  for (int u = 0; u < kMaxRowsTimesDim / kThreads; ++u) acc[u] = 0.0f;

  for (int64_t c0 = lo; c0 < hi; c0 += kThreads) {
    const int64_t j = c0 + threadIdx.x;
    float score[kMaxRows];
    for (int r = 0; r < kMaxRows; ++r) score[r] = 0.0f;
    if (j < hi) {
      const uint8_t *codes = p.k.code_row(b, hk, j), *scales = p.k.scale_row(b, hk, j), *biases = p.k.bias_row(b, hk, j);
      for (int64_t d = 0; d < D; ++d) {
        const float kd = fmt::decode_value(kc, codes, scales, biases, d);
#pragma unroll
        for (int r = 0; r < kMaxRows; ++r)
          if (r < R) score[r] = fmaf(q_s[r * D + d], kd, score[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      const int64_t i = r / G, h = hk * G + r % G;
      const detail::KeyRange vis = detail::visible_keys(p.causal, p.window, n, Lq, i);
      float sc = -INFINITY;
      if (j < hi && j >= vis.lo && j < vis.hi) {
        sc = score[r];
        if (p.mask.data) sc += detail::mask_term(p.mask, b, h, i, j);
      }
      s_s[r][threadIdx.x] = sc;
    }
    __syncthreads();
    // Online softmax: warp w owns rows w, w+4, ...
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int r = warp; r < R; r += kThreads / 32) {
      float mx = -INFINITY;
      for (int t = lane; t < kThreads; t += 32) mx = fmaxf(mx, s_s[r][t]);
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, o));
      const float m_old = m_s[r], m_new = fmaxf(m_old, mx);
      float sum = 0.0f;
      for (int t = lane; t < kThreads; t += 32) {
        const float e = (m_new == -INFINITY || s_s[r][t] == -INFINITY) ? 0.0f : expf(s_s[r][t] - m_new);
        s_s[r][t] = e;
        sum += e;
      }
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, o);
      __syncwarp();  // every lane has read m_s[r] (and written its s_s entries) before lane 0 updates
      if (lane == 0) {
        const float alpha = (m_old == -INFINITY || m_new == -INFINITY) ? (m_old == m_new ? 1.0f : 0.0f) : expf(m_old - m_new);
        alpha_s[r] = alpha;
        l_s[r] = l_s[r] * alpha + sum;
        m_s[r] = m_new;
      }
      __syncwarp();
    }
    __syncthreads();
    const int64_t cnt = hi - c0 < kThreads ? hi - c0 : kThreads;
    for (int r = 0; r < R; ++r)
      for (int u = 0; u < dims; ++u) acc[r * dims + u] *= alpha_s[r];
    for (int64_t t = 0; t < cnt; ++t) {
      const int64_t jj = c0 + t;
      const uint8_t *codes = p.v.code_row(b, hk, jj), *scales = p.v.scale_row(b, hk, jj), *biases = p.v.bias_row(b, hk, jj);
      for (int u = 0; u < dims; ++u) {
        const int64_t d = threadIdx.x + int64_t(u) * kThreads;
        if (d >= D) break;
        const float vd = fmt::decode_value(vc, codes, scales, biases, d);
        for (int r = 0; r < R; ++r) acc[r * dims + u] = fmaf(s_s[r][t], vd, acc[r * dims + u]);
      }
    }
    __syncthreads();
  }
  float* w = p.work + ((b * p.k.heads + hk) * p.splits + split) * int64_t(R) * (D + 2);
  for (int r = 0; r < R; ++r) {
    for (int u = 0; u < dims; ++u) {
      const int64_t d = threadIdx.x + int64_t(u) * kThreads;
      if (d < D) w[r * (D + 2) + d] = acc[r * dims + u];
    }
    if (threadIdx.x == 0) {
      w[r * (D + 2) + D] = m_s[r];
      w[r * (D + 2) + D + 1] = l_s[r];
    }
  }
}

}  // namespace

bool attention_split_supports(const AttentionArgs& a) {
  const int64_t G = a.q.shape[1] / a.k.heads, R = G * a.q.shape[2], D = a.q.shape[3];
  return R <= kMaxRows && R * D <= kMaxRowsTimesDim && D <= 512;
}

// Enough blocks to fill the GPU ~4 times over, each slice >= 128 keys.
static int split_count(const AttentionArgs& a) {
  const int64_t B = a.q.shape[0], Hkv = a.k.heads;
  const int64_t want = (4 * int64_t(sm_count()) + B * Hkv - 1) / (B * Hkv);
  return int(std::max<int64_t>(1, std::min<int64_t>(want, (a.k.tokens + 127) / 128)));
}

size_t attention_split_workspace_bytes(const AttentionArgs& a) { return partials_bytes(a, split_count(a)); }

void attention_split(const AttentionArgs& a, int32_t* status, cudaStream_t stream) {
  const int64_t Hq = a.q.shape[1], Lq = a.q.shape[2], Hkv = a.k.heads;
  SplitParams p;
  static_cast<KernelArgs&>(p) = kernel_args(a, status);
  p.rows = int(Hq / Hkv * Lq);
  p.splits = split_count(a);
  p.work = partials_buffer(a, partials_bytes(a, p.splits));
  split_partials<<<dim3(unsigned(p.splits), unsigned(Hkv), unsigned(a.q.shape[0])), kThreads, 0, stream>>>(p);
  QSDPA_CUDA_CHECK(cudaGetLastError());
  merge_partials(p, p.rows, p.splits, p.work, /*rotated=*/true, stream);
}

}  // namespace qsdpa::cuda
