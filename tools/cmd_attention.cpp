// `qsdpa attention`: K and V come unquantized, are quantized exactly as `quantize` would with its
// defaults, then the fused attention runs.
#include <cmath>
#include <cstring>

#include "commands.hpp"
#include "npy.hpp"
#include "qsdpa/qsdpa.hpp"
#if QSDPA_HAVE_CUDA
#include "cuda/device.hpp"
#include "device_args.hpp"
#endif

namespace qsdpa::tools {
namespace {

std::vector<int64_t> require_rank4(const npy::Array& a, const std::string& what) {
  if (a.shape.size() != 4)
    throw Error(what + ": expected a rank-4 array, got rank " + std::to_string(a.shape.size()));
  return a.shape;
}

}  // namespace

void register_attention(CLI::App& app) {
  auto* cmd = app.add_subcommand("attention", "Quantize K and V, then run fused attention");
  static std::string q_path, k_path, v_path, k_format = "affine4", v_format, scale_dtype = "f16", mask, kv_lens_path,
                     sinks_path, lse_path, device, out_path;
  static float scale = NAN;
  static uint64_t seed = 0;
  static int64_t window = 0;
  static int threads = 0;
  cmd->add_option("--q", q_path, "queries [B, Hq, Lq, D] (float32/float16)")->required();
  cmd->add_option("--k", k_path, "keys [B, Hkv, N, D]")->required();
  cmd->add_option("--v", v_path, "values [B, Hkv, N, D]")->required();
  cmd->add_option("--k-format", k_format, "key format (default affine4)");
  cmd->add_option("--v-format", v_format, "value format (default: the key format)");
  cmd->add_option("--scale", scale, "softmax scale (default 1/sqrt(D))");
  cmd->add_option("--scale-dtype", scale_dtype, "affine scale dtype");
  cmd->add_option("--seed", seed, "turbo seed");
  cmd->add_option("--mask", mask, "causal, or a .npy bool/float mask broadcastable to [B, Hq, Lq, N]");
  cmd->add_option("--window", window, "sliding window (keys, including the row's own)");
  cmd->add_option("--kv-lens", kv_lens_path, ".npy int32/int64 [B] valid lengths");
  cmd->add_option("--sinks", sinks_path, ".npy float32 [Hq] sink logits");
  cmd->add_option("--lse", lse_path, "write the log-sum-exp [B, Hq, Lq] here");
  cmd->add_option("--device", device, "cpu (default) or cuda");
  cmd->add_option("--threads", threads, "CPU threads (0 = all)");
  cmd->add_option("--out", out_path, "output .npy [B, Hq, Lq, D] in q's dtype")->required();
  cmd->callback([] {
    Format kf = parse_format(k_format), vf = parse_format(v_format.empty() ? k_format : v_format);
    kf.scale_dtype = vf.scale_dtype = parse_scale_dtype(scale_dtype);
    kf.seed = vf.seed = seed;
    const npy::Array qa = npy::load(q_path), ka = npy::load(k_path), va = npy::load(v_path);
    require_rank4(qa, "--q " + q_path);
    require_rank4(ka, "--k " + k_path);
    require_rank4(va, "--v " + v_path);
    if (ka.shape != va.shape) throw Error("--v: expected the shape of --k, got a different shape");
    const std::vector<float> kx = npy::to_f32(ka, "--k"), vx = npy::to_f32(va, "--v");
    const QuantizedTensor kq = quantize(kx.data(), ka.shape, kf), vq = quantize(vx.data(), va.shape, vf);

    AttentionArgs a;
    if (qa.descr != "<f4" && qa.descr != "<f2") throw Error("--q: expected float32 or float16, got " + qa.descr);
    const DType qt = qa.descr == "<f4" ? DType::f32 : DType::f16;
    std::vector<uint8_t> qbytes = qa.data, obytes(qa.data.size());
    a.q = contiguous_view(qbytes.data(), qt, qa.shape[0], qa.shape[1], qa.shape[2], qa.shape[3]);
    a.out = contiguous_view(obytes.data(), qt, qa.shape[0], qa.shape[1], qa.shape[2], qa.shape[3]);
    a.k = kq.view();
    a.v = vq.view();
    a.scale = std::isnan(scale) ? 1.0f / std::sqrt(float(qa.shape[3])) : scale;
    a.window = window;
    a.threads = threads;
    if (!device.empty() && device != "cpu" && device != "cuda")
      throw Error("--device: expected cpu or cuda, got '" + device + "'");

    npy::Array ma;
    if (mask == "causal") {
      a.causal = true;
    } else if (!mask.empty()) {
      ma = npy::load(mask);
      if (ma.shape.empty() || ma.shape.size() > 4) throw Error("--mask: expected rank 1 to 4, got rank " + std::to_string(ma.shape.size()));
      std::vector<int64_t> shape(4 - ma.shape.size(), 1);
      shape.insert(shape.end(), ma.shape.begin(), ma.shape.end());
      DType mt;
      if (ma.descr == "|b1" || ma.descr == "|u1") mt = DType::boolean;
      else if (ma.descr == "<f4") mt = DType::f32;
      else if (ma.descr == "<f2") mt = DType::f16;
      else throw Error("--mask: expected bool or float32/float16, got " + ma.descr);
      a.mask = contiguous_view(ma.data.data(), mt, shape[0], shape[1], shape[2], shape[3]);
      for (int i = 0; i < 4; ++i)
        if (a.mask.shape[i] == 1) a.mask.strides[i] = 0;
    }
    std::vector<int64_t> kv_lens;
    if (!kv_lens_path.empty()) {
      const npy::Array l = npy::load(kv_lens_path);
      if (l.shape.size() != 1 || l.shape[0] != qa.shape[0] || (l.descr != "<i8" && l.descr != "<i4"))
        throw Error("--kv-lens: expected int32/int64 [B=" + std::to_string(qa.shape[0]) + "], got dtype " + l.descr);
      kv_lens.resize(size_t(l.shape[0]));
      for (size_t i = 0; i < kv_lens.size(); ++i) {
        if (l.descr == "<i8") std::memcpy(&kv_lens[i], l.data.data() + 8 * i, 8);
        else { int32_t v; std::memcpy(&v, l.data.data() + 4 * i, 4); kv_lens[i] = v; }
      }
      a.kv_lens = kv_lens.data();
    }
    std::vector<float> sinks;
    if (!sinks_path.empty()) {
      const npy::Array s = npy::load(sinks_path);
      if (s.shape.size() != 1 || s.shape[0] != qa.shape[1])
        throw Error("--sinks: expected [Hq=" + std::to_string(qa.shape[1]) + "] values");
      sinks = npy::to_f32(s, "--sinks");
      a.sinks = sinks.data();
    }
    std::vector<float> lse;
    if (!lse_path.empty()) {
      lse.resize(size_t(qa.shape[0] * qa.shape[1] * qa.shape[2]));
      a.lse = lse.data();
    }
    if (device == "cuda") {
#if QSDPA_HAVE_CUDA
      // The arrays live in host memory: device copies, the call, the output and LSE copied back.
      if (cuda::device_count() == 0) throw Error("--device: cuda requested, but no CUDA device is visible");
      DeviceArgs d(a);
      attention(d.args());
      const int32_t status = d.finish();
      if (status & 1) throw Error("--kv-lens: a length exceeds N (reported by the device)");
      if (status & 2)
        throw Error("attention: a K/V scale is beyond what the tensor-core path holds exactly in f16 (device status "
                    "bit 2); use an f32 or bf16 cache for such data");
#else
      throw Error("--device: cuda requested, but this build of qsdpa has no CUDA backend (configure with -DQSDPA_CUDA=ON)");
#endif
    } else {
      attention(a);
    }
    npy::save(out_path, npy::from_bytes(qa.descr, qa.shape, obytes.data(), obytes.size()));
    if (!lse_path.empty()) npy::save(lse_path, npy::from_f32(lse, {qa.shape[0], qa.shape[1], qa.shape[2]}));
  });
}

}  // namespace qsdpa::tools
