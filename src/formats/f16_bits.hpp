// Packed codes straight to f16 bit patterns, a word at a time, with integer bit operations only:
// the tensor-core kernel's decoders (src/cuda/attention_mma.cuh) feed these half2 words to mma.sync,
// and the CPU tests (tests/test_f16_bits.cpp) check every code in every position against the scalar
// rules of minifloat.hpp. Written for the GPU's cost model: each operation here is one ALU
// instruction (SHF, LOP3, PRMT), which the H100 issues at half the FP32 rate, so the count per value
// decides the tensor-core kernel's speed on 4-bit caches.
#pragma once

#include "scalar.hpp"

namespace qsdpa::fmt {

// PTX prmt.b32 without the sign-replicate mode: byte i of the result is byte (sel >> 4i) & 7 of the
// 8-byte value {hi = b, lo = a}.
QSDPA_HD uint32_t byte_perm(uint32_t a, uint32_t b, uint32_t sel) {
#if defined(__CUDA_ARCH__)
  return __byte_perm(a, b, sel);
#else
  const uint64_t both = (uint64_t(b) << 32) | a;
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) r |= uint32_t((both >> (8 * ((sel >> (4 * i)) & 7u))) & 0xFFu) << (8 * i);
  return r;
#endif
}

// One octet of E2M1 codes (value i in nibble i of the little-endian word, sign in bit 3 of the
// nibble) to 4 half2 with the pairing (0,2) (1,3) (4,6) (5,7), each value times 2^-14.
//
// Why 2^-14: with the nibble's exponent and mantissa bits (e1 e0 m) placed at f16 bits 11..9 and
// its sign at bit 15, the f16 exponent field is e and the value is 2^(e-15) (1 + m/2) for e >= 1
// and a subnormal 2^-14 * m/2 for e = 0: E2M1's own value times 2^-14 in both cases, so the
// subnormal code needs no special case. The f16 high byte is then s000 eem0 and the low byte 0:
// two words hold the high bytes of the even and of the odd values (7 operations), and one byte
// permute with a zero word places two of them per half2 (4 more): 11 ALU operations per 8 values.
// (The odd word's shift and OR as one IMAD.HI, t * (2^29 + 1) >> 32 plus the signs, moved 12 ALU
// instructions a step to the FMA pipe and made mxfp4 / nvfp4 8% slower at 128K: session 39.)
QSDPA_HD void e2m1_octet_f16(uint32_t x, uint32_t h[4]) {
  const uint32_t even = ((x << 4) & 0x80808080u) | ((x << 1) & 0x0E0E0E0Eu);  // values 0, 2, 4, 6
  const uint32_t odd = (x & 0x80808080u) | ((x >> 3) & 0x0E0E0E0Eu);          // values 1, 3, 5, 7
  h[0] = byte_perm(even, 0u, 0x1404u);
  h[1] = byte_perm(odd, 0u, 0x1404u);
  h[2] = byte_perm(even, 0u, 0x3424u);
  h[3] = byte_perm(odd, 0u, 0x3424u);
}

// The f16 factor that e2m1_octet_f16's values carry.
constexpr float kE2M1F16Factor = 1.0f / 16384.0f;

// One octet of unsigned 4-bit codes (value i in nibble i) to 4 half2 with the same pairing, by the
// f16 "magic number" 1024 (its mantissa's low bits are an integer): h[0] and h[2] hold 1024 + code,
// h[1] and h[3] hold 1024 + 16 * code (the nibble masked where it lies, saving two shifts: 6 ALU
// operations per 8 values instead of 8). The caller finishes in f16, exactly: h - 1024 for the even
// pairs, h / 16 - 64 (one multiply-add) for the odd ones.
QSDPA_HD void u4_octet_f16_magic(uint32_t x, uint32_t h[4]) {
  const uint32_t y = byte_perm(x, 0u, 0x3120u);  // halves: (v0 v1 v4 v5) (v2 v3 v6 v7)
  h[0] = (y & 0x000F000Fu) | 0x64006400u;         // v0, v2
  h[1] = (y & 0x00F000F0u) | 0x64006400u;         // 16 v1, 16 v3
  h[2] = ((y >> 8) & 0x000F000Fu) | 0x64006400u;  // v4, v6
  h[3] = ((y >> 8) & 0x00F000F0u) | 0x64006400u;  // 16 v5, 16 v7
}

