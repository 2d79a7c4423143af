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
#include <cstdlib>

#include "cpu/kernels.hpp"

namespace qsdpa::cpu {
namespace {

// ---- unpacking packed codes ----

struct Unpacker {
  __m512i perm, shifts, mask32;  // mask32: the code bits in each 32-bit lane
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
    mask32 = _mm512_set1_epi32((1 << b) - 1);
    load_mask = b == 8 ? ~__mmask64(0) : ((__mmask64(1) << (8 * b)) - 1);
  }
  // Codes 64*block .. 64*block+63 of a row, one per byte, in its low bits (the bits above hold the
  // next code's low bits: mask before converting).
  __m512i codes64(const uint8_t* row, int64_t block) const {
    const __m512i src = _mm512_maskz_loadu_epi8(load_mask, row + block * 8 * bits);
    return _mm512_multishift_epi64_epi8(shifts, _mm512_permutexvar_epi8(perm, src));
  }
};

// E4M3 bytes (in 16-bit lanes) -> f32: exponent and mantissa moved into f16 position, vcvtph2ps,
// times 2^8 to restore the bias; 0x7F / 0xFF are NaN.
inline __m512 e4m3x16_to_f32(__m256i w) {
  const __m256i low7 = _mm256_set1_epi16(0x7F);
  const __m256i mag = _mm256_and_si256(w, low7);
  const __m256i h16 = _mm256_or_si256(_mm256_slli_epi16(mag, 7), _mm256_slli_epi16(_mm256_and_si256(w, _mm256_set1_epi16(0x80)), 8));
  const __m512 v = _mm512_mul_ps(_mm512_cvtph_ps(h16), _mm512_set1_ps(256.0f));
  return _mm512_mask_mov_ps(v, _mm256_cmpeq_epi16_mask(mag, low7), _mm512_set1_ps(NAN));
}

// Up to 16 scale values of a row (f16, bf16 or f32 per `t`) -> f32, exactly as load_scale.
inline __m512 scales16(const uint8_t* p, int count, ScaleDType t) {
  const __mmask16 m = __mmask16((1u << count) - 1u);
  switch (t) {
    case ScaleDType::f32: return _mm512_maskz_loadu_ps(m, p);
    case ScaleDType::f16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
    default: return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
  }
}

// Up to 16 E8M0 bytes -> 2^(e-127) (e = 0: 2^-127, a subnormal; e = 255: NaN). Lanes past `count`
// are 0, not subnormal: arithmetic on subnormals costs a microcode assist.
inline __m512 e8m0x16_to_f32(const uint8_t* p, int count) {
  const __mmask16 valid = __mmask16((1u << count) - 1u);
  const __m512i e = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(valid, p));
  __m512i bits = _mm512_slli_epi32(e, 23);
  bits = _mm512_mask_mov_epi32(bits, valid & _mm512_cmpeq_epi32_mask(e, _mm512_setzero_si512()), _mm512_set1_epi32(0x00400000));
  bits = _mm512_mask_mov_epi32(bits, _mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(255)), _mm512_set1_epi32(0x7FC00000));
  return _mm512_castsi512_ps(bits);
}

// Group multipliers of one row in registers: lanes 0-15 in `lo`, 16-31 in `hi` (nvfp4 at D = 512),
// affine biases in `bias`. The same values as the scalar rule (tests/test_cpu_decoders.cpp), computed
// a vector at a time and kept in registers: going through memory stalls on store forwarding.
struct RowGroups {
  __m512 lo, hi, bias;
  // The multiplier (or bias) of each lane-block: idx holds the group index in every lane.
  __m512 mult(__m512i idx) const { return _mm512_permutex2var_ps(lo, idx, hi); }
  __m512 add(__m512i idx) const { return _mm512_permutexvar_ps(idx, bias); }
};

