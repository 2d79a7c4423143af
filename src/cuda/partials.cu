// The merge of split-key partials (see partials.cuh), launched early as a programmatic dependent
// launch (sm_90: it waits in wait_for_prior_grid for the split kernel's end, its own launch off the
// critical path; session 4). It reads splits * (D + 2) floats, a few percent of the cache bytes the
// split kernels streamed, so it is bound by latency, not bandwidth.
// Work split (session 22, merge_slice_kernel): one block of 16 warps per (32-dim slice, query row,
// kv head, b); warp w takes splits w, w + 16, ..., each split's (m, l) in one 8-byte load and the
// lane's dim in another, Batch splits a warp in one round of loads (Batch from the split count: no
// predicated-off loads); warp 0 combines the 16 warp results and stores the slice. ~220
// instructions a warp from the wait to its sums at Batch 4 (D = 128), against ~540 in the one-block-
// per-row kernel below (merge_kernel: lane l takes dims l, l + 32, ... of up to 8 splits a warp, 6
// loads a split), which had 16 warps on one SM issue ~8600 instructions before the block's barrier:
// session 21's probe put 1.7-1.9 us between the wait and that barrier. A/B on the H100 (session 22,
// B=1, Hq=32, Hkv=8, D=128, µs): 4K f16 12.2 -> 11.0, mxfp4 10.1 -> 8.8, affine4 11.6 -> 10.2; 32K
// mxfp4 24.6 -> 23.8; 128K affine4 88.7 -> 87.4. Turbo's partials, un-rotated by the tensor-core
// split blocks since 487c029, take it too: turbo4 4K 12.31 -> 10.81, 32K 37.60 -> 36.53. merge_kernel
// stays for partials left rotated (the fallback split kernel's turbo; it un-rotates whole rows) and
// behind -DQSDPA_MERGE_SLICES=0.
// Session 29: what does not need the partials is done before the wait (the output's and LSE's
// addresses; lanes ask L2 for the lines of the warp's first round of splits, prefetch.global.L2,
// which reads no value), and the weights come from exp2 without branches, warp 0 reading the 16
// warps' (m, l) from shared memory in every lane instead of two shuffle chains. A/B on the H100
// (GQA 4, µs; the first step, then the second, each in its own call): 4K mxfp4 7.61 -> 7.43, 7.42
// -> 7.11; f16 10.13 -> 9.85, 9.86 -> 9.60; mxfp8 9.35 -> 9.07, 9.05 -> 8.73; 32K mxfp4 21.67 ->
// 21.23, 21.07 -> 20.96; mxfp8 32.62 -> 32.20, 32.14 -> 31.89; 128K within 0.5 us. A probe of
// the first step (mxfp4 32K): the wait returns ~0.5 us after the last split block's partial, the
// warps' one round of loads and sums takes ~1.1 us, warp 0's combine 0.45, the store 0.3.
// Session 37 (merge_warp_kernel below): up to 32 splits, in grids of at most 2 one-warp blocks an
// SM, merge one (row, 32-dim slice) per warp with no shared memory and no barrier. A/B on the H200
// (calls 2 and 5, GQA 4 unless noted, µs, before -> after): 4K mxfp4 7.11 -> 6.97, nvfp4 7.28 ->
// 7.06, affine4 8.06 -> 7.78, mxfp8 8.36 -> 8.10; 32K affine4 22.06 -> 21.40, mxfp4 even; 128K
// mxfp4 49.4 -> 48.3, nvfp4 49.2 -> 48.2, affine4 59.3 -> 58.9; MHA 32K mxfp4 48.41 -> 47.55. f16 and
// mxfp8 at 32K-128K even; not measured on an H100. QSDPA_MERGE_WARPS=0 keeps merge_slice_kernel.
// Session 40 (H200, A B C x3 in one call; not kept, diff in -session40-raw/call1): the warp merge for
// up to 128 splits (lane s holding splits s, s + 32, ...), so that GQA 4 16K-32K calls (66 splits of
// 4-warp blocks) leave merge_slice_kernel, was 1.1-1.2 us slower there (mxfp4 32K 19.40 -> 20.54,
// 16K 13.48 -> 14.64; f16 +0.7-0.8, mxfp8 and turbo4 +0.3): one warp issuing 66 loads and sums a
// lane takes longer than 16 warps' one round of ~5 and a barrier. Tests and memcheck passed; 4K and
// 128K (<= 32 splits) even.
// History: 128 threads with one loop per dim took 26 us at 128K (ncu, cold caches); a block-wide
// version (all first loads at once, then block reductions of m and l and slices of splits summed
// through shared memory: four dependent phases) took ~3.1-3.4 us in a graph from the wait's end
// (session 10's probe); merge_kernel was 0.1-0.3 us faster than it. Session 6 tried one 128-thread
// block per (row, 32 dims), each warp taking a quarter of the splits one after another: no faster.
#include "cuda/partials.cuh"

