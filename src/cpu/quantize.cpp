// Quantize and dequantize of whole arrays on the CPU: rows are independent, split across threads,
// and each row goes through the one scalar rule of its format (formats/codec.hpp).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/row_codec.hpp"
#include "cpu/kernels.hpp"
#include "qsdpa/build_info.hpp"
#include "qsdpa/cache.hpp"
#include "qsdpa/error.hpp"

namespace qsdpa {
namespace {

int thread_count(int requested) { return requested > 0 ? requested : omp_get_max_threads(); }

}  // namespace

int64_t QuantizedTensor::rows() const {
  int64_t r = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) r *= shape[i];
  return r;
}

CacheView QuantizedTensor::view() const {
  if (shape.size() != 4)
    throw Error("cache: a [B, H, N, D] view needs a rank-4 array, got rank " + std::to_string(shape.size()));
  CacheView v;
  v.format = format;
  v.batch = shape[0];
  v.heads = shape[1];
  v.tokens = shape[2];
  v.dim = shape[3];
  const int64_t rc = row_code_bytes(format, v.dim), rs = row_scale_bytes(format, v.dim),
                rb = row_bias_bytes(format, v.dim);
  auto set = [&](int64_t* s, int64_t row) {
    s[2] = row;
    s[1] = row * v.tokens;
    s[0] = row * v.tokens * v.heads;
  };
  v.codes = codes.data();
  set(v.code_strides, rc);
  v.scales = rs ? scales.data() : nullptr;
  set(v.scale_strides, rs);
  v.biases = rb ? biases.data() : nullptr;
  set(v.bias_strides, rb);
  if (format.kind == FormatKind::fp8) {
    v.tensor_scales = &tensor_scale;
    v.tensor_scale_count = 1;
  }
  return v;
}

QuantizedTensor quantize(const float* x, const std::vector<int64_t>& shape, const Format& format,
                         const QuantizeOptions& options) {
  if (shape.empty()) throw Error("quantize: input must have at least one dimension, got a scalar");
  for (int64_t s : shape)
    if (s < 0) throw Error("quantize: negative dimension " + std::to_string(s) + " in the input shape");
  QuantizedTensor q;
  q.format = format;
  q.shape = shape;
  const int64_t dim = shape.back();
  check_dim(format, dim);
  const int64_t rows = q.rows();
  if (rows > 0 && dim > (int64_t(1) << 62) / rows)
    throw Error("quantize: input of " + std::to_string(rows) + " rows of " + std::to_string(dim) +
                " values overflows 64-bit sizes");
  const int64_t rc = row_code_bytes(format, dim), rs = row_scale_bytes(format, dim),
                rb = row_bias_bytes(format, dim);
  q.codes.assign(size_t(rows * rc), 0);
  q.scales.assign(size_t(rows * rs), 0);
  q.biases.assign(size_t(rows * rb), 0);

  if (format.kind == FormatKind::fp8) {
    float amax = 0.0f;
    for (int64_t i = 0; i < rows * dim; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    q.tensor_scale = options.tensor_scale > 0.0f ? options.tensor_scale : (amax > 0.0f ? amax / 448.0f : 1.0f);
  }
  if (format.kind == FormatKind::nvfp4 && !(format.global_scale >= 0.0f && std::isfinite(format.global_scale)))
    throw Error("global scale: expected a finite positive nvfp4 global scale, got " +
                std::to_string(format.global_scale));
  const fmt::RowCodec codec = make_row_codec(format, q.tensor_scale);

  std::vector<fmt::EncodeStatus> status(size_t(thread_count(options.threads)));
#pragma omp parallel num_threads(thread_count(options.threads))
  {
    std::vector<float> work(static_cast<size_t>(dim));
    fmt::EncodeStatus& st = status[size_t(omp_get_thread_num())];
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      fmt::encode_row(codec, x + r * dim, dim, q.codes.data() + r * rc, q.scales.data() + r * rs,
                      q.biases.data() + r * rb, work.data(), &st);
    }
  }
  fmt::EncodeStatus total;
  for (const auto& s : status) {
    total.nonfinite += s.nonfinite;
    total.scale_overflow += s.scale_overflow;
    total.saturated += s.saturated;
    total.zeroed_blocks += s.zeroed_blocks;
  }
  if (total.nonfinite)
    throw Error("quantize: input has NaN or Inf values in " + std::to_string(total.nonfinite) +
                " rows; a cache built from them would be silently wrong");
  if (total.scale_overflow)
    throw Error("quantize: " + std::to_string(total.scale_overflow) + " groups have a scale or bias that overflows " +
                to_string(format.scale_dtype) + " for " + to_string(format) + "; use --scale-dtype f32");
  q.report.saturated_groups = total.saturated;
  q.report.zeroed_blocks = total.zeroed_blocks;
  return q;
}

void dequantize(const QuantizedTensor& q, float* out, int threads) {
  const int64_t dim = q.dim(), rows = q.rows();
  const int64_t rc = row_code_bytes(q.format, dim), rs = row_scale_bytes(q.format, dim),
                rb = row_bias_bytes(q.format, dim);
  const fmt::RowCodec codec = make_row_codec(q.format, q.tensor_scale);
#pragma omp parallel for schedule(static) num_threads(thread_count(threads))
  for (int64_t r = 0; r < rows; ++r)
    fmt::decode_row(codec, q.codes.data() + r * rc, rs ? q.scales.data() + r * rs : nullptr,
                    rb ? q.biases.data() + r * rb : nullptr, dim, out + r * dim);
}

// Decodes with the same tile decoders as the fused attention (AVX-512 where available), so that the
// unfused baseline is as fast as this library can make it.
void dequantize(const CacheView& c, float* out, int threads) {
  cpu::TileDecoder decode = cpu::generic_decoder(c.format);
#if QSDPA_HAVE_AVX512
  if (cpu_has_avx512())
    if (auto fast = cpu::avx512_decoder(c.format, c.dim)) decode = fast;
#endif
  constexpr int64_t kChunk = 64;
  const int64_t chunks = (c.tokens + kChunk - 1) / kChunk;
#pragma omp parallel num_threads(thread_count(threads))
  {
    std::vector<float> tiled(static_cast<size_t>(c.dim));  // one row in tile order, per thread
#pragma omp for schedule(static)
    for (int64_t job = 0; job < c.batch * c.heads * chunks; ++job) {
      const int64_t chunk = job % chunks, h = (job / chunks) % c.heads, b = job / (chunks * c.heads);
      const int64_t n0 = chunk * kChunk, count = std::min(kChunk, c.tokens - n0);
      float* dst = out + ((b * c.heads + h) * c.tokens + n0) * c.dim;
      decode.fn(make_row_codec(c.format, c.tensor_scale(h)), c, b, h, n0, int(count), dst);
      if (decode.order != cpu::TileOrder::natural) {
        for (int64_t t = 0; t < count; ++t) {
          std::copy(dst + t * c.dim, dst + (t + 1) * c.dim, tiled.begin());
          cpu::from_tile_order(decode.order, tiled.data(), dst + t * c.dim, c.dim);
        }
      }
      if (c.format.rotated())  // tile decoders leave turbo rows in the rotated basis
        for (int64_t t = 0; t < count; ++t) fmt::turbo_unrotate(dst + t * c.dim, int(c.dim), c.format.seed);
    }
  }
}

}  // namespace qsdpa
