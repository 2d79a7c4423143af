// Sequence-parallel attention (include/qsdpa/sharded.hpp): local fused attention with LSE, one NCCL
// all-gather of the partials, a device merge. Partial outputs are normalised within their shard and
// kept in q's dtype (what attention() writes; the merge's weights sum to 1, so rounding stays at the
// output dtype's level), LSEs in f32. All-gather rather than reduce: the partials are tiny
// (8.3 KB per rank at B=1, Hq=32, D=128, f16) and every rank needs the merged
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

// One rank's partial: the local output in q's dtype (what attention() writes), then the LSEs (f32),
// padded to 16 bytes.
size_t partial_bytes(const AttentionArgs& a) {
  const size_t rows = rows_of(a), out = rows * size_t(a.q.shape[3]) * size_t(dtype_size(a.q.dtype));
  return (out + rows * sizeof(float) + 15) / 16 * 16;
}

}  // namespace

size_t sharded_workspace_bytes(const AttentionArgs& local, int world) {
  return partial_bytes(local) * size_t(1 + world);
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
  const size_t rows = rows_of(local), part = partial_bytes(local);
  auto* mine = static_cast<uint8_t*>(workspace);  // this rank's partial
  uint8_t* all = mine + part;                     // [world] partials

  AttentionArgs a = local;
  a.sinks = nullptr;
  a.causal = false;  // Lq = 1: every cached key is visible
  a.window = 0;
  a.out = contiguous_view(mine, local.q.dtype, B, Hq, Lq, D);
  a.lse = reinterpret_cast<float*>(mine + rows * size_t(D) * size_t(dtype_size(local.q.dtype)));
  attention(a);

  const auto stream = static_cast<cudaStream_t>(local.stream);
  nccl_check(ncclAllGather(mine, all, part, ncclUint8, static_cast<ncclComm_t>(comm.nccl_comm), stream), "ncclAllGather");
  cuda::merge_shards(all, comm.world, part, local, stream);
}

}  // namespace qsdpa
