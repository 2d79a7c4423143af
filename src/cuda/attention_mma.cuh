// Tensor-core split-key decode attention (issue 3): for R = G*Lq query rows per KV head up to 32
// (D*ceil(R/8) <= 256), no array mask, K and V formats that fit f16 products (everything but f32
// and bf16 caches).
//
// Work split: grid (blocks_per_head, Hkv, B), 4 warps per block; each warp streams its own quarter of
// the block's slice of keys, 16 keys per step, with its own online softmax, so warps never wait for
// each other; at the end the 4 warp partials merge in shared memory and the block writes one partial
// (partials.cuh), merged across blocks by a second small kernel.
// Per step of 16 keys a warp computes S^T = K Q^T with mma.sync m16n8k16 (M = 16 keys, N = 8 query
// rows per n-tile, K = 16 dims, f16 products, f32 accumulators), then O^T += V^T P^T (M = 16 dims,
// N = query rows, K = 16 keys): every K/V byte is read once for all rows of its KV head (GQA sharing)
// and multiplied on tensor cores, so at GQA 4 the f32 CUDA cores only run the softmax.
// Data layout trick: a dot product does not care about the order of its dims, so each lane's
// fragment is built from one contiguous piece of a row (lane t of a key holds dims [t*D/4, (t+1)*D/4)
// for QK; lane g holds dims [g*D/8, (g+1)*D/8) of 4 keys for PV) and q's fragments, built once per
// block in shared memory, follow the same permutation. Rows are decoded an "octet" (8 values) at a
// time into 4 half2 with the pairing (0,2) (1,3) (4,6) (5,7), which the bit tricks give for free:
// f16 with prmt, 4-bit with the 0x6400 magic number, 8-bit with prmt, E2M1 with a prmt table,
// E4M3 with cvt.rn.f16x2.e4m3x2. Group scales are applied in f16 (exact for mx/nvfp4/fp8, one
// rounding for affine); per-tensor factors (fp8's scale, nvfp4's global scale) are folded into q or
// the output in f32. Formats without a fast decoder use the shared scalar rule per value.
// A scale whose products cannot be exact in f16 sets status bit 2 (the output is then invalid).
//
// Bytes and operations (B=1, Hq=32, Hkv=8, D=128, N=32K): 4-bit K+V = 2*32K*8*(64+2) B = 34.6 MB
// (11.5 us at 3 TB/s); 2 mma per 16 dims x 16 keys, tensor cores far from their limit.
// Measured on the H100: see bench/results/ and docs/gpu-tests.md.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/attention_common.cuh"
#include "cuda/check.cuh"
#include "cuda/partials.cuh"

namespace qsdpa::cuda::mma {


constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr float kLog2e = 1.4426950408889634f;
constexpr int32_t kStatusRange = 2;  // a value or scale the f16 products cannot hold exactly

// Decoder families: how one octet of a row turns into 4 half2.
enum class Fam : int { f16, u4, u8, e2m1, e4m3, generic };

// Bytes of codes per octet (generic: decoded value by value from global memory).
template <Fam F>
constexpr int octet_bytes() {
  return F == Fam::f16 ? 16 : (F == Fam::u8 || F == Fam::e4m3) ? 8 : (F == Fam::generic ? 0 : 4);
}

// The pairing of an octet's values in its 4 half2: half2 j holds values (kPairLo[j], kPairHi[j]).
__host__ __device__ constexpr int pair_lo(int j) { return (j & 1) + 4 * (j >> 1); }
__host__ __device__ constexpr int pair_hi(int j) { return pair_lo(j) + 2; }

__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t sel) {
  uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(sel));
  return d;
}
__device__ __forceinline__ uint32_t as_u32(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }
__device__ __forceinline__ __half2 as_h2(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }

