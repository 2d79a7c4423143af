// `qsdpa eval`: the accuracy table a user reads to pick a format. Per format (or K:V pair): bits per
// value, compression vs f16, and the relative L2 error of the fused attention output against exact
// (f64) attention on the unquantized data, on Gaussian and on "llm"-like data.
#include <cmath>
#include <cstdio>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "npy.hpp"
#include "qsdpa/qsdpa.hpp"
#include "workloads.hpp"

namespace qsdpa::tools {

void register_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Accuracy of attention per format");
  static std::string formats, data = "gaussian,llm", json;
  static int64_t context = 2048;
  cmd->add_option("--formats", formats, "comma-separated formats or K:V pairs (default: all)");
  cmd->add_option("--data", data, "gaussian, llm, or both (comma-separated)");
  cmd->add_option("--context", context, "context length (default 2048)");
  cmd->add_option("--json", json, "write the results as JSON here");
  cmd->callback([] {
    std::vector<std::string> items = formats.empty() ? all_format_names() : split_list(formats);
    if (formats.empty()) items.push_back("mxfp8:turbo3"), items.push_back("mxfp8:mxfp4"), items.push_back("affine8:affine4");
    std::vector<std::pair<Format, Format>> pairs;
    for (const std::string& it : items) pairs.push_back(parse_pair(it));
    Shape s;
    s.hq = 32; s.hkv = 8; s.lq = 4; s.dim = 128; s.context = context;
    const std::vector<int64_t> kv_shape = {s.batch, s.hkv, s.context, s.dim};
    nlohmann::json rows = nlohmann::json::array();
    const std::vector<std::string> datas = split_list(data);
    fmt::print("qsdpa eval  B={} Hq={} Hkv={} Lq={} N={} D={}  error: ||out - exact|| / ||exact|| vs f64 attention on unquantized K/V\n",
               s.batch, s.hq, s.hkv, s.lq, s.context, s.dim);
    fmt::print("{:>16} {:>9} {:>12}", "format", "bits/val", "compression");
    for (const auto& d : datas) fmt::print(" {:>14}", "err_" + d);
    fmt::print("\n");
    std::vector<std::vector<double>> err(pairs.size(), std::vector<double>(datas.size()));
    for (size_t di = 0; di < datas.size(); ++di) {
      Workload w = make_workload(s, datas[di], 77);
      std::vector<float> exact(w.q.size()), out(w.q.size());
      const QuantizedTensor kf = quantize(w.k.data(), kv_shape, parse_format("f32"));
      const QuantizedTensor vf = quantize(w.v.data(), kv_shape, parse_format("f32"));
      AttentionArgs ref = make_args(s, kf, vf, w.q.data(), exact.data());
      attention_reference(ref);
      for (size_t pi = 0; pi < pairs.size(); ++pi) {
        const QuantizedTensor kq = quantize(w.k.data(), kv_shape, pairs[pi].first);
        const QuantizedTensor vq = quantize(w.v.data(), kv_shape, pairs[pi].second);
        attention(make_args(s, kq, vq, w.q.data(), out.data()));
        double num = 0.0, den = 0.0;
        for (size_t i = 0; i < out.size(); ++i) {
          num += (double(out[i]) - exact[i]) * (double(out[i]) - exact[i]);
          den += double(exact[i]) * exact[i];
        }
        err[pi][di] = std::sqrt(num / den);
      }
    }
    for (size_t pi = 0; pi < pairs.size(); ++pi) {
      const auto& [k, v] = pairs[pi];
      const std::string name = k == v ? to_string(k) : to_string(k) + ":" + to_string(v);
      const double bpv = 0.5 * (bits_per_value(k, s.dim) + bits_per_value(v, s.dim));
      fmt::print("{:>16} {:>9.3f} {:>11.2f}x", name, bpv, 16.0 / bpv);
      for (size_t di = 0; di < datas.size(); ++di) {
        fmt::print(" {:>14.3e}", err[pi][di]);
        rows.push_back({{"k_format", to_string(k)}, {"v_format", to_string(v)}, {"data", datas[di]}, {"bits_per_value", bpv},
                        {"compression", 16.0 / bpv}, {"rel_l2_error", err[pi][di]}});
      }
      fmt::print("\n");
    }
    if (!json.empty()) npy::write_file_atomic(json, nlohmann::json{{"rows", rows}}.dump(2) + "\n");
  });
}

}  // namespace qsdpa::tools