#include <algorithm>
#include <atomic>
#include <climits>
#include <mutex>
#include <string>

#include "cuda/check.cuh"
#include "cuda/device.hpp"
#include "cuda/phase_times.cuh"

namespace qsdpa::cuda {
namespace {

constexpr int kMergeThreads = 512;

// A/B switch (session 22): 0 merges every format with merge_kernel (one block per row).
#ifndef QSDPA_MERGE_SLICES
#define QSDPA_MERGE_SLICES 1
#endif
// A/B switch (session 36): 0 merges up to 32 splits with merge_slice_kernel too (see merge_warp_kernel).
#ifndef QSDPA_MERGE_WARPS
#define QSDPA_MERGE_WARPS 1
#endif

// The combine of a block's 16 warp results for one row, in every lane of a warp: lane i < 16
// holds warp i's weight against the row's reference (the largest warp maximum and the sink); the
// reference and the denominator (with the sink's weight) follow by shuffles.
struct WarpsOfRow {
  float top, weight, total;
};
__device__ __forceinline__ WarpsOfRow combine_warps(const float* wtop, const float* wl, float sink, int lane) {
  constexpr int kWarpsPerBlock = kMergeThreads / 32;
  const float mine = lane < kWarpsPerBlock ? wtop[lane] : -INFINITY;
  float top = fmaxf(mine, sink);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xFFFFFFFFu, top, o));
  const float weight = lane < kWarpsPerBlock ? partial_weight(mine, top) : 0.0f;
  float total = lane < kWarpsPerBlock ? weight * wl[lane] : 0.0f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xFFFFFFFFu, total, o);
  return {top, weight, total + partial_weight(sink, top)};
}

// The merge of one row (see the file comment); Chunks: dims per lane, D <= 32 * Chunks. Un-rotates
// turbo values where `rotated`.
template <int Chunks>
__global__ void __launch_bounds__(kMergeThreads, 1) merge_kernel(KernelArgs p, int rows, int splits, const float* work, bool rotated) {
  constexpr int kWarpsPerBlock = kMergeThreads / 32, kBatch = Chunks <= 4 ? 8 : Chunks <= 8 ? 4 : 2;
  const int r = int(blockIdx.x), hk = int(blockIdx.y), b = int(blockIdx.z);
  const int D = int(p.q.shape[3]), G = int(p.q.shape[1]) / int(p.k.heads);
  const int lane = int(threadIdx.x % 32), warp = int(threadIdx.x / 32);
  const int64_t stride = int64_t(rows) * (D + 2);
  const float* w = work + (int64_t(b) * p.k.heads + hk) * splits * stride + int64_t(r) * (D + 2);
  const float sink = sink_of(p, int64_t(hk) * G + r % G);  // an input: read before the wait
  __shared__ float wtop[kWarpsPerBlock], wl[kWarpsPerBlock], wacc[kWarpsPerBlock][32 * Chunks];
  __shared__ float row[32 * Chunks];
  __shared__ float lse;
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 0);
  wait_for_prior_grid();  // launched early (programmatic dependent launch): the partials come now
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 1);
  float top = -INFINITY, l = 0.0f, acc[Chunks];
