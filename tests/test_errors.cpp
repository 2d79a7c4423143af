// SPEC §3: every bad input throws qsdpa::Error (a std::invalid_argument) whose message names the
// argument, what was expected and what was given.
#include <gtest/gtest.h>

#include <climits>

#include "qsdpa/build_info.hpp"
#include "test_util.hpp"

namespace qsdpa {
namespace {

// Expects `fn` to throw qsdpa::Error whose message contains every fragment.
template <typename Fn>
void expect_error(Fn fn, std::initializer_list<const char*> fragments) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const char* f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
    const std::invalid_argument& base = e;  // the documented base class
    (void)base;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

// A valid call that each test breaks in one way.
struct Fixture {
  int64_t B = 2, Hq = 8, Hkv = 2, Lq = 3, N = 16, D = 64;
  std::vector<float> q, out, kx;
  QuantizedTensor k, v;
  AttentionArgs a;
  Fixture() {
    q = test::random_normal(size_t(B * Hq * Lq * D), 1);
    out.resize(q.size());
    kx = test::random_normal(size_t(B * Hkv * N * D), 2);
    k = quantize(kx.data(), {B, Hkv, N, D}, parse_format("affine4"));
    v = quantize(kx.data(), {B, Hkv, N, D}, parse_format("mxfp4"));
    a.q = contiguous_view(q.data(), DType::f32, B, Hq, Lq, D);
    a.out = contiguous_view(out.data(), DType::f32, B, Hq, Lq, D);
    a.k = k.view();
    a.v = v.view();
    a.scale = 0.125f;
  }
};

TEST(Errors, ValidCallPasses) {
  Fixture f;
  EXPECT_NO_THROW(attention(f.a));
}

TEST(Errors, UnknownFormat) { expect_error([] { parse_format("int4"); }, {"format", "unknown format 'int4'", "affine"}); }

TEST(Errors, DimNotMultipleOfGroup) {
  std::vector<float> x(96, 1.0f);
  expect_error([&] { quantize(x.data(), {1, 96}, parse_format("affine4")); }, {"dim", "multiple of its group 64", "96"});
}

TEST(Errors, CudaWithoutTheBackend) {
  if (build_info().cuda) GTEST_SKIP() << "this build has the CUDA backend";
  Fixture f;
  f.a.device = Device::cuda;
  std::vector<float> aligned(f.q.size() + 16);
  float* q16 = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(aligned.data()) + 15) / 16 * 16);
  f.a.q.data = q16;
  f.a.out.data = q16;
  expect_error([&] { attention(f.a); }, {"device cuda", "no CUDA backend"});
}

TEST(Errors, MisalignedDevicePointer) {
  Fixture f;
  f.a.device = Device::cuda;
  f.a.q.data = reinterpret_cast<char*>(f.q.data()) + (16 - reinterpret_cast<uintptr_t>(f.q.data()) % 16) + 4;
  expect_error([&] { attention(f.a); }, {"q", "16-byte aligned", "0x4"});
}

TEST(Errors, HqNotMultipleOfHkv) {
  Fixture f;
  std::vector<float> q(size_t(f.B * 3 * f.Lq * f.D)), out(q.size());
  f.a.q = contiguous_view(q.data(), DType::f32, f.B, 3, f.Lq, f.D);
  f.a.out = contiguous_view(out.data(), DType::f32, f.B, 3, f.Lq, f.D);
  expect_error([&] { attention(f.a); }, {"Hq must be a multiple of Hkv", "Hq=3", "Hkv=2"});
}

TEST(Errors, ShapeAndDtypeMismatches) {
  {
    Fixture f;
    f.a.out.shape[2] = 4;
    expect_error([&] { attention(f.a); }, {"out", "expected shape [2, 8, 3, 64]", "[2, 8, 4, 64]"});
  }
  {
    Fixture f;
    f.a.out.dtype = DType::f16;
    expect_error([&] { attention(f.a); }, {"out", "expected dtype float32", "float16"});
  }
  {
    Fixture f;
    f.a.q.dtype = DType::i32;
    expect_error([&] { attention(f.a); }, {"q", "float32, float16 or bfloat16", "int32"});
  }
  {
    Fixture f;
    f.a.q.rank = 3;
    expect_error([&] { attention(f.a); }, {"q", "rank 4", "rank 3"});
  }
  {
    Fixture f;
    f.a.v.tokens = 15;
    expect_error([&] { attention(f.a); }, {"v", "expected 16 tokens", "got 15"});
  }
  {
    Fixture f;
    f.a.k.batch = 1;
    expect_error([&] { attention(f.a); }, {"k", "expected batch 2", "got 1"});
  }
  {
    Fixture f;
    f.a.k.dim = 128;
    expect_error([&] { attention(f.a); }, {"k", "head dim 64", "got 128"});
  }
  {
    Fixture f;
    f.a.k.code_strides[2] = -32;
    expect_error([&] { attention(f.a); }, {"k", "negative strides"});
  }
  {
    Fixture f;
    f.a.k.scales = nullptr;
    expect_error([&] { attention(f.a); }, {"k", "affine4 needs scales"});
  }
}

