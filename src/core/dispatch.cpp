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

#if QSDPA_HAVE_CUDA
const char* cuda::kernel_name(const AttentionArgs& a) {
  if (attention_mma_supports(a)) return attention_mma_pair_compiled(a) ? "tensor-core" : "tensor-core/generic-decode";
  return attention_split_supports(a) ? "split-f32" : "generic";
}
#endif

size_t attention_workspace_bytes(const AttentionArgs& a) {
  validate(a);
  if (a.device != Device::cuda) return 0;
#if QSDPA_HAVE_CUDA
  if (cuda::attention_mma_supports(a)) return cuda::attention_mma_workspace_bytes(a);
  if (cuda::attention_split_supports(a)) return cuda::attention_split_workspace_bytes(a);
  return 0;
#else
  throw Error("attention: device cuda requested, but this build of qsdpa has no CUDA backend (configure with -DQSDPA_CUDA=ON)");
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
      if (cuda::attention_mma_supports(a)) cuda::attention_mma(a, a.status, stream);
      else if (cuda::attention_split_supports(a)) cuda::attention_split(a, a.status, stream);
      else cuda::attention_generic(a, a.status, stream);
      return;
    }
#else
      throw Error("attention: device cuda requested, but this build of qsdpa has no CUDA backend (configure with -DQSDPA_CUDA=ON)");
#endif
  }
  throw Error("attention: invalid device value " + std::to_string(int(a.device)));
}

}  // namespace qsdpa
