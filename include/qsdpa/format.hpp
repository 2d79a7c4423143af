// Formats of SPEC §1: how one row of D values (one head vector of one token) is stored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qsdpa {

enum class FormatKind : uint8_t { f32, f16, bf16, affine, mxfp4, mxfp8, nvfp4, turbo, fp8 };

// dtype of affine scales and biases.
enum class ScaleDType : uint8_t { f16, bf16, f32 };

struct Format {
  FormatKind kind = FormatKind::f16;
  int bits = 16;   // bits per stored code (16/32 for unquantized rows)
  int group = 0;   // values per scale; 0 = the whole row (turbo) or none (unquantized, fp8)
  ScaleDType scale_dtype = ScaleDType::f16;  // affine only
  float global_scale = 0.0f;                 // nvfp4 only: MLX's g (tensor absmax); 0 = none
  uint64_t seed = 0;                         // turbo only: the rotation's sign seed

  bool quantized() const {
    return kind != FormatKind::f32 && kind != FormatKind::f16 && kind != FormatKind::bf16;
  }
  bool has_biases() const { return kind == FormatKind::affine; }
  // True when a row is decoded in a rotated basis (turbo): attention rotates q and the output.
  bool rotated() const { return kind == FormatKind::turbo; }
  bool operator==(const Format&) const = default;
};

// Parses a canonical name ("affine4", "affine3-g32", "mxfp4", "turbo3", "f16", ...). Throws
// qsdpa::Error naming the accepted names for anything else.
Format parse_format(std::string_view name);
// Canonical name: the default group is omitted ("affine4" for affine4-g64).
std::string to_string(const Format& f);
std::string to_string(ScaleDType t);
ScaleDType parse_scale_dtype(std::string_view name);
// Every format name of SPEC §1's table (affine with each group), for sweeps and `qsdpa info`.
std::vector<std::string> all_format_names();

// Throws qsdpa::Error unless rows of `dim` values can be stored in `f` (D a multiple of the group,
// whole 32-bit words per row, turbo's power-of-two 64..512).
void check_dim(const Format& f, int64_t dim);

// Per-row byte counts. Codes of one row, group scales of one row, biases of one row (affine).
int64_t row_code_bytes(const Format& f, int64_t dim);
int64_t row_scale_bytes(const Format& f, int64_t dim);
int64_t row_bias_bytes(const Format& f, int64_t dim);
inline int64_t row_bytes(const Format& f, int64_t dim) {
  return row_code_bytes(f, dim) + row_scale_bytes(f, dim) + row_bias_bytes(f, dim);
}
// Stored bits per value of a row of `dim` values (fp8's per-tensor scale not counted).
double bits_per_value(const Format& f, int64_t dim);
int scale_dtype_bytes(ScaleDType t);

}  // namespace qsdpa
