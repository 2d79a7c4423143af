// What this build of qsdpa is: the commit embedded at configure time and the compiled backends.
#pragma once

#include <string>
#include <vector>

namespace qsdpa {

struct BuildInfo {
  std::string version;
  std::string commit;  // git commit at configure time ("unknown" outside a checkout)
  bool cuda = false;   // CUDA backend compiled in
  bool avx512 = false; // AVX-512 CPU kernels compiled in (used when the CPU has them)
};

BuildInfo build_info();
// Names of the CUDA devices this process can use (empty without the CUDA backend, a driver or a GPU).
std::vector<std::string> cuda_device_names();
// True when the CPU running this process has the AVX-512 subsets the fast CPU kernels use.
bool cpu_has_avx512();

}  // namespace qsdpa
