// Host side of the tensor-core split-key attention (kernel and design: attention_mma.cuh): which
// calls it takes, which compiled instance runs them, and how many blocks split the keys.
#include <algorithm>
#include <cstdlib>

#include "cuda/attention_mma.cuh"
#include "cuda/device.hpp"

namespace qsdpa::cuda {
namespace mma {
namespace {

// An integer switch for A/B runs (stage abenv of gpu-check.sh): the environment's value clamped to
// [lo, hi], or fallback.
int env_switch(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  return v ? std::clamp(std::atoi(v), lo, hi) : fallback;
}

Fam family_of(const Format& f) {
  switch (f.kind) {
    case FormatKind::f16: return Fam::f16;
    case FormatKind::affine:  // the fast decoders read f16 scales and biases
      if (f.scale_dtype != ScaleDType::f16) return Fam::generic;
      return f.bits == 4 ? Fam::u4 : f.bits == 8 ? Fam::u8 : Fam::generic;
    case FormatKind::mxfp4: return Fam::e2m1;
    case FormatKind::nvfp4: return Fam::nv4;
    case FormatKind::mxfp8:
    case FormatKind::fp8: return Fam::e4m3;
    case FormatKind::turbo: return f.bits == 2 ? Fam::turbo2 : f.bits == 3 ? Fam::turbo3 : Fam::turbo4;
    default: return Fam::generic;
  }
}

// Query rows (R = G * Lq) per block: 8 per n-tile, at most 256 / D tiles (the accumulators are
// D * NT / 8 registers a lane), or 4 in tile code 0 (tile_rows: lo terms as columns). More rows
// than that go to several blocks per split ("row chunks").
constexpr int64_t kMaxRows = 256;  // beyond this the generic kernel takes the call (docs/decisions.md)

int64_t rows_of(const AttentionArgs& a) { return a.q.shape[1] / a.k.heads * a.q.shape[2]; }

// Whether a cache's scale and bias rows (and the steps between them) are aligned to `bytes`.
bool scale_rows_aligned(const CacheView& c, int64_t bytes) {
  for (int i = 0; i < 3; ++i)
    if (c.scale_strides[i] % bytes != 0 || c.bias_strides[i] % bytes != 0) return false;
  return reinterpret_cast<uintptr_t>(c.scales) % bytes == 0 && reinterpret_cast<uintptr_t>(c.biases) % bytes == 0;
}

// The key side's family: affine 4-bit keys take the family of their group size (a row's scales and
// biases in one load each, each group's applied once) where those rows (2 D / group bytes) are
// aligned for it, else u4 (a load per 32-dim block).
Fam key_family_of(const CacheView& k, int64_t D) {
  const Fam fam = family_of(k.format);
  const int group = k.format.group;
  if (fam != Fam::u4 || !(group == 32 || group == 64 || group == 128) || !scale_rows_aligned(k, 2 * D / group)) return fam;
  return group == 32 ? Fam::u4g32 : group == 64 ? Fam::u4g64 : Fam::u4g128;
}

Instance pick_at(const AttentionArgs& a, int nt) {
  const Fam kf = key_family_of(a.k, a.q.shape[3]), vf = family_of(a.v.format);
  const int D = int(a.q.shape[3]);
  if (D == 64 && nt == 0) return pick_pair<64, 0>(kf, vf);
  if (D == 64 && nt == 1) return pick_pair<64, 1>(kf, vf);
  if (D == 64 && nt == 2) return pick_pair<64, 2>(kf, vf);
  if (D == 64 && nt == 4) return pick_pair<64, 4>(kf, vf);
  if (D == 128 && nt == 0) return pick_pair<128, 0>(kf, vf);
  if (D == 128 && nt == 1) return pick_pair<128, 1>(kf, vf);
  if (D == 128 && nt == 2) return pick_pair<128, 2>(kf, vf);
  if (nt == 0) return pick_pair<256, 0>(kf, vf);
  return pick_pair<256, 1>(kf, vf);
}

// Tile code 0 (4 rows, lo terms as columns) for up to 4 rows where the pair has it (not the generic
// decoders), but not for f16 caches, which measured slower with it (below; not understood: their
// loop is bound by memory, and lost 26 of its instructions a step). Rows with causal ranges of
// their own (GQA 1-2 at Lq 2-4) take it too since session 25 (the CUDA suite passed with them on
// it, docs/gpu-tests.md). QSDPA_PACK_LO=0 turns it off, 2 takes f16 too (A/B switches).
// A/B (session 24, H100, B=1, Hq 32, D 128, one build, µs, one tile -> code 0): GQA 4 32K mxfp4
// 23.6 -> 21.9, nvfp4 25.1 -> 22.8, affine4 29.8 -> 27.1, mxfp8 33.5 -> 32.9, turbo4 36.6 -> 34.0;
// 128K mxfp4 66.1 -> 63.7, nvfp4 71.7 -> 65.6, affine4 87.7 -> 78.2, mxfp8 106 -> 105, turbo4 115
// -> 107; MHA 128K mxfp4 230 -> 213, affine4 311 -> 274; 1K mxfp4 5.49 -> 5.10; but f16 32K 51.3
// -> 52.5, 128K 184 -> 187.
bool packed_rows(const AttentionArgs& a) {
  static const int mode = env_switch("QSDPA_PACK_LO", 1, 0, 2);
  const bool f16_pair = family_of(a.k.format) == Fam::f16 && family_of(a.v.format) == Fam::f16;
  return mode != 0 && (mode == 2 || !f16_pair) && rows_of(a) <= tile_rows(0) && pick_at(a, 0).run != nullptr;
}

// The tile code: 0 where packed_rows, else the smallest tile count that holds all rows, up to
// 256 / D; pairs on the generic decoders exist for one tile only, and take more row chunks instead.
int n_tiles(const AttentionArgs& a) {
  if (packed_rows(a)) return 0;
  const int64_t R = rows_of(a), D = a.q.shape[3];
  const int max_tiles = std::max(1, int(256 / D));
  int nt = 1;
  while (nt < max_tiles && R > 8 * nt) nt *= 2;
  if (nt > 1 && pick_at(a, nt).run == nullptr) nt = 1;
  return nt;
}

int row_chunks(const AttentionArgs& a) {
  const int64_t rp = tile_rows(n_tiles(a));
  return int((rows_of(a) + rp - 1) / rp);
}

Instance pick(const AttentionArgs& a) { return pick_at(a, n_tiles(a)); }

bool strides_aligned(const CacheView& c, int64_t bytes) {
  for (int i = 0; i < 3; ++i)
    if (c.code_strides[i] % bytes != 0) return false;
  return reinterpret_cast<uintptr_t>(c.codes) % bytes == 0;
}

// The kernel loads affine's and turbo's f16 scales and biases, and a whole row of mx / nvfp4 scale bytes (D/32
// or D/16 of them), in single aligned loads (KRow).
bool scale_strides_aligned(const CacheView& c, int64_t D) {
  const Fam f = family_of(c.format);
  int64_t bytes = 1;
  if (f == Fam::u4 || f == Fam::u8 || is_turbo(f)) bytes = 2;  // turbo: the row's f16 scale
  else if ((f == Fam::e2m1 || f == Fam::e4m3) && c.format.kind != FormatKind::fp8) bytes = D / 32;
  else if (f == Fam::nv4) bytes = D / 16;
  return bytes == 1 || scale_rows_aligned(c, bytes);
}

}  // namespace
}  // namespace mma

using namespace mma;

bool attention_mma_supports(const AttentionArgs& a) {
  const int64_t D = a.q.shape[3];
  if (a.mask.data || !(D == 64 || D == 128 || D == 256) || rows_of(a) > kMaxRows) return false;
  for (const CacheView* c : {&a.k, &a.v}) {
    // 32-bit key indices and per-token strides in the kernel's address arithmetic.
    if (c->tokens > INT32_MAX || c->code_strides[2] > UINT32_MAX || c->scale_strides[2] > UINT32_MAX ||
        c->bias_strides[2] > UINT32_MAX)
      return false;
    const FormatKind kind = c->format.kind;
    if (kind == FormatKind::f32 || kind == FormatKind::bf16) return false;
    if (family_of(c->format) != Fam::generic && !strides_aligned(*c, 16)) return false;
    if (!scale_strides_aligned(*c, D)) return false;
  }
  return pick(a).run != nullptr;
}

bool attention_mma_pair_compiled(const AttentionArgs& a) { return pick(a).compiled_pair; }

// The largest cluster the in-kernel merge takes: kMaxCluster, or QSDPA_MAX_CLUSTER (read once;
// 1 turns clusters off).
static int max_cluster() {
  static const int value = env_switch("QSDPA_MAX_CLUSTER", kMaxCluster, 1, kMaxCluster);
  return value;
}

struct Split {
  int splits;         // per (b, kv head)
  int cluster;        // > 1: the splits merge in a cluster of that many blocks (cluster_of)
  int cluster_warps;  // warps per block of the cluster kernel
  bool whole_sm = false;  // whole-SM blocks (attention_mma.cuh, whole_sm_warps)
};

// On sm_90, when all splits of a (b, kv head) fit one thread-block cluster (2 to 16 blocks; short
// contexts: N <= 2K at B=1, GQA 4; larger batches) and every cluster is resident at once, the
// splits merge inside the kernel (attention_mma.cuh) and there is no merge kernel; otherwise the
// partials go to the workspace for it. Row chunks keep the merge kernel.
static int cluster_of(const AttentionArgs& a, const Instance& inst, int splits, int warps = kWarps) {
  if (splits < 2 || splits > max_cluster() || row_chunks(a) != 1 || !inst.clusters || !sm90_or_newer()) return 1;
  const auto resident = warps == kWideWarps ? inst.wide_clusters : warps == kWarps ? inst.clusters : inst.sm_clusters;
  return resident != nullptr && resident(splits) >= a.q.shape[0] * a.k.heads ? splits : 1;
}

// Whole-SM blocks, for the pairs that have them (affine 4-bit, mxfp4 and nvfp4 caches;
// attention_mma.cuh, whole_sm_warps), where the call would take one wave of 4-warp blocks and the
// merge kernel and has at least QSDPA_WHOLE_SM keys (default 8K; 0: never, an A/B switch): one
// block a SM, splits = SMs / (B * Hkv * row chunks) rounded down, each warp keeping at least 32
// keys. mxfp4 and nvfp4 take them where a block has at least kWholeSmFp4Keys keys. Session 31 (H100)
// set that at 4096: at 32K with 16 splits of ~2K (B = 1, 8 KV heads) they were ~1% slower, with 4K
// (64K keys) 3-4% faster. Session 40 (H200, A B twice in one call, 1024 keys and QSDPA_WHOLE_SM 16K,
// GQA 4, us): mxfp4 16K 13.20 -> 12.92, 24K 15.90 -> 15.55, 32K 19.09 -> 18.07, 48K 25.00 -> 23.07;
// nvfp4 32K 18.91 -> 18.40, 48K 24.81 -> 23.52; affine4 16K 14.78 -> 14.16, 24K 18.55 -> 17.62;
// 64K-128K unchanged. Not measured on an H100, where session 31 saw the opposite at 32K.
// Session 41 (H200, QSDPA_WHOLE_SM 8192 or 4096 against 16384 in one binary, A B x2-3 in two calls,
// us): from 8K keys GQA 4 affine4 8K 10.97 -> 10.40, 12K 13.41 -> 12.70, affine4-g32 8K 11.20 ->
// 10.70, 12K 13.83 -> 13.24, MHA 8K mxfp4 17.60 -> 17.20 (mxfp4 / nvfp4 at GQA 4 below 16K: fewer
// than 1024 keys a block, unchanged); from 4K keys also 4K-6K, which lost (affine4 4K 7.85 -> 8.90,
// 6K 9.61 -> 9.92, MHA 4K +2-3%): there a block's 16 warps get one or two 16-key steps each.
//
// Where all splits of a (b, kv head) fit one cluster, the pair has the cluster kernel (up to 8 rows
// a block: attention_mma.cuh, whole_sm_warps) and the GPU holds every such cluster at once
// (the H100 holds 66 clusters of 2 SMs, 39 of 3, 30 of 4, 15 of 8 and 7 of 16: its GPCs hold 16-18
// SMs but one: B * Hkv = 8 with 16 splits does not fit, nor MHA's 32 with 4; 27-30, 34-39 and
// 45-66 KV heads do), the blocks merge in it as the short calls' clusters do and there is no merge
// kernel (session 31, B 8 at 32K, A B A B, us: affine4 133 / 133 -> 128 / 130, mxfp4 114 -> 111,
// nvfp4 119 -> 114).
// QSDPA_WHOLE_SM_CLUSTER=0 turns that off (an A/B switch).
constexpr int64_t kWholeSmFp4Keys = 1024;
static Split whole_sm_split(const AttentionArgs& a, const Instance& inst, int64_t per_split, int64_t sms) {
  static const int from = env_switch("QSDPA_WHOLE_SM", 8192, 0, 1 << 30);
  static const bool in_clusters = env_switch("QSDPA_WHOLE_SM_CLUSTER", 1, 0, 1) == 1;
  const int W = inst.whole_sm_warps;
  if (from == 0 || W == 0 || a.k.tokens < from) return {0, 1, kWarps};
  const int64_t splits = std::min<int64_t>(sms / per_split, a.k.tokens / (32 * W));
  const bool affine = family_of(a.k.format) == Fam::u4;
  if (splits < 1 || (!affine && a.k.tokens < kWholeSmFp4Keys * splits)) return {0, 1, kWarps};
  if (in_clusters && cluster_of(a, inst, int(splits), W) > 1) return {int(splits), int(splits), W};
  return {int(splits), 1, kWarps, true};
}

// Blocks per (b, kv head, row chunk): at most one full wave of resident blocks (rounded down: a
// wave of 396 blocks plus a tail of 4 takes two block times, which the 8-bit formats at 3 blocks
// per SM paid until session 4), each warp keeping at least 32 keys. Short contexts whose blocks
// fit one per SM take one 16-key step per warp instead: a call's time is then the latency of one
// block (a warp's step runs ~3800 cycles alone on its scheduler, ncu at 1K), so twice the blocks
// with half the steps finish sooner (1K: 13-15 -> 11-12 us); with several blocks per SM (4K) the
// extra partials cost more than they save (measured: f16 18 -> 20 us). Session 10 (H100, A/B):
// two or three waves of shorter blocks, for SMs that finish early to take more, were slower by
// ~7 us a wave at 32K and 128K (mxfp4 27 -> 34 -> 42 us at 32K): the SMs already end within ~5 us
// of each other, and every block pays its prologue and epilogue; capping 4K-8K at 16 splits, so
// that they merge in a cluster instead of the merge kernel, was within 3% for f16, mxfp4, nvfp4
// and mxfp8 at 4K and slower elsewhere (affine4 16 -> 19 us at 4K, 19 -> 28 at 8K). Session 12
// (H100, A/B, us; warps x steps a warp, splits = cluster size): at 1K 8 x 1 (8 splits) against the
// old 4 x 1 (16): f16 8.05 -> 7.80, mxfp4 7.08 -> 6.70, mxfp8 7.78 -> 7.32, turbo3 10.17 -> 9.10;
// 4 x 2 (8): f16 8.24, mxfp4 6.73; 8 x 2 (4): f16 9.0. At 2K 8 x 2 (8) against the old 4 x 2 (16):
// f16 9.85 -> 9.71, mxfp4 7.96 -> 7.77, mxfp8 9.40 -> 9.15, turbo3 12.08 -> 10.80; 8 x 1 (16):
// f16 10.39, mxfp4 9.24. At 4K clusters of 16 (8 x 2 or 4 x 4) were slower than the merge kernel
// (mxfp4 10.87 -> 11.70, affine4 14.1 -> 14.7 or 16.7). A first rule that also took clusters of 4
// (MHA 1K: 8 x 2, 4 splits, against 4 x 2 with 8) ran MHA 1K slower than session 11 had (f16
// 12.37 -> 12.85, mxfp4 9.76 -> 10.68; different sessions), hence 5 to 8 splits at one block per SM.
static Split mma_split(const AttentionArgs& a, const Instance& inst) {
  const int64_t B = a.q.shape[0], Hkv = a.k.heads, per_split = B * Hkv * row_chunks(a), sms = sm_count();
  // One block per SM (the latency regime) and 5 to 8 splits of one step per warp, else of two, in
  // blocks of 8 warps (1K and 2K at B=1, GQA 4; attention_mma.cuh, kWideWarps).
  if (8 * per_split <= sms)
    for (int64_t steps = 1; steps <= 2; ++steps) {
      const int64_t keys = 16 * kWideWarps * steps, splits = (a.k.tokens + keys - 1) / keys;
      if (splits > 4 && splits <= 8 && cluster_of(a, inst, int(splits), kWideWarps) > 1)
        return {int(splits), int(splits), kWideWarps};
    }
  int splits;
  const int64_t one_step = (a.k.tokens + 16 * kWarps - 1) / (16 * kWarps);
  if (one_step * per_split <= sms) {
    splits = int(std::max<int64_t>(1, one_step));
  } else {
    if (const Split whole = whole_sm_split(a, inst, per_split, sms); whole.splits > 0) return whole;
    // A/B switch (session 25): the wave counts at most QSDPA_WAVE_BLOCKS blocks a SM (0: all resident).
    static const int wave_blocks = env_switch("QSDPA_WAVE_BLOCKS", 0, 0, 64);
    const int64_t resident = wave_blocks > 0 ? std::min(wave_blocks, inst.resident()) : inst.resident();
    const int64_t wave = std::max<int64_t>(1, sms * resident / per_split);
    splits = int(std::max<int64_t>(1, std::min<int64_t>(wave, (a.k.tokens + 32 * kWarps - 1) / (32 * kWarps))));
  }
  if (const int cluster = cluster_of(a, inst, splits); cluster > 1) return {splits, cluster, kWarps};
  // The merge kernel costs a short call ~1.5-2 us (its launch and the partials' round trip through
  // memory): down to half the splits, the largest count that merges in clusters instead, if its
  // blocks still cover every SM and their warps take at most max_steps steps (f16's are cheap).
  // A/B (session 19, H100, MHA, 16 splits and the merge kernel -> 8 in clusters, µs): 2K f16 19.32
  // -> 17.37, mxfp4 12.82 -> 11.33, turbo4 16.85 -> 16.67; 4K (8 steps) f16 31.27 -> 30.01 but
  // mxfp4 16.74 -> 17.00 and turbo4 24.73 -> 26.70. GQA 4 at 4K (16 splits: 128 blocks, fewer than
  // the SMs) was slower in session 10.
  static const int max_steps_env = env_switch("QSDPA_CLUSTER_STEPS", -1, 0, 64);  // A/B switch; 0: off
  const bool f16_pair = a.k.format.kind == FormatKind::f16 && a.v.format.kind == FormatKind::f16;
  const int64_t max_steps = max_steps_env >= 0 ? max_steps_env : f16_pair ? 8 : 4;
  // A/B switch: clusters of 9-16 were slower (12 splits at MHA 2K-4K: f16 2K 17.35 -> 17.89 us).
  static const int largest = env_switch("QSDPA_CLUSTER_RULE_MAX", 8, 2, kMaxCluster);
  for (int c = std::min(splits - 1, largest); 2 * c >= splits && c >= 2; --c) {
    const int64_t steps = (a.k.tokens + int64_t(16 * kWarps) * c - 1) / (int64_t(16 * kWarps) * c);
    if (steps > max_steps || per_split * c < sms) break;
    if (cluster_of(a, inst, c) > 1) return {c, c, kWarps};
  }
  return {splits, 1, kWarps};
}

MmaPlan attention_mma_plan(const AttentionArgs& a) {
  const Instance inst = pick(a);
  const Split split = mma_split(a, inst);
  return {split.splits, split.cluster, split.cluster > 1 ? split.cluster_warps : split.whole_sm ? inst.whole_sm_warps : kWarps};
}

size_t attention_mma_workspace_bytes(const AttentionArgs& a) {
  const Split split = mma_split(a, pick(a));
  return split.cluster > 1 ? 0 : partials_bytes(a, split.splits);
}

void attention_mma(const AttentionArgs& a, int32_t* status, cudaStream_t stream) {
  const int64_t Hq = a.q.shape[1], Lq = a.q.shape[2], Hkv = a.k.heads;
  MmaParams p;
  static_cast<KernelArgs&>(p) = kernel_args(a, status);
  p.rows = int(Hq / Hkv * Lq);
  if (a.k.format.kind == FormatKind::turbo) fmt::turbo_luts(p.k_levels.v, a.k.format.bits, &p.k_luts[0], &p.k_luts[1]);
  if (a.v.format.kind == FormatKind::turbo) fmt::turbo_luts(p.v_levels.v, a.v.format.bits, &p.v_luts[0], &p.v_luts[1]);
  const Instance inst = pick(a);
  const Split split = mma_split(a, inst);
  p.splits = split.splits;
  p.cluster = split.cluster;
  p.cluster_warps = split.cluster_warps;
  p.cluster_magic = p.cluster > 1 ? 0xFFFFFFFFu / uint32_t(p.cluster) + 1u : 0u;
  p.row_chunks = row_chunks(a);
  p.heads_per_kv = detail::Divider::of(int(Hq / Hkv));
  p.split_div = detail::Divider::of(p.splits);
  p.chunk_div = detail::Divider::of(p.row_chunks);
  // q in 16-byte octets (the prologue's fast staging): d contiguous, every row's start and the data
  // 16-byte aligned.
  const int64_t q_align = a.q.dtype == DType::f32 ? 4 : 8;
  p.q_octets = a.q.strides[3] == 1 && a.q.strides[0] % q_align == 0 && a.q.strides[1] % q_align == 0 &&
               a.q.strides[2] % q_align == 0 && reinterpret_cast<uintptr_t>(a.q.data) % 16 == 0;
  // The split kernel is launched while the kernel before it in the stream ends (programmatic
  // dependent launch, sm_90; QSDPA_SPLIT_PDL=0 turns it off): its launch leaves the critical path.
  static const bool programmatic = env_switch("QSDPA_SPLIT_PDL", 1, 0, 1) == 1;
  p.programmatic = programmatic && sm90_or_newer();
  // The cluster kernel lets the kernel after it launch early (griddepcontrol.launch_dependents at
  // its start) where the call has at most one block per SM: the next call's blocks then wait on SMs
  // this grid leaves free or leaves first. A/B (session 20, H100, gated timing, both at once in one
  // build, µs): GQA 4 (128 blocks) 1K mxfp4 6.09 -> 5.54, turbo4 7.35 -> 6.80, 2K mxfp4 7.07 ->
  // 6.53, turbo4 9.13 -> 8.56, f16 unchanged; but MHA (more blocks than SMs) mxfp4 1K 8.47 -> 8.86,
  // 2K 11.26 -> 12.44 (turbo4 gained 0.9). The merge kernel doing the same cost GQA 4 at 4K 0.1-1.6
  // us (32K gained 0.2-0.5): not taken. QSDPA_EARLY_NEXT: 0 never, 1 this rule, 2 every cluster call.
  // Session 40 (H200; not kept, diff in -session40-raw/call1): the merge's trigger at its start with
  // the ordinary split kernel's moved after its loop (the next call's merge then cannot park on SMs
  // its split blocks need): GQA 4 4K 5-14% slower (the merge's launch back on the path), 16K-128K
  // f16, mxfp8 and turbo4 0.3-1.7% faster, the 4-bit formats 1-5% slower, MHA 32K f16 +8%.
  static const int early_next = env_switch("QSDPA_EARLY_NEXT", 1, 0, 2);
  const int64_t blocks = int64_t(p.splits) * p.row_chunks * a.k.heads * a.q.shape[0];
  p.early_next = p.cluster > 1 && (early_next == 2 || (early_next == 1 && blocks <= sm_count()));
  p.whole_sm = split.whole_sm;
  p.work = p.cluster > 1 ? nullptr : partials_buffer(a, partials_bytes(a, p.splits));
  inst.run(p, unsigned(p.splits), stream);
  QSDPA_CUDA_CHECK(cudaGetLastError());
#ifndef QSDPA_SKIP_MERGE  // timing experiments only (docs/gpu-tests.md, session 7): the output is then unwritten
  if (p.cluster == 1) merge_partials(p, p.rows, p.splits, p.work, /*rotated=*/false, stream);  // turbo: un-rotated by the blocks
#endif
}

}  // namespace qsdpa::cuda
