#include "append_cases.hpp"

#include "attention_cases.hpp"
#include "test_util.hpp"
#include "workloads.hpp"

namespace qsdpa::test {
namespace {

constexpr uint8_t kPoison = 0xA5;
constexpr float kFp8Scale = 0.02f;  // fixed per-tensor scale of fp8 caches (the cache's, and quantize's)

// Built in place: the view points into c's own arrays and tensor scale.
void make_cache(HostCache& c, const Format& f, int64_t B, int64_t H, int64_t cap, int64_t D) {
  const int64_t rows = B * H * cap, cb = row_code_bytes(f, D), sb = row_scale_bytes(f, D), bb = row_bias_bytes(f, D);
  c.codes.assign(size_t(rows * cb), kPoison);
  c.scales.assign(size_t(rows * sb), kPoison);
  c.biases.assign(size_t(rows * bb), kPoison);
  c.tensor_scale = kFp8Scale;
  CacheView& v = c.view;
  v.format = f;
  v.batch = B, v.heads = H, v.tokens = cap, v.dim = D;
  auto set = [&](std::vector<uint8_t>& bytes, int64_t row_bytes, const uint8_t** ptr, int64_t* strides) {
    *ptr = row_bytes ? bytes.data() : nullptr;
    strides[2] = row_bytes, strides[1] = cap * row_bytes, strides[0] = H * cap * row_bytes;
  };
  set(c.codes, cb, &v.codes, v.code_strides);
  set(c.scales, sb, &v.scales, v.scale_strides);
  set(c.biases, bb, &v.biases, v.bias_strides);
  if (f.kind == FormatKind::fp8) {
    v.tensor_scales = &c.tensor_scale;
    v.tensor_scale_count = 1;
  }
}

// Compares the cache's rows with `expected` ([B, H, count] rows) at the positions; others must be poison.
::testing::AssertionResult compare(const HostCache& c, const QuantizedTensor& expected, const std::vector<int64_t>& pos,
                                   int64_t count, const char* which) {
  const CacheView& v = c.view;
  const int64_t D = v.dim;
  struct Part {
    const std::vector<uint8_t>& got;
    const std::vector<uint8_t>& want;
    int64_t row_bytes;
    const char* name;
  };
  const Part parts[] = {{c.codes, expected.codes, row_code_bytes(v.format, D), "codes"},
                        {c.scales, expected.scales, row_scale_bytes(v.format, D), "scales"},
                        {c.biases, expected.biases, row_bias_bytes(v.format, D), "biases"}};
  for (const Part& p : parts)
    for (int64_t b = 0; b < v.batch; ++b)
      for (int64_t h = 0; h < v.heads; ++h)
        for (int64_t n = 0; n < v.tokens; ++n) {
          const int64_t t = n - pos[size_t(b)];
          const uint8_t* got = p.got.data() + ((b * v.heads + h) * v.tokens + n) * p.row_bytes;
          for (int64_t i = 0; i < p.row_bytes; ++i) {
            const bool appended = t >= 0 && t < count;
            const uint8_t want = appended ? p.want[size_t(((b * v.heads + h) * count + t) * p.row_bytes + i)] : kPoison;
            if (got[i] != want)
              return ::testing::AssertionFailure()
                     << which << " " << to_string(v.format) << " " << p.name << ": row (b=" << b << ", h=" << h
                     << ", n=" << n << ") byte " << i << " is " << int(got[i]) << ", expected " << int(want)
                     << (appended ? " (quantize's)" : " (untouched poison)");
          }
        }
  return ::testing::AssertionSuccess();
}

}  // namespace

::testing::AssertionResult check_append(const std::string& pair, const AppendRunner& run) {
  const auto [kf, vf] = tools::parse_pair(pair);
  // Every head dim the pair takes: the GPU's warp encoders are instantiated per D (turbo).
  for (const int64_t D : valid_dims(kf, vf)) {
    const int64_t B = 2, H = 3, cap = 11, count = 3;
    const std::vector<int64_t> positions = {2, 8};
    auto kx = random_normal(size_t(B * H * count * D), 41 + uint64_t(D)),
         vx = random_normal(size_t(B * H * count * D), 42 + uint64_t(D));
    QuantizeOptions opt;
    opt.tensor_scale = kFp8Scale;
    const QuantizedTensor kq = quantize(kx.data(), {B, H, count, D}, kf, opt);
    const QuantizedTensor vq = quantize(vx.data(), {B, H, count, D}, vf, opt);
    HostCache k, v;
    make_cache(k, kf, B, H, cap, D);
    make_cache(v, vf, B, H, cap, D);
    const int32_t status = run(contiguous_view(kx.data(), DType::f32, B, H, count, D),
                               contiguous_view(vx.data(), DType::f32, B, H, count, D), k, v, positions);
    // fp8 at a fixed scale may clip a value (bit 16); anything else is a failure.
    if ((status & ~16) != 0) return ::testing::AssertionFailure() << pair << " D=" << D << ": status " << status;
    auto r = compare(k, kq, positions, count, "k");
    if (!r) return r << " (D=" << D << ")";
    r = compare(v, vq, positions, count, "v");
    if (!r) return r << " (D=" << D << ")";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace qsdpa::test
