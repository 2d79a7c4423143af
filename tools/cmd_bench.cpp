// `qsdpa bench`: time of fused attention per format and context, with the baselines measured in the
// same run (SPEC §5): the library's own f16 path, and the unfused path (dequantize into a
// preallocated f32 buffer, then the same attention on it, same threads). Effective bandwidth counts
// the bytes one call must read: codes, scales and biases of K and V, plus q and out.
// On the CPU, peak_gbps is a multi-threaded streaming read of 1 GiB, and cache copies are rotated so
// that together they exceed twice the last-level cache.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "npy.hpp"
#include "qsdpa/qsdpa.hpp"
#include "workloads.hpp"
#if QSDPA_HAVE_CUDA
#include "bench_cuda.hpp"
#endif

namespace qsdpa::tools {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Multi-threaded streaming read of 1 GiB; the best of 5 passes, in 10^9 bytes/s. Integer sums, so
// that the compiler vectorises them and the loop is bound by memory, not by an add chain.
double measure_read_gbps(int threads) {
  const size_t n = (size_t(1) << 30) / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (size_t i = 0; i < n; ++i) buf[i] = i * 0x9E3779B97F4A7C15ull;
  double best = 0.0;
  volatile uint64_t sink = 0;
  for (int pass = 0; pass < 5; ++pass) {
    const auto t0 = Clock::now();
    uint64_t total = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : total)
    for (size_t i = 0; i < n; ++i) total += buf[i];
    const double s = seconds_since(t0);
    sink = sink + total;
    best = std::max(best, double(n * sizeof(uint64_t)) / s / 1e9);
  }
  return best;
}

size_t last_level_cache_bytes() {
  long l3 = 0;
#ifdef _SC_LEVEL3_CACHE_SIZE
  l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
  return l3 > 0 ? size_t(l3) : size_t(32) << 20;
}

std::string iso_date_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

int64_t cache_bytes(const QuantizedTensor& q) { return int64_t(q.codes.size() + q.scales.size() + q.biases.size()); }

// Runs fn on rotating copies: warm-up, then reps until min_reps and min_seconds are both reached.
template <typename Fn>
double time_median_us(int copies, int min_reps, double min_seconds, Fn fn) {
  for (int w = 0; w < std::min(copies, 2) + 1; ++w) fn(w % copies);
  std::vector<double> us;
  const auto start = Clock::now();
  for (int r = 0; r < 1000 && (r < min_reps || seconds_since(start) < min_seconds); ++r) {
    const auto t0 = Clock::now();
    fn(r % copies);
    us.push_back(seconds_since(t0) * 1e6);
  }
  return median(us);
}

struct Options {
  std::string device, formats = "f16,bf16,affine8,affine4,affine4-g32,affine2,mxfp8,mxfp4,nvfp4,fp8,turbo4,turbo3,mxfp8:turbo3";
  std::string context = "32768", heads = "32:8", json;
  int64_t batch = 1, dim = 128, lq = 1;
  int threads = 0;
  double min_seconds = 0.25;
};

#if QSDPA_HAVE_CUDA
void run_on_cuda(const Shape& shape, const std::vector<int64_t>& contexts,
                 const std::vector<std::pair<Format, Format>>& pairs, const BuildInfo& info, double min_seconds,
                 const std::string& json);
#endif

}  // namespace