#pragma unroll
  for (int c = 0; c < Chunks; ++c) acc[c] = 0.0f;
  for (int s0 = warp; s0 < splits; s0 += kBatch * kWarpsPerBlock) {
    float m[kBatch], ls[kBatch], v[kBatch][Chunks];
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      const int s = s0 + i * kWarpsPerBlock;
      const float* src = w + int64_t(s < splits ? s : 0) * stride;
      m[i] = s < splits ? src[D] : -INFINITY;
      ls[i] = s < splits ? src[D + 1] : 0.0f;
#pragma unroll
      for (int c = 0; c < Chunks; ++c) v[i][c] = s < splits && lane + 32 * c < D ? src[lane + 32 * c] : 0.0f;
    }
    float next = top;
#pragma unroll
    for (int i = 0; i < kBatch; ++i) next = fmaxf(next, m[i]);
    const float keep = partial_weight(top, next);  // the running sums' factor (0 while they are empty)
    l *= keep;
#pragma unroll
    for (int c = 0; c < Chunks; ++c) acc[c] *= keep;
#pragma unroll
    for (int i = 0; i < kBatch; ++i) {
      const float e = partial_weight(m[i], next);
      l += e * ls[i];
#pragma unroll
      for (int c = 0; c < Chunks; ++c) acc[c] += e * v[i][c];
    }
    top = next;
  }
  if (lane == 0) wtop[warp] = top, wl[warp] = l;
#pragma unroll
  for (int c = 0; c < Chunks; ++c) wacc[warp][lane + 32 * c] = acc[c];
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 3);
  __syncthreads();
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 4);
  const WarpsOfRow row_sums = combine_warps(wtop, wl, sink, lane);  // every warp, all lanes
  const float row_top = row_sums.top, weight = row_sums.weight, total = row_sums.total;
  float weights[kWarpsPerBlock];  // shuffled by all lanes, before the loop that not all of them enter
#pragma unroll
  for (int i = 0; i < kWarpsPerBlock; ++i) weights[i] = __shfl_sync(0xFFFFFFFFu, weight, i);
  for (int d = int(threadIdx.x); d < D; d += kMergeThreads) {
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kWarpsPerBlock; ++i) sum += weights[i] * wacc[i][d];
    row[d] = normalised(sum, total);
  }
  if (threadIdx.x == 0) lse = row_lse(row_top, total);
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 5);
  store_rows(p, row, &lse, 1, D, b, hk, rotated, [&](int) { return r; });
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 2);
}

// A merge lane's output element and its row's LSE slot. Addressed before the grid wait, and pinned
// there: the compiler would otherwise sink their 64-bit arithmetic and parameter loads
// (constant-cache misses) into the stores. (As addresses: the output's base comes before the wait,
// and the dtype, which ptxas reloads after the barrier anyway, shares its constant-bank line.)
struct MergeOutput {
  uint8_t* out_at;
  float* lse_at;
  int out_kind;  // 0 f32, 1 f16, 2 bf16

  __device__ __forceinline__ MergeOutput(const KernelArgs& p, int b, int hk, int G, int r, int d, bool has_d) {
    const bool out_f32 = p.out.dtype == DType::f32, out_f16 = p.out.dtype == DType::f16;
    out_at = static_cast<uint8_t*>(p.out.data) + (has_d ? out_offset(p, b, hk, G, r, d) : 0) * (out_f32 ? 4 : 2);
    lse_at = p.lse ? p.lse + lse_index(p, b, hk, G, r) : nullptr;
    out_kind = out_f32 ? 0 : out_f16 ? 1 : 2;
    asm volatile("" : "+l"(out_at), "+l"(lse_at), "+r"(out_kind));
  }
  // The normalised value of dim d (where the lane has one) and, by dim 0's lane, the row's LSE.
  __device__ __forceinline__ void store(bool has_d, int d, float sum, float total, float row_top) const {
    if (has_d) {
      const float value = normalised(sum, total);
      if (out_kind == 0) *reinterpret_cast<float*>(out_at) = value;
      else *reinterpret_cast<uint16_t*>(out_at) = out_kind == 1 ? fmt::f32_to_f16(value) : fmt::f32_to_bf16(value);
    }
    if (lse_at && d == 0) *lse_at = row_lse(row_top, total);
  }
};

