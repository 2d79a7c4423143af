// Sequence-parallel attention over several GPUs (issue 4): each rank holds a contiguous slice of the
// keys of every sequence, attends over its slice with the fused kernels (LSE on, sinks off), and the
// ranks exchange the small partials (out and LSE, f32) with one NCCL all-gather and merge them exactly,
// adding each head's sink once, so every rank ends with the full result. Built with -DQSDPA_NCCL=ON.
#pragma once

#include <cstddef>

#include "qsdpa/attention.hpp"

namespace qsdpa {

// An initialised NCCL communicator (ncclComm_t) of `world` ranks, one GPU each, and this rank.
struct ShardComm {
  void* nccl_comm = nullptr;
  int rank = 0;
  int world = 1;
};

// Device bytes `sharded_attention` needs as workspace for these arguments.
size_t sharded_workspace_bytes(const AttentionArgs& local, int world);

// `local` is an ordinary CUDA call over this rank's slice: q (the same on every rank), k/v views of
// the local slice, kv_lens (the valid local lengths, 0 allowed), out (written on every rank), lse
// (optional, of the whole), sinks (added once, in the merge), stream. Causal and sliding-window masks
// need global key positions: with Lq = 1 every cached key is visible, so they are accepted only for
// Lq = 1, where they change nothing; array masks are rejected. `workspace` holds
// sharded_workspace_bytes(local, world) device bytes. Enqueued on local.stream; never synchronizes.
void sharded_attention(const AttentionArgs& local, const ShardComm& comm, void* workspace);

}  // namespace qsdpa
