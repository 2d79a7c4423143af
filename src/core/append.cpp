// qsdpa::append (include/qsdpa/attention.hpp): validation, then the CPU loop or the CUDA launch.
// Both run the formats' one encode rule (formats/codec.hpp), row by row, so appended bytes equal what
// `quantize` writes for the same rows.
#include <string>

#include "core/attention_common.hpp"
#include "core/row_codec.hpp"
#include "formats/codec.hpp"
#include "qsdpa/attention.hpp"
#include "qsdpa/error.hpp"

#if QSDPA_HAVE_CUDA
#include "cuda/device.hpp"
#endif

namespace qsdpa {
namespace {

[[noreturn]] void fail(const std::string& what) { throw Error("append: " + what); }

void check_side(const TensorView& x, const CacheView& c, const char* xname, const char* cname, int64_t count) {
  const std::string xn = xname, cn = cname;
  if (!x.data) fail(xn + ": data pointer is null");
  if (x.rank != 4) fail(xn + ": expected rank 4 [B, Hkv, count, D], got rank " + std::to_string(x.rank));
  if (!(x.dtype == DType::f32 || x.dtype == DType::f16 || x.dtype == DType::bf16))
    fail(xn + ": expected float32, float16 or bfloat16, got " + to_string(x.dtype));
  if (!c.codes) fail(cn + ": codes pointer is null");
  check_dim(c.format, c.dim);
  if (x.shape[0] != c.batch || x.shape[1] != c.heads || x.shape[3] != c.dim)
    fail(xn + ": expected [" + std::to_string(c.batch) + ", " + std::to_string(c.heads) + ", count, " +
         std::to_string(c.dim) + "] (" + cn + "'s batch, heads, dim), got [" + std::to_string(x.shape[0]) + ", " +
         std::to_string(x.shape[1]) + ", " + std::to_string(x.shape[2]) + ", " + std::to_string(x.shape[3]) + "]");
  if (x.shape[2] != count)
    fail(xn + ": expected " + std::to_string(count) + " new tokens (k_new's), got " + std::to_string(x.shape[2]));
  if (count > c.tokens)
    fail(xn + ": " + std::to_string(count) + " new tokens exceed " + cn + "'s capacity of " + std::to_string(c.tokens));
}

void append_cpu(const AppendArgs& a) {
  const int64_t B = a.k_new.shape[0], H = a.k_new.shape[1], count = a.k_new.shape[2];
  for (int64_t b = 0; b < B; ++b) {
    const int64_t pos = a.positions[b];
    if (pos < 0 || pos + count > a.k.tokens || pos + count > a.v.tokens)
      fail("positions: expected 0 <= positions[b] and positions[b] + count <= capacity " + std::to_string(a.k.tokens) +
           ", got positions[" + std::to_string(b) + "]=" + std::to_string(pos) + " with count " + std::to_string(count));
  }
  int32_t bits = 0;
  for (const auto& [x, cache] : {std::pair{&a.k_new, &a.k}, std::pair{&a.v_new, &a.v}}) {
    fmt::RowCodec codec = make_row_codec(cache->format);
    const int64_t D = cache->dim;
    std::vector<float> row(static_cast<size_t>(D)), work(static_cast<size_t>(D));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        codec.tensor_scale = cache->tensor_scale(h);
        for (int64_t t = 0; t < count; ++t) {
          for (int64_t d = 0; d < D; ++d) row[size_t(d)] = detail::load_float(x->data, x->dtype, x->offset(b, h, t, d));
          const int64_t n = a.positions[b] + t;
          fmt::EncodeStatus st{};
          fmt::encode_row(codec, row.data(), D, const_cast<uint8_t*>(cache->code_row(b, h, n)),
                          const_cast<uint8_t*>(cache->scale_row(b, h, n)), const_cast<uint8_t*>(cache->bias_row(b, h, n)),
                          work.data(), &st);
          bits |= detail::append_status_bits(st);
        }
      }
  }
  if (a.status) *a.status |= bits;
}

}  // namespace

void append(const AppendArgs& a) {
  if (!a.positions) fail("positions: expected an int64 array of B positions, got null");
  const int64_t count = a.k_new.rank == 4 ? a.k_new.shape[2] : 0;
  check_side(a.k_new, a.k, "k_new", "k", count);
  check_side(a.v_new, a.v, "v_new", "v", count);
  switch (a.device) {
    case Device::cpu: append_cpu(a); return;
    case Device::cuda:
#if QSDPA_HAVE_CUDA
      cuda::append(a, static_cast<cudaStream_t>(a.stream));
      return;
#else
      fail("device cuda requested, but this build of qsdpa has no CUDA backend (configure with -DQSDPA_CUDA=ON)");
#endif
  }
  fail("invalid device value " + std::to_string(int(a.device)));
}

}  // namespace qsdpa