__device__ __forceinline__ void mma16816(float c[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Transposes an 8x8 matrix of 16-bit values held one row-pair per lane (the mma fragment layout).
__device__ __forceinline__ uint32_t transpose8x8(uint32_t x) {
  uint32_t y;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(y) : "r"(x));
  return y;
}

// ---- the per-row multipliers of an octet, as f16 (status bit 2 if not exact) ----

struct GroupScale {
  __half2 mul, add;  // value = code_value * mul + add
};

__device__ __forceinline__ float load_scale_aligned(const uint8_t* p, int64_t i, ScaleDType t) {
  if (t == ScaleDType::f32) return reinterpret_cast<const float*>(p)[i];
  const uint16_t bits = reinterpret_cast<const uint16_t*>(p)[i];
  return t == ScaleDType::f16 ? fmt::f16_to_f32(bits) : fmt::bf16_to_f32(bits);
}

template <Fam F>
__device__ __forceinline__ GroupScale group_scale(const fmt::RowCodec& c, const uint8_t* scales,
                                                  const uint8_t* biases, int64_t dim, bool* bad) {
  GroupScale g{__float2half2_rn(1.0f), __float2half2_rn(0.0f)};
  if constexpr (F == Fam::u4 || F == Fam::u8) {
    const int64_t gi = dim / c.group;
    const float s = load_scale_aligned(scales, gi, c.scale_dtype), b = load_scale_aligned(biases, gi, c.scale_dtype);
    if (c.scale_dtype != ScaleDType::f16 && !(fabsf(s) * float((1 << c.bits) - 1) + fabsf(b) < 65504.0f)) *bad = true;
    g.mul = __float2half2_rn(s);
    g.add = __float2half2_rn(b);
  } else if constexpr (F == Fam::e2m1 || F == Fam::e4m3) {
    if (c.kind == FormatKind::mxfp4 || c.kind == FormatKind::mxfp8) {
      const int k = int(scales[dim / 32]) - 127;
      // Products code*2^k stay exact f16 values for these exponents (E2M1: multiples of 0.5 up
      // to 6; E4M3: multiples of 2^-9 up to 448).
      if (F == Fam::e2m1 ? (k < -23 || k > 13) : (k < -15 || k > 7)) *bad = true;
      g.mul = __float2half2_rn(exp2f(float(k)));
    } else if (c.kind == FormatKind::nvfp4) {
      g.mul = __float2half2_rn(fmt::e4m3_to_f32(scales[dim / 16]));  // <= 448: products exact
    }
  }
  return g;
}

// The f32 factor of a whole head that the f16 path leaves out (folded into q for K, into the
// output for V): fp8's tensor scale, nvfp4's global scale.
template <Fam F>
__device__ __forceinline__ float head_factor(const fmt::RowCodec& c) {
  if constexpr (F == Fam::e2m1 || F == Fam::e4m3) {
    if (c.kind == FormatKind::fp8) return c.tensor_scale;
    if (c.kind == FormatKind::nvfp4) return fmt::nvfp4_global_factor(c.global_scale);
  }
  return 1.0f;
}

// ---- octet decoders: raw code words -> 4 half2 in the pairing above ----

template <Fam F>
__device__ __forceinline__ void decode_octet(const uint32_t* w, GroupScale gs, uint32_t h[4]) {
  if constexpr (F == Fam::f16) {
    h[0] = prmt(w[0], w[1], 0x5410);
    h[1] = prmt(w[0], w[1], 0x7632);
    h[2] = prmt(w[2], w[3], 0x5410);
    h[3] = prmt(w[2], w[3], 0x7632);
  } else if constexpr (F == Fam::u4) {
    const uint32_t y = prmt(w[0], 0, 0x3120);  // halves: (v0 v1 v4 v5) (v2 v3 v6 v7)
    const __half2 magic = as_h2(0x64006400u);     // 1024 + code
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t x = ((y >> (4 * j)) & 0x000F000Fu) | 0x64006400u;
      h[j] = as_u32(__hfma2(__hsub2(as_h2(x), magic), gs.mul, gs.add));
    }
  } else if constexpr (F == Fam::u8) {
    const __half2 magic = as_h2(0x64006400u);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t x = prmt(w[j >> 1], 0x64646464u, (j & 1) ? 0x4341u : 0x4240u);
      h[j] = as_u32(__hfma2(__hsub2(as_h2(x), magic), gs.mul, gs.add));
    }
  } else if constexpr (F == Fam::e2m1) {
    // Magnitudes from a byte table of the f16 high bytes of 0, 0.5, 1, 1.5, 2, 3, 4, 6 (low bytes
    // are 0), signs moved to bits 15/31 from a byte-reordered copy.
    const uint32_t x = w[0];
    const uint32_t y = prmt(x, 0, 0x3120);
    const uint32_t sel[4] = {(x << 4) & 0x7070u, x & 0x7070u, (x >> 12) & 0x7070u, (x >> 16) & 0x7070u};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t mag = prmt(0x3E3C3800u, 0x46444240u, sel[j]);
      const uint32_t v = mag | ((y << (12 - 4 * j)) & 0x80008000u);
      h[j] = as_u32(__hmul2(as_h2(v), gs.mul));
    }
  } else if constexpr (F == Fam::e4m3) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t pair = prmt(w[j >> 1], 0, (j & 1) ? 0x0031u : 0x0020u);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
      uint32_t v;
      asm("{ .reg .b16 lo; cvt.u16.u32 lo, %1; cvt.rn.f16x2.e4m3x2 %0, lo; }" : "=r"(v) : "r"(pair));
      h[j] = as_u32(__hmul2(as_h2(v), gs.mul));
