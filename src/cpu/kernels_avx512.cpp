// AVX-512 building blocks of the CPU attention (compiled with -mavx512{f,bw,vl,dq,vbmi} -mf16c -mfma;
// used only when the CPU has them).
//
// Decoders turn a tile of cache rows into f32 with whole-vector tricks, so that a quantized format
// costs about what an f16 -> f32 conversion costs:
//  - packed b-bit codes (b = 2..8): one masked 8*b-byte load, vpermb to give each 64-bit lane the b
//    bytes holding its 8 codes, vpmultishiftqb to move code j of the lane to byte j, and a mask:
//    64 codes in 4 instructions, whatever b (3-, 5- and 6-bit codes straddle bytes and need nothing else);
//  - affine: int -> f32 conversion, then scale * code + bias per 16 lanes (scales per group, not
//    per element);
//  - FP4 (mxfp4, nvfp4) and turbo: vpermps looks the 16 possible values up in one register;
//  - FP8 (E4M3): the byte's exponent and mantissa moved into f16 position, vcvtph2ps, times 2^8.
// Every decoder is tested for equality with the scalar rule (tests/test_cpu_decoders.cpp).
//
// Dense loops: scores in 4x4 (rows x tokens) register blocks reduced by a 16-way transpose-add;
// P*V in 4 rows x 64 dims register blocks; exp by a degree-6 polynomial and vscalefps.
#include <immintrin.h>

#include <cmath>

#include "cpu/kernels.hpp"

namespace qsdpa::cpu {
namespace {

// ---- unpacking packed codes ----

struct Unpacker {
  __m512i perm, shifts, mask;
  __mmask64 load_mask;
  int bits;
  explicit Unpacker(int b) : bits(b) {
    alignas(64) uint8_t p[64], s[64];
    for (int k = 0; k < 8; ++k)
      for (int j = 0; j < 8; ++j) {
        const int src = k * b + j;
        p[8 * k + j] = uint8_t(src < 64 ? src : 63);
        s[8 * k + j] = uint8_t(j * b);
      }
    perm = _mm512_load_si512(p);
    shifts = _mm512_load_si512(s);
    mask = _mm512_set1_epi8(char((1 << b) - 1));
    load_mask = b == 8 ? ~__mmask64(0) : ((__mmask64(1) << (8 * b)) - 1);
  }
  // Codes 64*block .. 64*block+63 of a row, one per byte.
  __m512i codes64(const uint8_t* row, int64_t block) const {
    const __m512i src = _mm512_maskz_loadu_epi8(load_mask, row + block * 8 * bits);
    const __m512i x = _mm512_multishift_epi64_epi8(shifts, _mm512_permutexvar_epi8(perm, src));
    return _mm512_and_si512(x, mask);
  }
};

inline __m512i lane16(__m512i bytes, int c) {
  switch (c) {
    case 0: return _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(bytes, 0));
    case 1: return _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(bytes, 1));
    case 2: return _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(bytes, 2));
    default: return _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(bytes, 3));
  }
}

// Per-16-lane multipliers (and affine biases) of one row, from the scalar rule.
inline void row_multipliers(const fmt::RowCodec& c, const uint8_t* scales, const uint8_t* biases, int64_t dim,
                            float* mult, float* bias) {
  for (int64_t blk = 0; blk < dim / 16; ++blk) {
    const int64_t d = blk * 16;
    if (c.kind == FormatKind::affine) {
      mult[blk] = fmt::load_scale(scales, d / c.group, c.scale_dtype);
      bias[blk] = fmt::load_scale(biases, d / c.group, c.scale_dtype);
    } else if (c.kind == FormatKind::turbo) {
      mult[blk] = fmt::load_scale(scales, 0, ScaleDType::f16);
    } else {
      mult[blk] = fmt::group_multiplier(c, scales, c.group > 0 ? d / c.group : 0);
    }
  }
}

// Converts 16 codes (int32 lanes) to values for format kind K, times the block's multiplier.
template <FormatKind K>
inline __m512 finish16(__m512i codes, __m512 table, __m512 mult, __m512 bias) {
  if constexpr (K == FormatKind::affine) {
    return _mm512_add_ps(_mm512_mul_ps(mult, _mm512_cvtepi32_ps(codes)), bias);
  } else {  // FP4 and turbo: a 16-entry table (turbo's 4/8 levels repeated)
    return _mm512_mul_ps(_mm512_permutexvar_ps(codes, table), mult);
  }
}