// The merge of one row's 32-dim slice (see the file comment), for partials whose values need no
// un-rotation: lane l takes dim 32 * slice + l.
// At Batch 1-2 (a 4K call's split counts) held to 40 registers, as before the combine below read
// all 16 warps' (m, l) at once (61 registers): a block then fits beside the split kernel's blocks
// on an SM they leave room on (mxfp8 at 4K: 2 blocks of 168 registers), and starts before they end
// (A/B, H100: 61 registers took mxfp8's 4K call 0.25 us longer; reading the warps' values four at a
// time kept 40 at Batch 4 too but lost 0.3-0.7 us at 32K).
template <int Batch>
__global__ void __launch_bounds__(kMergeThreads, Batch <= 2 ? 3 : 1) merge_slice_kernel(KernelArgs p, int rows, int splits, const float* work) {
  constexpr int kWarpsPerBlock = kMergeThreads / 32;
  const int D = int(p.q.shape[3]), G = int(p.q.shape[1]) / int(p.k.heads), slices = (D + 31) / 32;
  const int r = int(blockIdx.x) / slices, hk = int(blockIdx.y), b = int(blockIdx.z);
  const int lane = int(threadIdx.x % 32), warp = int(threadIdx.x / 32);
  const int d = (int(blockIdx.x) - r * slices) * 32 + lane;
  const bool has_d = d < D;
  const int64_t stride = int64_t(rows) * (D + 2);
  int64_t row_first = (int64_t(b) * p.k.heads + hk) * splits * stride + int64_t(r) * (D + 2);
  const float sink = sink_of(p, int64_t(hk) * G + r % G);  // an input: read before the wait
  __shared__ alignas(16) float wtop[kWarpsPerBlock];
  __shared__ alignas(16) float wl[kWarpsPerBlock];
  __shared__ float wacc[kWarpsPerBlock][32];
  // The row's offset, and where warp 0 stores the slice and the LSE, are computed here, not after
  // the wait, where the compiler would otherwise sink their 64-bit arithmetic and parameter loads
  // (constant-cache misses) into the loads' addresses and the stores.
  asm volatile("" : "+l"(row_first));
  const float* w = work + row_first;
  const MergeOutput out(p, b, hk, G, r, d, has_d);
  // Lanes 0 to 3 * Batch - 1 ask L2 for the lines of the warp's first round of splits (lanes 3i
  // and 3i + 1: the first and last value of split i's slice, 3i + 2: its (m, l) pair): no value is
  // read before the wait, but the address translations and DRAM reads of those lines are taken
  // while the split kernel still runs. (A row is D + 2 floats: slices straddle lines.)
  if (const int i = lane / 3, s = warp + i * kWarpsPerBlock; i < Batch && s < splits) {
    const int at = lane - 3 * i, slice_first = d - lane;
    const float* line = w + int64_t(s) * stride + (at == 2 ? D : std::min(slice_first + 31 * at, D - 1));
    asm volatile("prefetch.global.L2 [%0];" ::"l"(line));
  }
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 0);
  wait_for_prior_grid();  // launched early (programmatic dependent launch): the partials come now
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 1);
  // Per split: its (m, l) pair in one 8-byte load (rows of D + 2 floats, D even: 8-byte aligned)
  // and the lane's value. Offsets from the row's first partial in 32 bits (a (b, kv head)'s
  // partials are at most splits * R * (D + 2) < 2^31 floats: merge_partials checks), clamped to a valid
  // split so that the loads are predicated rather than branched around.
  const int stride32 = int(stride);
  float top = -INFINITY, l = 0.0f, acc = 0.0f;
  for (int s0 = warp; s0 < splits; s0 += Batch * kWarpsPerBlock) {
    float2 ml[Batch];
    float v[Batch];
#pragma unroll
    for (int i = 0; i < Batch; ++i) {
      const int s = s0 + i * kWarpsPerBlock;
      const bool in = s < splits;
      const float* src = w + (in ? s : 0) * stride32;
      const float2 pair = *reinterpret_cast<const float2*>(src + D);
      const float value = src[has_d ? d : 0];
      ml[i] = in ? pair : make_float2(-INFINITY, 0.0f);
      v[i] = in && has_d ? value : 0.0f;
    }
    float next = top;
#pragma unroll
    for (int i = 0; i < Batch; ++i) next = fmaxf(next, ml[i].x);
    // Weights as in the combine below: without branches (an empty split's m is -inf, weight 0).
    const float ref = next == -INFINITY ? 0.0f : next * kLog2e;
    const float keep = fast_exp2(fmaf(top, kLog2e, -ref));  // the running sums' factor (0 while they are empty)
    l *= keep, acc *= keep;
#pragma unroll
    for (int i = 0; i < Batch; ++i) {
      const float e = fast_exp2(fmaf(ml[i].x, kLog2e, -ref));
      l += e * ml[i].y, acc += e * v[i];
    }
    top = next;
  }
  if (lane == 0) wtop[warp] = top, wl[warp] = l;
  wacc[warp][lane] = acc;
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 3);
  __syncthreads();
  if (warp != 0) return;
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 4);
  // Every lane reads the 16 warps' (m, l) itself (16-byte broadcast loads) rather than shuffling
  // them across the warp: two chains of 5 shuffles and 16 more for the weights were most of the
  // ~40 dependent steps between the barrier and the store.
  static_assert(kWarpsPerBlock % 4 == 0);
  const float4* wtop4 = reinterpret_cast<const float4*>(wtop);
  const float4* wl4 = reinterpret_cast<const float4*>(wl);
  auto max4 = [](float4 v) { return fmaxf(fmaxf(v.x, v.y), fmaxf(v.z, v.w)); };
  float row_top = sink;
