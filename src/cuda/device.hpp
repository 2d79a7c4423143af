// Host-side entry points of the CUDA backend (compiled only when QSDPA_CUDA is on).
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "qsdpa/attention.hpp"

namespace qsdpa::cuda {

// Number of usable CUDA devices; 0 when there is no driver or no GPU (never throws).
int device_count();
std::string device_name(int device);
// The SM clock now, in MHz: a one-thread kernel spinning a fixed count of clock64() cycles, timed by
// events (as PyTorch's torch.cuda._sleep can be). Short calls are latency-bound, so their time
// follows this clock; the bench records it per row. Throws CudaError if a launch fails.
double sm_clock_mhz();

// Holds a stream's GPU work back until the host opens the gate: close(stream) enqueues a one-thread
// kernel that spins on a flag in pinned host memory; open() sets it. A benchmark closes the gate,
// enqueues its start event, the timed work and its stop event, then opens it, so that the events
// time the GPU alone. Without it, the host's enqueueing (a graph launch: ~5-20 us) runs while the
// GPU sits idle between the start event and the work, and counts as kernel time divided by the
// batch's calls (2-25 calls at the 2K-4K shapes; docs/decisions.md). Work enqueued behind a
// closed gate must not wait on the host (a host launch queue that fills up would hang until the
// spin's ~2 s limit): one graph launch, not hundreds of launches.
class HostGate {
 public:
  HostGate();
  ~HostGate();
  HostGate(const HostGate&) = delete;
  HostGate& operator=(const HostGate&) = delete;
  void close(cudaStream_t stream);
  void open();

 private:
  volatile int* open_ = nullptr;
};

// Decodes every row of a cache whose codes/scales/biases live in device memory into out
// ([B, H, N, dim] f32, device memory), on `stream`, with the formats' shared scalar rules.
// Asynchronous: the caller synchronizes. Throws CudaError if the launch fails.
void dequantize(const CacheView& cache, float* out, cudaStream_t stream);

// Fused attention, generic path (attention_generic.cu): arguments already validated, all pointers
// in device memory; `status` (may be null) gets bit 1 when kv_lens exceed N.
void attention_generic(const AttentionArgs& args, int32_t* status, cudaStream_t stream);

// Split-key attention with GQA sharing (attention_split.cu), for G*Lq <= 32 and G*Lq*D <= 4096.
bool attention_split_supports(const AttentionArgs& args);
void attention_split(const AttentionArgs& args, int32_t* status, cudaStream_t stream);
size_t attention_split_workspace_bytes(const AttentionArgs& args);

// Tensor-core split-key attention (attention_mma.cu): no array mask, f16-representable K/V formats
// (not f32/bf16), D in {64, 128, 256}, G*Lq <= 256 (row chunks of 8*NT rows). Status bit 2 when a
// scale takes f16 products out of exact range. `pair_compiled` is false for K:V format pairs that run
// on the per-value generic decoders (QSDPA_LOG reports it).
bool attention_mma_supports(const AttentionArgs& args);
bool attention_mma_pair_compiled(const AttentionArgs& args);
void attention_mma(const AttentionArgs& args, int32_t* status, cudaStream_t stream);
size_t attention_mma_workspace_bytes(const AttentionArgs& args);
// How attention_mma splits a call (for tests): key splits per (b, kv head), the cluster
// they merge in (1: the merge kernel) and the warps of a block.
struct MmaPlan {
  int splits, cluster, warps;
};
MmaPlan attention_mma_plan(const AttentionArgs& args);

// Encodes new K and V tokens into their caches in one launch (append.cu); arguments validated.
void append(const AppendArgs& args, cudaStream_t stream);

// Merges the partials of `world` sequence shards (sharded_attention, include/qsdpa/sharded.hpp;
// partials.cu): parts = [world] blocks of `part_bytes`, each rows * D outputs in q's dtype, then rows
// f32 LSEs (rows = B*Hq*Lq in [b][h][i] order), each output normalised within its shard. Writes a.out
// (q's dtype) and a.lse, adding a.sinks once.
void merge_shards(const uint8_t* parts, int world, size_t part_bytes, const AttentionArgs& a, cudaStream_t stream);

// The kernel attention() runs for these arguments: "tensor-core", "tensor-core/generic-decode",
// "split-f32" or "generic" (dispatch.cpp; QSDPA_LOG=1 prints it per call).
const char* kernel_name(const AttentionArgs& args);

}  // namespace qsdpa::cuda
