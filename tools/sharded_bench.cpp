// qsdpa_sharded_bench: the launcher and benchmark of sequence-parallel attention (issue 4).
// For each GPU count it forks one process per GPU (before any CUDA call; rank 0 hands the NCCL id to
// the others through pipes), splits every sequence's cache into contiguous slices, and times one
// layer's decode attention (B=1, Hq=32, Hkv=8, D=128, Lq=1) per format: strong scaling (fixed total
// context) and weak scaling (fixed tokens per GPU). With --check it first compares sharded attention
// with one-GPU attention over the same cache. NVLink multicast stays off (NCCL_NVLS_ENABLE=0).
//
//   qsdpa_sharded_bench --gpus 1,2,4,8 --formats f16,mxfp8,affine4 --strong 262144,1048576
//     --weak 262144 --check --json sharded.json     (one line)
//
// Cache contents: one quantized block of 4096 random tokens repeated along the slice (timing does
// not depend on the values; --check uses fully random data).
#include <cuda_runtime.h>
#include <nccl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cuda/check.cuh"
#include "formats/scalar.hpp"
#include "npy.hpp"
#include "qsdpa/qsdpa.hpp"
#include "qsdpa/sharded.hpp"
#include "workloads.hpp"

namespace qsdpa::tools {
namespace {

struct Options {
  std::vector<int> gpus = {1, 2};
  std::string formats = "f16,mxfp8,affine4";
  std::vector<int64_t> strong = {262144, 1048576};
  int64_t weak = 262144;
  bool check = false;
  int reps = 20;
  std::string json;
};

void nccl_check(ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw CudaError(what, ncclGetErrorString(r));
}

// A quantized cache slice on this GPU: [1, Hkv, tokens, ...], contiguous.
struct DeviceSlice {
  void *codes = nullptr, *scales = nullptr, *biases = nullptr, *tensor_scale = nullptr;
  CacheView view;
  ~DeviceSlice() {
    for (void* p : {codes, scales, biases, tensor_scale}) cudaFree(p);
  }
};

// Fills `tokens` rows per head by repeating the rows of `block` ([1, Hkv, T, D], contiguous).
void upload_tiled(const QuantizedTensor& block, int64_t tokens, DeviceSlice& out) {
  const CacheView bv = block.view();
  const int64_t H = bv.heads, T = bv.tokens;
  auto tile = [&](const std::vector<uint8_t>& src, int64_t row_bytes, void** dst, const uint8_t** view_ptr,
                  int64_t* strides) {
    if (src.empty()) return;
    QSDPA_CUDA_CHECK(cudaMalloc(dst, size_t(H * tokens * row_bytes)));
    auto* d = static_cast<uint8_t*>(*dst);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t0 = 0; t0 < tokens; t0 += T) {
        const int64_t n = std::min(T, tokens - t0);
        QSDPA_CUDA_CHECK(cudaMemcpy(d + (h * tokens + t0) * row_bytes, src.data() + h * T * row_bytes,
                                    size_t(n * row_bytes), cudaMemcpyHostToDevice));
      }
    *view_ptr = d;
    strides[2] = row_bytes;
    strides[1] = tokens * row_bytes;
    strides[0] = H * tokens * row_bytes;
  };
  out.view = bv;
  out.view.tokens = tokens;
  tile(block.codes, bv.code_strides[2], &out.codes, &out.view.codes, out.view.code_strides);
  tile(block.scales, bv.scale_strides[2], &out.scales, &out.view.scales, out.view.scale_strides);
  tile(block.biases, bv.bias_strides[2], &out.biases, &out.view.biases, out.view.bias_strides);
  if (bv.tensor_scales) {
    QSDPA_CUDA_CHECK(cudaMalloc(&out.tensor_scale, sizeof(float) * size_t(bv.tensor_scale_count)));
    QSDPA_CUDA_CHECK(cudaMemcpy(out.tensor_scale, bv.tensor_scales, sizeof(float) * size_t(bv.tensor_scale_count),
                                cudaMemcpyHostToDevice));
    out.view.tensor_scales = static_cast<const float*>(out.tensor_scale);
  }
}

// One rank: every (format, context) configuration of this GPU count; rank 0 appends result lines.
void run_rank(const Options& o, int world, int rank, int id_read_fd, const std::vector<int>& id_write_fds,
              const std::string& lines_path) {
  setenv("NCCL_NVLS_ENABLE", "0", 1);
  QSDPA_CUDA_CHECK(cudaSetDevice(rank));
  ncclUniqueId id;
  if (rank == 0) {
    nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    for (int fd : id_write_fds)
      if (write(fd, &id, sizeof id) != ssize_t(sizeof id)) throw Error("sharded_bench: cannot pass the NCCL id");
  } else if (read(id_read_fd, &id, sizeof id) != ssize_t(sizeof id)) {
    throw Error("sharded_bench: cannot read the NCCL id");
  }
  ncclComm_t comm;
  nccl_check(ncclCommInitRank(&comm, world, id, rank), "ncclCommInitRank");
  cudaStream_t stream;
  QSDPA_CUDA_CHECK(cudaStreamCreate(&stream));
  const ShardComm sc{comm, rank, world};

  Shape s;  // B=1, Hq=32, Hkv=8, D=128, Lq=1
  s.context = 4096;
  const Workload w = make_workload(s, "gaussian", 77);
  std::vector<uint16_t> q16(w.q.size());
  for (size_t i = 0; i < q16.size(); ++i) q16[i] = fmt::f32_to_f16(w.q[i]);
  void *q = nullptr, *out = nullptr, *ws = nullptr;
  QSDPA_CUDA_CHECK(cudaMalloc(&q, q16.size() * 2));
  QSDPA_CUDA_CHECK(cudaMalloc(&out, q16.size() * 2));
  QSDPA_CUDA_CHECK(cudaMemcpy(q, q16.data(), q16.size() * 2, cudaMemcpyHostToDevice));
  std::ofstream lines;
  if (rank == 0) lines.open(lines_path, std::ios::app);

  if (o.check) {
    // Whole random cache on every rank; each attends over its slice (a view into it); rank 0 also
    // attends over the whole on its GPU and compares (SPEC §2's relative-L2 bound, f16 output).
    Shape cs = s;
    cs.context = 16384;
    const Workload cw = make_workload(cs, "llm", 99);
    for (const std::string& name : split_list(o.formats)) {
      const Format f = parse_format(name);
      const QuantizedTensor kq = quantize(cw.k.data(), {1, cs.hkv, cs.context, cs.dim}, f);
      const QuantizedTensor vq = quantize(cw.v.data(), {1, cs.hkv, cs.context, cs.dim}, f);
      DeviceSlice k, v;
      upload_tiled(kq, cs.context, k);
      upload_tiled(vq, cs.context, v);
      const int64_t lo = cs.context * rank / world, hi = cs.context * (rank + 1) / world;
      AttentionArgs a;
      a.q = contiguous_view(q, DType::f16, 1, cs.hq, 1, cs.dim);
      a.out = contiguous_view(out, DType::f16, 1, cs.hq, 1, cs.dim);
      a.scale = 1.0f / std::sqrt(float(cs.dim));
      a.device = Device::cuda;
      a.stream = stream;
      std::vector<float> sinks_host(size_t(cs.hq), 0.5f);
      float* sinks = nullptr;
      QSDPA_CUDA_CHECK(cudaMalloc(&sinks, sinks_host.size() * 4));
      QSDPA_CUDA_CHECK(cudaMemcpy(sinks, sinks_host.data(), sinks_host.size() * 4, cudaMemcpyHostToDevice));
      a.sinks = sinks;
      a.k = k.view;
      a.v = v.view;
      auto slice = [&](CacheView c) {
        c.codes += lo * c.code_strides[2];
        if (c.scales) c.scales += lo * c.scale_strides[2];
        if (c.biases) c.biases += lo * c.bias_strides[2];
        c.tokens = hi - lo;
        return c;
      };
      AttentionArgs local = a;
      local.k = slice(a.k);
      local.v = slice(a.v);
      cudaFree(ws);
      QSDPA_CUDA_CHECK(cudaMalloc(&ws, sharded_workspace_bytes(local, world)));
      sharded_attention(local, sc, ws);
      QSDPA_CUDA_CHECK(cudaStreamSynchronize(stream));
      std::vector<uint16_t> got(q16.size()), ref(q16.size());
      QSDPA_CUDA_CHECK(cudaMemcpy(got.data(), out, got.size() * 2, cudaMemcpyDeviceToHost));
      if (rank == 0) {
        attention(a);
        QSDPA_CUDA_CHECK(cudaStreamSynchronize(stream));
        QSDPA_CUDA_CHECK(cudaMemcpy(ref.data(), out, ref.size() * 2, cudaMemcpyDeviceToHost));
        double num = 0, den = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          const double g = fmt::f16_to_f32(got[i]), r = fmt::f16_to_f32(ref[i]);
          num += (g - r) * (g - r);
          den += r * r;
        }
        const double rel = std::sqrt(num / std::max(den, 1e-30));
        const bool pass = rel <= 2 * 4.9e-4;
        std::fprintf(stderr, "  check %d GPU(s) %s: relative L2 difference to one-GPU attention %.2e (%s)\n", world,
                     to_string(f).c_str(), rel, pass ? "ok" : "FAILED");
        if (lines.is_open())
          lines << nlohmann::json({{"format", to_string(f)}, {"scaling", "check"}, {"gpus", world},
                                   {"context", cs.context}, {"rel_l2_vs_one_gpu", rel}, {"pass", pass}})
                       .dump()
                << "\n";
        if (!pass) throw Error("sharded attention differs from one-GPU attention");
      }
      cudaFree(sinks);
    }
  }