inline RowGroups row_groups(const fmt::RowCodec& c, const uint8_t* scales, const uint8_t* biases, int64_t dim) {
  RowGroups g{_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  switch (c.kind) {
    case FormatKind::affine: {
      const int groups = int(dim / c.group);
      g.lo = scales16(scales, groups, c.scale_dtype);
      g.bias = scales16(biases, groups, c.scale_dtype);
      break;
    }
    case FormatKind::mxfp4:
    case FormatKind::mxfp8: g.lo = e8m0x16_to_f32(scales, int(dim / c.group)); break;
    case FormatKind::nvfp4: {  // 16 values per group: up to 32 groups at D = 512
      const __m512 factor = _mm512_set1_ps(fmt::nvfp4_global_factor(c.global_scale));
      const int groups = int(dim / 16);
      const __m256i lo = _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(__mmask16(groups >= 16 ? 0xFFFF : (1u << groups) - 1u), scales));
      g.lo = _mm512_mul_ps(e4m3x16_to_f32(lo), factor);
      if (groups > 16) {
        const __m256i hi = _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(__mmask16((1u << (groups - 16)) - 1u), scales + 16));
        g.hi = _mm512_mul_ps(e4m3x16_to_f32(hi), factor);
      }
      break;
    }
    case FormatKind::turbo: g.lo = _mm512_set1_ps(fmt::load_scale(scales, 0, ScaleDType::f16)); break;
    default: g.lo = _mm512_set1_ps(c.tensor_scale); break;  // fp8: one scale for the tensor (or head)
  }
  return g;
}

// Group of each 16-lane block of a row (groups are powers of two >= 16; 0 for one scale per row).
struct BlockGroups {
  int shift;
  explicit BlockGroups(const fmt::RowCodec& c)
      : shift(c.kind == FormatKind::turbo || c.kind == FormatKind::fp8 ? 30 : __builtin_ctz(unsigned(c.group))) {}
  int group(int64_t m) const { return int((m * 16) >> shift); }
  __m512i idx(int64_t m) const { return _mm512_set1_epi32(group(m)); }
};

// Asks for the row `ahead` rows after n (codes, scales, biases) to be brought into L2: one row per
// decoded row keeps a steady number of requests in flight, where a burst per tile would overflow the
// miss queue. Two threads alone do not keep enough loads in flight to stream at full speed.
inline void prefetch_l2(const void* p) {
  // Inline asm: GCC 12 dropped the _mm_prefetch / __builtin_prefetch calls here (found by
  // disassembly: no prefetcht1 in the object, and no speedup).
  asm volatile("prefetcht1 %0" : : "m"(*static_cast<const char*>(p)));
}

inline void prefetch_ahead(const CacheView& c, int64_t b, int64_t h, int64_t n, int64_t code_bytes) {
  constexpr int64_t ahead = 96;  // rows ahead; 24-160 measure alike for f16 at N=32K on 2 threads
  if (n + ahead >= c.tokens) return;
  const uint8_t* row = c.code_row(b, h, n + ahead);
  for (int64_t off = 0; off < code_bytes; off += 64) prefetch_l2(row + off);
  // Scales and biases take a few bytes per row: one request per 8 rows covers their lines.
  if ((n & 7) == 0) {
    if (c.scales) prefetch_l2(c.scale_row(b, h, n + ahead));
    if (c.biases) prefetch_l2(c.bias_row(b, h, n + ahead));
  }
}

// Each decoder below writes its row loop (prefetch_ahead, row_groups, the row's codes and outputs)
// itself. Folded into one helper taking the row's body as a lambda, the nibble decoders ran 5-10%
// slower (session 39: affine4 +10%, mxfp4 +5% at N 16K, 4 alternating rounds on this 2-core CPU).