void register_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Time fused attention per format against the f16 and unfused baselines");
  static Options o;
  cmd->add_option("--device", o.device, "cpu or cuda");
  cmd->add_option("--formats", o.formats, "comma-separated formats or K:V pairs");
  cmd->add_option("--context", o.context, "comma-separated context lengths");
  cmd->add_option("--batch", o.batch, "batch size");
  cmd->add_option("--heads", o.heads, "HQ:HKV");
  cmd->add_option("--dim", o.dim, "head dim");
  cmd->add_option("--lq", o.lq, "query rows per sequence");
  cmd->add_option("--threads", o.threads, "CPU threads (0 = all)");
  cmd->add_option("--min-seconds", o.min_seconds, "time spent per measurement (at least 5 runs)");
  cmd->add_option("--json", o.json, "write the results as JSON here");
  cmd->callback([] {
    if (!o.device.empty() && o.device != "cpu" && o.device != "cuda")
      throw Error("--device: expected cpu or cuda, got '" + o.device + "'");
    const BuildInfo binfo = build_info();
    const bool use_cuda = o.device == "cuda" || (o.device.empty() && !cuda_device_names().empty());
    if (use_cuda && !binfo.cuda) throw Error("--device: cuda requested, but this build has no CUDA backend (-DQSDPA_CUDA=ON)");
    const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
    Shape shape;
    shape.batch = o.batch;
    shape.dim = o.dim;
    shape.lq = o.lq;
    const size_t colon = o.heads.find(':');
    if (colon == std::string::npos) throw Error("--heads: expected HQ:HKV, got '" + o.heads + "'");
    try {
      shape.hq = std::stoll(o.heads.substr(0, colon));
      shape.hkv = std::stoll(o.heads.substr(colon + 1));
    } catch (const std::exception&) {
      throw Error("--heads: expected HQ:HKV with integers, got '" + o.heads + "'");
    }
    std::vector<std::pair<Format, Format>> pairs;
    for (const std::string& item : split_list(o.formats)) pairs.push_back(parse_pair(item));
    std::vector<int64_t> contexts;
    for (const std::string& c : split_list(o.context)) {
      try {
        contexts.push_back(std::stoll(c));
      } catch (const std::exception&) {
        throw Error("--context: expected integers, got '" + c + "'");
      }
      if (contexts.back() < 1) throw Error("--context: expected lengths >= 1, got " + c);
    }

    if (use_cuda) {
#if QSDPA_HAVE_CUDA
      run_on_cuda(shape, contexts, pairs, binfo, o.min_seconds, o.json);
#endif
      return;
    }
    std::fprintf(stderr, "measuring peak streaming read bandwidth (1 GiB, %d threads)...\n", threads);
    const double peak = measure_read_gbps(threads);
    const size_t llc = last_level_cache_bytes();
    const BuildInfo info = build_info();
    fmt::print("qsdpa bench  device=cpu  threads={}  peak_gbps={:.1f} (streaming read)  commit={}\n", threads, peak, info.commit);
    fmt::print("B={} Hq={} Hkv={} D={} Lq={}\n", shape.batch, shape.hq, shape.hkv, shape.dim, shape.lq);
    fmt::print("{:>16} {:>8} {:>10} {:>8} {:>7} {:>10} {:>10} {:>8} {:>9} {:>9}\n", "format", "context", "time_us", "GB/s",
               "%peak", "f16_us", "unfused_us", "vs_f16", "vs_unfus", "append_us");
    nlohmann::json rows = nlohmann::json::array();
    const int total = int(contexts.size() * pairs.size());
    int done = 0;
    for (int64_t ctx : contexts) {
      shape.context = ctx;
      std::fprintf(stderr, "generating K/V for context %lld...\n", (long long)ctx);
      Workload w = make_bench_workload(shape, 1234 + uint64_t(ctx));
      std::vector<float> out(w.q.size());
      std::vector<float> kbuf(w.k.size()), vbuf(w.v.size());
      const std::vector<int64_t> kv_shape = {shape.batch, shape.hkv, shape.context, shape.dim};
      const int64_t qo_bytes = int64_t(w.q.size() + out.size()) * 4;

      // Rotating copies of one quantized pair, together larger than twice the last-level cache.
      auto build = [&](const Format& kf, const Format& vf, std::vector<QuantizedTensor>& ks, std::vector<QuantizedTensor>& vs) {
        ks.assign(1, quantize(w.k.data(), kv_shape, kf, {0.0f, threads}));
        vs.assign(1, quantize(w.v.data(), kv_shape, vf, {0.0f, threads}));
        const int64_t bytes = cache_bytes(ks[0]) + cache_bytes(vs[0]);
        const int copies = int(std::clamp<int64_t>((2 * int64_t(llc) + bytes - 1) / bytes, 1, 8));
        for (int c = 1; c < copies; ++c) {
          ks.push_back(ks[0]);
          vs.push_back(vs[0]);
        }
        return bytes;
      };
      auto run_fused = [&](std::vector<QuantizedTensor>& ks, std::vector<QuantizedTensor>& vs, int c) {
        AttentionArgs a = make_args(shape, ks[size_t(c)], vs[size_t(c)], w.q.data(), out.data());
        a.threads = threads;
        attention(a);
      };
      // The format and the f16 baseline are timed in alternation, so that both see the same machine
      // (shared machines drift by tens of percent over seconds); medians of each.
      auto time_with_f16 = [&](std::vector<QuantizedTensor>& ks, std::vector<QuantizedTensor>& vs,
                               std::vector<QuantizedTensor>& fk, std::vector<QuantizedTensor>& fv) {
        const int copies = int(ks.size()), fcopies = int(fk.size());
        for (int wu = 0; wu < 2; ++wu) {
          run_fused(ks, vs, wu % copies);
          run_fused(fk, fv, wu % fcopies);
        }
        std::vector<double> us, f16;
        const auto start = Clock::now();
        for (int r = 0; r < 1000 && (r < 5 || seconds_since(start) < 2 * o.min_seconds); ++r) {
          auto t0 = Clock::now();
          run_fused(ks, vs, r % copies);
          us.push_back(seconds_since(t0) * 1e6);
          t0 = Clock::now();
          run_fused(fk, fv, r % fcopies);
          f16.push_back(seconds_since(t0) * 1e6);
        }
        return std::make_pair(median(us), median(f16));
      };

      std::vector<QuantizedTensor> fk, fv, ks, vs;
      build(parse_format("f16"), parse_format("f16"), fk, fv);
      for (const auto& [kf, vf] : pairs) {
        ++done;
        const std::string name = kf == vf ? to_string(kf) : to_string(kf) + ":" + to_string(vf);
        std::fprintf(stderr, "[%d/%d] %s @ %lld\n", done, total, name.c_str(), (long long)ctx);
        const int64_t bytes = build(kf, vf, ks, vs) + qo_bytes;
        const auto [us, f16_us] = time_with_f16(ks, vs, fk, fv);
        const double unfused_us = time_median_us(1, 5, o.min_seconds, [&](int) {
          AttentionArgs a = make_args(shape, ks[0], vs[0], w.q.data(), out.data());
          a.threads = threads;
          attention_unfused(a, kbuf.data(), vbuf.data());
        });
        // Appending one token: quantize K and V rows [B, Hkv, 1, D].
        const std::vector<int64_t> tok_shape = {shape.batch, shape.hkv, 1, shape.dim};
        const double append_us = time_median_us(1, 20, 0.02, [&](int) {
          QuantizedTensor kt = quantize(w.k.data(), tok_shape, kf, {ks[0].tensor_scale, 1});
          QuantizedTensor vt = quantize(w.v.data(), tok_shape, vf, {vs[0].tensor_scale, 1});
        });
        const double gbps = double(bytes) / (us * 1e-6) / 1e9;
        fmt::print("{:>16} {:>8} {:>10.1f} {:>8.2f} {:>6.0f}% {:>10.1f} {:>10.1f} {:>7.2f}x {:>8.2f}x {:>9.1f}\n", name, ctx, us,
                   gbps, 100.0 * gbps / peak, f16_us, unfused_us, f16_us / us, unfused_us / us, append_us);
        std::fflush(stdout);
        rows.push_back({{"k_format", to_string(kf)}, {"v_format", to_string(vf)}, {"batch", shape.batch}, {"hq", shape.hq},
                        {"hkv", shape.hkv}, {"dim", shape.dim}, {"lq", shape.lq}, {"context", ctx}, {"time_us", us},
                        {"bytes", bytes}, {"gbps", gbps}, {"f16_time_us", f16_us}, {"unfused_time_us", unfused_us},
                        {"speedup_vs_f16", f16_us / us}, {"speedup_vs_unfused", unfused_us / us}, {"append_us", append_us}});
      }
    }
    if (!o.json.empty()) {
      nlohmann::json j = {{"device", "cpu"}, {"device_name", cpu_name()}, {"peak_gbps", peak}, {"peak_kind", "read"},
                          {"commit", info.commit}, {"date", iso_date_utc()}, {"threads", threads}, {"rows", rows}};
      npy::write_file_atomic(o.json, j.dump(2) + "\n");
    }
  });
}

