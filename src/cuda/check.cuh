// CUDA runtime calls that fail throw qsdpa::CudaError naming the call and CUDA's message.
#pragma once

#include <cuda_runtime.h>

#include "qsdpa/error.hpp"

namespace qsdpa::cuda {

inline void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) throw CudaError(call, cudaGetErrorString(status));
}

}  // namespace qsdpa::cuda

#define QSDPA_CUDA_CHECK(expr) ::qsdpa::cuda::check((expr), #expr)