#else
      // E4M3 bits s.eeee.mmm placed at f16 bits 15 and 13..7: the value times 2^-8.
      const uint32_t z = prmt(pair, 0, 0x7170u);  // bytes -> halves
      const uint32_t v = ((z & 0x007F007Fu) << 7) | ((z & 0x00800080u) << 8);
      h[j] = as_u32(__hmul2(__hmul2(as_h2(v), __float2half2_rn(256.0f)), gs.mul));
#endif
    }
  }
}

// Generic: the shared scalar rule, value by value (any quantized format; slower).
__device__ __forceinline__ void decode_octet_generic(const fmt::RowCodec& c, const uint8_t* codes, const uint8_t* scales,
                                                     const uint8_t* biases, int64_t dim0, uint32_t h[4], bool* bad) {
  float v[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    v[e] = fmt::decode_value(c, codes, scales, biases, dim0 + e);
    if (!(fabsf(v[e]) < 65504.0f)) *bad = true;
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) h[j] = as_u32(__floats2half2_rn(v[pair_lo(j)], v[pair_hi(j)]));
}

// Loads `Bytes` contiguous bytes (a power of two, aligned to min(Bytes, 16)) into words.
template <int Bytes>
__device__ __forceinline__ void load_bytes(const uint8_t* p, uint32_t* w) {
  if constexpr (Bytes >= 16) {
#pragma unroll
    for (int i = 0; i < Bytes / 16; ++i) {
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(p) + i);
      w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
    }
  } else if constexpr (Bytes == 8) {
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(p));
    w[0] = v.x, w[1] = v.y;
  } else if constexpr (Bytes == 4) {
    w[0] = __ldg(reinterpret_cast<const uint32_t*>(p));
  }
}

// `Octets` consecutive octets of one row from dim0, decoded into 4*Octets half2.
template <Fam F, int Octets>
struct RowPiece {
  static constexpr int kWords = F == Fam::generic ? 1 : Octets * octet_bytes<F>() / 4;
  uint32_t raw[kWords];
  const uint8_t *codes, *scales, *biases;