// Zero-extends code bytes 16c..16c+15 of a 64-code vector into 32-bit lanes (one vpermb).
struct Spread {
  __m512i idx[4];
  static constexpr __mmask64 kEveryFourth = 0x1111111111111111ull;
  Spread() {
    alignas(64) uint8_t b[64] = {};
    for (int c = 0; c < 4; ++c) {
      for (int j = 0; j < 16; ++j) b[4 * j] = uint8_t(16 * c + j);
      idx[c] = _mm512_load_si512(b);
    }
  }
  __m512i lanes(__m512i codes, int c) const { return _mm512_maskz_permutexvar_epi8(kEveryFourth, idx[c], codes); }
};

// The 16 values a code of up to 4 bits can stand for, before the group's scale: the code itself
// (affine), E2M1 (FP4) or the turbo level; codes of 2-3 bits repeat so that higher index bits are
// ignored.
template <FormatKind K>
inline __m512 base_table(const fmt::RowCodec& c) {
  alignas(64) float base[16];
  for (int i = 0; i < 16; ++i) {
    const uint32_t code = uint32_t(i) & ((1u << c.bits) - 1u);
    base[i] = K == FormatKind::turbo ? c.levels[code] : K == FormatKind::affine ? float(code) : fmt::e2m1_to_f32(code);
  }
  return _mm512_load_ps(base);
}

// The decoded values of one group: scale*code + bias (affine, one rounding as the scalar rule) or
// value*multiplier.
template <FormatKind K>
inline __m512 group_table(const RowGroups& g, __m512i idx, __m512 base) {
  return K == FormatKind::affine ? _mm512_fmadd_ps(g.mult(idx), base, g.add(idx)) : _mm512_mul_ps(base, g.mult(idx));
}

// Packed codes of 2..6 bits. Codes of up to 4 bits are looked up (vpermps) in a 16-entry table of
// the group's decoded values, rebuilt when the group changes: affine s*c+b, FP4 value*scale, turbo
// level*scale (2- and 3-bit tables repeat, so bits above the code need no mask). 5- and 6-bit
// affine codes are converted and scaled.
template <FormatKind K>
void decode_packed(const fmt::RowCodec& c, const CacheView& cache, int64_t b, int64_t h, int64_t t0, int count,
                   float* out) {
  const int64_t dim = cache.dim, code_bytes = row_code_bytes(cache.format, dim);
  static const Spread spread;
  static const Unpacker unpackers[7] = {Unpacker(2), Unpacker(3), Unpacker(4), Unpacker(5), Unpacker(6), Unpacker(7), Unpacker(8)};
  const Unpacker& un = unpackers[c.bits - 2];
  const bool lookup = c.bits <= 4;
  const __m512 base_v = base_table<K>(c);
  const BlockGroups blocks(c);
  for (int t = 0; t < count; ++t) {
    const int64_t n = t0 + t;
    prefetch_ahead(cache, b, h, n, code_bytes);
    const RowGroups g = row_groups(c, cache.scale_row(b, h, n), cache.bias_row(b, h, n), dim);
    const uint8_t* row = cache.code_row(b, h, n);
    float* o = out + int64_t(t) * dim;
    __m512 table = base_v;
    int current = -1;
    for (int64_t blk = 0; blk < dim / 64; ++blk) {
      const __m512i codes = un.codes64(row, blk);
      for (int ci = 0; ci < 4; ++ci) {
        const int64_t m = blk * 4 + ci;
        const __m512i idx = blocks.idx(m);
        const __m512i lanes = spread.lanes(codes, ci);
        __m512 v;
        if (lookup) {
          if (blocks.group(m) != current) {
            current = blocks.group(m);
            table = group_table<K>(g, idx, base_v);
          }
          v = _mm512_permutexvar_ps(lanes, table);
        } else {
          v = _mm512_fmadd_ps(g.mult(idx), _mm512_cvtepi32_ps(_mm512_and_si512(lanes, un.mask32)), g.add(idx));
        }
        _mm512_storeu_ps(o + m * 16, v);
      }
    }
  }
}

