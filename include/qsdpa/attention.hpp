// Fused attention over quantized caches (SPEC §2).
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "qsdpa/cache.hpp"
#include "qsdpa/tensor.hpp"

namespace qsdpa {

enum class Device : uint8_t { cpu, cuda };

struct AttentionArgs {
  TensorView q;     // [B, Hq, Lq, D], f32/f16/bf16, any strides
  CacheView k, v;   // [B, Hkv, N, D] rows; Hq a multiple of Hkv
  TensorView out;   // [B, Hq, Lq, D], q's dtype, caller-provided
  float scale = std::numeric_limits<float>::quiet_NaN();  // required: no silent 1/sqrt(D)
  bool causal = false;     // lower-right aligned per sequence
  TensorView mask;         // optional rank-4 bool (u8/boolean, false = masked) or additive f32/f16/bf16
                           // mask broadcastable to [B, Hq, Lq, N] (size-1 dims broadcast)
  int64_t window = 0;      // sliding window of w keys (including its own position); 0 = none
  const int64_t* kv_lens = nullptr;  // [B] valid lengths <= N; null = N for every sequence
  const float* sinks = nullptr;      // [Hq] sink logits, in units of scale*q.k
  float* lse = nullptr;              // optional [B, Hq, Lq] f32 log-sum-exp (natural log), contiguous
  int threads = 0;                   // CPU threads; 0 = all cores
  Device device = Device::cpu;       // where every pointer above lives
  // CUDA only: the stream to run on (a cudaStream_t; null = the default stream), and an optional
  // device int32 that kernels OR error bits into, for the caller to read after its own
  // synchronization: 1 = kv_lens beyond N (clamped); 2 = a K/V scale or value that the tensor-core
  // path's f16 products cannot hold exactly (beyond f16's range: the output is not valid; requantize
  // with smaller values or use an f32/bf16 cache). The call never synchronizes the host.
  void* stream = nullptr;
  int32_t* status = nullptr;
  // CUDA only, optional: device memory (16-byte aligned) for the split kernels' partials, of at
  // least attention_workspace_bytes(args). With it the call allocates nothing, so it can be captured
  // in a CUDA graph and run concurrently on several streams; without it the kernels share one
  // buffer per device that grows on demand (the growing call synchronizes).
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// Device bytes the call would use as workspace (0 on the CPU, for the generic CUDA kernel, and for
// short contexts on sm_90 that merge their splits inside the kernel; a caller may then pass none).
size_t attention_workspace_bytes(const AttentionArgs& args);

// Appending new tokens to preallocated caches (fused quantize; issue 3): k_new and v_new
// ([B, Hkv, count, D], f32/f16/bf16) are encoded with the caches' formats into token positions
// [positions[b], positions[b] + count) of each sequence b of k and v, with the same rule as `quantize`
// (identical bytes); on CUDA, K and V in one launch. The caches' memory must be writable (CacheView
// keeps const pointers for readers); fp8 / nvfp4 use the cache's fixed per-tensor scales.
// `positions` ([B] int64) and `status` (optional int32) live where `device` says. Status bits:
// 4 = NaN/Inf input, 8 = a scale overflowed its dtype, 16 = values clipped at a per-tensor scale,
// 32 = nvfp4 blocks whose scale rounded to 0 (decode to 0); on CUDA also 1 = a position beyond the
// capacity (those rows skipped; the CPU throws instead). CUDA: asynchronous on `stream`, never
// synchronizes the host.
struct AppendArgs {
  TensorView k_new, v_new;
  CacheView k, v;
  const int64_t* positions = nullptr;
  Device device = Device::cuda;
  void* stream = nullptr;
  int32_t* status = nullptr;
};
void append(const AppendArgs& args);

// Fused attention: dequantization happens inside the score and value loops.
void attention(const AttentionArgs& args);

// The "dequantize, then attend" baseline: K and V are decoded into the caller's f32 buffers
// (B*Hkv*N*D floats each), then the library's own attention runs on them with the same threads.
void attention_unfused(const AttentionArgs& args, float* k_buffer, float* v_buffer);

// The correctness reference: dequantize K and V, then exact attention in f64 (single thread).
void attention_reference(const AttentionArgs& args);

// Throws qsdpa::Error for any invalid argument (SPEC §3); attention() calls it first.
void validate(const AttentionArgs& args);

// Exact merge of attentions over disjoint pieces of one cache. part p gives outs[p] ([rows, dim]
// f32, normalised) and lses[p] ([rows]); sink logits (per row, may be null) join the denominator
// once. Writes out [rows, dim] and lse [rows] (lse may be null).
void merge_partials(int parts, int64_t rows, int64_t dim, const float* const* outs, const float* const* lses,
                    const float* row_sinks, float* out, float* lse);

}  // namespace qsdpa
