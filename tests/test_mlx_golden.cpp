// MLX compatibility (SPEC §1) against real MLX output (../shared/mlx-golden/mixed.jsonl, MLX 0.32.2 CPU):
// MLX-packed data decodes to MLX's values; affine with f32 scales reproduces MLX's codes, scales and
// biases bit for bit; FP encoding is never less accurate per row than MLX's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/row_codec.hpp"
#include "test_util.hpp"

namespace qsdpa {
namespace {

struct Golden {
  std::string mode;
  int bits = 0, group = 0;
  float global_scale = 0.0f;
  std::vector<float> input, dequantized;
  std::vector<uint32_t> packed;
  std::vector<uint8_t> scale_bytes;  // as stored: f32 bytes for affine, uint8 for FP modes
  std::vector<uint8_t> bias_bytes;
  int64_t rows = 0, dim = 0;
};

uint32_t hex32(const std::string& s) { return uint32_t(std::stoul(s, nullptr, 16)); }

// ../shared/mlx-golden beside the checkout, or QSDPA_GOLDEN_DIR (machines where shared/ does not travel).
std::string golden_path() {
  const char* env = std::getenv("QSDPA_GOLDEN_DIR");
  return std::string(env && *env ? env : QSDPA_GOLDEN_DIR) + "/mixed.jsonl";
}

std::vector<Golden> load_golden() {
  std::ifstream in(golden_path());
  std::vector<Golden> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    Golden g;
    g.mode = j["mode"];
    g.bits = j["bits"];
    g.group = j["group_size"];
    if (!j["global_scale"].is_null()) g.global_scale = fmt::bits_f32(hex32(j["global_scale"]));
    g.rows = j["input_shape"][0];
    g.dim = j["input_shape"][1];
    for (const auto& h : j["input"]) g.input.push_back(fmt::bits_f32(hex32(h)));
    for (const auto& h : j["dequantized"]) g.dequantized.push_back(fmt::bits_f32(hex32(h)));
    for (const auto& h : j["packed"]) g.packed.push_back(hex32(h));
    for (const auto& h : j["scales"]) {
      const uint32_t v = hex32(h);
      if (g.mode == "affine") for (int k = 0; k < 4; ++k) g.scale_bytes.push_back(uint8_t(v >> (8 * k)));
      else g.scale_bytes.push_back(uint8_t(v));
    }
    if (j.contains("biases") && !j["biases"].is_null())
      for (const auto& h : j["biases"]) {
        const uint32_t v = hex32(h);
        for (int k = 0; k < 4; ++k) g.bias_bytes.push_back(uint8_t(v >> (8 * k)));
      }
    out.push_back(std::move(g));
  }
  return out;
}

Format golden_format(const Golden& g) {
  Format f;
  if (g.mode == "affine") {
    f = parse_format("affine" + std::to_string(g.bits) + "-g" + std::to_string(g.group));
    f.scale_dtype = ScaleDType::f32;
  } else {
    f = parse_format(g.mode);
    f.global_scale = g.global_scale;
  }
  return f;
}

QuantizedTensor mlx_tensor(const Golden& g) {
  QuantizedTensor q;
  q.format = golden_format(g);
  q.shape = {g.rows, g.dim};
  q.codes.resize(g.packed.size() * 4);
  std::memcpy(q.codes.data(), g.packed.data(), q.codes.size());
  q.scales = g.scale_bytes;
  q.biases = g.bias_bytes;
  return q;
}

std::string name(const Golden& g) {
  return g.mode + std::to_string(g.bits) + "-g" + std::to_string(g.group) + (g.global_scale > 0 ? " with g" : "");
}

class MlxGolden : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cases_ = new std::vector<Golden>(load_golden());
  }
  void SetUp() override { ASSERT_FALSE(cases_->empty()) << "no MLX golden data at " << golden_path(); }
  static std::vector<Golden>* cases_;
};
std::vector<Golden>* MlxGolden::cases_ = nullptr;