// 4-bit codes (affine4, mxfp4, nvfp4, turbo4) in nibble-split tile order: 16 bytes = 32 codes are
// zero-extended to 32-bit lanes once; vpermps looks up the low nibbles (even values) directly (it reads
// only the low 4 bits of each index) and, after a shift, the high nibbles (odd values). Three shuffles
// per 32 values where the natural order needs five. Tables are rebuilt per group as in decode_packed;
// nvfp4's 16-value groups split each half of a chunk, so its multipliers are applied per lane.
template <FormatKind K>
void decode_nibbles(const fmt::RowCodec& c, const CacheView& cache, int64_t b, int64_t h, int64_t t0, int count,
                    float* out) {
  const int64_t dim = cache.dim, code_bytes = row_code_bytes(cache.format, dim);
  const __m512 base_v = base_table<K>(c);
  const bool per_lane = c.group == 16;  // nvfp4
  const BlockGroups blocks(c);
  for (int t = 0; t < count; ++t) {
    const int64_t n = t0 + t;
    prefetch_ahead(cache, b, h, n, code_bytes);
    const RowGroups g = row_groups(c, cache.scale_row(b, h, n), cache.bias_row(b, h, n), dim);
    const uint8_t* row = cache.code_row(b, h, n);
    float* o = out + int64_t(t) * dim;
    __m512 table = base_v;
    int current = -1;
    for (int64_t j = 0; j < dim / 32; ++j) {
      const __m512i lanes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16 * j)));
      const __m512i high = _mm512_srli_epi32(lanes, 4);
      if (per_lane) {  // groups 2j (values 32j..32j+15) and 2j+1: lanes 0-7 and 8-15 of each half
        const __m512i idx = _mm512_mask_set1_epi32(_mm512_set1_epi32(int(2 * j)), 0xFF00, int(2 * j + 1));
        const __m512 mult = g.mult(idx);
        _mm512_storeu_ps(o + 32 * j, _mm512_mul_ps(_mm512_permutexvar_ps(lanes, base_v), mult));
        _mm512_storeu_ps(o + 32 * j + 16, _mm512_mul_ps(_mm512_permutexvar_ps(high, base_v), mult));
        continue;
      }
      if (blocks.group(2 * j) != current) {
        current = blocks.group(2 * j);
        table = group_table<K>(g, blocks.idx(2 * j), base_v);
      }
      _mm512_storeu_ps(o + 32 * j, _mm512_permutexvar_ps(lanes, table));
      _mm512_storeu_ps(o + 32 * j + 16, _mm512_permutexvar_ps(high, table));
    }
  }
}

// 8-bit affine: bytes are codes; int -> f32 and one multiply-add per 16 lanes, the group's scale
// and bias fetched once per group.
void decode_affine8(const fmt::RowCodec& c, const CacheView& cache, int64_t b, int64_t h, int64_t t0, int count,
                    float* out) {
  const int64_t dim = cache.dim, code_bytes = row_code_bytes(cache.format, dim);
  const BlockGroups blocks(c);
  for (int t = 0; t < count; ++t) {
    const int64_t n = t0 + t;
    prefetch_ahead(cache, b, h, n, code_bytes);
    const RowGroups g = row_groups(c, cache.scale_row(b, h, n), cache.bias_row(b, h, n), dim);
    const uint8_t* row = cache.code_row(b, h, n);
    float* o = out + int64_t(t) * dim;
    __m512 mult = _mm512_setzero_ps(), add = mult;
    int current = -1;
    for (int64_t m = 0; m < dim / 16; ++m) {
      if (blocks.group(m) != current) {
        current = blocks.group(m);
        mult = g.mult(blocks.idx(m));
        add = g.add(blocks.idx(m));
      }
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + m * 16));
      _mm512_storeu_ps(o + m * 16, _mm512_fmadd_ps(mult, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes)), add));
    }
  }
}