template <FormatKind K>
void decode_packed(const fmt::RowCodec& c, const CacheView& cache, int64_t b, int64_t h, int64_t t0, int count,
                   float* out) {
  const int64_t dim = cache.dim;
  const Unpacker un(c.bits);
  alignas(64) float tab[16];
  for (int i = 0; i < 16; ++i)
    tab[i] = K == FormatKind::turbo ? c.levels[i & ((1 << c.bits) - 1)] : fmt::e2m1_to_f32(uint32_t(i));
  const __m512 table = _mm512_load_ps(tab);
  float mult[32], bias[32] = {};
  for (int t = 0; t < count; ++t) {
    const int64_t n = t0 + t;
    row_multipliers(c, cache.scale_row(b, h, n), cache.bias_row(b, h, n), dim, mult, bias);
    const uint8_t* row = cache.code_row(b, h, n);
    float* o = out + int64_t(t) * dim;
    for (int64_t blk = 0; blk < dim / 64; ++blk) {
      const __m512i codes = un.codes64(row, blk);
      for (int ci = 0; ci < 4; ++ci) {
        const int64_t m = blk * 4 + ci;
        const __m512 v = finish16<K>(lane16(codes, ci), table, _mm512_set1_ps(mult[m]), _mm512_set1_ps(bias[m]));
        _mm512_storeu_ps(o + m * 16, v);
      }
    }
  }
}

// 8-bit formats: bytes are codes; no unpacking.
template <FormatKind K>
void decode_bytes(const fmt::RowCodec& c, const CacheView& cache, int64_t b, int64_t h, int64_t t0, int count,
                  float* out) {
  const int64_t dim = cache.dim;
  float mult[32], bias[32] = {};
  const __m256i low7 = _mm256_set1_epi16(0x7F), sign = _mm256_set1_epi16(0x80);
  const __m512 two8 = _mm512_set1_ps(256.0f), nan = _mm512_set1_ps(NAN);
  for (int t = 0; t < count; ++t) {
    const int64_t n = t0 + t;
    row_multipliers(c, cache.scale_row(b, h, n), cache.bias_row(b, h, n), dim, mult, bias);
    const uint8_t* row = cache.code_row(b, h, n);
    float* o = out + int64_t(t) * dim;
    for (int64_t m = 0; m < dim / 16; ++m) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + m * 16));
      __m512 v;
      if constexpr (K == FormatKind::affine) {
        v = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(mult[m]), _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes))),
                          _mm512_set1_ps(bias[m]));
      } else {  // E4M3 -> f16 bits: exponent+mantissa << 7, sign << 8; then x 2^8 restores the bias
        const __m256i w = _mm256_cvtepu8_epi16(bytes);
        const __m256i mag = _mm256_and_si256(w, low7);
        const __m256i h16 = _mm256_or_si256(_mm256_slli_epi16(mag, 7), _mm256_slli_epi16(_mm256_and_si256(w, sign), 8));
        v = _mm512_mul_ps(_mm512_cvtph_ps(h16), two8);
        v = _mm512_mask_mov_ps(v, _mm256_cmpeq_epi16_mask(mag, low7), nan);  // 0x7F / 0xFF are NaN
        v = _mm512_mul_ps(v, _mm512_set1_ps(mult[m]));
      }
      _mm512_storeu_ps(o + m * 16, v);
    }
  }
}

void decode_f16(const fmt::RowCodec&, const CacheView& cache, int64_t b, int64_t h, int64_t t0, int count, float* out) {
  const int64_t dim = cache.dim;
  for (int t = 0; t < count; ++t) {
    const uint8_t* row = cache.code_row(b, h, t0 + t);
    float* o = out + int64_t(t) * dim;
    for (int64_t d = 0; d < dim; d += 16)
      _mm512_storeu_ps(o + d, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * d))));
  }
}

void decode_bf16(const fmt::RowCodec&, const CacheView& cache, int64_t b, int64_t h, int64_t t0, int count, float* out) {
  const int64_t dim = cache.dim;
  for (int t = 0; t < count; ++t) {
    const uint8_t* row = cache.code_row(b, h, t0 + t);
    float* o = out + int64_t(t) * dim;
    for (int64_t d = 0; d < dim; d += 16) {
      const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * d)));
      _mm512_storeu_ps(o + d, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
  }
}

void decode_f32(const fmt::RowCodec&, const CacheView& cache, int64_t b, int64_t h, int64_t t0, int count, float* out) {
  const int64_t dim = cache.dim;
  for (int t = 0; t < count; ++t) {
    const float* row = reinterpret_cast<const float*>(cache.code_row(b, h, t0 + t));
    float* o = out + int64_t(t) * dim;
    for (int64_t d = 0; d < dim; d += 16) _mm512_storeu_ps(o + d, _mm512_loadu_ps(row + d));
  }
}

// ---- dense loops ----

// v[4i + j] = sum of x[4j + i] (see the file comment): a 16-way horizontal sum as a transpose.
inline __m512 hsum16(const __m512* x) {
  __m512 y[8], z[4], w[2];
  for (int k = 0; k < 8; ++k)
    y[k] = _mm512_add_ps(_mm512_shuffle_f32x4(x[2 * k], x[2 * k + 1], 0x44), _mm512_shuffle_f32x4(x[2 * k], x[2 * k + 1], 0xEE));
  for (int k = 0; k < 4; ++k)
    z[k] = _mm512_add_ps(_mm512_shuffle_f32x4(y[2 * k], y[2 * k + 1], 0x88), _mm512_shuffle_f32x4(y[2 * k], y[2 * k + 1], 0xDD));
  for (int k = 0; k < 2; ++k)
    w[k] = _mm512_add_ps(_mm512_shuffle_ps(z[2 * k], z[2 * k + 1], 0x44), _mm512_shuffle_ps(z[2 * k], z[2 * k + 1], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xDD));
}

