// Validation at the API boundary (SPEC §3): every message names the argument, what was expected and
// what was given.
#include <cmath>
#include <cstdio>
#include <utility>
#include <sstream>
#include <string>

#include "core/attention_common.hpp"
#include "qsdpa/error.hpp"

namespace qsdpa {
namespace {

std::string shape_str(const TensorView& t) {
  std::ostringstream s;
  s << "[";
  for (int i = 0; i < t.rank; ++i) s << (i ? ", " : "") << t.shape[i];
  s << "]";
  return s.str();
}

[[noreturn]] void fail(const std::string& what) { throw Error("attention: " + what); }

bool is_float(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

// a * b with overflow detection for byte counts.
int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r) || r < 0)
    fail(std::string(what) + ": size in bytes overflows 64 bits");
  return r;
}

void check_cache(const CacheView& c, const char* name, int64_t batch, int64_t dim) {
  const std::string n = name;
  if (!c.codes) fail(n + ": codes pointer is null");
  if (c.batch != batch) fail(n + ": expected batch " + std::to_string(batch) + ", got " + std::to_string(c.batch));
  if (c.dim != dim) fail(n + ": expected head dim " + std::to_string(dim) + " (q's), got " + std::to_string(c.dim));
  if (c.heads < 1 || c.tokens < 0) fail(n + ": expected heads >= 1 and tokens >= 0, got " + std::to_string(c.heads) +
                                        " heads and " + std::to_string(c.tokens) + " tokens");
  try {
    check_dim(c.format, dim);
  } catch (const Error& e) {
    fail(n + " " + e.what());
  }
  if (row_scale_bytes(c.format, dim) > 0 && !c.scales) fail(n + ": " + to_string(c.format) + " needs scales, got null");
  if (row_bias_bytes(c.format, dim) > 0 && !c.biases) fail(n + ": " + to_string(c.format) + " needs biases, got null");
  if (c.format.kind == FormatKind::fp8) {
    if (!c.tensor_scales || (c.tensor_scale_count != 1 && c.tensor_scale_count != c.heads))
      fail(n + ": fp8 needs 1 or " + std::to_string(c.heads) + " tensor scales, got " +
           std::to_string(c.tensor_scales ? c.tensor_scale_count : 0));
  }
  for (int i = 0; i < 3; ++i)
    if (c.code_strides[i] < 0 || c.scale_strides[i] < 0 || c.bias_strides[i] < 0)
      fail(n + ": negative strides are not supported");
  const int64_t rows = checked_mul(checked_mul(c.batch, c.heads, name), c.tokens, name);
  checked_mul(rows, row_bytes(c.format, dim) + 1, name);
}

}  // namespace

void validate(const AttentionArgs& a) {
  const TensorView& q = a.q;
  if (!q.data) fail("q: data pointer is null");
  if (q.rank != 4) fail("q: expected rank 4 [B, Hq, Lq, D], got rank " + std::to_string(q.rank));
  if (!is_float(q.dtype)) fail("q: expected float32, float16 or bfloat16, got " + to_string(q.dtype));
  for (int i = 0; i < 4; ++i)
    if (q.shape[i] < 1) fail("q: expected every dimension >= 1, got shape " + shape_str(q));
  const int64_t B = q.shape[0], Hq = q.shape[1], Lq = q.shape[2], D = q.shape[3];
  check_cache(a.k, "k", B, D);
  check_cache(a.v, "v", B, D);
  if (a.k.heads != a.v.heads)
    fail("v: expected " + std::to_string(a.k.heads) + " heads (k's), got " + std::to_string(a.v.heads));
  if (a.k.tokens != a.v.tokens)
    fail("v: expected " + std::to_string(a.k.tokens) + " tokens (k's), got " + std::to_string(a.v.tokens));
  if (Hq % a.k.heads != 0)
    fail("q: Hq must be a multiple of Hkv, got Hq=" + std::to_string(Hq) + " and Hkv=" + std::to_string(a.k.heads));
  const TensorView& o = a.out;
  if (!o.data) fail("out: data pointer is null");
  if (o.rank != 4 || o.shape[0] != B || o.shape[1] != Hq || o.shape[2] != Lq || o.shape[3] != D)
    fail("out: expected shape " + shape_str(q) + " (q's), got " + shape_str(o));
  if (o.dtype != q.dtype) fail("out: expected dtype " + to_string(q.dtype) + " (q's), got " + to_string(o.dtype));
  if (!std::isfinite(a.scale)) fail("scale: a finite softmax scale is required (e.g. 1/sqrt(D)), got " + std::to_string(a.scale));
  if (a.window < 0) fail("window: expected >= 0 (0 = none), got " + std::to_string(a.window));
  const int64_t N = a.k.tokens;
  if (a.causal && Lq > N)
    fail("causal: Lq must be <= N with a causal mask, got Lq=" + std::to_string(Lq) + " and N=" + std::to_string(N));
  if (!a.mask.empty()) {
    const TensorView& m = a.mask;
    if (a.causal) fail("mask: causal cannot be combined with an array mask; fold causality into the mask");
    if (m.rank != 4) fail("mask: expected a rank-4 view broadcastable to [B, Hq, Lq, N], got rank " + std::to_string(m.rank));
    if (!(is_float(m.dtype) || m.dtype == DType::u8 || m.dtype == DType::boolean))
      fail("mask: expected bool/uint8 or float32/float16/bfloat16, got " + to_string(m.dtype));
    const int64_t target[4] = {B, Hq, Lq, N};
    for (int i = 0; i < 4; ++i)
      if (m.shape[i] != target[i] && m.shape[i] != 1)
        fail("mask: shape " + shape_str(m) + " is not broadcastable to [" + std::to_string(B) + ", " +
             std::to_string(Hq) + ", " + std::to_string(Lq) + ", " + std::to_string(N) + "]");
    if (m.shape[3] != N) fail("mask: the last dimension must be N=" + std::to_string(N) + ", got " + std::to_string(m.shape[3]));
  }
  if (a.device == Device::cuda) {
    // Device pointers: checked for alignment here; kv_lens are checked on the device (status).
    const std::pair<const void*, const char*> ptrs[] = {{q.data, "q"}, {o.data, "out"}, {a.k.codes, "k codes"},
                                                         {a.v.codes, "v codes"}};
    for (const auto& [ptr, name] : ptrs)
      if (reinterpret_cast<uintptr_t>(ptr) % 16 != 0)
        fail(std::string(name) + ": device pointers must be 16-byte aligned, got an address ending in 0x" +
             [&] { char buf[8]; std::snprintf(buf, sizeof buf, "%x", unsigned(reinterpret_cast<uintptr_t>(ptr) % 16)); return std::string(buf); }());
    return;
  }
  if (a.kv_lens)
    for (int64_t b = 0; b < B; ++b)
      if (a.kv_lens[b] < 0 || a.kv_lens[b] > N)
        fail("kv_lens: expected 0 <= kv_lens[b] <= N=" + std::to_string(N) + ", got kv_lens[" + std::to_string(b) +
             "]=" + std::to_string(a.kv_lens[b]));
  if (a.threads < 0) fail("threads: expected >= 0 (0 = all cores), got " + std::to_string(a.threads));
}

}  // namespace qsdpa