  __device__ __forceinline__ void load(const CacheView& cv, int64_t b, int64_t hk, int64_t j, int64_t dim0) {
    codes = cv.code_row(b, hk, j);
    scales = cv.scale_row(b, hk, j);
    biases = cv.bias_row(b, hk, j);
    if constexpr (F != Fam::generic) load_bytes<Octets * octet_bytes<F>()>(codes + dim0 * octet_bytes<F>() / 8, raw);
  }
  __device__ __forceinline__ void decode(const fmt::RowCodec& c, int64_t dim0, uint32_t h[4 * Octets], bool* bad) const {
#pragma unroll
    for (int o = 0; o < Octets; ++o) {
      if constexpr (F == Fam::generic) {
        decode_octet_generic(c, codes, scales, biases, dim0 + 8 * o, h + 4 * o, bad);
      } else {
        const GroupScale gs = group_scale<F>(c, scales, biases, dim0 + 8 * o, bad);
        decode_octet<F>(raw + o * octet_bytes<F>() / 4, gs, h + 4 * o);
      }
    }
  }
};

struct MmaParams : KernelArgs {
  int rows;    // R = G * Lq
  int splits;  // blocks per (b, kv head) = partials per row
  float* work;
};

// Shared memory: q's B fragments [D/16][NT][32] uint2, then a float area used first to stage q
// ([NT*8][D]) and at the end for the 4 warp partials ([4][NT*8][D+2]).
template <int D, int NT>
constexpr size_t smem_bytes() {
  return size_t(D / 16) * NT * 32 * 8 + size_t(kWarps) * NT * 8 * (D + 2) * 4;
}

template <int D, int NT, Fam KF, Fam VF>
__global__ void __launch_bounds__(kThreads) mma_partials(MmaParams p) {
  constexpr int KS = D / 16;     // QK k-steps = PV m-tiles
  constexpr int KOCT = D / 32;   // octets per lane of a K row (lane t: dims [t*D/4, (t+1)*D/4))
  constexpr int VOCT = D / 64;   // octets per lane of a V row (lane g: dims [g*D/8, (g+1)*D/8))
  constexpr int RP = NT * 8;     // padded rows
  extern __shared__ __align__(16) uint8_t smem[];
  uint2* qfrag = reinterpret_cast<uint2*>(smem);
  float* fl = reinterpret_cast<float*>(smem + size_t(KS) * NT * 32 * 8);

  const int64_t split = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
  const int64_t Lq = p.q.shape[2], Hq = p.q.shape[1], G = Hq / p.k.heads;
  const int R = p.rows;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  fmt::RowCodec kc, vc;
  head_codecs(p, hk, p.k_levels, p.v_levels, &kc, &vc);
  const int64_t n = sequence_length(p, b);
  bool bad = false;

  // q, scaled by scale * log2(e) * K's head factor, staged in f32; turbo rotates it.
  const float qmul = p.scale * kLog2e * head_factor<KF>(kc);
  for (int idx = threadIdx.x; idx < RP * D; idx += kThreads) {
    const int r = idx / D, d = idx % D;
    float v = 0.0f;
    if (r < R) v = detail::load_float(p.q.data, p.q.dtype, p.q.offset(b, hk * G + r % G, r / G, d)) * qmul;
    fl[idx] = v;
  }
  __syncthreads();
  if (kc.kind == FormatKind::turbo)
    for (int r = 0; r < R; ++r) rotate_shared(fl + r * D, D, kc.seed, false);
  // Each row is brought to [2^13, 2^14) by a power of two (f16 keeps its precision), undone on the
  // f32 scores.
  __shared__ float row_unscale[RP];
  if (threadIdx.x < RP) {
    float mx = 0.0f;
    for (int d = 0; d < D; ++d) mx = fmaxf(mx, fabsf(fl[threadIdx.x * D + d]));
    int e = 0;
    if (mx > 0.0f) frexpf(mx, &e);
    row_unscale[threadIdx.x] = exp2f(float(e - 14));
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < KS * NT * 32; idx += kThreads) {
    const int s = idx / (NT * 32), nt = (idx / 32) % NT, l = idx % 32;
    const int row = nt * 8 + l / 4, base = (l % 4) * (D / 4) + 8 * (s / 2), jj = 2 * (s % 2);
    const float* q = fl + row * D;
    const float inv = 1.0f / row_unscale[row];
    uint2 f;
    f.x = as_u32(__floats2half2_rn(q[base + pair_lo(jj)] * inv, q[base + pair_hi(jj)] * inv));
    f.y = as_u32(__floats2half2_rn(q[base + pair_lo(jj + 1)] * inv, q[base + pair_hi(jj + 1)] * inv));
    qfrag[idx] = f;
  }
  __syncthreads();

  // This lane's rows in the score fragments: 2t, 2t+1 of each n-tile.
  float unscale[NT][2];
  int64_t vis_lo[NT][2], vis_hi[NT][2];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const int r = nt * 8 + 2 * t + c;
      unscale[nt][c] = row_unscale[r];
      if (r < R) {
        const detail::KeyRange vr = detail::visible_keys(p.causal, p.window, n, Lq, r / G);
        vis_lo[nt][c] = vr.lo;
        vis_hi[nt][c] = vr.hi;
      } else {
        vis_lo[nt][c] = 0;
        vis_hi[nt][c] = 0;
      }
    }

  // The block's keys, narrowed to what any row can see; then this warp's quarter.
  int64_t lo = n * split / p.splits, hi = n * (split + 1) / p.splits;
  {
    const detail::KeyRange first = detail::visible_keys(p.causal, p.window, n, Lq, 0);
    const detail::KeyRange last = detail::visible_keys(p.causal, p.window, n, Lq, Lq - 1);
    lo = std::max(lo, first.lo);
    hi = std::min(hi, last.hi);
  }
  const int64_t span = hi > lo ? hi - lo : 0;
  const int64_t wlo = lo + span * warp / kWarps, whi = lo + span * (warp + 1) / kWarps;

  float acc[KS][NT][4];
