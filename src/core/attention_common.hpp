// Attention semantics shared by the reference and the fused kernels (SPEC §2): which keys a query row
// may see, how masks broadcast, and the online-softmax state with its exact merge.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "formats/codec.hpp"
#include "formats/scalar.hpp"
#include "qsdpa/attention.hpp"

namespace qsdpa::detail {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline int64_t kv_len(const AttentionArgs& a, int64_t b) { return a.kv_lens ? a.kv_lens[b] : a.k.tokens; }

// Keys [lo, hi) that query row i of a sequence with n keys may see (causal: lower-right aligned;
// window: the w keys ending at the row's own position, on its own or with causal).
// Int = int serves the CUDA tensor-core kernel (keys < 2^31, the window clamped by the caller),
// whose prologue is latency: 64-bit compares and selects take twice the instructions.
template <class Int>
struct KeyRangeOf {
  Int lo, hi;
};
using KeyRange = KeyRangeOf<int64_t>;
template <class Int>
QSDPA_HD KeyRangeOf<Int> visible_keys_of(bool causal, Int window, Int n, Int lq, Int i) {
  const Int pos = n - lq + i;  // the row's own position in the sequence
  KeyRangeOf<Int> r{0, n};
  if (causal && pos + 1 < n) r.hi = pos + 1;
  if (window > 0 && pos - window + 1 > 0) r.lo = pos - window + 1;
  if (r.hi < r.lo) r.hi = r.lo;
  return r;
}
QSDPA_HD KeyRange visible_keys(bool causal, int64_t window, int64_t n, int64_t lq, int64_t i) {
  return visible_keys_of<int64_t>(causal, window, n, lq, i);
}
inline KeyRange visible_keys(const AttentionArgs& a, int64_t n, int64_t lq, int64_t i) {
  return visible_keys(a.causal, a.window, n, lq, i);
}

// Division of 0 <= n < 2^31 by a divisor d >= 1 that the host knows, as one wide multiply and a
// shift: floor(n / d) = (n * magic) >> (31 + s), s = ceil(log2 d), magic = ceil(2^(31 + s) / d) < 2^32.
// Exact for every such n: magic's excess e = magic * d - 2^(31 + s) is below d <= 2^s, so n * e
// stays below 2^(31 + s) and never carries floor(n / d) past the next integer. (A 32-bit division by
// a run-time value is ~25 instructions; the tensor-core kernel's prologue, issued by 16 warps a SM
// at once, did four: session 27.) The cluster merge keeps its own one-instruction form
// (attention_mma.cuh's div_cluster: a multiply-high, exact only for r < 2^16 and C <= 16), which its
// per-element epilogue loops use where this one's wide multiply and shift would be two.
struct Divider {
  uint32_t magic = 1u << 31;
  int shift = 31;
  int divisor = 1;
  static Divider of(int d) {
    Divider v;
    int s = 0;
    while ((int64_t(1) << s) < d) ++s;
    const uint64_t p = uint64_t(1) << (31 + s);
    v.magic = uint32_t((p + uint64_t(d) - 1) / uint64_t(d));
    v.shift = 31 + s;
    v.divisor = d;
    return v;
  }
  QSDPA_HD int quotient(int n) const { return int((uint64_t(uint32_t(n)) * magic) >> shift); }
};

// What an encode had to do, as append()'s status bits (include/qsdpa/attention.hpp, AppendArgs).
QSDPA_HD int32_t append_status_bits(const fmt::EncodeStatus& st) {
  return (st.nonfinite ? 4 : 0) | (st.scale_overflow ? 8 : 0) | (st.saturated ? 16 : 0) | (st.zeroed_blocks ? 32 : 0);
}

QSDPA_HD float load_float(const void* base, DType t, int64_t i) {
  switch (t) {
    case DType::f32: return static_cast<const float*>(base)[i];
    case DType::f16: return fmt::f16_to_f32(static_cast<const uint16_t*>(base)[i]);
    case DType::bf16: return fmt::bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
    default: return 0.0f;
  }
}

QSDPA_HD void store_float(void* base, DType t, int64_t i, float v) {
  switch (t) {
    case DType::f32: static_cast<float*>(base)[i] = v; return;
    case DType::f16: static_cast<uint16_t*>(base)[i] = fmt::f32_to_f16(v); return;
    case DType::bf16: static_cast<uint16_t*>(base)[i] = fmt::f32_to_bf16(v); return;
    default: return;
  }
}

// The additive mask term for (b, h, i, j): 0 or -inf for a boolean mask, the value for a float mask.
QSDPA_HD float mask_term(const TensorView& m, int64_t b, int64_t h, int64_t i, int64_t j) {
  const int64_t off = m.offset(m.shape[0] == 1 ? 0 : b, m.shape[1] == 1 ? 0 : h, m.shape[2] == 1 ? 0 : i, j);
  if (m.dtype == DType::u8 || m.dtype == DType::boolean)
    return static_cast<const uint8_t*>(m.data)[off] ? 0.0f : -INFINITY;
  return load_float(m.data, m.dtype, off);
}

// Running softmax state of one query row: max logit m and denominator l (relative to m).
struct SoftmaxState {
  float m = kNegInf;
  float l = 0.0f;
};

// Log-sum-exp of a finished row; -inf when it saw nothing.
inline float state_lse(const SoftmaxState& s) { return s.l > 0.0f ? s.m + std::log(s.l) : kNegInf; }

}  // namespace qsdpa::detail