void scores_avx512(const float* q, int64_t rows4, const float* k, int tokens4, int64_t dim, float* s, int s_stride) {
  for (int64_t r = 0; r < rows4; r += 4) {
    const float* q0 = q + r * dim;
    for (int t = 0; t < tokens4; t += 4) {
      const float* k0 = k + int64_t(t) * dim;
      __m512 acc[16];
      for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
      for (int64_t d = 0; d < dim; d += 16) {
        __m512 qv[4], kv[4];
        for (int i = 0; i < 4; ++i) qv[i] = _mm512_loadu_ps(q0 + i * dim + d);
        for (int j = 0; j < 4; ++j) kv[j] = _mm512_loadu_ps(k0 + j * dim + d);
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j) acc[4 * j + i] = _mm512_fmadd_ps(qv[i], kv[j], acc[4 * j + i]);
      }
      const __m512 sum = hsum16(acc);  // lane 4i + j = dot(q[r+i], k[t+j])
      _mm_storeu_ps(s + (r + 0) * s_stride + t, _mm512_extractf32x4_ps(sum, 0));
      _mm_storeu_ps(s + (r + 1) * s_stride + t, _mm512_extractf32x4_ps(sum, 1));
      _mm_storeu_ps(s + (r + 2) * s_stride + t, _mm512_extractf32x4_ps(sum, 2));
      _mm_storeu_ps(s + (r + 3) * s_stride + t, _mm512_extractf32x4_ps(sum, 3));
    }
  }
}

void accumulate_avx512(const float* p, int p_stride, int64_t rows4, const float* v, int tokens, int64_t dim, float* acc) {
  for (int64_t r = 0; r < rows4; r += 4) {
    int64_t d = 0;
    for (; d + 64 <= dim; d += 64) {
      __m512 c[4][4];
      for (int i = 0; i < 4; ++i)
        for (int u = 0; u < 4; ++u) c[i][u] = _mm512_loadu_ps(acc + (r + i) * dim + d + 16 * u);
      for (int t = 0; t < tokens; ++t) {
        const float* vr = v + int64_t(t) * dim + d;
        __m512 vv[4];
        for (int u = 0; u < 4; ++u) vv[u] = _mm512_loadu_ps(vr + 16 * u);
        for (int i = 0; i < 4; ++i) {
          const __m512 w = _mm512_set1_ps(p[(r + i) * p_stride + t]);
          for (int u = 0; u < 4; ++u) c[i][u] = _mm512_fmadd_ps(w, vv[u], c[i][u]);
        }
      }
      for (int i = 0; i < 4; ++i)
        for (int u = 0; u < 4; ++u) _mm512_storeu_ps(acc + (r + i) * dim + d + 16 * u, c[i][u]);
    }
    for (; d < dim; d += 16) {
      __m512 c[4];
      for (int i = 0; i < 4; ++i) c[i] = _mm512_loadu_ps(acc + (r + i) * dim + d);
      for (int t = 0; t < tokens; ++t) {
        const __m512 vv = _mm512_loadu_ps(v + int64_t(t) * dim + d);
        for (int i = 0; i < 4; ++i) c[i] = _mm512_fmadd_ps(_mm512_set1_ps(p[(r + i) * p_stride + t]), vv, c[i]);
      }
      for (int i = 0; i < 4; ++i) _mm512_storeu_ps(acc + (r + i) * dim + d, c[i]);
    }
  }
}

// exp(x) = 2^n * p(r), x = n*ln2 + r, |r| <= ln2/2; degree-6 Taylor polynomial (relative error < 4e-7).
inline __m512 exp16(__m512 x) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512 y = _mm512_scalef_ps(p, n);
  // Below -87.3 the result is under f32's normal range; treat it (and -inf) as 0.
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GT_OQ), y);
}

void exp_avx512(float* x, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, exp16(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(x + i, m, exp16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

}  // namespace

const DenseKernels& avx512_dense() {
  static const DenseKernels k{scores_avx512, accumulate_avx512, exp_avx512};
  return k;
}

DecodeTileFn avx512_decoder(const Format& f, int64_t dim) {
  if (dim % 16 != 0 || dim / 16 > 32) return nullptr;
  switch (f.kind) {
    case FormatKind::f32: return decode_f32;
    case FormatKind::f16: return decode_f16;
    case FormatKind::bf16: return decode_bf16;
    case FormatKind::mxfp8:
    case FormatKind::fp8: return decode_bytes<FormatKind::fp8>;
    case FormatKind::affine:
      if (f.bits == 8) return decode_bytes<FormatKind::affine>;
      return dim % 64 == 0 ? decode_packed<FormatKind::affine> : nullptr;
    case FormatKind::mxfp4:
    case FormatKind::nvfp4: return dim % 64 == 0 ? decode_packed<FormatKind::mxfp4> : nullptr;
    case FormatKind::turbo: return dim % 64 == 0 ? decode_packed<FormatKind::turbo> : nullptr;
  }
  return nullptr;
}

}  // namespace qsdpa::cpu
