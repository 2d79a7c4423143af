// Tests of programmatic dependent launch (late_writer.cu).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace qsdpa::test {

// One block that lets the next kernel in `stream` launch at once, spins for delay_ns, then copies
// count floats from src to dst (device pointers).
void launch_late_copy(float* dst, const float* src, size_t count, long long delay_ns, cudaStream_t stream);

}  // namespace qsdpa::test