#pragma unroll
  for (int u = 0; u < KS; ++u)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) acc[u][nt][0] = acc[u][nt][1] = acc[u][nt][2] = acc[u][nt][3] = 0.0f;
  float m_run[NT][2], l_run[NT][2];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) m_run[nt][0] = m_run[nt][1] = -INFINITY, l_run[nt][0] = l_run[nt][1] = 0.0f;

  const int64_t kdim0 = int64_t(t) * (D / 4), vdim0 = int64_t(g) * (D / 8);
  for (int64_t j0 = wlo; j0 < whi; j0 += 16) {
    const int64_t last = whi - 1;
    RowPiece<KF, KOCT> kr[2];
    RowPiece<VF, VOCT> vr[4];
    kr[0].load(p.k, b, hk, std::min(j0 + g, last), kdim0);
    kr[1].load(p.k, b, hk, std::min(j0 + g + 8, last), kdim0);
#pragma unroll
    for (int i = 0; i < 4; ++i) vr[i].load(p.v, b, hk, std::min(j0 + 2 * t + (i & 1) + 8 * (i >> 1), last), vdim0);

    // S^T = K Q^T: lane holds keys g, g+8 x rows 2t, 2t+1 of each n-tile.
    float s[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
    {
      uint32_t ha[4 * KOCT], hb[4 * KOCT];
      kr[0].decode(kc, kdim0, ha, &bad);
      kr[1].decode(kc, kdim0, hb, &bad);
#pragma unroll
      for (int st = 0; st < KS; ++st) {
        const int i0 = 4 * (st / 2) + 2 * (st % 2);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          const uint2 qb = qfrag[(st * NT + nt) * 32 + lane];
          mma16816(s[nt], ha[i0], hb[i0], ha[i0 + 1], hb[i0 + 1], qb.x, qb.y);
        }
      }
    }

    // Online softmax (base 2) per row; P goes to f16 and is transposed into PV's B fragments.
    uint32_t pb0[NT], pb1[NT];
    const int64_t ja = j0 + g, jb = j0 + g + 8;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      float pr[4];
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        float sa = s[nt][c] * unscale[nt][c], sb = s[nt][c + 2] * unscale[nt][c];
        if (!(ja < whi && ja >= vis_lo[nt][c] && ja < vis_hi[nt][c])) sa = -INFINITY;
        if (!(jb < whi && jb >= vis_lo[nt][c] && jb < vis_hi[nt][c])) sb = -INFINITY;
        float mx = fmaxf(sa, sb);
        mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 4));
        mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 8));
        mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 16));
        const float m_new = fmaxf(m_run[nt][c], mx);
        const float m_use = m_new == -INFINITY ? 0.0f : m_new;
        const float alpha = exp2f(m_run[nt][c] - m_use);
        pr[c] = exp2f(sa - m_use);
        pr[c + 2] = exp2f(sb - m_use);
        l_run[nt][c] = l_run[nt][c] * alpha + pr[c] + pr[c + 2];
        m_run[nt][c] = m_new;