// The same octet with every value as 1024 + 16 * code (affine keys, whose q fragments carry the
// 1/16 and whose scores take the offset off per block: key_code_offset in the kernel): 7 ALU
// operations per 8 values, where u4_octet_f16_magic and its finishing f16 operations take 10.
QSDPA_HD void u4_octet_f16_sixteen_plus_1024(uint32_t x, uint32_t h[4]) {
  const uint32_t even = (x << 4) & 0xF0F0F0F0u;  // values 0, 2, 4, 6 in the high nibble of bytes 0-3
  const uint32_t odd = x & 0xF0F0F0F0u;          // values 1, 3, 5, 7
  h[0] = byte_perm(even, 0x64646464u, 0x5140u);
  h[1] = byte_perm(odd, 0x64646464u, 0x5140u);
  h[2] = byte_perm(even, 0x64646464u, 0x7362u);
  h[3] = byte_perm(odd, 0x64646464u, 0x7362u);
}

// Two words of 8-bit codes (value i in byte i) to 4 half2 of 1024 + code, same pairing.
QSDPA_HD void u8_octet_f16_plus_1024(const uint32_t w[2], uint32_t h[4]) {
  for (int j = 0; j < 4; ++j) h[j] = byte_perm(w[j >> 1], 0x64646464u, (j & 1) ? 0x4341u : 0x4240u);
}


// ---- codebook lookups (turbo) ----
//
// A codebook of up to 8 f16 entries held as two byte planes in 4 registers: byte i of lo/hi is
// the low/high byte of entry i. One byte permute then looks up four entries at once, indexed by
// the low 3 bits of four nibbles (bit 3 of each nibble must be clear: it selects PTX prmt's
// sign-replicate mode), and two more interleave the planes into f16 pairs.
struct F16Lut {
  uint32_t lo[2], hi[2];
};

// Planes of entries[0..8) (f16 bit patterns).
QSDPA_HD F16Lut f16_lut(const uint16_t entries[8]) {
  F16Lut t{};
  for (int i = 0; i < 8; ++i) {
    t.lo[i / 4] |= uint32_t(entries[i] & 0xFFu) << (8 * (i % 4));
    t.hi[i / 4] |= uint32_t(entries[i] >> 8) << (8 * (i % 4));
  }
  return t;
}

// Eight table indices (nibble i holds index i, bit 3 clear) to 4 half2 with the pairing (0,2)
// (1,3) (4,6) (5,7): 9 ALU operations per 8 values. Value i is negated where bit 7 of byte i of
// keep (two words: values 0-3, 4-7) is clear (turbo4_code_msbs; all ones keeps every sign).
QSDPA_HD void lut_octet_f16(uint32_t idx, const F16Lut& t, uint32_t h[4], const uint32_t keep[2]) {
  const uint32_t lo_a = byte_perm(t.lo[0], t.lo[1], idx), lo_b = byte_perm(t.lo[0], t.lo[1], idx >> 16);
  const uint32_t hi_a = byte_perm(t.hi[0], t.hi[1], idx) ^ (~keep[0] & 0x80808080u);
  const uint32_t hi_b = byte_perm(t.hi[0], t.hi[1], idx >> 16) ^ (~keep[1] & 0x80808080u);
  h[0] = byte_perm(lo_a, hi_a, 0x6240u);  // values 0, 2: bytes lo0 hi0 lo2 hi2
  h[1] = byte_perm(lo_a, hi_a, 0x7351u);
  h[2] = byte_perm(lo_b, hi_b, 0x6240u);
  h[3] = byte_perm(lo_b, hi_b, 0x7351u);
}

