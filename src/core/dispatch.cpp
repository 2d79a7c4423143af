// The public entry point: validate once, then run on the device the pointers live on. No silent
// fallback between devices.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cpu/kernels.hpp"
#include "qsdpa/attention.hpp"
#include "qsdpa/error.hpp"

#if QSDPA_HAVE_CUDA
#include "cuda/device.hpp"
#endif

namespace qsdpa {

namespace {

[[noreturn]] void no_cuda_backend() {
  throw Error("attention: device cuda requested, but this build of qsdpa has no CUDA backend (configure with -DQSDPA_CUDA=ON)");
}

#if QSDPA_HAVE_CUDA
enum class CudaKernel { tensor_core, split, generic };

// The one place that decides which CUDA kernel takes a call (name, workspace, launch).
CudaKernel cuda_kernel(const AttentionArgs& a) {
  if (cuda::attention_mma_supports(a)) return CudaKernel::tensor_core;
  return cuda::attention_split_supports(a) ? CudaKernel::split : CudaKernel::generic;
}
#endif

}  // namespace

#if QSDPA_HAVE_CUDA
const char* cuda::kernel_name(const AttentionArgs& a) {
  switch (cuda_kernel(a)) {
    case CudaKernel::tensor_core: return attention_mma_pair_compiled(a) ? "tensor-core" : "tensor-core/generic-decode";
    case CudaKernel::split: return "split-f32";
    default: return "generic";
  }
}
#endif

size_t attention_workspace_bytes(const AttentionArgs& a) {
  validate(a);
  if (a.device != Device::cuda) return 0;
#if QSDPA_HAVE_CUDA
  switch (cuda_kernel(a)) {
    case CudaKernel::tensor_core: return cuda::attention_mma_workspace_bytes(a);
    case CudaKernel::split: return cuda::attention_split_workspace_bytes(a);
    default: return 0;
  }
#else
  no_cuda_backend();
#endif
}

void attention(const AttentionArgs& a) {
  validate(a);
  switch (a.device) {
    case Device::cpu: cpu::attention(a); return;
    case Device::cuda:
#if QSDPA_HAVE_CUDA
    {
      static const bool log = [] {
        const char* v = std::getenv("QSDPA_LOG");
        return v && *v && std::string(v) != "0";
      }();
      const auto stream = static_cast<cudaStream_t>(a.stream);
      if (log) std::fprintf(stderr, "qsdpa: cuda attention: %s kernel\n", cuda::kernel_name(a));
      switch (cuda_kernel(a)) {
        case CudaKernel::tensor_core: cuda::attention_mma(a, a.status, stream); return;
        case CudaKernel::split: cuda::attention_split(a, a.status, stream); return;
        default: cuda::attention_generic(a, a.status, stream); return;
      }
    }
#else
      no_cuda_backend();
#endif
  }
  throw Error("attention: invalid device value " + std::to_string(int(a.device)));
}

}  // namespace qsdpa
