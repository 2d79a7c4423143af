#include "workloads.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>

namespace qsdpa::tools {

namespace {

void fill_gaussian_chunks(std::vector<float>& x, uint64_t seed, uint64_t tensor) {
  constexpr int64_t kChunk = int64_t(1) << 20;
  const int64_t n = int64_t(x.size()), chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    std::seed_seq seq{uint32_t(seed), uint32_t(seed >> 32), uint32_t(tensor), uint32_t(c), uint32_t(uint64_t(c) >> 32)};
    std::mt19937_64 rng(seq);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; ++i) x[size_t(i)] = normal(rng);
  }
}

}  // namespace

Workload make_bench_workload(const Shape& s, uint64_t seed) {
  Workload w;
  w.q.resize(size_t(s.batch * s.hq * s.lq * s.dim));
  w.k.resize(size_t(s.batch * s.hkv * s.context * s.dim));
  w.v.resize(w.k.size());
  fill_gaussian_chunks(w.q, seed, 0);
  fill_gaussian_chunks(w.k, seed, 1);
  fill_gaussian_chunks(w.v, seed, 2);
  return w;
}

Workload make_workload(const Shape& s, const std::string& data, uint64_t seed) {
  if (data != "gaussian" && data != "llm") throw Error("data: expected gaussian or llm, got '" + data + "'");
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Workload w;
  const int64_t D = s.dim;
  w.q.resize(size_t(s.batch * s.hq * s.lq * D));
  w.k.resize(size_t(s.batch * s.hkv * s.context * D));
  w.v.resize(w.k.size());
  for (float& x : w.q) x = normal(rng);
  for (float& x : w.v) x = normal(rng);
  if (data == "gaussian") {
    for (float& x : w.k) x = normal(rng);
    return w;
  }
  // llm: per-channel magnitudes with a few outlier channels (x10..x20), a per-channel offset, RoPE
  // on pairs (2i, 2i+1) at each position, and token 0 as an attention sink aligned with the queries.
  std::vector<float> chan_scale(size_t(D), 1.0f), chan_offset(static_cast<size_t>(D));
  for (int64_t d = 0; d < D; ++d) chan_offset[size_t(d)] = 0.5f * normal(rng);
  for (int o = 0; o < 4; ++o) chan_scale[size_t((o * 37 + 5) % D)] = 10.0f + 2.5f * float(o);
  std::vector<float> q_mean(size_t(D), 0.0f);
  for (size_t i = 0; i < w.q.size(); ++i) q_mean[i % size_t(D)] += w.q[i];
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.hkv; ++h)
      for (int64_t n = 0; n < s.context; ++n) {
        float* row = &w.k[size_t(((b * s.hkv + h) * s.context + n) * D)];
        for (int64_t d = 0; d < D; ++d) row[d] = normal(rng) * chan_scale[size_t(d)] + chan_offset[size_t(d)];
        if (n == 0) {
          float norm = 0.0f;
          for (float m : q_mean) norm += m * m;
          norm = std::sqrt(norm) + 1e-6f;
          for (int64_t d = 0; d < D; ++d) row[d] = 8.0f * std::sqrt(float(D)) * q_mean[size_t(d)] / norm;
        }
        for (int64_t i = 0; i + 1 < D; i += 2) {
          const double theta = double(n) * std::pow(10000.0, -double(i) / double(D));
          const float c = float(std::cos(theta)), sn = float(std::sin(theta));
          const float x0 = row[i], x1 = row[i + 1];
          row[i] = x0 * c - x1 * sn;
          row[i + 1] = x0 * sn + x1 * c;
        }
      }
  return w;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::pair<Format, Format> parse_pair(const std::string& item) {
  const size_t colon = item.find(':');
  if (colon == std::string::npos) {
    const Format f = parse_format(item);
    return {f, f};
  }
  return {parse_format(item.substr(0, colon)), parse_format(item.substr(colon + 1))};
}

std::string cpu_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "unknown cpu";
}

AttentionArgs make_args(const Shape& s, const QuantizedTensor& k, const QuantizedTensor& v, float* q, float* out) {
  AttentionArgs a;
  a.q = contiguous_view(q, DType::f32, s.batch, s.hq, s.lq, s.dim);
  a.out = contiguous_view(out, DType::f32, s.batch, s.hq, s.lq, s.dim);
  a.k = k.view();
  a.v = v.view();
  a.scale = 1.0f / std::sqrt(float(s.dim));
  return a;
}

}  // namespace qsdpa::tools
