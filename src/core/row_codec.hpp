// Builds the plain-data RowCodec of a Format (host side): fills in turbo's levels.
#pragma once

#include "formats/codec.hpp"
#include "formats/turbo_levels.hpp"
#include "qsdpa/format.hpp"

namespace qsdpa {

inline fmt::RowCodec make_row_codec(const Format& f, float tensor_scale = 1.0f) {
  fmt::RowCodec c;
  c.kind = f.kind;
  c.bits = f.bits;
  c.group = f.group;
  c.scale_dtype = f.scale_dtype;
  c.global_scale = f.global_scale;
  c.tensor_scale = tensor_scale;
  c.seed = f.seed;
  c.levels = f.kind == FormatKind::turbo ? fmt::turbo_levels(f.bits) : nullptr;
  return c;
}

}  // namespace qsdpa