  struct Config {
    std::string kind;
    int64_t total;
  };
  std::vector<Config> configs;
  for (int64_t n : o.strong) configs.push_back({"strong", n});
  if (o.weak > 0) configs.push_back({"weak", o.weak * world});
  for (const std::string& name : split_list(o.formats)) {
    const Format f = parse_format(name);
    const QuantizedTensor kb = quantize(w.k.data(), {1, s.hkv, s.context, s.dim}, f);
    const QuantizedTensor vb = quantize(w.v.data(), {1, s.hkv, s.context, s.dim}, f);
    for (const Config& c : configs) {
      const int64_t lo = c.total * rank / world, hi = c.total * (rank + 1) / world;
      DeviceSlice k, v;
      upload_tiled(kb, hi - lo, k);
      upload_tiled(vb, hi - lo, v);
      AttentionArgs a;
      a.q = contiguous_view(q, DType::f16, 1, s.hq, 1, s.dim);
      a.out = contiguous_view(out, DType::f16, 1, s.hq, 1, s.dim);
      a.k = k.view;
      a.v = v.view;
      a.scale = 1.0f / std::sqrt(float(s.dim));
      a.device = Device::cuda;
      a.stream = stream;
      cudaFree(ws);
      QSDPA_CUDA_CHECK(cudaMalloc(&ws, sharded_workspace_bytes(a, world)));
      cudaEvent_t e0, e1;
      QSDPA_CUDA_CHECK(cudaEventCreate(&e0));
      QSDPA_CUDA_CHECK(cudaEventCreate(&e1));
      std::vector<double> us;
      for (int r = 0; r < o.reps + 3; ++r) {
        QSDPA_CUDA_CHECK(cudaEventRecord(e0, stream));
        sharded_attention(a, sc, ws);
        QSDPA_CUDA_CHECK(cudaEventRecord(e1, stream));
        QSDPA_CUDA_CHECK(cudaEventSynchronize(e1));
        float ms = 0;
        QSDPA_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        if (r >= 3) us.push_back(ms * 1e3);
      }
      std::sort(us.begin(), us.end());
      if (rank == 0) {
        const nlohmann::json row = {{"format", to_string(f)}, {"scaling", c.kind}, {"gpus", world},
                                    {"context", c.total}, {"tokens_per_gpu", hi - lo}, {"time_us", us[us.size() / 2]},
                                    {"batch", 1}, {"hq", s.hq}, {"hkv", s.hkv}, {"dim", s.dim}, {"lq", 1}};
        lines << row.dump() << "\n";
        std::fprintf(stderr, "  %d GPU(s) %s %s N=%lld: %.1f us\n", world, c.kind.c_str(), to_string(f).c_str(),
                     (long long)c.total, us[us.size() / 2]);
      }
    }
  }
  cudaFree(ws);
  cudaFree(q);
  cudaFree(out);
  ncclCommDestroy(comm);
}