#if QSDPA_HAVE_CUDA
namespace {

void run_on_cuda(const Shape& shape, const std::vector<int64_t>& contexts,
                 const std::vector<std::pair<Format, Format>>& pairs, const BuildInfo& info, double min_seconds,
                 const std::string& json) {
  const int reps = std::max(5, int(min_seconds * 200));
  const CudaBenchResult r = run_cuda_bench(shape, contexts, pairs, reps, true);
  fmt::print("qsdpa bench  device=cuda ({})  peak_gbps={:.0f} (device-to-device copy)  commit={}\n", r.device_name,
             r.peak_gbps, info.commit);
  fmt::print("B={} Hq={} Hkv={} D={} Lq={}  q/out f16\n", shape.batch, shape.hq, shape.hkv, shape.dim, shape.lq);
  fmt::print("{:>16} {:>8} {:>10} {:>8} {:>7} {:>10} {:>10} {:>8} {:>9} {:>10}\n", "format", "context", "time_us", "GB/s",
             "%peak", "f16_us", "unfused_us", "vs_f16", "vs_unfus", "append_us");
  nlohmann::json rows = nlohmann::json::array();
  auto or_null = [](double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x); };  // a failed measurement
  for (const auto& row : r.rows) {
    const std::string name = row.k == row.v ? to_string(row.k) : to_string(row.k) + ":" + to_string(row.v);
    const double gbps = double(row.bytes) / (row.time_us * 1e-6) / 1e9;
    fmt::print("{:>16} {:>8} {:>10.1f} {:>8.1f} {:>6.1f}% {:>10.1f} {:>10.1f} {:>7.2f}x {:>8.2f}x {:>10.1f}\n", name,
               row.context, row.time_us, gbps, 100.0 * gbps / r.peak_gbps, row.f16_time_us, row.unfused_time_us,
               row.f16_time_us / row.time_us, row.unfused_time_us / row.time_us, row.append_us);
    rows.push_back({{"k_format", to_string(row.k)}, {"v_format", to_string(row.v)}, {"batch", shape.batch},
                    {"hq", shape.hq}, {"hkv", shape.hkv}, {"dim", shape.dim}, {"lq", shape.lq}, {"context", row.context},
                    {"time_us", row.time_us}, {"bytes", row.bytes}, {"gbps", gbps}, {"f16_time_us", row.f16_time_us},
                    {"unfused_time_us", row.unfused_time_us}, {"speedup_vs_f16", row.f16_time_us / row.time_us},
                    {"speedup_vs_unfused", row.unfused_time_us / row.time_us},
                    {"append_us", or_null(row.append_us)},
                    {"eager_time_us", row.eager_us}, {"timing", row.gated ? "cuda-graph-gated" : "cuda-graph"}, {"kernel", row.kernel},
                    {"copies", row.copies}, {"batch_calls", row.batch_calls}, {"sm_clock_mhz", or_null(row.sm_clock_mhz)}});
  }
  if (!json.empty()) {
    nlohmann::json j = {{"device", "cuda"}, {"device_name", r.device_name}, {"peak_gbps", r.peak_gbps}, {"peak_kind", "copy"},
                        {"commit", info.commit}, {"date", iso_date_utc()}, {"threads", 0}, {"rows", rows}};
    npy::write_file_atomic(json, j.dump(2) + "\n");
  }
}

}  // namespace
#endif

}  // namespace qsdpa::tools
