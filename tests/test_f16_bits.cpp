// The tensor-core kernel's word-at-a-time decoders (formats/f16_bits.hpp) against the scalar rules,
// on the CPU: every code value in every position of the word, with the other positions varied.
#include <gtest/gtest.h>

#include <random>

#include "formats/f16_bits.hpp"
#include "formats/minifloat.hpp"
#include "formats/turbo_levels.hpp"

namespace qsdpa {
namespace {

// The octet position held by half `hi` of half2 j: the pairing (0,2) (1,3) (4,6) (5,7).
int octet_position(int j, int hi) { return (j & 1) + 4 * (j >> 1) + 2 * hi; }

float half_of(uint32_t h, int hi) { return fmt::f16_to_f32(uint16_t(hi ? h >> 16 : h & 0xFFFFu)); }

// Calls check(x) for words x holding every 4-bit code in every nibble position, the other nibbles
// random (`trials` words each); stops at the first fatal failure.
template <class Check>
void for_each_nibble_word(uint32_t seed, int trials, Check check) {
  std::mt19937 rng(seed);
  for (int pos = 0; pos < 8; ++pos)
    for (uint32_t code = 0; code < 16; ++code)
      for (int trial = 0; trial < trials; ++trial) {
        const uint32_t x = (uint32_t(rng()) & ~(0xFu << (4 * pos))) | (code << (4 * pos));
        check(x);
        if (::testing::Test::HasFatalFailure()) return;
      }
}

TEST(F16Bits, BytePermMatchesPtxPrmtWithoutSignMode) {
  // Hand-computed: bytes of {b, a} = 77 66 55 44 | 33 22 11 00.
  EXPECT_EQ(fmt::byte_perm(0x33221100u, 0x77665544u, 0x3210u), 0x33221100u);
  EXPECT_EQ(fmt::byte_perm(0x33221100u, 0x77665544u, 0x7654u), 0x77665544u);
  EXPECT_EQ(fmt::byte_perm(0x33221100u, 0x77665544u, 0x1404u), 0x11440044u);
  EXPECT_EQ(fmt::byte_perm(0x33221100u, 0x77665544u, 0x5140u), 0x55114400u);
}

TEST(F16Bits, E2M1OctetEqualsScalarRuleTimes2PowMinus14) {
  // Hand-computed: code 0x1 (0.5) is the f16 subnormal 2^-15 = 0x0200; code 0xF (-6) is 0xC600 * 2^-14
  // = -6 * 2^-14 = 0x8E00 (exponent 3, mantissa 0x200).
  {
    uint32_t h[4];
    fmt::e2m1_octet_f16(0x000000F1u, h);  // value 0 = 0x1, value 1 = 0xF
    EXPECT_EQ(h[0] & 0xFFFFu, 0x0200u);
    EXPECT_EQ(h[1] & 0xFFFFu, 0x8E00u);
  }
  for_each_nibble_word(11, 64, [](uint32_t x) {
    uint32_t h[4];
    fmt::e2m1_octet_f16(x, h);
    for (int j = 0; j < 4; ++j)
      for (int hi = 0; hi < 2; ++hi) {
        const int p = octet_position(j, hi);
        const uint32_t c = (x >> (4 * p)) & 0xFu;
        const float want = fmt::e2m1_to_f32(c);
        const float got = half_of(h[j], hi) / fmt::kE2M1F16Factor;
        ASSERT_EQ(got, want) << "word " << std::hex << x << " position " << p;
        // Signs survive for zero too (negative zero is a valid code).
        ASSERT_EQ(std::signbit(got), bool(c & 8u)) << "word " << std::hex << x << " position " << p;
      }
  });
}

TEST(F16Bits, U4OctetIsCodePlus1024OrSixteenCodesPlus1024) {
  // Hand-computed: x = 0x76543210 holds codes 0..7 in order; h[1] pairs values 1 and 3 as
  // 1024 + 16 and 1024 + 48, i.e. f16 0x6410 and 0x6430.
  {
    uint32_t h[4];
    fmt::u4_octet_f16_magic(0x76543210u, h);
    EXPECT_EQ(h[0], 0x64026400u);  // values 0, 2
    EXPECT_EQ(h[1], 0x64306410u);  // 16 * 1, 16 * 3
    EXPECT_EQ(h[2], 0x64066404u);  // values 4, 6
    EXPECT_EQ(h[3], 0x64706450u);  // 16 * 5, 16 * 7
  }
  for_each_nibble_word(12, 16, [](uint32_t x) {
    uint32_t h[4];
    fmt::u4_octet_f16_magic(x, h);
    for (int j = 0; j < 4; ++j)
      for (int hi = 0; hi < 2; ++hi) {
        const int p = octet_position(j, hi);
        const float c = float((x >> (4 * p)) & 0xFu);
        ASSERT_EQ(half_of(h[j], hi), 1024.0f + (j & 1 ? 16.0f * c : c)) << std::hex << x << " " << p;
        // What the kernel does next, in f32 here (exact either way).
        ASSERT_EQ(j & 1 ? half_of(h[j], hi) / 16.0f - 64.0f : half_of(h[j], hi) - 1024.0f, c);
      }
  });
}

TEST(F16Bits, U4OctetSixteenCodesPlus1024) {
  // Hand-computed: codes 0..7 in order as 1024 + 16 * code: 0x6400 + 16 * code.
  {
    uint32_t h[4];
    fmt::u4_octet_f16_sixteen_plus_1024(0x76543210u, h);
    EXPECT_EQ(h[0], 0x64206400u);  // values 0, 2
    EXPECT_EQ(h[1], 0x64306410u);  // values 1, 3
    EXPECT_EQ(h[2], 0x64606440u);  // values 4, 6
    EXPECT_EQ(h[3], 0x64706450u);  // values 5, 7
  }
  for_each_nibble_word(14, 16, [](uint32_t x) {
    uint32_t h[4];
    fmt::u4_octet_f16_sixteen_plus_1024(x, h);
    for (int j = 0; j < 4; ++j)
      for (int hi = 0; hi < 2; ++hi) {
        const int p = octet_position(j, hi);
        ASSERT_EQ(half_of(h[j], hi), 1024.0f + 16.0f * float((x >> (4 * p)) & 0xFu)) << std::hex << x << " " << p;
      }
  });
}

TEST(F16Bits, U8OctetIsCodePlus1024) {
  std::mt19937 rng(13);
  for (int pos = 0; pos < 8; ++pos)
    for (uint32_t code = 0; code < 256; ++code) {
      uint32_t w[2] = {uint32_t(rng()), uint32_t(rng())};
      w[pos / 4] = (w[pos / 4] & ~(0xFFu << (8 * (pos % 4)))) | (code << (8 * (pos % 4)));
      uint32_t h[4];
      fmt::u8_octet_f16_plus_1024(w, h);
      for (int j = 0; j < 4; ++j)
        for (int hi = 0; hi < 2; ++hi) {
          const int p = octet_position(j, hi);
          ASSERT_EQ(half_of(h[j], hi), 1024.0f + float((w[p / 4] >> (8 * (p % 4))) & 0xFFu)) << p;
        }
    }
}


TEST(F16Bits, TurboIndicesSpreadCodesIntoNibbles) {
  // Hand-computed: codes 0..7 in order.
  EXPECT_EQ(fmt::turbo4_index(0x76543210u), 0x01234567u);  // 7 - c below 8
  EXPECT_EQ(fmt::turbo4_index(0xFEDCBA98u), 0x76543210u);  // c - 8 from 8
  EXPECT_EQ(fmt::turbo3_index(0x00FAC688u), 0x76543210u);  // 3-bit codes 0..7 packed LSB first
  EXPECT_EQ(fmt::turbo2_index(0x00001BE4u), 0x01233210u);  // 2-bit codes 0 1 2 3 3 2 1 0
  // Bits above the 8 codes do not leak into the indices.
  EXPECT_EQ(fmt::turbo3_index(0xFFFAC688u), 0x76543210u);
  EXPECT_EQ(fmt::turbo2_index(0xFFFF1BE4u), 0x01233210u);
}

// Turbo octets decode to hi + lo f16 terms of the Lloyd-Max level of each code (the kernel's
// pipeline: codes -> nibble indices and 4-bit signs -> two lookups), every code in every position.
TEST(F16Bits, TurboOctetIsTheLevelAsHiPlusLo) {
  for (int bits = 2; bits <= 4; ++bits) {
    const float* levels = fmt::turbo_levels(bits);
    fmt::F16Lut hi_lut, lo_lut;
    fmt::turbo_luts(levels, bits, &hi_lut, &lo_lut);
    std::mt19937 rng(20 + bits);
    for (int pos = 0; pos < 8; ++pos)
      for (uint32_t code = 0; code < (1u << bits); ++code)
        for (int trial = 0; trial < 16; ++trial) {
          const uint32_t mask = (1u << bits) - 1u;
          const uint32_t x = (uint32_t(rng()) & ~(mask << (bits * pos))) | (code << (bits * pos));
          const uint32_t idx = bits == 4 ? fmt::turbo4_index(x) : bits == 3 ? fmt::turbo3_index(x) : fmt::turbo2_index(x);
          uint32_t h[4], l[4], keep[2] = {~0u, ~0u};
          if (bits == 4) fmt::turbo4_code_msbs(x, keep);
          fmt::lut_octet_f16(idx, hi_lut, h, keep);
          fmt::lut_octet_f16(idx, lo_lut, l, keep);
          for (int j = 0; j < 4; ++j)
            for (int half = 0; half < 2; ++half) {
              const int p = octet_position(j, half);
              const float want = levels[(x >> (bits * p)) & mask];
              const float got_hi = half_of(h[j], half), got_lo = half_of(l[j], half);
              ASSERT_EQ(got_hi, fmt::f16_to_f32(fmt::f32_to_f16(want))) << bits << " " << std::hex << x << " " << p;
              ASSERT_LE(std::fabs(got_hi + got_lo - want), std::fabs(want) * 0x1p-21f) << bits << " " << std::hex << x;
            }
        }
  }
}

}  // namespace
}  // namespace qsdpa