// E4M3 (mxfp8, fp8): the sign-extended byte shifted left by 4 and masked with 0x87F0 is a bf16 whose
// exponent and mantissa are the code's (sign at bit 15): its value is the E4M3 value / 2^120
// (subnormal codes land on subnormals, exactly), so the row's multipliers are taken x 2^120.
// Rows whose multiplier would overflow by it, or that hold NaN codes (0x7F / 0xFF), take the
// per-element path of e4m3x16_to_f32.
void decode_e4m3(const fmt::RowCodec& c, const CacheView& cache, int64_t b, int64_t h, int64_t t0, int count,
                 float* out) {
  const int64_t dim = cache.dim, code_bytes = row_code_bytes(cache.format, dim);
  const BlockGroups blocks(c);
  const __m512i low7x8 = _mm512_set1_epi8(0x7F), keep16 = _mm512_set1_epi16(short(0x87F0));
  __m512i to_high[2];  // word 2j+1 of the result <- word 16*half + j of the source
  for (int half = 0; half < 2; ++half) {
    alignas(64) uint16_t idx[32] = {};
    for (int j = 0; j < 16; ++j) idx[2 * j + 1] = uint16_t(16 * half + j);
    to_high[half] = _mm512_load_si512(idx);
  }
  for (int t = 0; t < count; ++t) {
    const int64_t n = t0 + t;
    prefetch_ahead(cache, b, h, n, code_bytes);
    RowGroups g = row_groups(c, cache.scale_row(b, h, n), cache.bias_row(b, h, n), dim);
    const uint8_t* row = cache.code_row(b, h, n);
    float* o = out + int64_t(t) * dim;
    __mmask64 nan_bytes = 0;
    for (int64_t off = 0; off < dim; off += 64) {
      const __m512i bytes = _mm512_loadu_si512(row + off);
      nan_bytes |= _mm512_cmpeq_epi8_mask(_mm512_and_si512(bytes, low7x8), low7x8);
    }
    if (nan_bytes || _mm512_cmp_ps_mask(g.lo, _mm512_set1_ps(0x1p7f), _CMP_LT_OQ) != 0xFFFF) {
      for (int64_t m = 0; m < dim / 16; ++m) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + m * 16));
        _mm512_storeu_ps(o + m * 16, _mm512_mul_ps(e4m3x16_to_f32(_mm256_cvtepu8_epi16(bytes)), g.mult(blocks.idx(m))));
      }
      continue;
    }
    g.lo = _mm512_mul_ps(g.lo, _mm512_set1_ps(0x1p120f));
    __m512 mult = _mm512_setzero_ps();
    int current = -1;
    for (int64_t m = 0; m < dim / 16; m += 2) {
      // 32 codes as bf16 in 16-bit lanes, then each moved to the high half of a 32-bit lane (vpermw).
      const __m512i w = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + m * 16)));
      const __m512i bf = _mm512_and_si512(_mm512_slli_epi16(w, 4), keep16);
      for (int half = 0; half < 2; ++half) {
        const __m512 x = _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, to_high[half], bf));
        if (blocks.group(m + half) != current) {
          current = blocks.group(m + half);
          mult = g.mult(blocks.idx(m + half));
        }
        _mm512_storeu_ps(o + (m + half) * 16, _mm512_mul_ps(x, mult));
      }
    }
  }
}

void decode_f16(const fmt::RowCodec&, const CacheView& cache, int64_t b, int64_t h, int64_t t0, int count, float* out) {
  const int64_t dim = cache.dim, code_bytes = row_code_bytes(cache.format, dim);
  for (int t = 0; t < count; ++t) {
    prefetch_ahead(cache, b, h, t0 + t, code_bytes);
    const uint8_t* row = cache.code_row(b, h, t0 + t);
    float* o = out + int64_t(t) * dim;
    for (int64_t d = 0; d < dim; d += 16)
      _mm512_storeu_ps(o + d, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * d))));
  }
}