int visible_gpus() {
  int n = 0;
  while (access(("/dev/nvidia" + std::to_string(n)).c_str(), F_OK) == 0) ++n;
  return n;
}

}  // namespace
}  // namespace qsdpa::tools

int main(int argc, char** argv) {
  using namespace qsdpa::tools;
  Options o;
  CLI::App app{"qsdpa sequence-parallel attention benchmark (one process per GPU, NCCL)"};
  app.add_option("--gpus", o.gpus, "GPU counts to run (comma-separated)")->delimiter(',');
  app.add_option("--formats", o.formats, "comma-separated formats");
  app.add_option("--strong", o.strong, "total contexts for strong scaling (comma-separated)")->delimiter(',');
  app.add_option("--weak", o.weak, "tokens per GPU for weak scaling (0 = none)");
  app.add_option("--reps", o.reps, "timed repetitions");
  app.add_flag("--check", o.check, "compare sharded with one-GPU attention first (random 16K-token cache)");
  app.add_option("--json", o.json, "write the results here");
  CLI11_PARSE(app, argc, argv);
  const int have = visible_gpus();
  const std::string lines_path = (o.json.empty() ? std::string("sharded") : o.json) + ".lines.tmp";
  std::remove(lines_path.c_str());
  for (int world : o.gpus) {
    if (world < 1 || world > have) {
      std::fprintf(stderr, "skipping %d GPU(s): %d visible\n", world, have);
      continue;
    }
    std::vector<int> fds(2 * size_t(world), -1);
    for (int r = 1; r < world; ++r)
      if (pipe(&fds[2 * size_t(r)]) != 0) return 1;
    std::vector<pid_t> kids;
    for (int r = 0; r < world; ++r) {
      const pid_t pid = fork();
      if (pid == 0) {
        // Keep only this rank's pipe ends, so that a rank 0 that dies early closes every writer and
        // the others' reads fail instead of waiting forever.
        std::vector<int> writers;
        for (int k = 1; k < world; ++k) {
          const int rd = fds[2 * size_t(k)], wr = fds[2 * size_t(k) + 1];
          if (k != r) close(rd);
          if (r == 0) writers.push_back(wr);
          else close(wr);
        }
        try {
          run_rank(o, world, r, r == 0 ? -1 : fds[2 * size_t(r)], writers, lines_path);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "rank %d: %s\n", r, e.what());
          _exit(1);
        }
        _exit(0);
      }
      kids.push_back(pid);
    }
    for (int& fd : fds)
      if (fd >= 0) close(fd), fd = -1;
    bool ok = true;
    for (pid_t pid : kids) {
      int status = 0;
      waitpid(pid, &status, 0);
      ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    if (!ok) {
      std::fprintf(stderr, "qsdpa_sharded_bench: a rank failed with %d GPU(s)\n", world);
      return 1;
    }
  }
  // Efficiencies against the 1-GPU rows (check rows carry none) of the same format and total (strong) or per-GPU tokens (weak).
  std::vector<nlohmann::json> rows;
  std::ifstream in(lines_path);
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  for (auto& r : rows) {
    if (r["scaling"] == "check") continue;
    for (const auto& base : rows)
      if (base["gpus"] == 1 && base["format"] == r["format"] && base["scaling"] == r["scaling"] &&
          (r["scaling"] == "weak" ? base["tokens_per_gpu"] == r["tokens_per_gpu"] : base["context"] == r["context"])) {
        const double t1 = base["time_us"], tn = r["time_us"];
        const int n = r["gpus"];
        r["efficiency"] = r["scaling"] == "weak" ? t1 / tn : t1 / (n * tn);
      }
  }
  std::remove(lines_path.c_str());
  const nlohmann::json doc = {{"benchmark", "sharded decode attention"}, {"rows", rows}};
  if (!o.json.empty()) qsdpa::npy::write_file_atomic(o.json, doc.dump(2) + "\n");
  else std::printf("%s\n", doc.dump(2).c_str());
  return 0;
}
