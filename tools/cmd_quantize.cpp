// `qsdpa quantize` and `qsdpa dequantize`: npy files in MLX's layout (uint32 codes [..., D*b/32],
// scales [..., D/group], biases for affine) plus a meta.json that says how to read them back.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "npy.hpp"
#include "qsdpa/qsdpa.hpp"

namespace qsdpa::tools {
namespace {

constexpr int kMetaVersion = 1;

std::string scale_descr(ScaleDType t) {
  switch (t) {
    case ScaleDType::f16: return "<f2";
    case ScaleDType::bf16: return "<u2";  // bf16 as its uint16 bit pattern
    case ScaleDType::f32: return "<f4";
  }
  return "<f2";
}

ScaleDType scale_dtype_of(const std::string& descr, const std::string& path) {
  if (descr == "<f2") return ScaleDType::f16;
  if (descr == "<u2") return ScaleDType::bf16;
  if (descr == "<f4") return ScaleDType::f32;
  throw Error("scales '" + path + "': expected float16, bfloat16 (<u2) or float32 affine scales, got '" + descr + "'");
}

std::vector<int64_t> with_last(std::vector<int64_t> shape, int64_t last) {
  shape.back() = last;
  return shape;
}

bool file_exists(const std::string& p) { return std::ifstream(p).good(); }

}  // namespace

void register_quantize(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize", "Quantize a float array into codes, scales (and biases)");
  static std::string format, scale_dtype = "f16", in, prefix;
  static float global_scale = 0.0f;
  static uint64_t seed = 0;
  cmd->add_option("--format", format, "format name (affine4, mxfp4, turbo3, ...)")->required();
  cmd->add_option("--scale-dtype", scale_dtype, "affine scale/bias dtype: f16, bf16 or f32");
  cmd->add_option("--global-scale", global_scale, "nvfp4 global scale g (MLX convention: the tensor's absmax)");
  cmd->add_option("--seed", seed, "turbo rotation seed");
  cmd->add_option("IN", in, "input .npy (float32/float16, [..., D])")->required();
  cmd->add_option("OUT_PREFIX", prefix, "output prefix")->required();
  cmd->callback([] {
    Format f = parse_format(format);
    f.scale_dtype = parse_scale_dtype(scale_dtype);
    if (scale_dtype != "f16" && f.kind != FormatKind::affine)
      throw Error("--scale-dtype: only affine formats have a scale dtype, got --scale-dtype " + scale_dtype + " with " + format);
    if (global_scale != 0.0f && f.kind != FormatKind::nvfp4)
      throw Error("--global-scale: only nvfp4 takes a global scale, got it with " + format);
    if (!(global_scale >= 0.0f) || !std::isfinite(global_scale))
      throw Error("--global-scale: expected a finite value > 0, got " + std::to_string(global_scale));
    f.global_scale = global_scale;
    f.seed = seed;
    const npy::Array a = npy::load(in);
    if (a.shape.empty()) throw Error("IN '" + in + "': expected an array [..., D], got a scalar");
    const std::vector<float> x = npy::to_f32(a, "IN '" + in + "'");
    const QuantizedTensor q = quantize(x.data(), a.shape, f);
    const int64_t D = a.shape.back();
    npy::save(prefix + ".codes.npy", npy::from_bytes("<u4", with_last(a.shape, row_code_bytes(f, D) / 4), q.codes.data(), q.codes.size()));
    if (f.kind == FormatKind::fp8) {
      npy::save(prefix + ".scales.npy", npy::from_bytes("<f4", {1}, &q.tensor_scale, 4));
    } else if (!q.scales.empty()) {
      const bool bytes = f.kind == FormatKind::mxfp4 || f.kind == FormatKind::mxfp8 || f.kind == FormatKind::nvfp4;
      const std::string descr = bytes ? "|u1" : f.kind == FormatKind::turbo ? "<f2" : scale_descr(f.scale_dtype);
      const int64_t per_row = f.kind == FormatKind::turbo ? 1 : D / f.group;
      npy::save(prefix + ".scales.npy", npy::from_bytes(descr, with_last(a.shape, per_row), q.scales.data(), q.scales.size()));
    }
    if (!q.biases.empty())
      npy::save(prefix + ".biases.npy",
                npy::from_bytes(scale_descr(f.scale_dtype), with_last(a.shape, D / f.group), q.biases.data(), q.biases.size()));
    nlohmann::json meta = {{"format", to_string(f)}, {"dim", D}, {"bits", f.bits}, {"group", f.group},
                           {"scale_dtype", f.kind == FormatKind::affine ? nlohmann::json(to_string(f.scale_dtype)) : nlohmann::json()},
                           {"seed", seed}, {"shape", a.shape}, {"version", kMetaVersion},
                           {"qsdpa_version", build_info().version}};
    meta["global_scale"] = f.kind == FormatKind::nvfp4 && global_scale > 0 ? nlohmann::json(global_scale) : nlohmann::json();
    meta["tensor_scale"] = f.kind == FormatKind::fp8 ? nlohmann::json(q.tensor_scale) : nlohmann::json();
    npy::write_file_atomic(prefix + ".meta.json", meta.dump(2) + "\n");
    if (q.report.zeroed_blocks)
      std::fprintf(stderr, "qsdpa: warning: %llu nvfp4 blocks have absmax <= 6*2^-10 and decode to 0 without a global scale "
                           "(pass --global-scale)\n", (unsigned long long)q.report.zeroed_blocks);
    if (q.report.saturated_groups)
      std::fprintf(stderr, "qsdpa: warning: %llu groups had values beyond the tensor scale and saturated\n",
                   (unsigned long long)q.report.saturated_groups);
  });
}

void register_dequantize(CLI::App& app) {
  auto* cmd = app.add_subcommand("dequantize", "Decode codes/scales/biases back to float32");
  static std::string format, prefix, out;
  static float global_scale = 0.0f;
  static uint64_t seed = 0;
  auto* fopt = cmd->add_option("--format", format, "format (read from OUT_PREFIX.meta.json when present)");
  auto* gopt = cmd->add_option("--global-scale", global_scale, "nvfp4 global scale");
  auto* sopt = cmd->add_option("--seed", seed, "turbo rotation seed");
  cmd->add_option("OUT_PREFIX", prefix, "prefix given to quantize (or of MLX-packed files)")->required();
  cmd->add_option("OUT", out, "output .npy (float32 [..., D])")->required();
  cmd->callback([fopt, gopt, sopt] {
    Format f;
    float tensor_scale = 0.0f;
    const std::string meta_path = prefix + ".meta.json";
    if (file_exists(meta_path)) {
      nlohmann::json meta;
      try {
        std::ifstream in(meta_path);
        meta = nlohmann::json::parse(in);
        f = parse_format(meta.at("format").get<std::string>());
        if (!meta["scale_dtype"].is_null()) f.scale_dtype = parse_scale_dtype(meta["scale_dtype"].get<std::string>());
        f.seed = meta.value("seed", uint64_t(0));
        if (!meta["global_scale"].is_null()) f.global_scale = meta["global_scale"].get<float>();
        if (!meta["tensor_scale"].is_null()) tensor_scale = meta["tensor_scale"].get<float>();
      } catch (const nlohmann::json::exception& e) {
        throw Error("meta '" + meta_path + "': not a valid qsdpa meta.json (" + e.what() + ")");
      }
      if (fopt->count() && parse_format(format) != parse_format(to_string(f)))
        throw Error("--format: " + format + " contradicts " + meta_path + " (format " + to_string(f) + ")");
      if (gopt->count() && global_scale != f.global_scale)
        throw Error("--global-scale: " + std::to_string(global_scale) + " contradicts " + meta_path);
      if (sopt->count() && seed != f.seed)
        throw Error("--seed: " + std::to_string(seed) + " contradicts " + meta_path + " (seed " + std::to_string(f.seed) + ")");
    } else {
      if (!fopt->count()) throw Error("--format: required when " + meta_path + " does not exist");
      f = parse_format(format);
      f.global_scale = global_scale;
      f.seed = seed;
    }
    const npy::Array codes = npy::load(prefix + ".codes.npy");
    if (codes.descr != "<u4" || codes.shape.empty())
      throw Error("codes '" + prefix + ".codes.npy': expected uint32 [..., D*bits/32], got dtype " + codes.descr);
    const int64_t D = codes.shape.back() * 32 / f.bits;
    check_dim(f, D);
    QuantizedTensor q;
    q.format = f;
    q.shape = with_last(codes.shape, D);
    q.codes = codes.data;
    const int64_t rows = q.rows();
    if (f.kind == FormatKind::fp8) {
      if (tensor_scale == 0.0f) {
        const npy::Array s = npy::load(prefix + ".scales.npy");
        if (s.descr != "<f4" || s.size() != 1) throw Error("scales '" + prefix + ".scales.npy': fp8 expects one float32 scale");
        std::memcpy(&tensor_scale, s.data.data(), 4);
      }
      q.tensor_scale = tensor_scale;
    } else if (row_scale_bytes(f, D) > 0) {
      const std::string sp = prefix + ".scales.npy";
      const npy::Array s = npy::load(sp);
      if (f.kind == FormatKind::affine) q.format.scale_dtype = f.scale_dtype = scale_dtype_of(s.descr, sp);
      const int64_t per_row = f.kind == FormatKind::turbo ? 1 : D / f.group;
      if (s.size() != rows * per_row || s.item_size() * per_row != row_scale_bytes(f, D))
        throw Error("scales '" + sp + "': expected " + std::to_string(rows * per_row) + " values of " +
                    std::to_string(row_scale_bytes(f, D) / per_row) + " bytes, got " + std::to_string(s.size()) +
                    " of dtype " + s.descr);
      q.scales = s.data;
      if (f.kind == FormatKind::affine) {
        const std::string bp = prefix + ".biases.npy";
        const npy::Array bz = npy::load(bp);
        if (bz.descr != s.descr || bz.size() != s.size())
          throw Error("biases '" + bp + "': expected the scales' dtype " + s.descr + " and " + std::to_string(s.size()) +
                      " values, got " + bz.descr + " and " + std::to_string(bz.size()));
        q.biases = bz.data;
      }
    }
    std::vector<float> x(static_cast<size_t>(rows * D));
    dequantize(q, x.data());
    npy::save(out, npy::from_f32(x, q.shape));
  });
}

}  // namespace qsdpa::tools