#pragma unroll
  for (int j = 0; j < kWarpsPerBlock / 4; ++j) row_top = fmaxf(row_top, max4(wtop4[j]));
  // The weights without branches: exp2 of -inf is 0, so only an empty row (every m and the sink
  // -inf) needs its reference replaced.
  const float ref = row_top == -INFINITY ? 0.0f : row_top * kLog2e;
  float totals[2] = {fast_exp2(fmaf(sink, kLog2e, -ref)), 0.0f}, sums[2] = {0.0f, 0.0f};
#pragma unroll
  for (int j = 0; j < kWarpsPerBlock / 4; ++j) {
    const float4 m4 = wtop4[j], l4 = wl4[j];
    const float m[4] = {m4.x, m4.y, m4.z, m4.w}, l[4] = {l4.x, l4.y, l4.z, l4.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float weight = fast_exp2(fmaf(m[k], kLog2e, -ref));
      totals[k & 1] += weight * l[k], sums[k & 1] += weight * wacc[4 * j + k][lane];
    }
  }
  const float total = totals[0] + totals[1], sum = sums[0] + sums[1];
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 5);
  out.store(has_d, d, sum, total, row_top);
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 2);
}

// The merge of one row's 32-dim slice by one warp, for up to 32 splits (whole-SM blocks make 16 a
// (b, KV head) at 8 KV heads, 4 at 32): lane s holds split s's (m, l), every lane loads its dim of
// each split in one round, and the weights pass by shuffles, so no shared memory and no barrier.
// merge_slice_kernel's block of 16 warps (one round of loads, a barrier, warp 0 combining the
// warps' sums) took ~1.1 us from its wait to its stores at 128K (phase probe, session 36).
// MaxSplits: the loads a lane issues (predicated beyond `splits`). The sums run in split order.
// Placement: one warp a block, asking for ~100 KB of dynamic shared memory that it never touches,
// so that at most 2 blocks fit an SM. Launched early, the merge blocks wait wherever they fit while
// the split blocks run. In 4-warp blocks without the ask this kernel lost at 128K (session 36, H100:
// GQA 4 +0.4-0.55 us against merge_slice_kernel); the untested explanation is that whole-SM split
// blocks leave room on few SMs and the small blocks all piled up there. Only grids that fit one
// round at 2 blocks an SM take this kernel (see merge_partials); the numbers are in the header.
constexpr int kWarpMergeSmemBytes = 100000;
template <int MaxSplits>
__global__ void __launch_bounds__(32) merge_warp_kernel(KernelArgs p, int rows, int splits, const float* work) {
  static_assert(MaxSplits <= 32, "a lane holds one split's (m, l)");
  const int D = int(p.q.shape[3]), G = int(p.q.shape[1]) / int(p.k.heads), slices = (D + 31) / 32;
  const int lane = int(threadIdx.x), task = int(blockIdx.x);  // a block is one warp
  if (task >= rows * slices) return;  // whole warps
  const int r = task / slices, hk = int(blockIdx.y), b = int(blockIdx.z);
  const int d = (task - r * slices) * 32 + lane;
  const bool has_d = d < D;
  const int64_t stride = int64_t(rows) * (D + 2);
  int64_t row_first = (int64_t(b) * p.k.heads + hk) * splits * stride + int64_t(r) * (D + 2);
  const float sink = sink_of(p, int64_t(hk) * G + r % G);  // an input: read before the wait
  // Addresses before the wait, as in merge_slice_kernel (the compiler would sink them after it).
  asm volatile("" : "+l"(row_first));
  const float* w = work + row_first;
  const MergeOutput out(p, b, hk, G, r, d, has_d);
  // Lane s asks L2 for split s's lines: the slice's first and last value and its (m, l).
  const int stride32 = int(stride), slice_first = d - lane;
  if (lane < splits) {
    const float* split = w + lane * stride32;
    asm volatile("prefetch.global.L2 [%0];" ::"l"(split + slice_first));
    asm volatile("prefetch.global.L2 [%0];" ::"l"(split + min(slice_first + 31, D - 1)));
    asm volatile("prefetch.global.L2 [%0];" ::"l"(split + D));
  }
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 0);
  wait_for_prior_grid();  // launched early (programmatic dependent launch): the partials come now
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 1);
  const float2 ml = lane < splits ? *reinterpret_cast<const float2*>(w + lane * stride32 + D) : make_float2(-INFINITY, 0.0f);
  float v[MaxSplits];
