// Sequence-parallel attention (include/qsdpa/sharded.hpp): local fused attention with LSE, one NCCL
// all-gather of the partials, a device merge. All-gather rather than reduce: the partials are tiny
// (B*Hq*Lq*(D+1) floats, 16.5 KB per rank at B=1, Hq=32, D=128) and every rank needs the merged
// output as the next layer's input; the merge itself is exact only with max-shifted weights, which a
// plain sum-reduce cannot apply. Not yet measured against a reduce-based variant (no multi-GPU run).
#include "qsdpa/sharded.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "cuda/check.cuh"
#include "cuda/device.hpp"
#include "qsdpa/error.hpp"

namespace qsdpa {
namespace {

void nccl_check(ncclResult_t r, const char* call) {
  if (r != ncclSuccess) throw CudaError(call, ncclGetErrorString(r));
}

size_t rows_of(const AttentionArgs& a) { return size_t(a.q.shape[0] * a.q.shape[1] * a.q.shape[2]); }

}  // namespace

size_t sharded_workspace_bytes(const AttentionArgs& local, int world) {
  const size_t rows = rows_of(local), d = size_t(local.q.shape[3]);
  return (rows * (d + 1)) * sizeof(float) * size_t(1 + world);
}

void sharded_attention(const AttentionArgs& local, const ShardComm& comm, void* workspace) {
  if (local.device != Device::cuda) throw Error("sharded_attention: device must be cuda");
  if (comm.world < 1 || comm.rank < 0 || comm.rank >= comm.world || !comm.nccl_comm)
    throw Error("sharded_attention: comm: expected an NCCL communicator and 0 <= rank < world, got rank " +
                std::to_string(comm.rank) + " of " + std::to_string(comm.world));
  if (!workspace) throw Error("sharded_attention: workspace: expected sharded_workspace_bytes() device bytes, got null");
  if (local.mask.data) throw Error("sharded_attention: mask: array masks are not supported across shards");
  if ((local.causal || local.window > 0) && local.q.shape[2] != 1)
    throw Error("sharded_attention: causal/window need global key positions; supported for Lq = 1 only, got Lq = " +
                std::to_string(local.q.shape[2]));
  const int64_t B = local.q.shape[0], Hq = local.q.shape[1], Lq = local.q.shape[2], D = local.q.shape[3];
  const size_t rows = rows_of(local), part = rows * size_t(D + 1);
  float* mine = static_cast<float*>(workspace);  // [rows][D] out, then [rows] lse
  float* all = mine + part;                      // [world][rows * (D + 1)]

  AttentionArgs a = local;
  a.sinks = nullptr;
  a.causal = false;  // Lq = 1: every cached key is visible
  a.window = 0;
  a.out = contiguous_view(mine, DType::f32, B, Hq, Lq, D);
  a.lse = mine + rows * size_t(D);
  attention(a);

  const auto stream = static_cast<cudaStream_t>(local.stream);
  nccl_check(ncclAllGather(mine, all, part, ncclFloat32, static_cast<ncclComm_t>(comm.nccl_comm), stream),
             "ncclAllGather");
  cuda::merge_shards(all, comm.world, local, stream);
}

}  // namespace qsdpa
