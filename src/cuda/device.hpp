// Host-side entry points of the CUDA backend (compiled only when QSDPA_CUDA is on).
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "qsdpa/attention.hpp"

namespace qsdpa::cuda {

// Number of usable CUDA devices; 0 when there is no driver or no GPU (never throws).
int device_count();
std::string device_name(int device);

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

}  // namespace qsdpa::cuda
