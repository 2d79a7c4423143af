// Format names and byte sizes (SPEC §1's table).
#include <charconv>

#include "qsdpa/error.hpp"
#include "qsdpa/format.hpp"

namespace qsdpa {
namespace {

[[noreturn]] void unknown_format(std::string_view name) {
  throw Error("format: unknown format '" + std::string(name) +
              "'; expected one of f32, f16, bf16, affine{2,3,4,5,6,8}[-g32|-g64|-g128], mxfp4, mxfp8, "
              "nvfp4, turbo{2,3,4}, fp8");
}

int parse_int(std::string_view s, std::string_view whole) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) unknown_format(whole);
  return v;
}

}  // namespace

Format parse_format(std::string_view name) {
  Format f;
  if (name == "f32") { f.kind = FormatKind::f32; f.bits = 32; return f; }
  if (name == "f16") { f.kind = FormatKind::f16; f.bits = 16; return f; }
  if (name == "bf16") { f.kind = FormatKind::bf16; f.bits = 16; return f; }
  if (name == "mxfp4") { f.kind = FormatKind::mxfp4; f.bits = 4; f.group = 32; return f; }
  if (name == "mxfp8") { f.kind = FormatKind::mxfp8; f.bits = 8; f.group = 32; return f; }
  if (name == "nvfp4") { f.kind = FormatKind::nvfp4; f.bits = 4; f.group = 16; return f; }
  if (name == "fp8") { f.kind = FormatKind::fp8; f.bits = 8; f.group = 0; return f; }
  if (name.starts_with("turbo")) {
    f.kind = FormatKind::turbo;
    f.bits = parse_int(name.substr(5), name);
    if (f.bits < 2 || f.bits > 4) unknown_format(name);
    return f;
  }
  if (name.starts_with("affine")) {
    f.kind = FormatKind::affine;
    std::string_view rest = name.substr(6);
    f.group = 64;
    const auto dash = rest.find("-g");
    if (dash != std::string_view::npos) {
      f.group = parse_int(rest.substr(dash + 2), name);
      rest = rest.substr(0, dash);
    }
    f.bits = parse_int(rest, name);
    if (f.bits < 2 || f.bits > 8 || f.bits == 7) unknown_format(name);
    if (f.group != 32 && f.group != 64 && f.group != 128) unknown_format(name);
    return f;
  }
  unknown_format(name);
}

std::string to_string(const Format& f) {
  switch (f.kind) {
    case FormatKind::f32: return "f32";
    case FormatKind::f16: return "f16";
    case FormatKind::bf16: return "bf16";
    case FormatKind::mxfp4: return "mxfp4";
    case FormatKind::mxfp8: return "mxfp8";
    case FormatKind::nvfp4: return "nvfp4";
    case FormatKind::fp8: return "fp8";
    case FormatKind::turbo: return "turbo" + std::to_string(f.bits);
    case FormatKind::affine:
      return "affine" + std::to_string(f.bits) + (f.group == 64 ? "" : "-g" + std::to_string(f.group));
  }
  throw Error("format: invalid FormatKind value " + std::to_string(int(f.kind)));
}

std::string to_string(ScaleDType t) {
  switch (t) {
    case ScaleDType::f16: return "f16";
    case ScaleDType::bf16: return "bf16";
    case ScaleDType::f32: return "f32";
  }
  throw Error("scale dtype: invalid value " + std::to_string(int(t)));
}

ScaleDType parse_scale_dtype(std::string_view name) {
  if (name == "f16") return ScaleDType::f16;
  if (name == "bf16") return ScaleDType::bf16;
  if (name == "f32") return ScaleDType::f32;
  throw Error("scale dtype: expected f16, bf16 or f32, got '" + std::string(name) + "'");
}

std::vector<std::string> all_format_names() {
  std::vector<std::string> names = {"f32", "f16", "bf16"};
  for (int b : {2, 3, 4, 5, 6, 8})
    for (int g : {32, 64, 128}) names.push_back(to_string(Format{FormatKind::affine, b, g}));
  for (const char* n : {"mxfp4", "mxfp8", "nvfp4", "turbo2", "turbo3", "turbo4", "fp8"}) names.push_back(n);
  return names;
}

int scale_dtype_bytes(ScaleDType t) { return t == ScaleDType::f32 ? 4 : 2; }

void check_dim(const Format& f, int64_t dim) {
  const std::string name = to_string(f);
  if (dim <= 0) throw Error("dim: expected a positive head dim for " + name + ", got " + std::to_string(dim));
  if (f.kind == FormatKind::turbo) {
    if (dim < 64 || dim > 512 || (dim & (dim - 1)) != 0)
      throw Error("dim: " + name + " needs a power-of-two head dim from 64 to 512, got " + std::to_string(dim));
    return;
  }
  if (f.group > 0 && dim % f.group != 0)
    throw Error("dim: " + name + " needs D to be a multiple of its group " + std::to_string(f.group) +
                ", got " + std::to_string(dim));
  if (f.quantized() && (dim * f.bits) % 32 != 0)
    throw Error("dim: " + name + " packs rows into whole 32-bit words; D*" + std::to_string(f.bits) +
                " must be a multiple of 32, got D=" + std::to_string(dim));
}

int64_t row_code_bytes(const Format& f, int64_t dim) { return dim * f.bits / 8; }

int64_t row_scale_bytes(const Format& f, int64_t dim) {
  switch (f.kind) {
    case FormatKind::affine: return dim / f.group * scale_dtype_bytes(f.scale_dtype);
    case FormatKind::mxfp4:
    case FormatKind::mxfp8:
    case FormatKind::nvfp4: return dim / f.group;
    case FormatKind::turbo: return 2;
    default: return 0;
  }
}

int64_t row_bias_bytes(const Format& f, int64_t dim) {
  return f.kind == FormatKind::affine ? row_scale_bytes(f, dim) : 0;
}

double bits_per_value(const Format& f, int64_t dim) { return 8.0 * double(row_bytes(f, dim)) / double(dim); }

}  // namespace qsdpa