#pragma unroll
  for (int s = 0; s < MaxSplits; ++s) v[s] = s < splits && has_d ? w[s * stride32 + d] : 0.0f;
  float top = ml.x;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xFFFFFFFFu, top, o));
  top = fmaxf(top, sink);
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 3);
  // exp2 of -inf is 0 (an empty split, the lanes beyond the splits): only an empty row needs its
  // reference replaced.
  const float ref = top == -INFINITY ? 0.0f : top * kLog2e;
  const float weight = fast_exp2(fmaf(ml.x, kLog2e, -ref));
  float total = weight * ml.y;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xFFFFFFFFu, total, o);
  total += fast_exp2(fmaf(sink, kLog2e, -ref));
  float sum = 0.0f;
#pragma unroll
  for (int s = 0; s < MaxSplits; ++s) sum += __shfl_sync(0xFFFFFFFFu, weight, s) * v[s];
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 5);
  out.store(has_d, d, sum, total, top);
  QSDPA_PHASE_IF(p.kc.kind != FormatKind::f32, 2);
}

template <int MaxSplits>
void launch_merge_warps(const cudaLaunchConfig_t& config, const KernelArgs& p, int rows, int splits, const float* work) {
  raise_dynamic_smem<merge_warp_kernel<MaxSplits>>(kWarpMergeSmemBytes);
  QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, merge_warp_kernel<MaxSplits>, p, rows, splits, work));
}