#pragma unroll
        for (int u = 0; u < KS; ++u) {
          acc[u][nt][c] *= alpha;
          acc[u][nt][c + 2] *= alpha;
        }
      }
      pb0[nt] = transpose8x8(as_u32(__floats2half2_rn(pr[0], pr[1])));
      pb1[nt] = transpose8x8(as_u32(__floats2half2_rn(pr[2], pr[3])));
    }

    // O^T += V^T P^T: lane holds dims of its V piece x keys 2t, 2t+1, 2t+8, 2t+9.
    {
      uint32_t hv[4][4 * VOCT];
#pragma unroll
      for (int i = 0; i < 4; ++i) vr[i].decode(vc, vdim0, hv[i], &bad);
#pragma unroll
      for (int u = 0; u < KS; ++u) {
        const uint32_t a0 = prmt(hv[0][u], hv[1][u], 0x5410), a1 = prmt(hv[0][u], hv[1][u], 0x7632);
        const uint32_t a2 = prmt(hv[2][u], hv[3][u], 0x5410), a3 = prmt(hv[2][u], hv[3][u], 0x7632);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mma16816(acc[u][nt], a0, a1, a2, a3, pb0[nt], pb1[nt]);
      }
    }
  }
  if (bad && p.status) atomicOr(p.status, kStatusRange);

  // Warp partials to shared memory (fl is free again): [warp][row][D + 2] with m (base 2) and l.
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      float l = l_run[nt][c];
      l += __shfl_xor_sync(0xFFFFFFFFu, l, 4);
      l += __shfl_xor_sync(0xFFFFFFFFu, l, 8);
      l += __shfl_xor_sync(0xFFFFFFFFu, l, 16);
      l_run[nt][c] = l;
    }
  __syncthreads();
  const float vmul = head_factor<VF>(vc);
  float* wp = fl + warp * RP * (D + 2);
