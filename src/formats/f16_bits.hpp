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

// Two words of 8-bit codes (value i in byte i) to 4 half2 of 1024 + code, same pairing.
QSDPA_HD void u8_octet_f16_plus_1024(const uint32_t w[2], uint32_t h[4]) {
  for (int j = 0; j < 4; ++j) h[j] = byte_perm(w[j >> 1], 0x64646464u, (j & 1) ? 0x4341u : 0x4240u);
}

}  // namespace qsdpa::fmt