// One block per query row: weights exp(lse_r - top) over the shards, then the weighted sum per dim.
__global__ void __launch_bounds__(128) shard_merge_kernel(const uint8_t* parts, int world, size_t part_bytes,
                                                          size_t lse_offset, TensorView out, const float* sinks,
                                                          float* lse, int64_t Hq, int64_t Lq, int64_t D) {
  const int64_t row = blockIdx.x, b = row / (Hq * Lq), h = (row / Lq) % Hq, i = row % Lq;
  auto shard_lse = [&](int r) { return reinterpret_cast<const float*>(parts + r * part_bytes + lse_offset)[row]; };
  float top = sinks ? sinks[h] : -INFINITY;
  for (int r = 0; r < world; ++r) top = fmaxf(top, shard_lse(r));
  float total = 0.0f;
  if (top != -INFINITY) {
    if (sinks) total = expf(sinks[h] - top);
    for (int r = 0; r < world; ++r) {
      const float l = shard_lse(r);
      if (l != -INFINITY) total += expf(l - top);
    }
  }
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    float o = 0.0f;
    if (total > 0.0f)
      for (int r = 0; r < world; ++r) {
        const float l = shard_lse(r);
        if (l != -INFINITY) o += expf(l - top) * detail::load_float(parts + r * part_bytes, out.dtype, row * D + d);
      }
    detail::store_float(out.data, out.dtype, out.offset(b, h, i, d), total > 0.0f ? o / total : 0.0f);
  }
  if (lse && threadIdx.x == 0) lse[row] = total > 0.0f ? top + logf(total) : -INFINITY;
}

}  // namespace

void merge_shards(const uint8_t* parts, int world, size_t part_bytes, const AttentionArgs& a, cudaStream_t stream) {
  const int64_t Hq = a.q.shape[1], Lq = a.q.shape[2], D = a.q.shape[3], rows = a.q.shape[0] * Hq * Lq;
  const size_t lse_offset = size_t(rows * D) * size_t(dtype_size(a.q.dtype));
  shard_merge_kernel<<<unsigned(rows), 128, 0, stream>>>(parts, world, part_bytes, lse_offset, a.out, a.sinks, a.lse,
                                                         Hq, Lq, D);
  QSDPA_CUDA_CHECK(cudaGetLastError());
}

float* partials_workspace(size_t bytes) {
  // One buffer per device: a device's kernels cannot use another's memory without peer access.
  static std::mutex mu;
  static void* ptr[kMaxDevices] = {};
  static size_t size[kMaxDevices] = {};
  int dev = 0;
  QSDPA_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= kMaxDevices)
    throw Error("attention: device " + std::to_string(dev) + ": the shared workspace holds devices 0 to " +
                std::to_string(kMaxDevices - 1) + "; pass AttentionArgs::workspace");
  std::lock_guard<std::mutex> lock(mu);
  if (bytes > size[dev]) {
    if (ptr[dev]) QSDPA_CUDA_CHECK(cudaFree(ptr[dev]));
    QSDPA_CUDA_CHECK(cudaMalloc(&ptr[dev], bytes));
    size[dev] = bytes;
  }
  return static_cast<float*>(ptr[dev]);
}

// A device attribute, asked once per device: the call's host work is part of every decode step's
// latency. `fallback` where the query fails.
template <cudaDeviceAttr Attr>
static int cached_attribute(int fallback) {
  static std::atomic<int> cached[kMaxDevices] = {};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) return fallback;
  int value = cached[dev].load(std::memory_order_relaxed);
  if (value == 0) {
    if (cudaDeviceGetAttribute(&value, Attr, dev) != cudaSuccess || value <= 0) value = fallback;
    cached[dev].store(value, std::memory_order_relaxed);
  }
  return value;
}

int sm_count() { return cached_attribute<cudaDevAttrMultiProcessorCount>(132); }

size_t partials_bytes(const AttentionArgs& a, int splits) {
  const int64_t B = a.q.shape[0], Hkv = a.k.heads, rows = a.q.shape[1] / Hkv * a.q.shape[2], D = a.q.shape[3];
  return size_t(B * Hkv * splits) * size_t(rows) * size_t(D + 2) * sizeof(float);
}

