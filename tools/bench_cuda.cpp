// `qsdpa bench --device cuda`: SPEC §5 on the GPU. Median of CUDA-event timings after warm-up,
// cache copies rotated so that together they exceed twice the L2, the copy peak (a 1 GiB
// device-to-device copy, bytes read + written) measured in the same process, and the baselines in the
// same run: the library's f16 path and the unfused path (dequantize into a preallocated f32 buffer,
// then the same attention).
#include "bench_cuda.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>

#include "cuda/check.cuh"
#include "cuda/device.hpp"
#include "formats/scalar.hpp"

namespace qsdpa::tools {
namespace {

struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(size_t bytes) { QSDPA_CUDA_CHECK(cudaMalloc(&ptr, std::max<size_t>(bytes, 16))); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T>
  T* as() const { return static_cast<T*>(ptr); }
};

// A quantized cache copied to the device, with a CacheView over it.
struct DeviceCache {
  std::unique_ptr<DeviceBuffer> codes, scales, biases, tensor_scale;
  CacheView view;
  explicit DeviceCache(const QuantizedTensor& q) : view(q.view()) {
    auto up = [](const void* src, size_t n) {
      auto b = std::make_unique<DeviceBuffer>(n);
      QSDPA_CUDA_CHECK(cudaMemcpy(b->ptr, src, n, cudaMemcpyHostToDevice));
      return b;
    };
    codes = up(q.codes.data(), q.codes.size());
    view.codes = codes->as<uint8_t>();
    if (!q.scales.empty()) {
      scales = up(q.scales.data(), q.scales.size());
      view.scales = scales->as<uint8_t>();
    }
    if (!q.biases.empty()) {
      biases = up(q.biases.data(), q.biases.size());
      view.biases = biases->as<uint8_t>();
    }
    if (view.tensor_scales) {
      tensor_scale = up(&q.tensor_scale, 4);
      view.tensor_scales = tensor_scale->as<float>();
    }
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median over `reps` of the time between two CUDA events recorded on `stream` around
// launch_batch(), divided by the `calls` the batch makes. With a gate, the GPU waits behind it until
// both events and the batch are enqueued (cuda::HostGate).
template <typename Fn>
double event_median_us(int calls, int reps, cudaStream_t stream, Fn launch_batch, cuda::HostGate* gate = nullptr) {
  cudaEvent_t start, stop;
  QSDPA_CUDA_CHECK(cudaEventCreate(&start));
  QSDPA_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> us;
  for (int r = 0; r < reps; ++r) {
    if (gate) gate->close(stream);
    QSDPA_CUDA_CHECK(cudaEventRecord(start, stream));
    launch_batch();
    QSDPA_CUDA_CHECK(cudaEventRecord(stop, stream));
    if (gate) gate->open();
    QSDPA_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    QSDPA_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    us.push_back(ms * 1e3 / calls);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return median(us);
}

// Median time in µs of one fn(copy): events around a batch of back-to-back calls, one per copy
// (so the GPU stays busy while the host enqueues the next call and host launch overhead is not
// counted as kernel time), divided by the batch size.
template <typename Fn>
double time_us(int copies, int reps, Fn fn) {
  for (int w = 0; w < 3; ++w) fn(w % copies);
  return event_median_us(copies, reps, nullptr, [&] {
    for (int c = 0; c < copies; ++c) fn(c);
  });
}

bool graph_gated() { return std::getenv("QSDPA_BENCH_NO_GATE") == nullptr; }

// How many calls a timed graph batch holds, and over how many copies it rotates (session 35): at
// least 8 calls (min_batch_calls) over at least 2 copies, so that the replay's own start on the GPU
// (a few us between the start event and the first kernel) is spread over the batch in every row.
// Until then a batch held one call per copy, and a row whose one copy was already larger than twice
// the L2 (f16 from 32K, every format at 128K at B=1, GQA 4) was timed one call a replay, while a
// 4-bit row at 32K shared the start among 3 calls. QSDPA_BENCH_MIN_BATCH=1 times the old way (an A/B
// switch); scripts/torch_sdpa.py batches PyTorch's calls by the same rule.
int min_batch_calls() {
  static const int calls = [] {
    const char* v = std::getenv("QSDPA_BENCH_MIN_BATCH");
    return v ? std::clamp(std::atoi(v), 1, 64) : 8;
  }();
  return calls;
}
int batch_calls(int copies) {
  const int calls = std::max(copies, min_batch_calls());
  return (calls + copies - 1) / copies * copies;  // every copy as often
}

// The same measurement with the batch captured once in a CUDA graph and replayed: the GPU's own time
// per call, without the host's per-call work (validation, two kernel launches), which is longer
// than the kernels at N <= 4K, and behind a HostGate, without the graph launch's own host time.
// scripts/torch_sdpa.py times PyTorch the same way. fn(copy, stream); the batch's calls cycle over
// the copies (batch_calls). QSDPA_BENCH_NO_GATE=1 times without the gate (an A/B switch: how much
// host time the events had counted).
template <typename Fn>
double graph_time_us(int copies, int reps, Fn fn) {
  const int calls = batch_calls(copies);
  cudaStream_t stream;
  QSDPA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  for (int w = 0; w < 3; ++w) fn(w % copies, stream);
  QSDPA_CUDA_CHECK(cudaStreamSynchronize(stream));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  QSDPA_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int c = 0; c < calls; ++c) fn(c % copies, stream);
  QSDPA_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  QSDPA_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  QSDPA_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  cuda::HostGate gate;
  const double us = event_median_us(
      calls, reps, stream, [&] { QSDPA_CUDA_CHECK(cudaGraphLaunch(exec, stream)); }, graph_gated() ? &gate : nullptr);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  return us;
}

double copy_peak_gbps() {
  const size_t bytes = size_t(1) << 30;
  DeviceBuffer a(bytes), b(bytes);
  QSDPA_CUDA_CHECK(cudaMemset(a.ptr, 1, bytes));
  const double us = time_us(1, 5, [&](int) { QSDPA_CUDA_CHECK(cudaMemcpyAsync(b.ptr, a.ptr, bytes, cudaMemcpyDeviceToDevice)); });
  return 2.0 * double(bytes) / (us * 1e-6) / 1e9;
}

}  // namespace

CudaBenchResult run_cuda_bench(const Shape& base, const std::vector<int64_t>& contexts,
                               const std::vector<std::pair<Format, Format>>& pairs, int reps, bool verbose) {
  if (cuda::device_count() == 0) throw Error("--device: cuda requested, but no CUDA device is visible");
  CudaBenchResult res;
  cudaDeviceProp prop{};
  QSDPA_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  res.device_name = prop.name;
  const int64_t l2 = prop.l2CacheSize > 0 ? prop.l2CacheSize : (50 << 20);
  res.peak_gbps = copy_peak_gbps();
  Shape s = base;
  for (int64_t ctx : contexts) {
    s.context = ctx;
    Workload w = make_bench_workload(s, 1234 + uint64_t(ctx));
    // q and out in f16 on the device (the dtype decode engines feed attention).
    std::vector<uint16_t> q16(w.q.size());
    for (size_t i = 0; i < q16.size(); ++i) q16[i] = fmt::f32_to_f16(w.q[i]);
    DeviceBuffer q(q16.size() * 2), out(q16.size() * 2);
    QSDPA_CUDA_CHECK(cudaMemcpy(q.ptr, q16.data(), q16.size() * 2, cudaMemcpyHostToDevice));
    const std::vector<int64_t> kv_shape = {s.batch, s.hkv, s.context, s.dim};
    const size_t rows = size_t(s.batch * s.hkv * s.context);
    DeviceBuffer kbuf(rows * size_t(s.dim) * 4), vbuf(rows * size_t(s.dim) * 4);
    const int64_t qo_bytes = int64_t(q16.size()) * 4;

    auto args_for = [&](const CacheView& k, const CacheView& v) {
      AttentionArgs a;
      a.q = contiguous_view(q.ptr, DType::f16, s.batch, s.hq, s.lq, s.dim);
      a.out = contiguous_view(out.ptr, DType::f16, s.batch, s.hq, s.lq, s.dim);
      a.k = k;
      a.v = v;
      a.scale = 1.0f / std::sqrt(float(s.dim));
      a.device = Device::cuda;
      return a;
    };
    // Rotating copies of one pair, together larger than twice the L2 (SPEC §5: no run reads from L2).
    constexpr int64_t kMaxCopies = 256;
    auto upload = [&](const Format& kf, const Format& vf, std::vector<std::unique_ptr<DeviceCache>>& ks,
                      std::vector<std::unique_ptr<DeviceCache>>& vs) {
      const QuantizedTensor kq = quantize(w.k.data(), kv_shape, kf), vq = quantize(w.v.data(), kv_shape, vf);
      const int64_t bytes = int64_t(kq.codes.size() + kq.scales.size() + kq.biases.size() + vq.codes.size() +
                                    vq.scales.size() + vq.biases.size());
      // At most 256 copies: enough for twice the L2 (50 MB on the H100) down to 0.4 MB a pair. Until
      // session 18 the cap was 16, so at 1K-2K the 4-bit caches' copies (18-35 MB) fitted in the L2.
      // At least 2 (batch_calls): consecutive calls of a batch never read the same copy.
      const int copies =
          int(std::clamp<int64_t>((2 * l2 + bytes - 1) / bytes, min_batch_calls() > 1 ? 2 : 1, kMaxCopies));
      ks.clear();
      vs.clear();
      for (int c = 0; c < copies; ++c) {
        ks.push_back(std::make_unique<DeviceCache>(kq));
        vs.push_back(std::make_unique<DeviceCache>(vq));
      }
      return bytes;
    };
    // Attention timed in a CUDA graph (the call takes the caller's workspace, so it is capturable),
    // and eagerly (host work included) for the record.
    auto timed = [&](const std::vector<std::unique_ptr<DeviceCache>>& kc,
                     const std::vector<std::unique_ptr<DeviceCache>>& vc, double* eager_us) {
      const size_t ws_bytes = attention_workspace_bytes(args_for(kc[0]->view, vc[0]->view));  // same for every copy
      DeviceBuffer ws(std::max<size_t>(ws_bytes, 16));
      auto call = [&](int c, cudaStream_t stream) {
        AttentionArgs a = args_for(kc[size_t(c)]->view, vc[size_t(c)]->view);
        a.workspace = ws.ptr;
        a.workspace_bytes = ws_bytes;
        a.stream = stream;
        attention(a);
      };
      *eager_us = time_us(int(kc.size()), reps, [&](int c) { call(c, nullptr); });
      return graph_time_us(int(kc.size()), reps, call);
    };
    std::vector<std::unique_ptr<DeviceCache>> fk, fv, ks, vs;
    upload(parse_format("f16"), parse_format("f16"), fk, fv);
    double f16_eager_us = 0;
    const double f16_us = timed(fk, fv, &f16_eager_us);
    for (const auto& [kf, vf] : pairs) {
      const int64_t bytes = upload(kf, vf, ks, vs) + qo_bytes;
      double eager_us = 0;
      const double us = timed(ks, vs, &eager_us);
      // The clock the call just ran at (a latency-bound short call's time follows it; session 19
      // found 2K calls ~4% apart between bench processes). NaN if the probe fails.
      double clock_mhz = std::nan("");
      try {
        clock_mhz = cuda::sm_clock_mhz();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "  SM clock probe failed: %s\n", e.what());
      }
      const double unfused_us = time_us(int(ks.size()), std::max(3, reps / 4), [&](int c) {
        cuda::dequantize(ks[size_t(c)]->view, kbuf.as<float>(), nullptr);
        cuda::dequantize(vs[size_t(c)]->view, vbuf.as<float>(), nullptr);
        auto as_f32 = [&](const CacheView& src, float* buf) {
          CacheView v = src;
          v.format = parse_format("f32");
          v.codes = reinterpret_cast<const uint8_t*>(buf);
          v.scales = v.biases = nullptr;
          v.tensor_scales = nullptr;
          v.tensor_scale_count = 0;
          v.code_strides[2] = s.dim * 4;
          v.code_strides[1] = s.dim * 4 * s.context;
          v.code_strides[0] = s.dim * 4 * s.context * s.hkv;
          return v;
        };
        attention(args_for(as_f32(ks[size_t(c)]->view, kbuf.as<float>()), as_f32(vs[size_t(c)]->view, vbuf.as<float>())));
      });
      // Appending one token of K and V per sequence (the decode step's cache write), one launch.
      double append_us = std::nan("");
      try {
        const size_t n_new = size_t(s.batch * s.hkv * s.dim);
        std::vector<uint16_t> new16(n_new);
        for (size_t i = 0; i < n_new; ++i) new16[i] = fmt::f32_to_f16(w.k[i]);
        const std::vector<int64_t> last(size_t(s.batch), s.context - 1);
        DeviceBuffer knew(n_new * 2), pos(last.size() * 8);
        QSDPA_CUDA_CHECK(cudaMemcpy(knew.ptr, new16.data(), n_new * 2, cudaMemcpyHostToDevice));
        QSDPA_CUDA_CHECK(cudaMemcpy(pos.ptr, last.data(), last.size() * 8, cudaMemcpyHostToDevice));
        AppendArgs ap;
        ap.k_new = ap.v_new = contiguous_view(knew.ptr, DType::f16, s.batch, s.hkv, 1, s.dim);
        ap.positions = pos.as<int64_t>();
        ap.device = Device::cuda;
        append_us = time_us(int(ks.size()), reps, [&](int c) {
          ap.k = ks[size_t(c)]->view;
          ap.v = vs[size_t(c)]->view;
          append(ap);
        });
      } catch (const Error& e) {
        std::fprintf(stderr, "  append %s:%s failed: %s\n", to_string(kf).c_str(), to_string(vf).c_str(), e.what());
      }
      CudaBenchRow r{kf, vf, ctx, us, bytes, f16_us, unfused_us, cuda::kernel_name(args_for(ks[0]->view, vs[0]->view)),
                     append_us, eager_us, int(ks.size()), batch_calls(int(ks.size())), clock_mhz, graph_gated()};
      res.rows.push_back(r);
      if (verbose)
        std::fprintf(stderr, "  %s:%s @ %lld: %.1f us (f16 %.1f, unfused %.1f; %s kernel)\n", to_string(kf).c_str(),
                     to_string(vf).c_str(), (long long)ctx, us, f16_us, unfused_us, r.kernel.c_str());
    }
  }
  return res;
}

}  // namespace qsdpa::tools
