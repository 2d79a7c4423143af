// A kernel for the tests of programmatic dependent launch: it lets the next kernel in the stream
// launch at once (griddepcontrol.launch_dependents, sm_90), then waits and only then writes its
// output, so that a next kernel which read before its griddepcontrol.wait would see the old bytes.
#include "late_writer.hpp"

#include <cuda_runtime.h>

#include "cuda/check.cuh"

namespace qsdpa::test {
namespace {

__global__ void late_copy(float* dst, const float* src, size_t count, long long delay_ns) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
  unsigned long long start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < static_cast<unsigned long long>(delay_ns));
  for (size_t i = threadIdx.x; i < count; i += blockDim.x) dst[i] = src[i];
}

}  // namespace

void launch_late_copy(float* dst, const float* src, size_t count, long long delay_ns, cudaStream_t stream) {
  late_copy<<<1, 256, 0, stream>>>(dst, src, count, delay_ns);
  QSDPA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace qsdpa::test