void decode_bf16(const fmt::RowCodec&, const CacheView& cache, int64_t b, int64_t h, int64_t t0, int count, float* out) {
  const int64_t dim = cache.dim, code_bytes = row_code_bytes(cache.format, dim);
  for (int t = 0; t < count; ++t) {
    prefetch_ahead(cache, b, h, t0 + t, code_bytes);
    const uint8_t* row = cache.code_row(b, h, t0 + t);
    float* o = out + int64_t(t) * dim;
    for (int64_t d = 0; d < dim; d += 16) {
      const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * d)));
      _mm512_storeu_ps(o + d, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
    }
  }
}

void decode_f32(const fmt::RowCodec&, const CacheView& cache, int64_t b, int64_t h, int64_t t0, int count, float* out) {
  const int64_t dim = cache.dim, code_bytes = row_code_bytes(cache.format, dim);
  for (int t = 0; t < count; ++t) {
    prefetch_ahead(cache, b, h, t0 + t, code_bytes);
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
  // Below -87.3 the result is under f32's normal range; treat it (and -inf) as 0. NaN stays NaN (a
  // NaN score, e.g. from an E8M0 NaN scale byte, must not silently drop its key).
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_NLE_UQ), y);
}

float softmax_row_avx512(float* s, int n, float m_old, float* m_new) {
  __m512 vmax = _mm512_set1_ps(m_old);
  int t = 0;
  for (; t + 16 <= n; t += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(s + t));
  const __mmask16 tail = __mmask16((1u << (n - t)) - 1u);
  if (t < n) vmax = _mm512_mask_max_ps(vmax, tail, vmax, _mm512_maskz_loadu_ps(tail, s + t));
  const float m = _mm512_reduce_max_ps(vmax);
  *m_new = m;
  if (m == -INFINITY) {
    for (int i = 0; i < n; ++i) s[i] = 0.0f;
    return 0.0f;
  }
  const __m512 vm = _mm512_set1_ps(m);
  __m512 sum = _mm512_setzero_ps();
  for (t = 0; t + 16 <= n; t += 16) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + t), vm));
    _mm512_storeu_ps(s + t, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (t < n) {
    const __m512 e = _mm512_maskz_mov_ps(tail, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, s + t), vm)));
    _mm512_mask_storeu_ps(s + t, tail, e);
    sum = _mm512_add_ps(sum, e);
  }
  return _mm512_reduce_add_ps(sum);
}

}  // namespace

const DenseKernels& avx512_dense() {
  static const DenseKernels k{scores_avx512, accumulate_avx512, softmax_row_avx512};
  return k;
}

TileDecoder avx512_decoder(const Format& f, int64_t dim) {
  using O = TileOrder;
  if (dim % 16 != 0 || dim / 16 > 32) return {};
  // (decode_e4m3 reads rows 64 bytes at a time for its NaN test: D a multiple of 64 there.)
  switch (f.kind) {
    case FormatKind::f32: return {decode_f32, O::natural};
    case FormatKind::f16: return {decode_f16, O::natural};
    case FormatKind::bf16: return {decode_bf16, O::natural};
    case FormatKind::mxfp8:
    case FormatKind::fp8: return dim % 64 == 0 ? TileDecoder{decode_e4m3, O::natural} : TileDecoder{};
    case FormatKind::affine:
      if (f.bits == 8) return {decode_affine8, O::natural};
      if (dim % 64 != 0) return {};
      if (f.bits == 4) return {decode_nibbles<FormatKind::affine>, O::nibble_split};
      return {decode_packed<FormatKind::affine>, O::natural};
    case FormatKind::mxfp4:
    case FormatKind::nvfp4: return dim % 64 == 0 ? TileDecoder{decode_nibbles<FormatKind::mxfp4>, O::nibble_split} : TileDecoder{};
    case FormatKind::turbo:
      if (dim % 64 != 0) return {};
      if (f.bits == 4) return {decode_nibbles<FormatKind::turbo>, O::nibble_split};
      return {decode_packed<FormatKind::turbo>, O::natural};
  }
  return {};
}

}  // namespace qsdpa::cpu
