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

void attention(const AttentionArgs& a) {
  validate(a);
  switch (a.device) {
    case Device::cpu: cpu::attention(a); return;
    case Device::cuda:
#if QSDPA_HAVE_CUDA
    {
      const bool split = cuda::attention_split_supports(a);
      static const bool log = [] {
        const char* v = std::getenv("QSDPA_LOG");
        return v && *v && std::string(v) != "0";
      }();
      if (log) std::fprintf(stderr, "qsdpa: cuda attention: %s kernel\n", split ? "split-key" : "generic");
      if (split) cuda::attention_split(a, a.status, static_cast<cudaStream_t>(a.stream));
      else cuda::attention_generic(a, a.status, static_cast<cudaStream_t>(a.stream));
      return;
    }
#else
      throw Error("attention: device cuda requested, but this build of qsdpa has no CUDA backend (configure with -DQSDPA_CUDA=ON)");
#endif
  }
  throw Error("attention: invalid device value " + std::to_string(int(a.device)));
}

}  // namespace qsdpa
