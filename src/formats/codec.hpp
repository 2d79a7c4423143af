// The one scalar rule of every format (SPEC §1): encode and decode of one row, as host/device code.
// The CPU quantizer, the CPU reference, the fast CPU decoders' tests and the CUDA kernels all call
// these functions; nothing else in the tree knows how a format lays out its bits.
#pragma once

#include "bitstream.hpp"
#include "minifloat.hpp"
#include "turbo.hpp"
#include "qsdpa/format.hpp"

namespace qsdpa::fmt {

// Everything a row encode/decode needs, as plain data that can be passed to a kernel.
struct RowCodec {
  FormatKind kind = FormatKind::f16;
  int bits = 16;
  int group = 0;
  ScaleDType scale_dtype = ScaleDType::f16;
  float global_scale = 0.0f;     // nvfp4: g, 0 = none
  float tensor_scale = 1.0f;     // fp8: the per-tensor (or per-head) scale
  uint64_t seed = 0;             // turbo
  const float* levels = nullptr; // turbo: the 2^bits Lloyd-Max levels, ascending
};

// Counts of what an encode had to do to fit the data; all zero for ordinary input.
struct EncodeStatus {
  uint32_t nonfinite = 0;      // rows with NaN/Inf input (their codes are not meaningful)
  uint32_t scale_overflow = 0; // groups whose scale or bias overflowed the scale dtype
  uint32_t saturated = 0;      // values clipped at a per-tensor scale (fp8, nvfp4 with g)
  uint32_t zeroed_blocks = 0;  // nvfp4 blocks whose E4M3 scale rounded to 0 (they decode to 0)
};

QSDPA_HD float load_scale(const uint8_t* p, int64_t i, ScaleDType t) {
  if (t == ScaleDType::f32) {
    float v;
    memcpy(&v, p + 4 * i, 4);
    return v;
  }
  const uint16_t bits = uint16_t(p[2 * i] | (uint16_t(p[2 * i + 1]) << 8));
  return t == ScaleDType::f16 ? f16_to_f32(bits) : bf16_to_f32(bits);
}

// Rounds to the scale dtype and stores; returns the rounded value (inf on overflow).
QSDPA_HD float store_scale(uint8_t* p, int64_t i, ScaleDType t, float v) {
  if (t == ScaleDType::f32) {
    memcpy(p + 4 * i, &v, 4);
    return v;
  }
  const uint16_t bits = t == ScaleDType::f16 ? f32_to_f16(v) : f32_to_bf16(v);
  p[2 * i] = uint8_t(bits & 0xFF);
  p[2 * i + 1] = uint8_t(bits >> 8);
  return t == ScaleDType::f16 ? f16_to_f32(bits) : bf16_to_f32(bits);
}

// ---- affine (MLX's rule, all in f32) ----

// Scale and bias of a group whose values span [mn, mx] (its min and max, in any order of
// reduction: both are exact).
QSDPA_HD void affine_params_of_range(float mn, float mx, int bits, float* scale, float* bias) {
  const float n_bins = float((1 << bits) - 1);
  float s = fmaxf((mx - mn) / n_bins, 1e-7f);
  const bool min_is_edge = fabsf(mn) > fabsf(mx);
  const float edge = min_is_edge ? mn : mx;
  if (!min_is_edge) s = -s;
  const float q0 = rintf(edge / s);
  float b = 0.0f;
  if (q0 != 0.0f) {
    s = edge / q0;
    b = edge;
  }
  *scale = s;
  *bias = b;
}

QSDPA_HD uint32_t affine_code(float w, float scale, float bias, int bits) {
  const float q = rintf((w - bias) / scale);
  const float hi = float((1 << bits) - 1);
  return uint32_t(fminf(fmaxf(q, 0.0f), hi));
}

// One fused multiply-add (one rounding), so that vector and GPU decoders reproduce it exactly.
QSDPA_HD float affine_value(uint32_t code, float scale, float bias) { return fmaf(scale, float(code), bias); }

// ---- FP formats ----

QSDPA_HD float fp_code_value(uint32_t code, int bits) {
  return bits == 4 ? e2m1_to_f32(code) : e4m3_to_f32(code);
}
QSDPA_HD uint32_t fp_encode(float v, int bits) { return bits == 4 ? f32_to_e2m1(v) : f32_to_e4m3(v); }

// nvfp4's factor applied to the E4M3 block scale: g/2688 with a global scale, 1 without.
QSDPA_HD float nvfp4_global_factor(float g) { return g > 0.0f ? g / 2688.0f : 1.0f; }

// The multiplier of code values in group `grp` of a row (FP formats; affine handled apart).
QSDPA_HD float group_multiplier(const RowCodec& c, const uint8_t* scales, int64_t grp) {
  switch (c.kind) {
    case FormatKind::mxfp4:
    case FormatKind::mxfp8: return e8m0_to_f32(scales[grp]);
    case FormatKind::nvfp4: return e4m3_to_f32(scales[grp]) * nvfp4_global_factor(c.global_scale);
    case FormatKind::fp8: return c.tensor_scale;
    default: return 1.0f;
  }
}

// ---- rows ----

// Value i of a row. Turbo values are in the rotated basis (scale * level[code]): the attention
// kernels consume them so; decode_row applies R^T for the caller.
QSDPA_HD float decode_value(const RowCodec& c, const uint8_t* codes, const uint8_t* scales, const uint8_t* biases,
                            int64_t i) {
  switch (c.kind) {
    case FormatKind::f32: {
      float v;
      memcpy(&v, codes + 4 * i, 4);
      return v;
    }
    case FormatKind::f16:
    case FormatKind::bf16: {
      const uint16_t h = uint16_t(codes[2 * i] | (uint16_t(codes[2 * i + 1]) << 8));
      return c.kind == FormatKind::f16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    case FormatKind::affine: {
      const int64_t g = i / c.group;
      return affine_value(get_code(codes, i, c.bits), load_scale(scales, g, c.scale_dtype),
                          load_scale(biases, g, c.scale_dtype));
    }
    case FormatKind::turbo: return load_scale(scales, 0, ScaleDType::f16) * c.levels[get_code(codes, i, c.bits)];
    default:  // mxfp4, mxfp8, nvfp4, fp8
      return fp_code_value(get_code(codes, i, c.bits), c.bits) * group_multiplier(c, scales, c.group > 0 ? i / c.group : 0);
  }
}

// Decodes one row into out[0..dim). For turbo, `rotated_basis` leaves the row in the rotated basis
// (scale * level[code]), which is what the fused attention consumes; otherwise R^T is applied.
QSDPA_HD void decode_row(const RowCodec& c, const uint8_t* codes, const uint8_t* scales, const uint8_t* biases,
                         int64_t dim, float* out, bool rotated_basis = false) {
  for (int64_t i = 0; i < dim; ++i) out[i] = decode_value(c, codes, scales, biases, i);
  if (c.kind == FormatKind::turbo && !rotated_basis) turbo_unrotate(out, int(dim), c.seed);
}

// Index of the level nearest to v (levels ascending; ties go to the lower level).
QSDPA_HD uint32_t nearest_level(const float* levels, int count, float v) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {  // first level whose upper midpoint is >= v
    const int mid = (lo + hi) / 2;
    if (v > 0.5f * (levels[mid] + levels[mid + 1])) lo = mid + 1; else hi = mid;
  }
  return uint32_t(lo);
}

// ---- encoding in pieces: a row is groups of values (encode_row runs them in order; the GPU's
// append runs a group's reduction and its values on several lanes, src/cuda/append.cu) ----

// What a group's values are encoded against (affine, mx, nvfp4, fp8).
struct GroupEncoding {
  float scale = 1.0f, bias = 0.0f;  // affine, as stored (rounded to the scale dtype)
  int exponent = 0;                 // mx: values are divided by 2^exponent, exactly, with ldexpf
  float divisor = 1.0f;             // nvfp4 / fp8: values are divided by this
  bool zero = false;                // nvfp4: the block scale rounded to 0, the codes stay 0
};

// Values per group of a row of `dim` (fp8: the whole row).
QSDPA_HD int64_t encode_group_size(const RowCodec& c, int64_t dim) { return c.group > 0 ? c.group : dim; }

// An affine group spanning [mn, mx]: stores scale and bias at index g.
QSDPA_HD GroupEncoding affine_group_encoding(const RowCodec& c, float mn, float mx, uint8_t* scales, uint8_t* biases,
                                             int64_t g, EncodeStatus* st) {
  GroupEncoding e;
  float s, b;
  affine_params_of_range(mn, mx, c.bits, &s, &b);
  e.scale = store_scale(scales, g, c.scale_dtype, s);
  e.bias = store_scale(biases, g, c.scale_dtype, b);
  if (!is_finite_f32(e.scale) || !is_finite_f32(e.bias)) ++st->scale_overflow;
  return e;
}

// An FP group (mx, nvfp4, fp8) whose largest magnitude is absmax: stores its scale byte at index g
// (mx: E8M0, nvfp4: E4M3; fp8 has none).
QSDPA_HD GroupEncoding fp_group_encoding(const RowCodec& c, float absmax, uint8_t* scales, int64_t g, EncodeStatus* st) {
  GroupEncoding e;
  const float elem_max = c.bits == 4 ? kE2M1Max : kE4M3Max;
  if (c.kind == FormatKind::mxfp4 || c.kind == FormatKind::mxfp8) {
    const uint32_t x = e8m0_shared_exponent(absmax, elem_max);
    scales[g] = uint8_t(x);
    e.exponent = int(x) - 127;
  } else if (c.kind == FormatKind::nvfp4) {
    const float factor = nvfp4_global_factor(c.global_scale);
    const uint32_t byte = f32_to_e4m3(absmax / 6.0f / factor);
    scales[g] = uint8_t(byte);
    const float block = e4m3_to_f32(byte);
    if (block == 0.0f) {
      if (absmax > 0.0f) ++st->zeroed_blocks;
      e.zero = true;
      return e;
    }
    e.divisor = block * factor;
    if (c.global_scale > 0.0f && absmax / e.divisor > elem_max) ++st->saturated;
  } else {  // fp8
    e.divisor = c.tensor_scale;
    if (absmax / e.divisor > elem_max) ++st->saturated;
  }
  return e;
}

// The code of value x of a group (affine or FP).
QSDPA_HD uint32_t group_value_code(const RowCodec& c, const GroupEncoding& e, float x) {
  if (c.kind == FormatKind::affine) return affine_code(x, e.scale, e.bias, c.bits);
  if (e.zero) return 0u;
  return fp_encode(e.exponent != 0 ? ldexpf(x, -e.exponent) : x / e.divisor, c.bits);
}

// Value i of an f32, f16 or bf16 row (little-endian bytes).
QSDPA_HD void encode_plain_value(const RowCodec& c, float x, uint8_t* codes, int64_t i) {
  if (c.kind == FormatKind::f32) {
    memcpy(codes + 4 * i, &x, 4);
    return;
  }
  const uint16_t h = c.kind == FormatKind::f16 ? f32_to_f16(x) : f32_to_bf16(x);
  codes[2 * i] = uint8_t(h & 0xFF);
  codes[2 * i + 1] = uint8_t(h >> 8);
}

// Turbo's row rule in pieces (encode_row runs them in order; the GPU's append runs the values on a
// warp's lanes and adds the sums by a warp reduction): the row's rotated values y are coded against
// alpha = ||x|| / sqrt(D), then the stored scale is whichever of the least-squares scale
// sum(y C) / sum(C C) and alpha, each rounded to f16, leaves the smaller error ||y - scale C[codes]||
// (so never worse than alpha).
QSDPA_HD float turbo_alpha(double norm2, int64_t dim) { return float(sqrt(norm2 / double(dim))); }
QSDPA_HD uint32_t turbo_code(const RowCodec& c, float alpha, float y) {
  return alpha > 0.0f ? nearest_level(c.levels, 1 << c.bits, y / alpha) : 0u;
}
// y * C[k] in f64: a term of the sums the least-squares scale is made of.
QSDPA_HD double turbo_code_dot(const RowCodec& c, float y, uint32_t k) { return double(y) * c.levels[k]; }
// (y - scale * C[k])^2 in f64: a term of a candidate's error.
QSDPA_HD double turbo_code_error(const RowCodec& c, float y, float scale, uint32_t k) {
  const double d = double(y) - double(scale) * c.levels[k];
  return d * d;
}
QSDPA_HD void turbo_scale_candidates(double yc, double cc, float alpha, float cand[2]) {
  cand[0] = f16_to_f32(f32_to_f16(cc > 0.0 ? float(yc / cc) : 0.0f));
  cand[1] = f16_to_f32(f32_to_f16(alpha));
}
QSDPA_HD void store_turbo_scale(const float cand[2], const double err[2], uint8_t* scales, EncodeStatus* st) {
  const float best = err[1] < err[0] ? cand[1] : cand[0];
  if (!is_finite_f32(best)) ++st->scale_overflow;
  store_scale(scales, 0, ScaleDType::f16, best);
}

// Encodes one row. `work` holds dim floats (turbo's rotation). Codes are fully overwritten.
QSDPA_HD void encode_row(const RowCodec& c, const float* x, int64_t dim, uint8_t* codes,
                         uint8_t* scales, uint8_t* biases, float* work, EncodeStatus* st) {
  for (int64_t i = 0; i < dim; ++i) {
    if (!is_finite_f32(x[i])) {
      ++st->nonfinite;
      break;
    }
  }
  if (c.kind == FormatKind::f32 || c.kind == FormatKind::f16 || c.kind == FormatKind::bf16) {
    for (int64_t i = 0; i < dim; ++i) encode_plain_value(c, x[i], codes, i);
    return;
  }
  const int64_t code_bytes = dim * c.bits / 8;
  for (int64_t i = 0; i < code_bytes; ++i) codes[i] = 0;

  if (c.kind == FormatKind::affine) {
    for (int64_t g0 = 0; g0 < dim; g0 += c.group) {
      float mn = x[g0], mx = x[g0];
      for (int64_t i = g0 + 1; i < g0 + c.group; ++i) mn = fminf(mn, x[i]), mx = fmaxf(mx, x[i]);
      const GroupEncoding e = affine_group_encoding(c, mn, mx, scales, biases, g0 / c.group, st);
      for (int64_t i = g0; i < g0 + c.group; ++i) put_code(codes, i, c.bits, group_value_code(c, e, x[i]));
    }
    return;
  }

  if (c.kind == FormatKind::turbo) {
    double norm2 = 0.0;
    for (int64_t i = 0; i < dim; ++i) {
      work[i] = x[i];
      norm2 += double(x[i]) * double(x[i]);
    }
    turbo_rotate(work, int(dim), c.seed);
    const float alpha = turbo_alpha(norm2, dim);
    double yc = 0.0, cc = 0.0;
    for (int64_t i = 0; i < dim; ++i) {
      const uint32_t k = turbo_code(c, alpha, work[i]);
      put_code(codes, i, c.bits, k);
      yc += turbo_code_dot(c, work[i], k);
      cc += turbo_code_dot(c, c.levels[k], k);
    }
    float cand[2];
    turbo_scale_candidates(yc, cc, alpha, cand);
    double err[2] = {0.0, 0.0};
    for (int j = 0; j < 2; ++j)
      for (int64_t i = 0; i < dim; ++i) err[j] += turbo_code_error(c, work[i], cand[j], get_code(codes, i, c.bits));
    store_turbo_scale(cand, err, scales, st);
    return;
  }

  // FP formats: one multiplier per group (mx: E8M0, nvfp4: E4M3 block scale), or the tensor scale.
  const int64_t group = encode_group_size(c, dim);
  for (int64_t g0 = 0; g0 < dim; g0 += group) {
    float absmax = 0.0f;
    for (int64_t i = g0; i < g0 + group; ++i) absmax = fmaxf(absmax, fabsf(x[i]));
    const GroupEncoding e = fp_group_encoding(c, absmax, scales, g0 / group, st);
    if (e.zero) continue;  // codes stay 0
    for (int64_t i = g0; i < g0 + group; ++i) put_code(codes, i, c.bits, group_value_code(c, e, x[i]));
  }
}

}  // namespace qsdpa::fmt