// Turbo's codes as lookup indices, a word holding 8 codes (code i at bits [b*i, b*i + b) as the
// bitstream packs them) to 8 nibbles. 4-bit codes index 16 levels, too many for one lookup, but
// the Lloyd-Max levels are odd-symmetric (level[15 - c] = -level[c]): the nibble becomes the index
// of |level| among the 8 positive levels (c - 8 for c >= 8, 7 - c below) and turbo4_signs negates
// the values whose code has bit 3 clear. 3- and 2-bit codes index their 8 or 4 levels directly.
QSDPA_HD uint32_t turbo4_index(uint32_t x) {
  const uint32_t upper = ((x >> 3) & 0x11111111u) * 7u;  // 7 in each nibble whose code is >= 8
  return (x ^ ~upper) & 0x77777777u;                       // c ^ 0 (c >= 8) or c ^ 7, low 3 bits
}
// Spreads 8 3-bit codes (bits 0..23) into nibbles.
QSDPA_HD uint32_t turbo3_index(uint32_t x) {
  const uint32_t y = (x & 0x00000FFFu) | ((x << 4) & 0x0FFF0000u);  // codes 0-3 | codes 4-7 << 16
  return (y & 0x00070007u) | ((y << 1) & 0x00700070u) | ((y << 2) & 0x07000700u) | ((y << 3) & 0x70007000u);
}
// Spreads 8 2-bit codes (bits 0..15) into nibbles.
QSDPA_HD uint32_t turbo2_index(uint32_t x) {
  const uint32_t y = (x & 0x000000FFu) | ((x << 8) & 0x00FF0000u);  // codes 0-3 | codes 4-7 << 16
  return (y & 0x00030003u) | ((y << 2) & 0x00300030u) | ((y << 4) & 0x03000300u) | ((y << 6) & 0x30003000u);
}
// Bit 3 of 4-bit code i (nibble i of x) at bit 7 of byte i % 4 of msb[i / 4]: the odd codes' bit 3
// is a byte's bit 7 already, the even codes' four bits below it. lut_octet_f16 then keeps the sign
// of codes >= 8 and negates the others (3 ALU operations per 8 values, 2 more per lookup).
QSDPA_HD void turbo4_code_msbs(uint32_t x, uint32_t msb[2]) {
  const uint32_t y = x << 4;
  msb[0] = byte_perm(y, x, 0x5140u);  // bytes y0 x0 y1 x1: codes 0 1 2 3
  msb[1] = byte_perm(y, x, 0x7362u);  // codes 4 5 6 7
}

// f32 -> f16 round to nearest even, and f16 -> f32, as scalar.hpp's f32_to_f16 and f16_to_f32 on
// every finite value; on the GPU one conversion instruction each. (turbo_luts ran in every block's
// prologue: with the scalar rules' branches its 32 roundings were ~1200 SASS instructions, most of
// turbo's extra prologue at 1K, phase probe, session 9; since session 16 the host builds them.)
QSDPA_HD uint16_t f32_to_f16_rn(float f) {
#if defined(__CUDA_ARCH__)
  unsigned short h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#else
  return f32_to_f16(f);
#endif
}
QSDPA_HD float f16_to_f32_exact(uint16_t h) {
#if defined(__CUDA_ARCH__)
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#else
  return f16_to_f32(h);
#endif
}

// The byte planes of turbo's levels (f32, ascending) as f16: `hi` the rounded level, `lo` the rest
// (level - hi, rounded; hi + lo holds the level to about 2^-22). 4-bit codebooks keep their 8
// positive levels (see turbo4_index); 2-bit ones repeat their 4 levels.
QSDPA_HD void turbo_luts(const float* levels, int bits, F16Lut* hi, F16Lut* lo) {
  uint16_t h[8], l[8];
  for (int i = 0; i < 8; ++i) {
    const float v = bits == 4 ? levels[8 + i] : levels[bits == 3 ? i : i % 4];
    h[i] = f32_to_f16_rn(v);
    l[i] = f32_to_f16_rn(v - f16_to_f32_exact(h[i]));
  }
  *hi = f16_lut(h);
  *lo = f16_lut(l);
}

}  // namespace qsdpa::fmt