#pragma unroll
  for (int u = 0; u < KS; ++u) {
    const int o = u / 4, jj = u % 4;
    const int d_lo = g * (D / 8) + 8 * o + pair_lo(jj), d_hi = g * (D / 8) + 8 * o + pair_hi(jj);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int r = nt * 8 + 2 * t + c;
        wp[r * (D + 2) + d_lo] = acc[u][nt][c] * vmul;
        wp[r * (D + 2) + d_hi] = acc[u][nt][c + 2] * vmul;
      }
  }
  if (g == 0)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int r = nt * 8 + 2 * t + c;
        wp[r * (D + 2) + D] = m_run[nt][c];
        wp[r * (D + 2) + D + 1] = l_run[nt][c];
      }
  __syncthreads();

  // Merge the 4 warps; the block's partial goes out with m in natural-log units.
  float* out = p.work + ((b * p.k.heads + hk) * p.splits + split) * int64_t(R) * (D + 2);
  for (int idx = threadIdx.x; idx < R * (D + 2); idx += kThreads) {
    const int r = idx / (D + 2), d = idx % (D + 2);
    float mw[kWarps], top = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      mw[w] = fl[(w * RP + r) * (D + 2) + D];
      top = fmaxf(top, mw[w]);
    }
    float v;
    if (d == D) {
      v = top == -INFINITY ? -INFINITY : top / kLog2e;
    } else {
      v = 0.0f;
      if (top != -INFINITY)
#pragma unroll
        for (int w = 0; w < kWarps; ++w)
          if (mw[w] != -INFINITY) v += fl[(w * RP + r) * (D + 2) + d] * exp2f(mw[w] - top);
    }
    out[idx] = v;
  }
}

using Launch = void (*)(const MmaParams&, unsigned, cudaStream_t);

template <int D, int NT, Fam KF, Fam VF>
void launch(const MmaParams& p, unsigned blocks, cudaStream_t stream) {
  constexpr size_t smem = smem_bytes<D, NT>();
  static_assert(smem <= 48 * 1024, "the kernel uses default shared memory limits");
  const unsigned B = unsigned(p.q.shape[0]), Hkv = unsigned(p.k.heads);
  mma_partials<D, NT, KF, VF><<<dim3(blocks, Hkv, B), kThreads, smem, stream>>>(p);
}

// Resident blocks per SM, asked once per instance (host only, no synchronization).
template <int D, int NT, Fam KF, Fam VF>
int occupancy() {
  static const int blocks = [] {
    int n = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, mma_partials<D, NT, KF, VF>, kThreads, smem_bytes<D, NT>()) !=
        cudaSuccess)
      n = 1;
    return std::max(n, 1);
  }();
  return blocks;
}

struct Instance {
  Launch run;
  int (*resident)();
  bool compiled_pair;  // false: the pair runs on the generic decoders
};

// The compiled (K, V) decoder pairs: same-format families plus issue 3's named mixed pairs
// (mxfp8:turbo3, fp8:turbo4 -> e4m3:generic; mxfp8:mxfp4; affine8:affine4). Any other pair of
// f16-representable formats runs as generic:generic.
template <int D, int NT>
Instance pick_pair(Fam kf, Fam vf) {
#define QSDPA_PAIR(K, V) \
  if (kf == Fam::K && vf == Fam::V) return {&launch<D, NT, Fam::K, Fam::V>, &occupancy<D, NT, Fam::K, Fam::V>, true};
  QSDPA_PAIR(f16, f16)
  QSDPA_PAIR(u4, u4)
  QSDPA_PAIR(u8, u8)
  QSDPA_PAIR(e2m1, e2m1)
  QSDPA_PAIR(e4m3, e4m3)
  QSDPA_PAIR(e4m3, generic)
  QSDPA_PAIR(e4m3, e2m1)
  QSDPA_PAIR(u8, u4)
#undef QSDPA_PAIR
  return {&launch<D, NT, Fam::generic, Fam::generic>, &occupancy<D, NT, Fam::generic, Fam::generic>,
          kf == Fam::generic && vf == Fam::generic};
}


// Instantiated once per (D, NT) in attention_mma_d*.cu, so that a 16-core machine compiles them in
// parallel.
extern template Instance pick_pair<64, 1>(Fam, Fam);
extern template Instance pick_pair<64, 2>(Fam, Fam);
extern template Instance pick_pair<64, 4>(Fam, Fam);
extern template Instance pick_pair<128, 1>(Fam, Fam);
extern template Instance pick_pair<128, 2>(Fam, Fam);
extern template Instance pick_pair<256, 1>(Fam, Fam);

}  // namespace qsdpa::cuda::mma
