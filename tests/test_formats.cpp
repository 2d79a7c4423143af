// Format rules (SPEC §1): names and sizes, packed bit positions, affine edge cases, E2M1/E4M3/E8M0
// rounding, nvfp4 scales, fp8 saturation, turbo's codebook, distortion and seed.
#include <gtest/gtest.h>

#include <cmath>

#include "core/row_codec.hpp"
#include "formats/turbo_levels.hpp"
#include "test_util.hpp"

namespace qsdpa {
namespace {

using fmt::get_code;

// ---- names and sizes ----

TEST(FormatNames, CanonicalRoundTrip) {
  for (const std::string& n : all_format_names()) EXPECT_EQ(to_string(parse_format(n)), n);
  EXPECT_EQ(to_string(parse_format("affine4-g64")), "affine4");
  EXPECT_EQ(parse_format("affine3-g32").group, 32);
  EXPECT_EQ(parse_format("nvfp4").group, 16);
}

TEST(FormatNames, UnknownNamesThrowWithTheList) {
  for (const char* bad : {"int4", "affine7", "affine4-g16", "affine", "turbo5", "affine4-gx", "mxfp6", "", "F16"}) {
    try {
      parse_format(bad);
      FAIL() << bad << " parsed";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("unknown format"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("affine"), std::string::npos) << e.what();
    }
  }
}

TEST(FormatSizes, BitsPerValueAtD128MatchTheSpecTable) {
  EXPECT_DOUBLE_EQ(bits_per_value(parse_format("f16"), 128), 16.0);
  EXPECT_DOUBLE_EQ(bits_per_value(parse_format("affine4"), 128), 4.5);
  EXPECT_DOUBLE_EQ(bits_per_value(parse_format("affine3-g32"), 128), 4.0);
  EXPECT_DOUBLE_EQ(bits_per_value(parse_format("mxfp4"), 128), 4.25);
  EXPECT_DOUBLE_EQ(bits_per_value(parse_format("mxfp8"), 128), 8.25);
  EXPECT_DOUBLE_EQ(bits_per_value(parse_format("nvfp4"), 128), 4.5);
  EXPECT_DOUBLE_EQ(bits_per_value(parse_format("turbo3"), 128), 3.125);
  EXPECT_DOUBLE_EQ(bits_per_value(parse_format("fp8"), 128), 8.0);
  Format f32s = parse_format("affine4");
  f32s.scale_dtype = ScaleDType::f32;
  EXPECT_DOUBLE_EQ(bits_per_value(f32s, 128), 5.0);
  EXPECT_EQ(row_code_bytes(parse_format("affine3"), 64), 24);  // 24-byte rows: not word-aligned
}

TEST(FormatSizes, DimChecks) {
  EXPECT_THROW(check_dim(parse_format("affine4"), 96), Error);
  EXPECT_THROW(check_dim(parse_format("turbo3"), 96), Error);
  EXPECT_THROW(check_dim(parse_format("turbo3"), 1024), Error);
  EXPECT_NO_THROW(check_dim(parse_format("affine4-g32"), 96));
  EXPECT_NO_THROW(check_dim(parse_format("f16"), 40));
  try {
    check_dim(parse_format("affine4-g128"), 64);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of its group 128"), std::string::npos) << e.what();
  }
}

// ---- packing: hand-computed bit positions ----

TEST(Packing, BitPositionsForEveryWidth) {
  // Write code i = (i * 5 + 3) mod 2^b for 32 values and check the bytes against the rule
  // "value i occupies bits [i*b, (i+1)*b) of a little-endian stream".
  for (int b : {2, 3, 4, 5, 6, 8}) {
    uint8_t row[32] = {};
    const uint32_t mask = (1u << b) - 1;
    for (int i = 0; i < 32; ++i) fmt::put_code(row, i, b, uint32_t(i * 5 + 3) & mask);
    for (int i = 0; i < 32; ++i) {
      uint32_t v = 0;
      for (int k = 0; k < b; ++k) {
        const int bit = i * b + k;
        v |= uint32_t((row[bit / 8] >> (bit % 8)) & 1) << k;
      }
      EXPECT_EQ(v, uint32_t(i * 5 + 3) & mask) << "b=" << b << " i=" << i;
      EXPECT_EQ(get_code(row, i, b), v);
    }
  }
}

TEST(Packing, HandComputedWords) {
  // 4-bit: 8 values per word, value 0 in bits 0-3.
  uint8_t row4[4] = {};
  for (int i = 0; i < 8; ++i) fmt::put_code(row4, i, 4, uint32_t(i + 1));
  uint32_t w;
  std::memcpy(&w, row4, 4);
  EXPECT_EQ(w, 0x87654321u);
  // 8-bit: 4 per word.
  uint8_t row8[4] = {};
  for (int i = 0; i < 4; ++i) fmt::put_code(row8, i, 8, uint32_t(0x11 * (i + 1)));
  std::memcpy(&w, row8, 4);
  EXPECT_EQ(w, 0x44332211u);
  // 3-bit: 8 values in 3 bytes; values 0..7 give 0b111_110_101_100_011_010_001_000 = 0xFAC688.
  uint8_t row3[3] = {};
  for (int i = 0; i < 8; ++i) fmt::put_code(row3, i, 3, uint32_t(i));
  EXPECT_EQ(row3[0] | (row3[1] << 8) | (row3[2] << 16), 0xFAC688);
  // 6-bit: 4 values in 3 bytes: 1, 2, 3, 63 -> 63<<18 | 3<<12 | 2<<6 | 1 = 0xFC3081.
  uint8_t row6[3] = {};
  const uint32_t v6[4] = {1, 2, 3, 63};
  for (int i = 0; i < 4; ++i) fmt::put_code(row6, i, 6, v6[i]);
  EXPECT_EQ(row6[0] | (row6[1] << 8) | (row6[2] << 16), 0xFC3081);
  // 5-bit: 8 values in 5 bytes; value 1 straddles bytes 0-1: codes 0, 31, 0... -> bits 5..9 set = 0x3E0.
  uint8_t row5[5] = {};
  fmt::put_code(row5, 1, 5, 31);
  EXPECT_EQ(row5[0], 0xE0);
  EXPECT_EQ(row5[1], 0x03);
  // 2-bit: 16 per word.
  uint8_t row2[4] = {};
  fmt::put_code(row2, 15, 2, 3);
  fmt::put_code(row2, 0, 2, 1);
  std::memcpy(&w, row2, 4);
  EXPECT_EQ(w, 0xC0000001u);
}

// ---- affine ----

QuantizedTensor quantize_row(const std::vector<float>& x, const char* format, ScaleDType sd = ScaleDType::f32) {
  Format f = parse_format(format);
  f.scale_dtype = sd;
  return quantize(x.data(), {1, int64_t(x.size())}, f);
}

std::vector<float> decode(const QuantizedTensor& q) {
  std::vector<float> out(size_t(q.rows() * q.dim()));
  dequantize(q, out.data());
  return out;
}

TEST(Affine, MlxRuleOnHandComputedGroup) {
  // Group of 32 in [-1, 2]: mn=-1, mx=2, 4 bits: s = 3/15 = 0.2; |mn| < |mx| so edge = mx, s = -0.2;
  // q0 = rint(2 / -0.2) = -10, s = 2/-10 = -0.2, bias = 2. Code of -1 is rint(-3/-0.2) = 15.
  std::vector<float> x(32, 0.5f);
  x[0] = -1.0f;
  x[1] = 2.0f;
  const QuantizedTensor q = quantize_row(x, "affine4-g32");
  float s, b;
  std::memcpy(&s, q.scales.data(), 4);
  std::memcpy(&b, q.biases.data(), 4);
  EXPECT_FLOAT_EQ(s, -0.2f);
  EXPECT_FLOAT_EQ(b, 2.0f);
  EXPECT_EQ(get_code(q.codes.data(), 0, 4), 15u);
  EXPECT_EQ(get_code(q.codes.data(), 1, 4), 0u);
  EXPECT_EQ(get_code(q.codes.data(), 2, 4), uint32_t(std::rint((0.5f - 2.0f) / -0.2f)));
}

TEST(Affine, NegativeScaleWhenMinIsNotTheEdge) {
  std::vector<float> pos(64);
  for (int i = 0; i < 64; ++i) pos[size_t(i)] = 0.1f * float(i);
  const QuantizedTensor q = quantize_row(pos, "affine4");
  float s;
  std::memcpy(&s, q.scales.data(), 4);
  EXPECT_LT(s, 0.0f);  // edge = max
  std::vector<float> neg(64);
  for (int i = 0; i < 64; ++i) neg[size_t(i)] = -0.1f * float(i) - 0.3f;
  const QuantizedTensor qn = quantize_row(neg, "affine4");
  std::memcpy(&s, qn.scales.data(), 4);
  EXPECT_GT(s, 0.0f);  // edge = min
  const auto back = decode(qn);
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(back[size_t(i)], neg[size_t(i)], 0.21f);
}

TEST(Affine, AllZeroGroupsDecodeToExactlyZero) {
  for (const char* f : {"affine2", "affine3-g32", "affine4", "affine5-g128", "affine6", "affine8-g32"}) {
    for (ScaleDType sd : {ScaleDType::f16, ScaleDType::bf16, ScaleDType::f32}) {
      std::vector<float> x(128, 0.0f);
      const QuantizedTensor q = quantize_row(x, f, sd);
      for (float v : decode(q)) EXPECT_EQ(fmt::f32_bits(v), 0u) << f;
      // Scale about -1e-7 (MLX writes -1e-7 for constant groups), bias 0.
      const float s = fmt::load_scale(q.scales.data(), 0, sd);
      EXPECT_LT(s, 0.0f);
      EXPECT_NEAR(s, -1e-7f, 0.25e-7f) << f;
    }
  }
}

TEST(Affine, ZeroIsReconstructedToWithinRounding) {
  auto x = test::random_normal(256, 11);
  for (size_t i = 0; i < x.size(); i += 5) x[i] = 0.0f;
  for (const char* f : {"affine4", "affine8", "affine3-g32"}) {
    for (ScaleDType sd : {ScaleDType::f32, ScaleDType::f16}) {
      const QuantizedTensor q = quantize_row(x, f, sd);
      const auto back = decode(q);
      for (size_t i = 0; i < x.size(); i += 5) {
        const float bias = fmt::load_scale(q.biases.data(), int64_t(i) / q.format.group, sd);
        const float tol = sd == ScaleDType::f32 ? 4 * std::nextafter(std::fabs(bias), INFINITY) - 4 * std::fabs(bias)
                                                : std::fabs(bias) * 1e-3f;
        EXPECT_LE(std::fabs(back[i]), tol + 1e-7f) << f << " element " << i;
      }
    }
  }
}

TEST(Affine, ScaleOverflowSuggestsF32) {
  std::vector<float> x(64, 0.0f);
  x[0] = 1e6f;
  x[1] = -1e6f;
  try {
    quantize_row(x, "affine4", ScaleDType::f16);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--scale-dtype f32"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(quantize_row(x, "affine4", ScaleDType::f32));
}

TEST(Affine, CodesFromRoundedF16Scales) {
  const auto x = test::random_normal(128, 5);
  const QuantizedTensor q = quantize_row(x, "affine4", ScaleDType::f16);
  for (int g = 0; g < 2; ++g) {
    const float s = fmt::load_scale(q.scales.data(), g, ScaleDType::f16);
    const float b = fmt::load_scale(q.biases.data(), g, ScaleDType::f16);
    for (int i = g * 64; i < g * 64 + 64; ++i) {
      const float c = std::fmin(std::fmax(std::rint((x[size_t(i)] - b) / s), 0.0f), 15.0f);
      EXPECT_EQ(get_code(q.codes.data(), i, 4), uint32_t(c));
    }
  }
}

TEST(Affine, NanInputIsAnError) {
  auto x = test::random_normal(64, 1);
  x[3] = NAN;
  EXPECT_THROW(quantize_row(x, "affine4"), Error);
  x[3] = INFINITY;
  EXPECT_THROW(quantize_row(x, "mxfp4"), Error);
}

// ---- minifloats ----

TEST(E2M1, DecodeTable) {
  const float mags[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (uint32_t c = 0; c < 16; ++c) EXPECT_EQ(fmt::e2m1_to_f32(c), (c & 8 ? -1.0f : 1.0f) * mags[c & 7]);
}

TEST(E2M1, TiesToEvenAndSaturation) {
  struct Case { float x; float expect; };
  const Case cases[] = {{0.25f, 0.0f}, {0.75f, 1.0f}, {1.25f, 1.0f}, {1.75f, 2.0f}, {2.5f, 2.0f}, {3.5f, 4.0f},
                        {5.0f, 4.0f}, {5.01f, 6.0f}, {7.0f, 6.0f}, {1e30f, 6.0f}, {0.26f, 0.5f}, {-0.75f, -1.0f},
                        {-5.0f, -4.0f}, {-100.0f, -6.0f}, {0.1f, 0.0f}};
  for (const Case& c : cases) EXPECT_EQ(fmt::e2m1_to_f32(fmt::f32_to_e2m1(c.x)), c.expect) << c.x;
  EXPECT_EQ(fmt::f32_to_e2m1(-0.1f), 0u);  // no negative zero
}

TEST(E4M3, DecodeIsFnVariant) {
  EXPECT_EQ(fmt::e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(fmt::e4m3_to_f32(0xFE), -448.0f);
  EXPECT_TRUE(std::isnan(fmt::e4m3_to_f32(0x7F)));
  EXPECT_TRUE(std::isnan(fmt::e4m3_to_f32(0xFF)));
  EXPECT_EQ(fmt::e4m3_to_f32(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(fmt::e4m3_to_f32(0x07), 7 * std::ldexp(1.0f, -9));
  EXPECT_EQ(fmt::e4m3_to_f32(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(fmt::e4m3_to_f32(0x38), 1.0f);
}

TEST(E4M3, RoundTripOfEveryFiniteCode) {
  for (uint32_t c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    const float v = fmt::e4m3_to_f32(c);
    if (c == 0x80) continue;  // -0 encodes as +0
    EXPECT_EQ(fmt::f32_to_e4m3(v), c) << c;
  }
}

TEST(E4M3, TiesToEvenSaturationSubnormals) {
  // Between 1.0 (0x38, mantissa 0) and 1.125 (0x39): tie goes to the even mantissa, 1.0.
  EXPECT_EQ(fmt::f32_to_e4m3(1.0625f), 0x38u);
  // Between 1.125 (odd) and 1.25 (0x3A, even): tie goes to 1.25.
  EXPECT_EQ(fmt::f32_to_e4m3(1.1875f), 0x3Au);
  EXPECT_EQ(fmt::f32_to_e4m3(460.0f), 0x7Eu);   // saturates, never NaN
  EXPECT_EQ(fmt::f32_to_e4m3(1e9f), 0x7Eu);
  EXPECT_EQ(fmt::f32_to_e4m3(-1e9f), 0xFEu);
  // Subnormals: quantum 2^-9; 1.5 quanta ties to 2 (even), 2.5 quanta to 2.
  EXPECT_EQ(fmt::f32_to_e4m3(1.5f * std::ldexp(1.0f, -9)), 0x02u);
  EXPECT_EQ(fmt::f32_to_e4m3(2.5f * std::ldexp(1.0f, -9)), 0x02u);
  EXPECT_EQ(fmt::f32_to_e4m3(0.5f * std::ldexp(1.0f, -9)), 0x00u);  // tie to zero (even)
  EXPECT_EQ(fmt::f32_to_e4m3(0.51f * std::ldexp(1.0f, -9)), 0x01u);
  // Largest subnormal rounds up into the smallest normal.
  EXPECT_EQ(fmt::f32_to_e4m3(7.5f * std::ldexp(1.0f, -9)), 0x08u);
}

TEST(E8M0, SharedExponentRoundsClampsAndHandlesZero) {
  EXPECT_EQ(fmt::e8m0_shared_exponent(6.0f, 6.0f), 127u);
  EXPECT_EQ(fmt::e8m0_shared_exponent(8.0f, 6.0f), 127u);   // log2(4/3) = 0.415 -> 0
  EXPECT_EQ(fmt::e8m0_shared_exponent(9.0f, 6.0f), 128u);   // log2(1.5) = 0.585 -> 1
  EXPECT_EQ(fmt::e8m0_shared_exponent(0.0f, 6.0f), 127u);   // zero group: scale 1, as MLX
  EXPECT_EQ(fmt::e8m0_shared_exponent(1e-45f, 448.0f), 0u); // clamped, never wraps
  EXPECT_EQ(fmt::e8m0_shared_exponent(3e38f, 6.0f), 252u);  // log2(5e37) = 125.2 -> 125
  EXPECT_EQ(fmt::e8m0_to_f32(127), 1.0f);
  EXPECT_EQ(fmt::e8m0_to_f32(0), std::ldexp(1.0f, -127));
  EXPECT_TRUE(std::isnan(fmt::e8m0_to_f32(255)));
}

TEST(MxFormats, ZeroGroupsSaturationAndSubnormalGroups) {
  std::vector<float> x(64, 0.0f);
  for (int i = 32; i < 64; ++i) x[size_t(i)] = 1e-30f * float(i - 31);  // a subnormal-range group
  for (const char* f : {"mxfp4", "mxfp8"}) {
    const QuantizedTensor q = quantize_row(x, f);
    EXPECT_EQ(q.scales[0], 127);  // zero group
    const auto back = decode(q);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(back[size_t(i)], 0.0f);
    double err = 0, ref = 0;
    for (int i = 32; i < 64; ++i) {
      err += std::pow(double(back[size_t(i)]) - x[size_t(i)], 2);
      ref += std::pow(double(x[size_t(i)]), 2);
    }
    EXPECT_LT(std::sqrt(err / ref), 0.3) << f << ": tiny groups keep their shape (exponent not wrapped)";
  }
}

TEST(Nvfp4, BlockScalesAndTinyBlocksWarn) {
  std::vector<float> x(32);
  for (int i = 0; i < 16; ++i) x[size_t(i)] = 0.5f * float(i) - 3.0f;  // absmax 4.5 -> block scale E4M3(4.5/6)
  for (int i = 16; i < 32; ++i) x[size_t(i)] = 1e-4f;                   // absmax <= 6*2^-10: decodes to 0
  const QuantizedTensor q = quantize_row(x, "nvfp4");
  EXPECT_EQ(q.scales[0], fmt::f32_to_e4m3(4.5f / 6.0f));
  EXPECT_EQ(q.report.zeroed_blocks, 1u);
  const auto back = decode(q);
  for (int i = 16; i < 32; ++i) EXPECT_EQ(back[size_t(i)], 0.0f);
  // With a global scale (MLX: g = absmax) the tiny block survives.
  Format f = parse_format("nvfp4");
  f.global_scale = 4.5f;
  const QuantizedTensor qg = quantize(x.data(), {1, 32}, f);
  EXPECT_EQ(qg.report.zeroed_blocks, 0u);
  std::vector<float> bg(32);
  dequantize(qg, bg.data());
  for (int i = 16; i < 32; ++i) EXPECT_NEAR(bg[size_t(i)], 1e-4f, 2e-5f);
}

TEST(Fp8, TensorScaleAndSaturationCount) {
  auto x = test::random_normal(256, 2);
  Format f = parse_format("fp8");
  const QuantizedTensor q = quantize(x.data(), {2, 128}, f);
  float amax = 0;
  for (float v : x) amax = std::fmax(amax, std::fabs(v));
  EXPECT_FLOAT_EQ(q.tensor_scale, amax / 448.0f);
  EXPECT_EQ(q.report.saturated_groups, 0u);
  const QuantizedTensor qs = quantize(x.data(), {2, 128}, f, {amax / 448.0f / 4.0f, 0});
  EXPECT_GT(qs.report.saturated_groups, 0u);
  const auto back = decode(qs);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_LE(std::fabs(back[i]), 448.0f * qs.tensor_scale * 1.0001f);
}

// ---- turbo ----

TEST(Turbo, CodebooksMatchTheClassicLloydMaxTable) {
  const double b2[] = {0.4528, 1.5104};
  const double b3[] = {0.2451, 0.7560, 1.3439, 2.1519};
  const double b4[] = {0.1284, 0.3881, 0.6568, 0.9424, 1.2562, 1.6181, 2.0690, 2.7326};
  auto check = [](int bits, const double* half) {
    const double* c = fmt::turbo_levels_f64(bits);
    const int n = 1 << bits;
    for (int i = 0; i < n / 2; ++i) {
      EXPECT_NEAR(c[n / 2 + i], half[i], 1e-4) << "bits " << bits << " level " << i;
      EXPECT_NEAR(c[n / 2 - 1 - i], -half[i], 1e-4);
    }
  };
  check(2, b2);
  check(3, b3);
  check(4, b4);
  EXPECT_NEAR(fmt::lloyd_max_distortion(2), 0.11748, 2e-5);
  EXPECT_NEAR(fmt::lloyd_max_distortion(3), 0.03455, 2e-5);
  EXPECT_NEAR(fmt::lloyd_max_distortion(4), 0.009501, 2e-6);
}

double turbo_mse(int bits, bool outliers, uint64_t seed, int vectors = 2000) {
  const int D = 128;
  auto x = test::random_normal(size_t(vectors * D), 100 + uint64_t(bits) + (outliers ? 7 : 0));
  for (int r = 0; r < vectors; ++r) {
    float* row = &x[size_t(r * D)];
    if (outliers)
      for (int k = 0; k < 3; ++k) row[(k * 41 + r) % D] *= 60.0f;
    double n2 = 0;
    for (int d = 0; d < D; ++d) n2 += double(row[d]) * row[d];
    for (int d = 0; d < D; ++d) row[d] = float(row[d] / std::sqrt(n2));  // unit vectors
  }
  Format f = parse_format("turbo" + std::to_string(bits));
  f.seed = seed;
  const QuantizedTensor q = quantize(x.data(), {vectors, D}, f);
  std::vector<float> back(x.size());
  dequantize(q, back.data());
  double mse = 0;
  for (size_t i = 0; i < x.size(); ++i) mse += std::pow(double(back[i]) - x[i], 2);
  return mse / vectors;
}

TEST(Turbo, MseOfUnitVectorsAtOrBelowLloydMax) {
  const double bound[] = {0, 0, 0.1175, 0.0346, 0.0095};
  for (int b : {2, 3, 4}) {
    EXPECT_LE(turbo_mse(b, false, 0), bound[b]) << "turbo" << b;
    EXPECT_LE(turbo_mse(b, true, 0), bound[b]) << "turbo" << b << " with huge channels";
    EXPECT_LE(turbo_mse(b, true, 12345), bound[b]) << "turbo" << b << " seed 12345";
  }
}

TEST(Turbo, SeedChangesTheRotationAndMustMatchToDecode) {
  const auto x = test::random_normal(128, 9);
  Format a = parse_format("turbo4"), b = a;
  b.seed = 1;
  const QuantizedTensor qa = quantize(x.data(), {1, 128}, a), qb = quantize(x.data(), {1, 128}, b);
  EXPECT_NE(qa.codes, qb.codes);
  int differing = 0;
  for (int i = 0; i < 128; ++i) differing += fmt::turbo_sign(0, i) != fmt::turbo_sign(1, i);
  EXPECT_GT(differing, 32);
  // Decoding with the wrong seed gives a different (wrong) vector.
  QuantizedTensor wrong = qa;
  wrong.format.seed = 1;
  std::vector<float> good(128), bad(128);
  dequantize(qa, good.data());
  dequantize(wrong, bad.data());
  double eg = 0, eb = 0;
  for (int i = 0; i < 128; ++i) {
    eg += std::pow(double(good[size_t(i)]) - x[size_t(i)], 2);
    eb += std::pow(double(bad[size_t(i)]) - x[size_t(i)], 2);
  }
  EXPECT_LT(eg * 20, eb);
}

TEST(Turbo, RotationIsOrthonormal) {
  auto v = test::random_normal(256, 4);
  const auto orig = v;
  fmt::turbo_rotate(v.data(), 256, 3);
  double n0 = 0, n1 = 0;
  for (int i = 0; i < 256; ++i) {
    n0 += double(orig[size_t(i)]) * orig[size_t(i)];
    n1 += double(v[size_t(i)]) * v[size_t(i)];
  }
  EXPECT_NEAR(n0, n1, 1e-4 * n0);
  fmt::turbo_unrotate(v.data(), 256, 3);
  for (int i = 0; i < 256; ++i) EXPECT_NEAR(v[size_t(i)], orig[size_t(i)], 1e-5);
}

TEST(Turbo, ScaleNoWorseThanNormOverSqrtD) {
  const int D = 64;
  auto x = test::random_normal(size_t(50 * D), 21);
  const QuantizedTensor q = quantize(x.data(), {50, D}, parse_format("turbo3"));
  const float* lv = fmt::turbo_levels(3);
  for (int r = 0; r < 50; ++r) {
    std::vector<float> y(x.begin() + r * D, x.begin() + (r + 1) * D);
    double n2 = 0;
    for (float v : y) n2 += double(v) * v;
    fmt::turbo_rotate(y.data(), D, 0);
    const float alpha = fmt::f16_to_f32(fmt::f32_to_f16(float(std::sqrt(n2 / D))));
    const float s = fmt::load_scale(q.scales.data() + 2 * r, 0, ScaleDType::f16);
    double e_s = 0, e_a = 0;
    for (int i = 0; i < D; ++i) {
      const float c = lv[get_code(q.codes.data() + r * D * 3 / 8, i, 3)];
      e_s += std::pow(y[size_t(i)] - double(s) * c, 2);
      e_a += std::pow(y[size_t(i)] - double(alpha) * c, 2);
    }
    EXPECT_LE(e_s, e_a * (1 + 1e-9)) << "row " << r;
  }
}

}  // namespace
}  // namespace qsdpa