TEST_F(MlxGolden, FileHasAllConfigurations) {
  ASSERT_EQ(cases_->size(), 23u) << "expected 18 affine + mxfp4 + mxfp8 + 3 nvfp4 lines in " << golden_path();
}

TEST_F(MlxGolden, MlxPackedDataDecodesToMlxValues) {
  for (const Golden& g : *cases_) {
    const QuantizedTensor q = mlx_tensor(g);
    std::vector<float> out(g.input.size());
    dequantize(q, out.data());
    for (size_t i = 0; i < out.size(); ++i) {
      const float want = g.dequantized[i];
      if (g.mode == "mxfp4" || g.mode == "mxfp8") {
        ASSERT_EQ(fmt::f32_bits(out[i]), fmt::f32_bits(want)) << name(g) << " element " << i;
      } else {
        // A few ulp of the terms: qsdpa decodes affine with one fused multiply-add, MLX's CPU with a
        // multiply then an add, so the two may differ by the rounding of the product s*code.
        float mag = std::fabs(want);
        if (g.mode == "affine") {
          const int64_t grp = int64_t(i) / g.group;
          const float b = fmt::load_scale(g.bias_bytes.data(), grp, ScaleDType::f32);
          mag = std::fmax(mag, std::fmax(std::fabs(want - b), std::fabs(b)));
        }
        const float ulp = std::nextafter(mag, INFINITY) - mag;
        ASSERT_LE(std::fabs(out[i] - want), 4 * ulp + 1e-38f) << name(g) << " element " << i << ": " << out[i] << " vs " << want;
      }
    }
  }
}

TEST_F(MlxGolden, AffineWithF32ScalesIsBitExact) {
  for (const Golden& g : *cases_) {
    if (g.mode != "affine") continue;
    const QuantizedTensor q = quantize(g.input.data(), {g.rows, g.dim}, golden_format(g));
    const QuantizedTensor m = mlx_tensor(g);
    EXPECT_EQ(q.codes, m.codes) << name(g) << ": codes";
    EXPECT_EQ(q.scales, m.scales) << name(g) << ": scales";
    EXPECT_EQ(q.biases, m.biases) << name(g) << ": biases";
  }
}

// Groups where log2(absmax / M) is within 2^-20 of k + 1/2 may pick either exponent (SPEC §1).
bool ambiguous_row(const Golden& g, int64_t r) {
  if (g.mode == "nvfp4") return false;
  const float M = g.bits == 4 ? 6.0f : 448.0f;
  for (int64_t g0 = 0; g0 < g.dim; g0 += g.group) {
    float amax = 0;
    for (int64_t i = g0; i < g0 + g.group; ++i) amax = std::fmax(amax, std::fabs(g.input[size_t(r * g.dim + i)]));
    if (amax == 0) continue;
    const double l = std::log2(double(amax) / M);
    if (std::fabs(l - std::floor(l) - 0.5) < std::ldexp(1.0, -20)) return true;
  }
  return false;
}

TEST_F(MlxGolden, FpEncodingNeverLessAccuratePerRow) {
  for (const Golden& g : *cases_) {
    if (g.mode == "affine") continue;
    const QuantizedTensor q = quantize(g.input.data(), {g.rows, g.dim}, golden_format(g));
    std::vector<float> ours(g.input.size());
    dequantize(q, ours.data());
    for (int64_t r = 0; r < g.rows; ++r) {
      if (ambiguous_row(g, r)) continue;
      double e_ours = 0, e_mlx = 0;
      for (int64_t i = r * g.dim; i < (r + 1) * g.dim; ++i) {
        e_ours += std::pow(double(ours[size_t(i)]) - g.input[size_t(i)], 2);
        e_mlx += std::pow(double(g.dequantized[size_t(i)]) - g.input[size_t(i)], 2);
      }
      EXPECT_LE(e_ours, e_mlx * (1 + 1e-12) + 1e-30) << name(g) << " row " << r;
    }
  }
}

}  // namespace
}  // namespace qsdpa