float* partials_buffer(const AttentionArgs& a, size_t bytes) {
  if (!a.workspace) return partials_workspace(bytes);
  if (a.workspace_bytes < bytes)
    throw Error("attention: workspace: expected at least " + std::to_string(bytes) +
                " bytes (attention_workspace_bytes), got " + std::to_string(a.workspace_bytes));
  if (reinterpret_cast<uintptr_t>(a.workspace) % 16 != 0)
    throw Error("attention: workspace: device pointers must be 16-byte aligned");
  return static_cast<float*>(a.workspace);
}

bool sm90_or_newer() { return cached_attribute<cudaDevAttrComputeCapabilityMajor>(1) >= 9; }

void merge_partials(const KernelArgs& p, int rows, int splits, const float* work, bool rotated, cudaStream_t stream) {
  const unsigned B = unsigned(p.q.shape[0]), Hkv = unsigned(p.k.heads);
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(unsigned(rows), Hkv, B);
  config.blockDim = dim3(kMergeThreads);
  config.stream = stream;
  // Programmatic dependent launch (sm_90): the merge is launched while the split kernel runs and
  // waits in wait_for_prior_grid, so its launch latency leaves the critical path (a few us, most
  // of a short-context call).
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  if (sm90_or_newer()) {
    config.attrs = attr;
    config.numAttrs = 1;
  }
  QSDPA_PHASE_HOST("the merge kernel");
  const int64_t D = p.q.shape[3];  // <= 512 (the split kernels' limit)
  // The slice kernel loads a partial's (m, l) as one float2: rows of D + 2 floats keep it 8-byte
  // aligned for even D only (f16/f32 caches may have any D on the fallback split kernel).
  const bool slices = (!rotated || p.vc.kind != FormatKind::turbo) && D % 2 == 0 &&
                      int64_t(splits) * rows * (D + 2) <= INT_MAX && QSDPA_MERGE_SLICES;
  // The warp merge where it was measured to win (session 37, H200: B = 1, GQA 4 and MHA): sm_90's
  // early launch, and a grid that fits one round at 2 blocks an SM. Larger grids (batches) keep
  // merge_slice_kernel, whose 16-warp blocks take 16 tasks each.
  const int64_t tasks = int64_t(rows) * ((D + 31) / 32);
  const bool warp_merge = slices && splits <= 32 && QSDPA_MERGE_WARPS && sm90_or_newer() &&
                          tasks * Hkv * B <= int64_t(2) * sm_count();
  if (warp_merge) {
    config.gridDim.x = unsigned(tasks);
    config.blockDim = dim3(32);
    config.dynamicSmemBytes = kWarpMergeSmemBytes;
    if (splits <= 8) launch_merge_warps<8>(config, p, rows, splits, work);
    else if (splits <= 16) launch_merge_warps<16>(config, p, rows, splits, work);
    else launch_merge_warps<32>(config, p, rows, splits, work);
  } else if (slices) {
    // A round of loads covering a warp's splits: 16 warps, 1 to 8 splits each (more loop).
    const int per_warp = (splits + kMergeThreads / 32 - 1) / (kMergeThreads / 32);
    config.gridDim.x = unsigned(rows * ((D + 31) / 32));
    if (per_warp <= 1) QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, merge_slice_kernel<1>, p, rows, splits, work));
    else if (per_warp <= 2) QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, merge_slice_kernel<2>, p, rows, splits, work));
    else if (per_warp <= 4) QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, merge_slice_kernel<4>, p, rows, splits, work));
    else QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, merge_slice_kernel<8>, p, rows, splits, work));
  } else if (D <= 64) QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, merge_kernel<2>, p, rows, splits, work, rotated));
  else if (D <= 128) QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, merge_kernel<4>, p, rows, splits, work, rotated));
  else if (D <= 256) QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, merge_kernel<8>, p, rows, splits, work, rotated));
  else QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, merge_kernel<16>, p, rows, splits, work, rotated));
  QSDPA_CUDA_CHECK(cudaGetLastError());
}

}  // namespace qsdpa::cuda
