// Quantized caches: a view of [B, H, N] rows in some format (what attention reads), and an owning
// contiguous container with quantize/dequantize (what the CLI and the tests build).
#pragma once

#include <cstdint>
#include <vector>

#include "qsdpa/format.hpp"
#include "qsdpa/tensor.hpp"

namespace qsdpa {

// Rows of `dim` values for [batch, heads, tokens]. Strides are in bytes, so any capacity layout works:
// row (b, h, n) starts at codes + b*code_strides[0] + h*code_strides[1] + n*code_strides[2].
struct CacheView {
  Format format;
  int64_t batch = 0, heads = 0, tokens = 0, dim = 0;
  const uint8_t* codes = nullptr;
  int64_t code_strides[3] = {0, 0, 0};
  const uint8_t* scales = nullptr;  // group scales (affine: scale dtype; mx/nvfp4: one byte; turbo: f16)
  int64_t scale_strides[3] = {0, 0, 0};
  const uint8_t* biases = nullptr;  // affine only, same dtype as the scales
  int64_t bias_strides[3] = {0, 0, 0};
  // fp8: one f32 scale for the whole tensor (tensor_scale_count = 1) or one per head (= heads).
  const float* tensor_scales = nullptr;
  int64_t tensor_scale_count = 0;

  QSDPA_VIEW_HD const uint8_t* code_row(int64_t b, int64_t h, int64_t n) const {
    return codes + b * code_strides[0] + h * code_strides[1] + n * code_strides[2];
  }
  QSDPA_VIEW_HD const uint8_t* scale_row(int64_t b, int64_t h, int64_t n) const {
    return scales ? scales + b * scale_strides[0] + h * scale_strides[1] + n * scale_strides[2] : nullptr;
  }
  QSDPA_VIEW_HD const uint8_t* bias_row(int64_t b, int64_t h, int64_t n) const {
    return biases ? biases + b * bias_strides[0] + h * bias_strides[1] + n * bias_strides[2] : nullptr;
  }
  QSDPA_VIEW_HD float tensor_scale(int64_t h) const {
    if (!tensor_scales) return 1.0f;
    return tensor_scale_count > 1 ? tensor_scales[h] : tensor_scales[0];
  }
};

struct QuantizeOptions {
  // fp8: the per-tensor scale; 0 = calibrate as absmax/448.
  float tensor_scale = 0.0f;
  int threads = 0;  // 0 = all cores
};

// What quantize had to do to fit the data (SPEC §1: saturation is counted, never silent).
struct QuantizeReport {
  uint64_t saturated_groups = 0;  // fp8 / nvfp4-with-global-scale groups with values clipped
  uint64_t zeroed_blocks = 0;     // nvfp4 blocks without a global scale whose scale rounded to 0
};

// An owning, contiguous quantized array of shape [..., dim] (C order over the leading dims).
struct QuantizedTensor {
  Format format;
  std::vector<int64_t> shape;  // leading dims then dim
  std::vector<uint8_t> codes;  // rows * row_code_bytes
  std::vector<uint8_t> scales; // rows * row_scale_bytes
  std::vector<uint8_t> biases; // rows * row_bias_bytes (affine)
  float tensor_scale = 1.0f;   // fp8
  QuantizeReport report;

  int64_t dim() const { return shape.back(); }
  int64_t rows() const;
  // A [B, H, N] view; the shape must be [B, H, N, dim].
  CacheView view() const;
};

// Quantizes x (float32, C order, `shape` = [..., dim]). Throws qsdpa::Error for a dim the format
// cannot hold, NaN/Inf in x, or a scale that overflows the scale dtype (suggesting f32 scales).
QuantizedTensor quantize(const float* x, const std::vector<int64_t>& shape, const Format& format,
                         const QuantizeOptions& options = {});
// Decodes every row into out (rows * dim float32).
void dequantize(const QuantizedTensor& q, float* out, int threads = 0);
// Decodes the rows of a cache view into a contiguous [B, H, N, dim] float32 buffer.
void dequantize(const CacheView& cache, float* out, int threads = 0);

}  // namespace qsdpa
