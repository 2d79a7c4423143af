// Device discovery for the CUDA backend. The runtime API only (no driver API at link time), so that a
// machine without a GPU or with a stub libcuda reports "no device" instead of failing to start.
#include <atomic>

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

namespace {
__global__ void spin_cycles(long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
}

// Spins until the host sets *open (pinned host memory), or after `max_cycles` in case it never does.
__global__ void wait_for_host(const volatile int* open, long long max_cycles) {
  const long long start = clock64();
  while (*open == 0 && clock64() - start < max_cycles) __nanosleep(1000);
}
}  // namespace

HostGate::HostGate() {
  void* flag = nullptr;
  QSDPA_CUDA_CHECK(cudaHostAlloc(&flag, sizeof(int), cudaHostAllocMapped));
  open_ = static_cast<volatile int*>(flag);
}

HostGate::~HostGate() { cudaFreeHost(const_cast<int*>(open_)); }

void HostGate::close(cudaStream_t stream) {
  *open_ = 0;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // ~2 s at the H100's clocks: far longer than any enqueue, short enough not to hang on a host that
  // never opens the gate.
  wait_for_host<<<1, 1, 0, stream>>>(open_, 4'000'000'000LL);
  QSDPA_CUDA_CHECK(cudaGetLastError());
}

void HostGate::open() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  *open_ = 1;
}

double sm_clock_mhz() {
  constexpr long long kCycles = 2'000'000;  // ~1 ms at the H100's clocks: the events' ~1 us is 0.1%
  spin_cycles<<<1, 1>>>(1000);  // the first launch loads the module
  QSDPA_CUDA_CHECK(cudaGetLastError());
  cudaEvent_t start, stop;
  QSDPA_CUDA_CHECK(cudaEventCreate(&start));
  QSDPA_CUDA_CHECK(cudaEventCreate(&stop));
  QSDPA_CUDA_CHECK(cudaEventRecord(start));
  spin_cycles<<<1, 1>>>(kCycles);
  QSDPA_CUDA_CHECK(cudaGetLastError());
  QSDPA_CUDA_CHECK(cudaEventRecord(stop));
  QSDPA_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  QSDPA_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms > 0 ? double(kCycles) / (double(ms) * 1e3) : 0.0;
}

std::string device_name(int device) {
  cudaDeviceProp prop{};
  QSDPA_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

}  // namespace qsdpa::cuda
