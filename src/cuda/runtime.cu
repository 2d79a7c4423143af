// Device discovery for the CUDA backend. The runtime API only (no driver API at link time), so that a
// machine without a GPU or with a stub libcuda reports "no device" instead of failing to start.
#include "cuda/check.cuh"
#include "cuda/device.hpp"

namespace qsdpa::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver / no device" error
    return 0;
  }
  return n;
}

std::string device_name(int device) {
  cudaDeviceProp prop{};
  QSDPA_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

}  // namespace qsdpa::cuda
