// The fast (AVX-512) tile decoders against the one scalar rule of each format: every code value in
// every position, with random scales, must decode to exactly the same f32.
#include <gtest/gtest.h>

#include "core/row_codec.hpp"
#include "cpu/kernels.hpp"
#include "qsdpa/build_info.hpp"
#include "test_util.hpp"

namespace qsdpa {
namespace {

#if QSDPA_HAVE_AVX512
class FastDecoder : public ::testing::TestWithParam<std::string> {};

TEST_P(FastDecoder, EqualsScalarRuleForEveryCode) {
  if (!cpu_has_avx512()) GTEST_SKIP() << "this CPU lacks AVX-512";
  Format f = parse_format(GetParam());
  for (ScaleDType sd : {ScaleDType::f16, ScaleDType::bf16, ScaleDType::f32}) {
    if (sd != ScaleDType::f16 && f.kind != FormatKind::affine) continue;
    f.scale_dtype = sd;
    for (int64_t dim : {64, 128, 256, 512}) {
      if (f.group > dim) continue;
      auto decode = cpu::avx512_decoder(f, dim);
      ASSERT_TRUE(decode) << GetParam() << " D=" << dim;
      // Rows of random bytes cover every code at every position (256 rows, each byte value appears).
      const int64_t rows = 256;
      QuantizedTensor q;
      q.format = f;
      q.shape = {1, 1, rows, dim};
      q.codes.resize(size_t(rows * row_code_bytes(f, dim)));
      q.scales.resize(size_t(rows * row_scale_bytes(f, dim)));
      q.biases.resize(size_t(rows * row_bias_bytes(f, dim)));
      std::mt19937 rng(7);
      for (size_t i = 0; i < q.codes.size(); ++i) q.codes[i] = uint8_t(i * 37 + (i / 256) * 11 + rng());
      // Scales: finite, varied magnitudes; E8M0/E4M3 bytes in their full range.
      auto fill_scales = [&](std::vector<uint8_t>& s) {
        if (f.kind == FormatKind::affine) {
          const auto vals = test::random_normal(s.size() / size_t(scale_dtype_bytes(sd)), 3);
          for (size_t i = 0; i < vals.size(); ++i) fmt::store_scale(s.data(), int64_t(i), sd, vals[i]);
        } else if (f.kind == FormatKind::turbo) {
          for (size_t i = 0; i < s.size() / 2; ++i) fmt::store_scale(s.data(), int64_t(i), ScaleDType::f16, 0.01f * float(i + 1));
        } else {
          for (size_t i = 0; i < s.size(); ++i) s[i] = uint8_t(rng() % 255);
        }
      };
      fill_scales(q.scales);
      fill_scales(q.biases);
      q.tensor_scale = 0.37f;
      const CacheView view = q.view();
      const fmt::RowCodec codec = make_row_codec(f, q.tensor_scale);
      std::vector<float> fast(size_t(rows * dim)), slow(size_t(rows * dim));
      std::vector<float> tiled(fast.size());
      decode.fn(codec, view, 0, 0, 0, int(rows), tiled.data());
      for (int64_t r = 0; r < rows; ++r)
        cpu::from_tile_order(decode.order, &tiled[size_t(r * dim)], &fast[size_t(r * dim)], dim);
      for (int64_t r = 0; r < rows; ++r)
        fmt::decode_row(codec, view.code_row(0, 0, r), view.scale_row(0, 0, r), view.bias_row(0, 0, r), dim,
                        &slow[size_t(r * dim)], true);
      for (size_t i = 0; i < fast.size(); ++i) {
        if (std::isnan(slow[i])) {
          ASSERT_TRUE(std::isnan(fast[i])) << GetParam() << " D=" << dim << " element " << i;
        } else {
          ASSERT_EQ(fmt::f32_bits(fast[i]), fmt::f32_bits(slow[i]))
              << GetParam() << " D=" << dim << " element " << i << ": fast " << fast[i] << " scalar " << slow[i];
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, FastDecoder,
                         ::testing::Values("f32", "f16", "bf16", "affine2-g32", "affine3", "affine4", "affine4-g32",
                                           "affine5-g128", "affine6", "affine8", "affine8-g32", "mxfp4", "mxfp8",
                                           "nvfp4", "turbo2", "turbo3", "turbo4", "fp8"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });
#endif

}  // namespace
}  // namespace qsdpa