TEST(Errors, ScaleIsRequired) {
  Fixture f;
  f.a.scale = NAN;
  expect_error([&] { attention(f.a); }, {"scale", "required"});
}

TEST(Errors, MaskNotBroadcastable) {
  Fixture f;
  std::vector<uint8_t> m(size_t(3 * f.N), 1);
  f.a.mask = contiguous_view(m.data(), DType::boolean, 1, 3, 1, f.N);  // 3 heads: neither 1 nor Hq=8
  expect_error([&] { attention(f.a); }, {"mask", "[1, 3, 1, 16]", "not broadcastable", "[2, 8, 3, 16]"});
  f.a.mask = contiguous_view(m.data(), DType::boolean, 1, 1, 3, 1);  // last dim must be N
  expect_error([&] { attention(f.a); }, {"mask", "last dimension must be N=16"});
  f.a.mask = contiguous_view(m.data(), DType::i64, 1, 1, 1, f.N);
  expect_error([&] { attention(f.a); }, {"mask", "int64"});
}

TEST(Errors, CausalWithArrayMask) {
  Fixture f;
  std::vector<uint8_t> m(size_t(f.N), 1);
  f.a.mask = contiguous_view(m.data(), DType::boolean, 1, 1, 1, f.N);
  f.a.causal = true;
  expect_error([&] { attention(f.a); }, {"mask", "causal cannot be combined with an array mask"});
}

TEST(Errors, LqGreaterThanNWithCausal) {
  Fixture f;
  f.a.k.tokens = f.a.v.tokens = 2;
  f.a.causal = true;
  expect_error([&] { attention(f.a); }, {"causal", "Lq must be <= N", "Lq=3", "N=2"});
}

TEST(Errors, KvLensBeyondCapacity) {
  Fixture f;
  const int64_t lens[2] = {16, 17};
  f.a.kv_lens = lens;
  expect_error([&] { attention(f.a); }, {"kv_lens", "<= N=16", "kv_lens[1]=17"});
}

TEST(Errors, ByteCountsOverflow64Bits) {
  Fixture f;
  f.a.k.tokens = f.a.v.tokens = INT64_MAX / 4;
  expect_error([&] { validate(f.a); }, {"overflows 64 bits"});
  std::vector<float> x(64);
  expect_error([&] { quantize(x.data(), {INT64_MAX / 8, 64}, parse_format("affine4")); }, {"overflows 64-bit"});
}

TEST(Errors, NanInQuantizeInput) {
  std::vector<float> x(64, 1.0f);
  x[5] = NAN;
  expect_error([&] { quantize(x.data(), {1, 64}, parse_format("turbo3")); }, {"NaN or Inf", "1 rows"});
}

TEST(Errors, ScaleDtypeOverflowSuggestsF32) {
  std::vector<float> x(64, 0.0f);
  x[0] = 3e5f;
  x[1] = -3e5f;
  expect_error([&] { quantize(x.data(), {1, 64}, parse_format("affine2")); }, {"overflows f16", "--scale-dtype f32"});
}

TEST(Errors, Fp8NeedsTensorScales) {
  Fixture f;
  const QuantizedTensor k8 = quantize(f.kx.data(), {f.B, f.Hkv, f.N, f.D}, parse_format("fp8"));
  f.a.k = k8.view();
  f.a.k.tensor_scales = nullptr;
  expect_error([&] { attention(f.a); }, {"k", "fp8 needs 1 or 2 tensor scales", "got 0"});
}

TEST(Errors, CudaErrorCarriesCallAndMessage) {
  const CudaError e("cudaMemcpyAsync", "invalid argument");
  EXPECT_EQ(e.call(), "cudaMemcpyAsync");
  EXPECT_NE(std::string(e.what()).find("invalid argument"), std::string::npos);
  const std::runtime_error& base = e;
  (void)base;
}

}  // namespace
}  // namespace qsdpa
