// Tensor-core split-key decode attention (issue 3): for R = G*Lq query rows per KV head up to 256
// (a block holds 8*NT rows with D*NT <= 256, or up to 4 rows with their lo terms as columns: tile
// code 0, see tile_rows; more rows take several blocks per split, "row chunks"),
// no array mask, K and V formats whose values f16 terms hold exactly (everything but f32 and bf16
// caches). Instances: attention_mma_d*.cu; host side: attention_mma.cu.
//
// Work split: grid (blocks_per_head, Hkv, B) with one full wave of resident blocks, 4 warps per
// block (8 in the cluster kernel below; 16, one block a SM, for affine 4-bit caches from 8K keys
// and mxfp4 / nvfp4 from 1024 keys a block: whole_sm_warps, which merge in a cluster instead of the
// merge kernel where the GPU holds every KV head's cluster); each warp streams its own share of the
// block's slice of keys, 16 keys per step, with its own online softmax, so warps never wait for
// each other; at the end the warp partials merge in shared memory and the block writes one partial
// (partials.cuh), merged across blocks by a second small kernel. Short contexts on sm_90 (all
// splits of a (b, kv head) in one thread-block cluster: N <= 2K at B=1, GQA 4) skip that kernel:
// each block pushes its partial rows with st.async into the shared memory of the cluster block that
// owns them, which merges and writes the output (session 8: 1K-2K calls ~1 us, 8-12% faster). That
// path is a second kernel per instance (Cluster = true; with 4, 8 or 16 warps): in the same kernel
// its code moved the loop's register allocation.
// Per step of 16 keys a warp computes S^T = K Q^T with mma.sync m16n8k16 (M = 16 keys, N = 8 query
// rows per n-tile, K = 16 dims, f16 products, f32 accumulators), then O^T += V^T P^T (M = 16 dims,
// N = query rows, K = 16 keys): every K/V byte is read once for all rows of its KV head (GQA sharing)
// and multiplied on tensor cores; the f32 CUDA cores only run the softmax.
// Layout trick: a dot product does not care about the order of its dims, so each lane's fragment is
// built from pieces of rows that load whole (K: lane t of a key holds octet t of every 32-dim block,
// so that an mma k-step never leaves a block; V: lane g holds dims [g*D/8, (g+1)*D/8) of 4 keys) and
// q's fragments, built once per block in shared memory, follow the same permutation. Rows are decoded
// an "octet" (8 values) at a time into 4 half2 with the pairing (0,2) (1,3) (4,6) (5,7), which the
// bit tricks give cheaply (formats/f16_bits.hpp): f16 with prmt, 4/8-bit with the 0x6400 magic
// number, E2M1 by placing its bits in an f16 (11 ALU operations per octet), E4M3 with
// cvt.rn.f16x2.e4m3x2. Group scales: on the K side they multiply each 32-dim block's f32 partial
// score (affine adds bias * q's block sum), so K codes enter the tensor cores unscaled as one exact
// term; on the V side (the PV product sums over keys, each with its own scale) the codes are scaled
// in f16 first; mxfp4/nvfp4 V words of two keys are interleaved by bytes before decoding, which
// lands each value pair straight in an A-fragment register. Precision: values enter as exact f16
// terms (see n_terms) and q and P as hi + lo f16 pairs, so scores keep f32-level accuracy (SPEC §2
// holds for sharp softmaxes); per-tensor factors (fp8's scale, nvfp4's global scale) are applied in
// f32. A V group scale outside f16's exact range sets status bit 2 (the output is then invalid)
// rather than answering wrongly.
//
// Bytes and operations (B=1, Hq=32, Hkv=8, D=128, N=128K): mxfp4 K+V = 2*128K*8*(64+4) B = 143 MB
// (48 us at the 2978 GB/s copy peak); per 16 keys and 16 dims 4 mma (2 for q/P hi+lo, each side),
// affine 7, i.e. tensor cores at a few percent of their rate. The loop is bound by instruction issue
// and latency: ncu (session 5, mxfp4 at 128K) shows 6.1 cycles between a warp's instructions at 3.5
// warps per scheduler, of which 1.4 waiting on fixed-latency results, 1.0 for the ALU pipe (bit
// operations issue at half the FP32 rate), 0.5 for loads; the ALU pipe is 53% busy. SASS hot loop
// per 16-key step (D=128, one row tile, scripts/sass_loop.py), session 4 -> session 5: E2M1 673 ->
// 530, nvfp4 633 -> 552, E4M3 624 -> 548, affine4 909 -> 757, affine8 786 -> 695, f16 334 -> 327
// (one tile of codes loaded a step ahead instead of two tiles copied each step, mxfp4 V scales in
// one f16 multiply, exp2 without its range fix-up, no mask work on steps every row sees whole;
// affine4 V codes paired before scaling with the bias as one small mma, u4 with two fewer shifts).
// Turbo (session 6): codebook lookups by byte permutes into f16 hi + lo terms, key rows split into
// lane-contiguous quarters, the V row scale folded into P. Session 7: the loop is software-pipelined
// (step i's QK and softmax beside step i-1's PV) and the softmax's reference point moves only when a
// score exceeds it by 2^8, for the 4-bit and turbo families (session 8: E4M3:E4M3 too); common path
// per 16-key step (D=128): E2M1 461, nvfp4 478, affine4 644, turbo4 747, E4M3 442, f16 273.
// (Session 8's first in-cluster merge, cluster barriers and distributed shared memory reads at every
// context length, was slower than the merge kernel: each cluster barrier compiles to a GPU-wide
// memory barrier; docs/gpu-tests.md. The one kept uses st.async and only for short contexts.)
// Measured on the H100 (CUDA-graph timing, B=1, Hq=32, Hkv=8, D=128, N=128K;
// bench/results/cuda-h100-2026-11-26-session9.md, commit 938983e): f16 190 us (94% of the copy peak;
// cuDNN fp16 185 us), mxfp8 110 (84%; 86% in session 8's run: the same kernel; 1.69x cuDNN), mxfp4
// 72 (66%, 2.58x), nvfp4 78 (65%, 2.38x), affine4 112 (45%, 1.65x), affine8 143 (67%), turbo4 124
// (37%, 1.50x), turbo3 115 (1.61x); MHA (Hkv=32): f16 100%, mxfp8 94%, mxfp4 80% (2.94x). Inside a
// 128K mxfp4 call (session 9's timer probe, phase_times.cuh): the blocks' prologue ~5 us, the loop
// ~51 us (~78% of the peak), the blocks ending over a 15 us spread, then the merge (~3 us). Warps
// taking 32-key chunks from a counter instead of fixed ranges evened the ends but cost the 4-bit
// and turbo loops more than it saved (mxfp4 74 -> 76 us; docs/gpu-tests.md): not kept. N=1K:
// 8.0-11.3 us since 04f8f51 (cuDNN 7.5), of which a block spends ~3 us in its prologue and ~3
// merging; N=2K: mxfp4 9.1 us (cuDNN 9.1); N=4K: mxfp4 12 us (cuDNN 13). Lq=4 over Lq=1 at 32K:
// 1.07x (f16) to 1.36x (affine4); Lq=8 (two row chunks): f16 1.25x, mxfp8 1.67x, the rest 1.9-2.3x.
// Session 10 (3e182d1, bench/results/cuda-h100-2026-11-26-session10.md): the same within 1 us (f16
// 189, mxfp4 71, nvfp4 77, mxfp8 110, turbo3 113 at 128K; 4K mxfp4 11.5, cuDNN 12.9). Per SM the
// last block ends within ~5 us of the other SMs' at 128K (the blocks' spread is inside each SM),
// and two or three waves of shorter blocks cost ~7 us a wave (docs/gpu-tests.md).
// Session 11 (8a03abe, bench/results/cuda-h100-2026-11-26-session11.md): q staged in 16-byte
// octets (nvfp4 78 -> 75 us at 128K) and the kernel launched by programmatic dependent launch,
// waiting for the kernel before it only before reading its inputs (0.3-0.6 us off 1K-4K calls):
// 128K f16 189 us (96%), mxfp8 109 (86%, 1.68x cuDNN), mxfp4 71 (68%, 2.58x), nvfp4 75 (2.43x);
// 1K mxfp4 7.0 and nvfp4 7.1 us against cuDNN's 7.4; 4K mxfp4 10.9, mxfp8 12.6 against 13.0.
// Session 12 (2a9b44b, bench/results/cuda-h100-2026-11-26-session12.md): affine's q block sums
// taken while q is staged (affine4 4K 15.0 -> 13.8 us, 1K 9.6 -> 8.0 with the next change) and an
// 8-warp cluster kernel for 1K-2K at one block per SM: 1K mxfp4 6.6, nvfp4 6.8, mxfp8 7.1 us
// against cuDNN's 7.5 (f16 7.8, turbo 9.1-9.2); 2K mxfp4 7.7, f16 9.7; 32K-128K as session 11.
// Session 13 (63fcec1, bench/results/cuda-h100-2026-11-26-session13.md): the cluster merge without
// its two barrier passes (a warp per row pushes; owners merge in one pass) and the 8-warp cluster
// kernel with all registers (but f16's): 1K mxfp4 6.45, nvfp4 6.40, mxfp8 6.92, f16 7.59, affine4
// 7.70 us against cuDNN's 7.45; 2K affine4 10.95 -> 10.2; MHA 1K f16 12.1 (cuDNN 12.1); 4K-128K
// unchanged (mxfp4 128K 70.9 us, 2.59x cuDNN).
// Session 14 (95d2c6d, bench/results/cuda-h100-2026-11-26-session14.md): the warps' partials
// written to shared memory without bank conflicts (WarpPartials; 4-way before), 16-byte cluster
// pushes, and f16's first step asked into L1 before the prologue: 1K f16 6.73, affine4 7.29, mxfp4
// 6.05 us against cuDNN's 7.44 (affine8 8.0, turbo 8.6 still slower); 2K f16 8.59 (cuDNN 9.12); 4K
// f16 13.25 (13.30), mxfp4 10.6; 32K 0.5 us less; 128K unchanged (mxfp4 70.4 us, 2.63x cuDNN).
// Session 15 (1566649, bench/results/cuda-h100-2026-11-26-session15.md): 16-bit scales loaded into
// registers of their own (load_u16) and first used in the step that needs them (affine's were
// joined, or moved, right after their loads: a memory latency a row): 128K affine8 142 -> 120 us
// (80%; MHA 89%), affine4 110 -> 95 (53%, 1.94x cuDNN); 2K affine4 8.34 us (cuDNN 9.23). Turbo's
// prologue in one pass (octet staging, rotation and row maximum in registers) and q staged without
// bank conflicts (QStage): turbo3 1K 8.55 -> 7.89, 4K 14.2 -> 13.2 us; at 1K only turbo (7.8-8.0)
// is slower than cuDNN's 7.54, at 4K only turbo4 (13.86 against 13.33).
// Session 16 (5396db6, bench/results/cuda-h100-2026-11-26-session16.md): turbo's lookup planes built
// on the host, q rotated in the staging registers, the cluster owner un-rotating in registers
// (turbo4 4K 13.84 -> 12.96 us, 128K 121 -> 116.5); affine 8-bit keys' scales loaded between a key's
// four lanes (128K 118.9 -> 115.1, 82%). cuDNN 7.39 at 1K, 9.10 at 2K: turbo4 1K 7.59, 2K 9.90 (9.45
// in an A/B), turbo3 2K 9.33, affine8 2K 9.25 still slower; every format faster at 4K.
// Session 17 (d7f4b47, bench/results/cuda-h100-2026-11-26-session17.md): affine keys as the magic-
// number f16 values 1024 + code (key_code_offset; affine4 128K 95.6 -> 90.8 us, 56%, 2.04x cuDNN)
// and the pipeline in every kernel held to one block per SM (affine8 2K 9.16 -> 8.89, 1K 7.12 ->
// 6.89; Lq 8 affine8 74.4 -> 70.3): every f16, affine and mx/nvfp4 call is faster than cuDNN at
// 1K-4K (cuDNN 7.57 / 9.31 / 13.66 us); turbo4 1K and turbo at 2K are not (turbo unchanged).
// Session 18 (d65ea7b, bench/results/cuda-h100-2026-11-26-session18.md): turbo values un-rotated by
// the cluster's pushing blocks, so the owner's merge is the direct one (turbo4 1K 7.64 -> 7.23 us,
// 2K 9.51 -> 9.07; turbo3 1K 7.46 -> 7.09, 2K 9.22 -> 8.80): at 1K every format is faster than
// cuDNN (7.49 us), at 2K all but turbo4 in the README's run (9.55 against 9.30; 9.07 in other
// processes, a 2K measurement mode not understood yet). Four row tiles at D = 128 (Lq 8 decoded once)
// spilled and were 20-40% slower (docs/gpu-tests.md): not kept.
// Session 19 (b5ee79f, bench/results/cuda-h100-2026-11-26-session19.md; every row's cache copies now
// outside the L2): MHA calls at 2K-4K merge in clusters of 8 rather than by the merge kernel
// (attention_mma.cu, mma_split): MHA f16 2K 19.1 -> 17.3 us, 4K 31.8 -> 30.0, mxfp4 2K 13.2 -> 11.7,
// every MHA call at 1K-4K faster than cuDNN; at GQA 4 all but turbo4 1K (7.54 us, 0.99x), 2K (9.66,
// 0.94x) and turbo3 2K (9.33, 0.98x; cuDNN 7.46 / 9.10 us).
// Session 20 (7394410, bench/results/cuda-h100-2026-11-27-session20.md; timing now behind a host gate,
// which measures our short calls ~0.35 us slower and cuDNN's the same): the cluster owner's merge
// set up before its receive wait (0.3-0.7 us off cluster calls) and, at one block per SM, the next
// call launched at the cluster kernel's start (0.55-0.76 us off quantized 1K-2K calls): GQA 4 1K
// mxfp4 5.55, turbo4 6.80 us (cuDNN 7.30), 2K turbo4 8.55 (8.95); every format faster than cuDNN at
// 1K-4K for both head counts (f16 4K at parity, 13.42 against 13.48); 128K unchanged (mxfp4 69.6).
// Session 21 (01942a8, bench/results/cuda-h100-2026-11-27-session21.md): the cache's loads marked
// streaming (evict-first; see load_bytes), 0.3-4 us off every call from 4K up: 128K f16 184 us
// (97% of the peak, 0.99x cuDNN), mxfp8 107 (87%), mxfp4 68.4 (70%, 2.67x), affine4 87.6 (58%,
// 2.08x), turbo4 116 (40%); 32K f16 51.9 (86%, 1.03x), mxfp4 24.8 (2.15x); 4K f16 12.2 against
// cuDNN's 13.7, mxfp4 10.1; 1K mxfp4 5.50, turbo4 6.72 against 7.38.
// Session 22 (3a1a36b, bench/results/cuda-h100-2026-11-27-session22.md): the merge kernel per 32-dim
// slice of a row (partials.cu; turbo's partials un-rotated by these blocks to take it too) and
// mxfp4 V's scale range check once per group (E2M1 loop 457 -> 452 instructions a step): 4K f16
// 11.1 us, mxfp4 8.76, turbo4 10.7 against cuDNN's 13.4; 32K mxfp4 23.7 (2.24x); 128K mxfp4 66.3
// (72%, 2.75x), mxfp8 106 (88%), f16 185 (97%).
// Session 24 (5be72e5, bench/results/cuda-h100-2026-11-27-session24.md): up to 4 rows a block with
// q's and P's lo terms as columns of their own (tile code 0; f16 caches keep one tile): 128K mxfp4
// 63.3 us (75%, 2.87x cuDNN), nvfp4 66.0 (76%), affine4 77.3 (65%, 2.35x), affine8 110 (86%),
// turbo4 106 (1.72x), turbo3 95.8 (1.90x); 32K mxfp4 21.9 (2.44x); MHA 128K mxfp4 213 (90%); 1K
// mxfp4 5.12 and f16 6.36 us against cuDNN's 7.30. Inside a 128K mxfp4 call (probe): the loops
// stream at ~92% of the copy peak while all blocks run; the blocks end in launch order (the first
// rank's 7.7 us before the fourth's on average), and the last SM ~2 us after the median one.
// Session 25 (a40cd23, bench/results/cuda-h100-2026-11-27-session25.md): tile code 0 also for causal
// rows with ranges of their own. Issue 3's shapes at 32K: Lq 4 at 1.15-1.53x the Lq 1 time, Lq 8 at
// 1.37-2.46x; B 8 mxfp4 82%, nvfp4 84%; D 64 f16 74%, mxfp4 39%; MHA 128K mxfp4 89% (3.24x cuDNN),
// nvfp4 93%. Five blocks a SM at D 64, three at D 256, or fewer than four at D 128 were all slower.
// Session 26 (bench/results/cuda-h100-2026-11-27-session26.md): affine 4-bit keys unpipelined at two
// n-tiles (they spilled there), and with groups of 64 a key family of their own (u4g64: a row's scales
// and biases in one load each, each group's applied once per block pair; loop per step at D 128
// 568 -> 495 on tile code 0, 751 -> 652 at two tiles; D 256 990 -> 805): affine4 128K 78.3 -> 74.4
// us (68% of the peak), 32K 26.9 -> 25.7, Lq 4 32K 41.0 -> 37.0 (1.44x its Lq 1 time; every
// format now within 1.5x); Lq 8 still 1.36-2.39x.
// Session 27 (bench/results/cuda-h100-2026-11-27-session27.md): groups of 32 and 128 as key
// families too (u4g32, u4g128). GQA 4 128K: affine4 73.3 us (69%, 2.48x cuDNN), affine4-g32 76.9
// (73%), mxfp4 63.3 (75%, 2.87x); MHA 128K affine4-g32 85%, affine4 79%, mxfp4 88% (3.24x); B 32
// affine4 82%, B 8 affine4-g32 79%, affine4 73%; Lq 8 / Lq 1 still 1.36-2.43x.
// Later in session 27: the prologue's four divisions by run-time divisors (G, the split count, the
// row chunks) as multiplies by host-computed magic numbers (detail::Divider; E2M1's prologue 1430 ->
// 1323 instructions, static): A/B in one call, us, GQA 4 1K f16 6.28 -> 5.95, mxfp4 5.06 -> 4.95,
// affine4 5.49 -> 5.34, turbo4 6.33 -> 6.34; MHA 1K f16 9.86 -> 9.45, mxfp4 7.56 -> 7.36; Lq 8 32K
// mxfp4 51.05 -> 49.64; 32K Lq 1 within 0.15.
// Session 28 (bench/results/cuda-h100-2026-11-27-session28.md): the prologue is ~22% of a warp's
// sampled time at 32K (ncu; q's load latency and constant-cache misses its longest waits). q's
// fragments now come straight from the staging registers (one barrier and ~100 instructions a warp
// fewer; write_q_fragments) and f16 caches load q before the key ranges: A/B in one call, µs, GQA
// 4, main -> both: f16 1K 5.97 -> 5.81, 4K 10.75 -> 10.29; mxfp4 1K 4.96 -> 4.82, 4K 8.20 -> 7.87;
// affine4 4K 9.24 -> 8.99; mxfp8 4K 9.85 -> 9.63; MHA mxfp4 4K 13.87 -> 13.34; 32K-128K within 1%.
// Then the blocks' epilogue by a warp per row (no shared-memory weights pass, no barrier; turbo V
// excepted): mxfp4 4K 7.87 -> 7.64, 32K 21.85 -> 21.54, 128K 62.93 -> 62.42 us; mxfp8 4K 9.65 ->
// 9.39; f16 4K 10.35 -> 10.16.
// Session 30 (bench/results/cuda-h100-2026-11-27-session30.md): affine 4-bit keys and values from
// 32K keys run whole-SM blocks (16 warps, one block a SM; whole_sm_warps): GQA 4 128K affine4 72.2
// us (70%, 2.51x cuDNN), affine4-g32 72.4 (78%); MHA 128K affine4 82% (2.82x), affine4-g32 89%
// (2.76x). A SM's warps then end within ~1 us of each other; the SMs' own spread remains.
// Session 31 (bench/results/cuda-h100-2026-11-27-session31.md): mxfp4 and nvfp4 take whole-SM blocks
// where a block has 4096 keys or more, and whole-SM blocks merge in a cluster where every (b, KV
// head)'s splits fit one resident cluster (B 8 and other 27-66 KV-head calls; not the 8 KV heads of
// the reference shape: the H100 holds 7 clusters of 16): GQA 4 128K mxfp4 60.7 us (78%, 2.99x
// cuDNN), nvfp4 62.3 (81%, 2.91x); MHA 128K mxfp4 212 (90%, 3.29x), nvfp4 220 (92%, 3.17x); B 8 32K
// affine4 133.7 -> 127.9, mxfp4 116.0 -> 110.4, nvfp4 119.6 -> 113.9 (A/B against session 30).
// Session 32 (-session32.md): those clusters at 8 rows a block too (B 8, Lq 2, 32K: mxfp4 124 ->
// 115 us, 83% of the copy peak; nvfp4 128.6 -> 118.8, 85%); staged loads through shared memory
// (cp.async; branch s32-staged) were 15-20% slower and are not merged.
// Session 33 (-session33.md): row addresses by one IMAD.WIDE.U32 each (mul.wide.u32; HeadCodec::
// row_at) and the lanes' base pointers read from a shared table each step (LaneBases) instead of
// rebuilt from the parameters: common path a step at D 128, tile code 0, E2M1 407 -> 371, nvfp4
// 429 -> 391, affine4 (u4g64) 498 -> 444, u4g32 514 -> 472, mxfp8 408 -> 367, affine8 539 -> 496,
// turbo4 692 -> 657, f16 252 -> 220; every instance's loop shorter (D 64 -10%, D 256 -4%). A B A B
// in one call, us: GQA 4 128K affine4 70.7 -> 67.7, turbo4 106.2 -> 103.6, mxfp4 60.3 -> 59.7,
// nvfp4 62.7 -> 62.1; MHA 128K affine4 244 -> 235, turbo4 394 -> 381. The 4-bit loops gained less
// than their instruction counts: at the GPU's own clock (ncu --clock-control none) the whole-SM
// mxfp4 loop at 128K waits mostly on memory (long scoreboard 3.3 cycles an instruction, issue slots
// 46% busy); session 32's profile, at ncu's locked base clock, had made it look bound by issue.
// Session 34 (-session34.md): the 4-warp mxfp4 / nvfp4 kernels at tile code 0 ask L2 for their rows
// two steps ahead (prefetch_rows; +6-7 instructions a step): GQA 4 32K mxfp4 20.96 -> 20.23 us (59%
// of the copy peak, 2.66x cuDNN), nvfp4 21.62 -> 20.62 (62%, 2.63x), D 64 32K -2.5-3%, 4K-8K and
// MHA within 1% (A B A B in one call; the 8-bit pairs and the row-tile kernels lost with it).
// Session 35 (-session35.md; the bench's batches now hold at least 8 calls, so per-call numbers are
// ~2 us lower at 128K than before): the prologue asks L2 for the next steps' rows in the whole-SM
// mxfp4 / nvfp4 blocks (4 steps) and the 8-bit 4-warp kernels (2; prologue_prefetch_steps): GQA 4
// 128K mxfp4 57.3 -> 56.4 us (84% of the copy peak, 3.19x cuDNN), nvfp4 59.1 -> 58.5 (87%, 3.10x),
// mxfp8 32K 30.4 -> 29.7 (78%), affine8 32K 31.9 -> 31.1 (77%), MHA 32K mxfp4 56.5 -> 55.7.
// Session 36 (-session36.md): the whole-SM mxfp4 / nvfp4 epilogue takes its warps' weights by one ex2
// a lane and shuffles (~157 instructions a warp's task, from ~335); from the last warp's loop end to
// the stored partial 1.25 -> 0.92 us (phase probe, 128K); A B A B in one call, us: GQA 4 128K nvfp4
// 58.5 -> 57.5 (88-89%), mxfp4 56.5 -> 56.2-56.3 (84.7-85.8% of each run's copy peak, 2958-2993
// GB/s); 32K, MHA, B 8 even.
// Session 38 (H200 only, -session38.md): affine 4-bit calls the whole-SM epilogue
// (merge_whole_sm_warps_apart; GQA 4 128K affine4 58.8 -> 58.1 us, mxfp4 48.4 -> 47.5, nvfp4 48.1 ->
// 48.4). Main on the H200 (copy peak 4136 GB/s): GQA 4 128K f16 125 us (104%), mxfp8 74.1 (90%,
// 1.68x cuDNN), mxfp4 47.7 (72%, 2.60x), nvfp4 48.7 (75%), affine4 58.1 (63%); MHA 128K mxfp4 82%.
// There the 4-bit loop waits on neither DRAM (61% busy) nor one pipe (ALU 63%): ncu at the GPU's
// clock, 16 warps an SM, an instruction issued on 61% of cycles, stalls per instruction: not
// selected 1.5, ALU throttle 1.3, fixed latency 1.1, memory 0.5-0.6 (the H100's was 3.3). An L2
// prefetch 2 or 4 steps ahead in these loops made 128K 4-7% slower.
// Session 39 (H200, -session39.md): the phase probe puts the whole-SM mxfp4 loops at 88% of the copy
// peak while they run (GQA 4 128K: 143 MB from 4.96 to 44.3 us); the rest of the probed 49.4 us call
// (47.4 without the probe) is the prologue (q staged at 4.7 us, behind the first tiles), the
// epilogue and merge (to 46.5) and the gap to the next call. Whole-SM blocks of 8 warps were 17-32%
// slower at 128K, not 2x.
// Session 40 (H200, -session40.md): whole-SM blocks from 16K keys, mxfp4 / nvfp4 from 1024 keys a
// block (attention_mma.cu, whole_sm_split), their prologue prefetch 2 steps (A B x3 in one call,
// GQA 4, us): mxfp4 32K 19.35 -> 17.67, 48K 25.21 -> 22.63, 128K 47.64 -> 46.97; B 8 16K 57.35 ->
// 46.54; D 64 16K 11.16 -> 8.64. Main then (copy peak 4201 GB/s): GQA 4 128K mxfp4 46.8 us (73%,
// 2.66x cuDNN), nvfp4 47.7 (75%), affine4 58.1 (62%), mxfp8 73.9 (89%); 32K mxfp4 17.7 (48%, 2.14x).
// Session 41 (H200, -session41.md): whole-SM blocks from 8K keys (GQA 4 affine4 8K 10.97 -> 10.40
// us, 12K 13.41 -> 12.70; MHA 8K mxfp4 17.6 -> 17.2) and their mxfp4 / nvfp4 prologue prefetch 1
// step (A B x3-4 in one call, us: GQA 4 mxfp4 16K 12.45 -> 12.05, 32K 17.50 -> 17.07, 128K 46.73 ->
// 46.18; nvfp4 32K 17.72 -> 17.33). Whole-SM blocks for the 8-bit pairs (12 warps) and for two row
// tiles (8 warps) were measured and not kept (docs/decisions.md). Issue 3's shapes at 32K: Lq 4 /
// Lq 1 1.63-1.69x for the 4-bit formats, Lq 8 / Lq 1 1.57-2.84x, D 64 34-73% of the copy peak.
// Session 42 (H200, -session42.md): no prologue prefetch (A B x3 in one call, us: GQA 4 mxfp4 32K
// 17.29 -> 16.90, 128K 46.54 -> 45.98; affine8 32K 28.29 -> 27.00; mxfp8 16K 17.29 -> 16.60). Main
// then (copy peak 4207 GB/s): GQA 4 128K mxfp4 46.2 us (73%, 2.74x cuDNN), nvfp4 47.1 (76%), mxfp8
// 74.8 (88%), affine8 79.2 (86%), affine4 58.6 (61%); 32K mxfp4 17.0 (50%, 2.25x). Two row tiles
// (tile code 2, Lq 3-4 at GQA 4) are bound by each warp's dependency chains (ncu: 8 warps a SM,
// 245 registers, fixed-latency waits 1.23 cycles an instruction, long scoreboard 0.11, DRAM 38%);
// 3 blocks a SM at 168 registers ran 7-14% slower (spill reloads).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "cuda/attention_common.cuh"
#include "cuda/check.cuh"
#include "cuda/partials.cuh"
#include "cuda/phase_times.cuh"
#include "formats/f16_bits.hpp"

namespace qsdpa::cuda::mma {


// Warps per block: 4, and 8 in a second cluster kernel for short contexts at one block per SM (N
// in (512, 2K] at B=1, GQA 4), where a call is one block's latency: a block of 8 warps takes twice
// the keys in the same steps, so a cluster merges half as many partials (the split rule and its
// A/B: attention_mma.cu, mma_split). Every kernel at 8 warps (session 12, H100): 1K faster (f16
// 8.00 -> 7.78 us, mxfp4 7.04 -> 6.67, affine4 9.54 -> 8.55), 4K (merge kernel) ~1 us slower for
// mxfp4 and nvfp4, 32K-128K within 0.5 us but mxfp8 128K 3 us slower.
constexpr int kWarps = 4;
constexpr int kWideWarps = 8;
constexpr int32_t kStatusRange = 2;  // a value or scale the f16 products cannot hold exactly

// Decoder families: how one octet of a row turns into 4 half2.
// e2m1: mxfp4 (E8M0 scales, groups of 32); nv4: nvfp4 (E4M3 scales, groups of 16); turbo2/3/4:
// codebook indices with one f16 scale per row (looked up with byte permutes, see TurboKRow);
// u4g32 / u4g64 / u4g128: affine 4-bit keys whose group size (1, 2 or 4 32-dim blocks) the code
// knows, with scale and bias rows aligned to their 2 D / group bytes, so that a step loads each
// row's scales and biases in one load each and applies each group's once (KRow), not once per
// block; u4 (any group size, rows only 2-byte aligned) loads them a block at a time. Keys only:
// affine 4-bit V rows are u4 (a lane's V dims lie in one group whatever its size).
// A/B on the H100 (session 26, in one call, GQA 4, D 128, us, u4 -> u4g64, then named u4w): 32K
// 26.84 / 26.92 -> 25.59 / 25.75, 128K 78.46 / 78.11 -> 74.34 / 74.37, Lq 4 32K 39.03 / 38.95 ->
// 37.02 / 36.93; affine4-g32 and mxfp4 (same code) within 0.1. Its loop on tile code 0 spills more
// (9 local accesses a step against 2, loop invariants reloaded) and still wins. Session 27 added
// u4g32 and u4g128 (SASS per step, u4 -> u4g32: D 128 tile code 0 568 -> 521, two tiles 751 -> 710,
// D 256 990 -> 875, D 64 331 -> 314; u4g128 D 128 492). A/B in one call (H100, us, u4 -> u4gN):
// affine4-g32 32K 27.39 -> 26.69, 128K 80.47 -> 77.01, Lq 4 32K 39.49 -> 38.87; affine4-g128 32K
// 26.83 -> 25.36, 128K 77.17 -> 71.27; affine4 and mxfp4 (same code) within 0.2.
enum class Fam : int { f16, u4, u8, e2m1, e4m3, generic, nv4, turbo2, turbo3, turbo4, u4g64, u4g32, u4g128 };

// Affine 4-bit keys whose rows' scales and biases load whole (their group size known at compile time).
constexpr bool loads_key_scale_rows(Fam f) { return f == Fam::u4g32 || f == Fam::u4g64 || f == Fam::u4g128; }
constexpr bool is_affine4(Fam f) { return f == Fam::u4 || loads_key_scale_rows(f); }
// Consecutive 32-dim blocks of a key row under one group scale, as the kernel's code knows it.
constexpr int key_group_blocks(Fam f) { return f == Fam::u4g64 ? 2 : f == Fam::u4g128 ? 4 : 1; }

constexpr bool is_turbo(Fam f) { return f == Fam::turbo2 || f == Fam::turbo3 || f == Fam::turbo4; }
constexpr int turbo_bits(Fam f) { return f == Fam::turbo2 ? 2 : f == Fam::turbo3 ? 3 : 4; }

// Bytes of codes per octet (generic: decoded value by value from global memory).
template <Fam F>
constexpr int octet_bytes() {
  if constexpr (is_turbo(F)) return turbo_bits(F);
  return F == Fam::f16 ? 16 : (F == Fam::u8 || F == Fam::e4m3) ? 8 : (F == Fam::generic ? 0 : 4);  // u4, e2m1, nv4: 4
}

// The pairing of an octet's values in its 4 half2: half2 j holds values (kPairLo[j], kPairHi[j]).
__host__ __device__ constexpr int pair_lo(int j) { return (j & 1) + 4 * (j >> 1); }
__host__ __device__ constexpr int pair_hi(int j) { return pair_lo(j) + 2; }

__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t sel) {
  uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(sel));
  return d;
}
__device__ __forceinline__ uint32_t as_u32(__half2 h) { return *reinterpret_cast<uint32_t*>(&h); }
__device__ __forceinline__ __half2 as_h2(uint32_t u) { return *reinterpret_cast<__half2*>(&u); }

__device__ __forceinline__ void mma16816(float c[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Transposes an 8x8 matrix of 16-bit values held one row-pair per lane (the mma fragment layout).
__device__ __forceinline__ uint32_t transpose8x8(uint32_t x) {
  uint32_t y;
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;" : "=r"(y) : "r"(x));
  return y;
}

// ---- thread-block clusters (sm_90; never reached elsewhere: the host launches no cluster there) ----
// The split kernel's in-cluster merge pushes partials into the owning block's shared memory with
// st.async, which completes on an mbarrier there: no cluster-scope release, which ptxas turns into
// a GPU-wide memory barrier (MEMBAR.ALL.GPU) plus an L1 invalidation (session 8).

__device__ __forceinline__ uint32_t shared_addr(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

// The address of the same shared-memory location in cluster block `rank`.
__device__ __forceinline__ uint32_t in_block(uint32_t addr, uint32_t rank) {
  uint32_t out = addr;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(out) : "r"(addr), "r"(rank));
#endif
  return out;
}

// Initialises this block's mbarrier for one arrival (this call) and `bytes` of st.async data, and
// orders the initialisation before the peers' use of it (with the cluster barrier that follows).
__device__ __forceinline__ void expect_bytes(uint64_t* bar, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(shared_addr(bar)) : "memory");
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(shared_addr(bar)), "r"(bytes) : "memory");
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_arrive_relaxed() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.relaxed;" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.wait;" ::: "memory");
#endif
}
// Stores v (16 bytes; 8 for the pair) at cluster address `dst`, completing that many bytes of the
// transaction on the mbarrier `bar` (a cluster address in the same block as dst).
__device__ __forceinline__ void store_async(uint32_t dst, float4 v, uint32_t bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.b32 [%0], {%1, %2, %3, %4}, [%5];" ::"r"(dst),
               "r"(__float_as_uint(v.x)), "r"(__float_as_uint(v.y)), "r"(__float_as_uint(v.z)), "r"(__float_as_uint(v.w)),
               "r"(bar)
               : "memory");
#endif
}
__device__ __forceinline__ void store_async(uint32_t dst, float2 v, uint32_t bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.v2.b32 [%0], {%1, %2}, [%3];" ::"r"(dst),
               "r"(__float_as_uint(v.x)), "r"(__float_as_uint(v.y)), "r"(bar)
               : "memory");
#endif
}
// Waits until this block's mbarrier completes its first phase (every expected byte arrived). A wait
// that never ends (a byte count that cannot match) traps instead of hanging the GPU.
__device__ __forceinline__ void wait_for_bytes(uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  for (uint32_t tries = 0;; ++tries) {
    uint32_t done;
    asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], 0; selp.u32 %0, 1, 0, p; }"
                 : "=r"(done)
                 : "r"(shared_addr(bar))
                 : "memory");
    if (done) return;
    if (tries > (1u << 26)) __trap();
  }
#endif
}

// ---- exact f16 terms of decoded values ----
//
// Every K/V value reaches the tensor cores as a sum of f16 terms that are exact, and q and P as
// hi + lo f16 pairs, so that scores and outputs carry f32-level precision (SPEC §2's tolerance holds
// for sharp softmaxes too): f16, E2M1 and E4M3 codes times their power-of-two or E4M3 group scale are
// exact in f16 (one term); affine V is (c*s rounded) + (c*s - that, exact) + bias (three terms; 4-bit
// V sums its bias term once per step instead, see the kernel's PV; K takes its scale and bias on f32
// partial scores); the generic decoder splits the f32 value into hi + lo (two terms), and so do
// turbo's codebooks (their f32 Lloyd-Max levels as f16 hi + lo; the row scale goes on the f32 score,
// or into P for V). Term 1 of a multi-term family is the small correction: it is multiplied by q_hi / P_hi only.

template <Fam F>
constexpr int n_terms() {
  return (F == Fam::u4 || F == Fam::u8) ? 3 : (F == Fam::generic || is_turbo(F)) ? 2 : 1;
}
__host__ __device__ constexpr bool term_takes_lo(int term) { return term != 1; }

// The multipliers of one group of a row (as f16 pairs): value = code * mul + add.
struct GroupScale {
  __half2 mul, add;
};

// ---- octet decoders: raw code words -> n_terms x 4 half2 in the pairing above ----

// Two E4M3 codes (bytes 0 and 1 of x) as an exact f16 pair, byte 0 in the low half.
__device__ __forceinline__ uint32_t e4m3_pair_f16(uint32_t x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  uint32_t h;
  asm("{ .reg .b16 lo; cvt.u16.u32 lo, %1; cvt.rn.f16x2.e4m3x2 %0, lo; }" : "=r"(h) : "r"(x));
  return h;
#else
  // E4M3 bits s.eeee.mmm placed at f16 bits 15 and 13..7: the value times 2^-8.
  const uint32_t z = prmt(x, 0, 0x7170u);  // bytes -> halves
  const uint32_t v = ((z & 0x007F007Fu) << 7) | ((z & 0x00800080u) << 8);
  return as_u32(__hmul2(as_h2(v), __float2half2_rn(256.0f)));
#endif
}

// An octet of 4-bit codes as exact f16 integers (see u4_octet_f16_magic; affine 4-bit V).
__device__ __forceinline__ void u4_codes(uint32_t x, uint32_t h[4]) {
  fmt::u4_octet_f16_magic(x, h);
#pragma unroll
  for (int j = 0; j < 4; ++j)
    h[j] = as_u32(j & 1 ? __hfma2(as_h2(h[j]), as_h2(0x2C002C00u), as_h2(0xD400D400u))  // x / 16 - 64
                        : __hsub2(as_h2(h[j]), as_h2(0x64006400u)));                  // x - 1024
}

// The codes of one octet as exact f16 values, without their group scale (the bit rules live in
// formats/f16_bits.hpp): f16 as stored, u8 the integer code, E2M1 the value times 2^-14 (see
// e2m1_octet_f16), E4M3 the value. (4-bit affine codes: u4_codes for V, key_code_offset for K.)
template <Fam F>
__device__ __forceinline__ void decode_codes(const uint32_t* w, uint32_t h[4]) {
  if constexpr (F == Fam::f16) {
    h[0] = prmt(w[0], w[1], 0x5410);
    h[1] = prmt(w[0], w[1], 0x7632);
    h[2] = prmt(w[2], w[3], 0x5410);
    h[3] = prmt(w[2], w[3], 0x7632);
  } else if constexpr (F == Fam::u8) {
    fmt::u8_octet_f16_plus_1024(w, h);
#pragma unroll
    for (int j = 0; j < 4; ++j) h[j] = as_u32(__hsub2(as_h2(h[j]), as_h2(0x64006400u)));
  } else if constexpr (F == Fam::e2m1 || F == Fam::nv4) {
    fmt::e2m1_octet_f16(w[0], h);
  } else if constexpr (F == Fam::e4m3) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      h[j] = e4m3_pair_f16(prmt(w[j >> 1], 0, (j & 1) ? 0x0031u : 0x0020u));
    }
  }
}

// An octet with its group multipliers applied, as n_terms exact f16 terms (the V side, where a
// group's scale cannot wait for a partial sum: the PV product sums over keys, each with its own).
template <Fam F>
__device__ __forceinline__ void decode_octet(const uint32_t* w, GroupScale gs, uint32_t h[][4]) {
  static_assert(F != Fam::e2m1 && F != Fam::nv4 && F != Fam::u4, "4-bit V rows decode two keys at a time (the kernel's PV)");
  decode_codes<F>(w, h[0]);
  if constexpr (F == Fam::u8) {
    const uint32_t add = as_u32(gs.add);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const __half2 code = as_h2(h[0][j]);
      const __half2 hi = __hmul2(code, gs.mul);
      h[0][j] = as_u32(hi);
      h[1][j] = as_u32(__hfma2(code, gs.mul, __hneg2(hi)));  // c*s - hi: exact in f16
      h[2][j] = add;
    }
  } else if constexpr (F == Fam::e4m3) {
#pragma unroll
    for (int j = 0; j < 4; ++j) h[0][j] = as_u32(__hmul2(as_h2(h[0][j]), gs.mul));
  }
}

// nvfp4's E4M3 block scale (the low byte of w) in both halves of an f16 pair, exactly.
__device__ __forceinline__ __half2 e4m3_scale_f16(uint32_t w) { return as_h2(e4m3_pair_f16(prmt(w, 0, 0))); }

// Loads of the KV cache (codes, scales, biases; the kernel's other loads are plain __ldg). Each
// cache byte is read once per call, so these loads are marked streaming (ld.global.nc.cs: lines
// allocated evict-first in L1 and L2; an opcode bit, LDG.E.EF, no instruction or register more).
// A/B on the H100 (session 21, against main's plain loads, mean of two rounds, µs): GQA 4 f16 4K
// 13.50 -> 12.31, 32K 56.0 -> 52.0, 128K 188.5 -> 184.8; mxfp4 4K 10.44 -> 10.08, 32K 25.8 -> 25.2,
// 128K 70.5 -> 69.0; affine4 128K 90.4 -> 88.5; MHA f16 32K 185.3 -> 181.7; 1K unchanged. The prediction was a
// fixed-cost gain (the stream no longer evicting the merge kernel's code and partials from the
// L2); the phase probe says otherwise: the merge kernel's round of loads still takes ~1.7 us, and
// the gain is in the streaming loop (mxfp4 32K: blocks' loops end ~0.6 us earlier). Why an L2
// policy speeds up a read-once stream is not known. QSDPA_L2_EVICT_FIRST=0 gives the plain loads.
#ifndef QSDPA_L2_EVICT_FIRST
#define QSDPA_L2_EVICT_FIRST 1
#endif
#if QSDPA_L2_EVICT_FIRST
#define QSDPA_KV_LD "ld.global.nc.cs"
#else
#define QSDPA_KV_LD "ld.global.nc"
#endif

// 8- and 16-bit values load into the low half of a 32-bit register, the high half zero. Through
// __ldg's uint16_t, ptxas packed such values into register halves with a PRMT right after the
// load, which waited for it: a memory latency per load (session 15's SASS of affine's scales).
// Volatile, as every load here: the compiler does not see the asm read memory, and it must stay
// after the kernel's wait for the grid before it (wait_for_prior_grid, a volatile asm).
__device__ __forceinline__ uint32_t load_u16(const void* p) {
  uint32_t v;
  asm volatile(QSDPA_KV_LD ".u16 %0, [%1];" : "=r"(v) : "l"(p));
  return v;
}
__device__ __forceinline__ uint32_t load_u8(const void* p) {
  uint32_t v;
  asm volatile(QSDPA_KV_LD ".u8 %0, [%1];" : "=r"(v) : "l"(p));
  return v;
}

// Loads `Bytes` contiguous bytes (a power of two, aligned to min(Bytes, 16)) into words.
template <int Bytes>
__device__ __forceinline__ void load_bytes(const uint8_t* p, uint32_t* w) {
  if constexpr (Bytes >= 16) {
#pragma unroll
    for (int i = 0; i < Bytes / 16; ++i)
      asm volatile(QSDPA_KV_LD ".v4.u32 {%0, %1, %2, %3}, [%4];"
                   : "=r"(w[4 * i]), "=r"(w[4 * i + 1]), "=r"(w[4 * i + 2]), "=r"(w[4 * i + 3])
                   : "l"(p + 16 * i));
  } else if constexpr (Bytes == 8) {
    asm volatile(QSDPA_KV_LD ".v2.u32 {%0, %1}, [%2];" : "=r"(w[0]), "=r"(w[1]) : "l"(p));
  } else if constexpr (Bytes == 4) {
    asm volatile(QSDPA_KV_LD ".u32 %0, [%1];" : "=r"(w[0]) : "l"(p));
  } else if constexpr (Bytes == 2) {
    w[0] = load_u16(p);
  }
}

// Loads `Bytes` contiguous bytes at an address aligned to `Align` (a power of two) into words,
// little-endian, with the widest loads the alignment allows (turbo3's rows: 6 or 12 bytes a lane).
template <int Bytes, int Align>
__device__ __forceinline__ void load_chunk(const uint8_t* p, uint32_t* w) {
  constexpr int unit = Align >= 16 && Bytes % 16 == 0 ? 16 : Align >= 8 && Bytes % 8 == 0 ? 8 : Align >= 4 && Bytes % 4 == 0 ? 4 : 2;
  static_assert(Bytes % unit == 0 && Align >= unit, "chunks are whole 16-bit units at least");
  if constexpr (unit >= 4) {
#pragma unroll
    for (int i = 0; i < Bytes / unit; ++i) load_bytes<unit>(p + i * unit, w + i * unit / 4);
  } else {
#pragma unroll
    for (int i = 0; i < (Bytes + 3) / 4; ++i) w[i] = 0;
#pragma unroll
    for (int i = 0; i < Bytes / 2; ++i) w[i / 2] |= load_u16(p + 2 * i) << (16 * (i % 2));
  }
}

// What the decoders need of one KV head, set up once per block: the scalar rule (generic decoder,
// kinds) and the head's row bases, so that a row address is one multiply-add.
struct HeadCodec {
  fmt::RowCodec codec;
  int group_shift;  // log2 of the group size; -1 without group scales
  const uint8_t *codes, *scales, *biases;
  // Bytes from one token to the next. 32-bit (the host checks), so that a row address is one
  // IMAD.WIDE.U32 of a 32-bit key index: 64-bit index arithmetic was ~40% of the loop's instructions.
  uint32_t code_stride, scale_stride, bias_stride;
  int piece_last_group = 0;  // V: see at_piece

  // Row j's codes, scales, biases: one IMAD.WIDE.U32 each. The product is a PTX mul.wide.u32: as
  // C++'s uint64_t(j) * stride, the stride's zero-extension was hoisted out of the loop, the
  // product became a 64-bit multiply, and ptxas added its zero high part with a VIADD per row
  // address (12 of the mxfp4 step's instructions, session 33).
  __device__ __forceinline__ static const uint8_t* row_at(const uint8_t* base, uint32_t j, uint32_t stride) {
    uint64_t offset;
    asm("mul.wide.u32 %0, %1, %2;" : "=l"(offset) : "r"(j), "r"(stride));
    return base + offset;
  }
  __device__ __forceinline__ const uint8_t* code_row(uint32_t j) const { return row_at(codes, j, code_stride); }
  __device__ __forceinline__ const uint8_t* scale_row(uint32_t j) const { return row_at(scales, j, scale_stride); }
  __device__ __forceinline__ const uint8_t* bias_row(uint32_t j) const { return row_at(biases, j, bias_stride); }
  fmt::F16Lut lut_hi, lut_lo;  // turbo: the levels' f16 hi and lo terms (formats/f16_bits.hpp)

  // The K side's lane offset (see KRow): octet t of a row's first block, so that the loop's
  // offsets are immediates of the load instructions; turbo rows: the lane's quarter (TurboKRow).
  template <Fam F, int D>
  __device__ __forceinline__ void k_lane(int t) {
    if constexpr (F == Fam::generic) return;
    if constexpr (is_turbo(F)) codes += t * (D * turbo_bits(F) / 32);
    else codes += 8 * t * octet_bytes<F>() / 8;
  }

  // The V side's lane offsets (see RowPiece): the piece's first octet and its first group's scale
  // and bias; piece_last_group is the last group index inside the piece.
  template <Fam F>
  __device__ __forceinline__ void at_piece(int dim0, int octets) {
    if constexpr (F == Fam::generic) return;
    codes += dim0 * octet_bytes<F>() / 8;
    if (group_shift < 0) return;
    const int group0 = dim0 >> group_shift, scale_bytes = (F == Fam::u4 || F == Fam::u8) ? 2 : 1;
    scales += group0 * scale_bytes;
    if (biases) biases += group0 * scale_bytes;
    piece_last_group = max(((octets * 8) >> group_shift) - 1, 0);
  }
};

// Families whose rows carry group scales (fp8's tensor scale and nvfp4's global scale are per head).
constexpr bool has_group_scales(Fam f) {
  return is_affine4(f) || f == Fam::u8 || f == Fam::e2m1 || f == Fam::e4m3 || f == Fam::nv4;
}
// Whether a row of family F has group scales in every format of it (E4M3 is mxfp8 or fp8), so that
// the loop need not ask at run time.
__device__ __forceinline__ bool grouped(Fam f, const HeadCodec& hc) {
  return f == Fam::e4m3 ? hc.group_shift >= 0 : has_group_scales(f);
}

// A row on the generic decoder: its pointers, and any octet of it decoded value by value with the
// scalar rule into hi + lo f16 terms (the pairing above). Shared by the K and V sides.
struct GenericRow {
  const uint8_t *codes, *scales, *biases;
  __device__ __forceinline__ void at(const HeadCodec& hc, uint32_t j) {
    codes = hc.code_row(j);
    scales = hc.scales ? hc.scale_row(j) : nullptr;
    biases = hc.biases ? hc.bias_row(j) : nullptr;
  }
  __device__ __forceinline__ void decode(const HeadCodec& hc, int dim0, uint32_t h[][4], uint32_t* bad) const {
    float v[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      v[e] = fmt::decode_value(hc.codec, codes, scales, biases, dim0 + e);
      *bad |= !(fabsf(v[e]) < 65504.0f);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const __half2 hi = __floats2half2_rn(v[pair_lo(j)], v[pair_hi(j)]);
      const float2 back = __half22float2(hi);
      h[0][j] = as_u32(hi);
      h[1][j] = as_u32(__floats2half2_rn(v[pair_lo(j)] - back.x, v[pair_hi(j)] - back.y));
    }
  }
};

// `Octets` consecutive octets of one row from dim0 (codes and their group scales, loaded together),
// decoded one octet at a time into n_terms x 4 half2.
template <Fam F, int Octets>
struct RowPiece {
  static constexpr bool kScaled = has_group_scales(F);
  static constexpr int kWords = F == Fam::generic ? 1 : Octets * octet_bytes<F>() / 4;
  static constexpr int kGroups = Octets >= 2 ? Octets / 2 : 1;  // groups are >= 16 values
  static constexpr bool kAffine = F == Fam::u4 || F == Fam::u8;
  uint32_t raw[kWords];
  uint32_t scale[kGroups];  // affine: the f16 scale's bits; mx / nvfp4: the scale byte
  // Affine: the f16 bias's bits. Scale and bias stay in the registers their loads write, unjoined
  // until the step that uses them: joined at the load (scale | bias << 16), each load's result was
  // used at once, and the warp waited out a memory latency per row, six a step (session 15's SASS).
  uint32_t bias_bits[kAffine ? kGroups : 1];
  GenericRow row;  // generic only

  __device__ __forceinline__ void load(const HeadCodec& hc, uint32_t j, int dim0) {
    if constexpr (F == Fam::generic) {
      row.at(hc, j);
    } else {
      load_bytes<Octets * octet_bytes<F>()>(hc.code_row(j), raw);  // hc points at the piece
      if constexpr (kScaled) {
        if (grouped(F, hc)) {
          const uint8_t* sr = hc.scale_row(j);
#pragma unroll
          for (int i = 0; i < kGroups; ++i) {
            const int gi = i == 0 ? 0 : min(i, hc.piece_last_group);  // groups past the piece repeat the last
            if constexpr (kAffine) {
              const uint8_t* br = hc.bias_row(j);
              scale[i] = load_u16(sr + 2 * gi);
              bias_bits[i] = load_u16(br + 2 * gi);
            } else {
              scale[i] = load_u8(sr + gi);
            }
          }
        }
      }
    }
  }

  // The piece's group multipliers, with integer bit tricks (no float math, no branches).
  __device__ __forceinline__ void group_scales(const HeadCodec& hc, GroupScale gs[kGroups], uint32_t* bad) const {
#pragma unroll
    for (int i = 0; i < kGroups; ++i) {
      gs[i].mul = as_h2(0x3C003C00u);  // 1.0
      gs[i].add = as_h2(0u);
      if constexpr (kScaled) {
        if (!grouped(F, hc)) continue;  // fp8: no group scales
        const uint32_t w = scale[i];
        if constexpr (F == Fam::u8) {  // (affine 4-bit V pairs its scales in the kernel's PV)
          gs[i].mul = as_h2(prmt(w, 0, 0x1010));
          gs[i].add = as_h2(prmt(bias_bits[i], 0, 0x1010));
        } else {
          static_assert(F == Fam::e4m3, "4-bit V rows take their scales in the kernel's PV");
          // mxfp8: 2^(e-127) through f32 bits and one f32 -> f16x2 conversion (exact for powers of
          // two down to f16's subnormals); E4M3 code * 2^(e-127) stays an exact f16 for e in
          // [112, 134], else status bit 2.
          const uint32_t e = w & 0xFFu;
          gs[i].mul = __float2half2_rn(__uint_as_float(e << 23));
          *bad |= e - 112u > 22u;
        }
      }
    }
  }

  __device__ __forceinline__ void decode(const HeadCodec& hc, const GroupScale gs[kGroups], int dim0, int o,
                                         uint32_t h[][4], uint32_t* bad) const {
    if constexpr (F == Fam::generic) {
      row.decode(hc, dim0 + 8 * o, h, bad);
    } else {
      decode_octet<F>(raw + o * octet_bytes<F>() / 4, group_of(hc, gs, dim0, o), h);
    }
  }

  // The index into gs / scale of octet o's group.
  __device__ __forceinline__ static int group_index(const HeadCodec& hc, int dim0, int o) {
    if constexpr (kGroups == 1) return 0;
    return hc.group_shift < 0 ? 0 : int(((dim0 + 8 * o) >> hc.group_shift) - (dim0 >> hc.group_shift));
  }
  template <class T>
  __device__ __forceinline__ static T pick(const T* x, int i) {
    T v = x[0];
#pragma unroll
    for (int k = 1; k < kGroups; ++k)
      if (i == k) v = x[k];
    return v;
  }
  // The multipliers of octet o of the piece.
  __device__ __forceinline__ static GroupScale group_of(const HeadCodec& hc, const GroupScale gs[kGroups], int dim0,
                                                        int o) {
    return pick(gs, group_index(hc, dim0, o));
  }
  // The loaded scale word of octet o's group.
  __device__ __forceinline__ uint32_t scale_of(const HeadCodec& hc, int dim0, int o) const {
    return pick(scale, group_index(hc, dim0, o));
  }
};

// Affine keys enter the tensor cores as the decoders' magic-number f16 values, 1024 + code (8 bits)
// or 1024 + 16 * code (4 bits, q's fragments divided by 16), not as the codes: a block's partial
// score is then sum(q * code) + offset * sum(q) (offset 1024 or 64), which the block's bias term
// takes off (bias - offset * scale: one FFMA a key and block) instead of an f16 subtraction per
// value pair (32 a step at D = 128; 4-bit keys also skip their odd values' / 16). Loop per 16-key
// step (D = 128, common path): affine4 668 -> 620 instructions, affine8 612 -> 591. A/B on the H100
// (session 17, us): affine4 128K 95.6 -> 90.8, 32K 33.3 -> 32.0, MHA 32K 94.7 -> 89.8; affine8
// unchanged (memory-bound at 3 blocks per SM). Precision: the f32 accumulation now rounds at the
// offset's magnitude, an absolute error of ~2^-14 code steps times sum(|q|) per block, against the
// ~2^-24 relative of before; scores stay far inside SPEC §2's tolerance (sharp softmaxes included).
template <Fam F>
constexpr float key_code_offset() {
  return F == Fam::u8 ? 1024.0f : is_affine4(F) ? 64.0f : 0.0f;
}

// One key row's piece for QK: octet t of each 32-dim block (dims [32b + 8t, 32b + 8t + 8)), so
// that each mma k-step (16 dims) lies inside one block, and a block inside one group when groups
// have >= 32 values. The group's scale then multiplies the block's f32 partial score (4 FFMA per
// block instead of an HMUL2 per value pair, any E8M0 exponent exact), affine's bias adds
// bias * (q's sum over the block), and the codes enter the tensor cores as one exact f16 term
// (affine took three before). nvfp4 (groups of 16: one per octet) keeps its E4M3 block scale in
// f16, where code * scale is always exact.
template <Fam F, int NB>
struct KRow {
  static constexpr int kOctetWords = F == Fam::generic ? 1 : octet_bytes<F>() / 4;
  // mx and nvfp4 load a row's scale bytes whole (one load instead of one per block, and 4 bytes a
  // register instead of one): mx D/32 bytes, nvfp4 D/16 (this lane's are every other one).
  static constexpr bool kScaleBytes = F == Fam::e2m1 || F == Fam::e4m3 || F == Fam::nv4;
  static constexpr int kScaleRowBytes = F == Fam::nv4 ? 2 * NB : NB;
  // Affine 4-bit keys load their rows' scales and biases here: u4 a block at a time, u4gN the whole
  // rows (2 D / N bytes each); 8-bit keys through AffineKScales (which cost affine4 4% at 32K: more
  // spills in its loop; A/B, session 16).
  static constexpr bool kAffine = is_affine4(F);
  static constexpr int kAffineRowBytes = loads_key_scale_rows(F) ? std::max(2, 2 * NB / key_group_blocks(F)) : 0;
  static constexpr int kAffineRegs = loads_key_scale_rows(F) ? (kAffineRowBytes + 3) / 4 : NB;
  static constexpr int kScaleRegs = kScaleBytes ? (kScaleRowBytes + 3) / 4 : kAffine ? kAffineRegs : 1;
  uint32_t raw[NB * kOctetWords];
  // affine: the f16 scale's bits per block (u4gN: the row's, two groups a word); mx / nvfp4: the row's bytes
  uint32_t scale[kScaleRegs];
  uint32_t bias_bits[kAffine ? kAffineRegs : 1];  // affine: the f16 biases' bits, likewise (u4: unjoined, see RowPiece)
  GenericRow row;                        // generic only

  __device__ __forceinline__ void load(const HeadCodec& hc, uint32_t j, int t) {
    if constexpr (F == Fam::generic) {
      row.at(hc, j);
    } else {
      const uint8_t* c = hc.code_row(j);
      // hc.codes / hc.scales already point at this lane's octet / block scale (k_lane), so every
      // offset below is an immediate of the load instruction.
#pragma unroll
      for (int b = 0; b < NB; ++b) load_bytes<octet_bytes<F>()>(c + b * 4 * octet_bytes<F>(), raw + b * kOctetWords);
      if constexpr (loads_key_scale_rows(F)) {
        load_bytes<kAffineRowBytes>(hc.scale_row(j), scale);
        load_bytes<kAffineRowBytes>(hc.bias_row(j), bias_bits);
      } else if constexpr (kAffine) {
        const uint8_t* sr = hc.scale_row(j);
        const uint8_t* br = hc.bias_row(j);
        // Group sizes 32, 64, 128: block b's group is b >> (group_shift - 5). No branch on the group
        // size: its arms were if-converted into moves of the loaded values, each waiting for its load.
        const int blocks_per_group_shift = hc.group_shift - 5;
#pragma unroll
        for (int b = 0; b < NB; ++b) {
          const int at = b == 0 ? 0 : 2 * (b >> blocks_per_group_shift);
          scale[b] = load_u16(sr + at), bias_bits[b] = load_u16(br + at);
        }
      } else if constexpr (kScaleBytes) {
        if (grouped(F, hc)) load_bytes<kScaleRowBytes>(hc.scale_row(j), scale);  // fp8: none
      }
    }
  }

  // Scale byte i of the row, placed at bits 16..23 of an otherwise zero word.
  __device__ __forceinline__ uint32_t scale_byte_at_16(int i) const {
    return prmt(scale[i / 4], 0, 0x4044u | uint32_t(i % 4) << 8);
  }
  // nvfp4: the scale byte of octet t of block b (groups of 16: group 2b + t/2), in both bytes 0, 1.
  __device__ __forceinline__ uint32_t nv4_scale_pair(int b, int t) const {
    // Byte 2b + t/2 (t is this lane's: the selector is a register, the word index is not).
    return prmt(scale[b / 2], 0, uint32_t(2 * (b % 2) + (t >> 1)) * 0x11u);
  }
  // E8M0's NaN byte (0xFF) anywhere in the row: the key's score is NaN, as the scalar rule makes it
  // (each block's multiplier is then infinite, which alone could give -inf).
  __device__ __forceinline__ bool any_nan_scale(const HeadCodec& hc) const {
    if constexpr (F == Fam::e2m1 || F == Fam::e4m3) {
      if (!grouped(F, hc)) return false;
      uint32_t ff = 0;
#pragma unroll
      for (int i = 0; i < kScaleRegs; ++i) {
        const uint32_t w = kScaleRowBytes >= 4 ? scale[i] : scale[i] & ((1u << (8 * kScaleRowBytes)) - 1u);
        ff |= ((w & 0x7F7F7F7Fu) + 0x01010101u) & w & 0x80808080u;  // bit 7 of each 0xFF byte
      }
      return ff != 0;
    }
    return false;
  }

  // Block b's codes as KT exact f16 terms (generic: the value's hi + lo; nvfp4: times its block scale;
  // affine: 1024 + code, or 1024 + 16 * code for 4 bits, see key_code_offset).
  __device__ __forceinline__ void decode(const HeadCodec& hc, int b, int t, uint32_t h[][4], uint32_t* bad) const {
    if constexpr (F == Fam::generic) {
      row.decode(hc, 32 * b + 8 * t, h, bad);
    } else if constexpr (is_affine4(F)) {
      fmt::u4_octet_f16_sixteen_plus_1024(raw[b], h[0]);
    } else if constexpr (F == Fam::u8) {
      fmt::u8_octet_f16_plus_1024(raw + 2 * b, h[0]);
    } else {
      decode_codes<F>(raw + b * kOctetWords, h[0]);
      if constexpr (F == Fam::nv4) {
        const __half2 block = as_h2(e4m3_pair_f16(nv4_scale_pair(b, t)));
#pragma unroll
        for (int j = 0; j < 4; ++j) h[0][j] = as_u32(__hmul2(as_h2(h[0][j]), block));
      }
    }
  }

  // The f32 multiplier of block b's partial score (u4gN: of group b's): the group scale (mx:
  // 2^(e-127), infinite for E8M0's NaN byte: see any_nan_scale), 1 where the decode already holds
  // it (affine 8-bit keys': AffineKScales).
  __device__ __forceinline__ float multiplier(const HeadCodec& hc, int b) const {
    if constexpr (loads_key_scale_rows(F)) {
      return row_f16(scale, b);
    } else if constexpr (kAffine) {
      return __half2float(__ushort_as_half(uint16_t(scale[b])));
    } else if constexpr (F == Fam::e2m1 || F == Fam::e4m3) {
      if (!grouped(F, hc)) return 1.0f;  // fp8: the tensor scale is in q
      return __uint_as_float(scale_byte_at_16(b) << 7);
    } else {
      return 1.0f;
    }
  }
  // u4gN: f16 i of a row's scales or biases as loaded whole (two a word), in f32.
  __device__ __forceinline__ static float row_f16(const uint32_t* words, int i) {
    return __half2float(__ushort_as_half(uint16_t(words[i / 2] >> (16 * (i % 2)))));
  }
  // Affine's bias of block b (u4gN: group b; 0 elsewhere).
  __device__ __forceinline__ float bias(int b) const {
    if constexpr (loads_key_scale_rows(F)) return row_f16(bias_bits, b);
    if constexpr (kAffine) return __half2float(__ushort_as_half(uint16_t(bias_bits[b])));
    return 0.0f;
  }
};

// Affine 8-bit keys' group scales and biases (f16 bits) for a step's two key rows, g and g + 8,
// loaded by the 4 lanes of the key quad between them: lane t loads block t's (and t + 4's at
// D = 256) of each row, and each block takes its values from that lane by a shuffle. KRow loads
// them a block and a row at a time in every lane: 16 loads a step at D = 128, each touching 8
// keys' rows (128 L1 tag lookups of an affine step's ~240; mxfp4's step makes 112); here 4 loads,
// 32 lookups. A/B (H100, session 16): affine8 128K 120.4 -> 116.4 us, 32K 40.5 -> 39.6; affine4
// lost (32K 33.2 -> 34.5, its loop spilling more), so 4-bit keys keep KRow's loads.
template <int D>
struct AffineKScales {
  static constexpr int NB = D / 32, kLoads = (NB + 3) / 4;  // blocks of a row; a lane's loads a row
  uint32_t scale[2][kLoads], bias[2][kLoads];  // [key g, g + 8][the lane's blocks t, t + 4]

  __device__ __forceinline__ void load(const HeadCodec& hc, uint32_t ja, uint32_t jb, int t) {
#pragma unroll
    for (int k = 0; k < kLoads; ++k) {
      // Block t + 4k's group (groups of 32, 64, 128 values: blocks >> (group_shift - 5)).
      const uint32_t at = 2u * uint32_t(min(t + 4 * k, NB - 1) >> (hc.group_shift - 5));
      scale[0][k] = load_u16(hc.scale_row(ja) + at);
      bias[0][k] = load_u16(hc.bias_row(ja) + at);
      scale[1][k] = load_u16(hc.scale_row(jb) + at);
      bias[1][k] = load_u16(hc.bias_row(jb) + at);
    }
  }
  // Row r's (0: key g, 1: key g + 8) value of block b, from the loaded words w (scale or bias).
  __device__ __forceinline__ static float pick(const uint32_t (&w)[2][kLoads], int r, int b) {
    return __half2float(__ushort_as_half(uint16_t(__shfl_sync(0xFFFFFFFFu, w[r][b / 4], b % 4, 4))));
  }
};
struct NoKScales {
  __device__ __forceinline__ void load(const HeadCodec&, uint32_t, uint32_t, int) {}
};

// Octet o (codes of values [8o, 8o + 8)) of a turbo chunk of words, as one word in the bitstream's
// order (the index functions ignore the bits above the octet's 8 codes).
template <int Bits, int Words>
__device__ __forceinline__ uint32_t turbo_octet_word(const uint32_t* raw, int o) {
  if constexpr (Bits == 4) return raw[o];
  if constexpr (Bits == 2) return raw[o / 2] >> (16 * (o % 2));
  const int byte = 3 * o, w = byte / 4, sh = byte % 4;  // 3 bytes from byte 3o (o is a constant)
  if (sh == 0) return raw[w];
  return prmt(raw[w], raw[min(w + 1, Words - 1)], uint32_t(sh) * 0x1111u + 0x3210u);
}

// A turbo octet's nibble indices (formats/f16_bits.hpp): 4-bit codes are nibbles already (their
// symmetric index comes later, so that key pairs can be interleaved first).
template <int Bits>
__device__ __forceinline__ uint32_t turbo_nibbles(uint32_t x) {
  if constexpr (Bits == 3) return fmt::turbo3_index(x);
  if constexpr (Bits == 2) return fmt::turbo2_index(x);
  return x;
}

// Nibbles (turbo_nibbles, possibly two keys interleaved) to the levels' hi and lo f16 terms, 4
// half2 each in the usual pairing.
template <int Bits>
__device__ __forceinline__ void turbo_lookup(uint32_t nib, const HeadCodec& hc, uint32_t h[][4]) {
  uint32_t keep[2] = {~0u, ~0u};
  if constexpr (Bits == 4) fmt::turbo4_code_msbs(nib, keep);
  const uint32_t idx = Bits == 4 ? fmt::turbo4_index(nib) : nib;
  fmt::lut_octet_f16(idx, hc.lut_hi, h[0], keep);
  fmt::lut_octet_f16(idx, hc.lut_lo, h[1], keep);
}

// A turbo key row for QK. There are no groups, so the lane's dims need not interleave with the
// other lanes' as KRow's do: lane t holds the contiguous quarter [t D/4, (t + 1) D/4) of the row
// (D * bits / 32 bytes, one 16-byte load for turbo4 at D = 128), and its block b is its octet b
// (q's fragments follow: k_dim0). The row's f16 scale multiplies the f32 score.
template <Fam F, int D>
struct TurboKRow {
  static constexpr int kBits = turbo_bits(F), kBytes = D * kBits / 32, kWords = (kBytes + 3) / 4;
  static constexpr int kAlign = kBytes & -kBytes;  // of t * kBytes for every t
  uint32_t raw[kWords];
  uint32_t scale;

  __device__ __forceinline__ void load(const HeadCodec& hc, uint32_t j, int) {
    load_chunk<kBytes, (kAlign < 16 ? kAlign : 16)>(hc.code_row(j), raw);
    scale = load_u16(hc.scale_row(j));
  }
  __device__ __forceinline__ void decode(const HeadCodec& hc, int b, int, uint32_t h[][4], uint32_t*) const {
    turbo_lookup<kBits>(turbo_nibbles<kBits>(turbo_octet_word<kBits, kWords>(raw, b)), hc, h);
  }
  __device__ __forceinline__ float row_scale() const { return __half2float(__ushort_as_half(uint16_t(scale))); }
  __device__ __forceinline__ bool any_nan_scale(const HeadCodec&) const { return false; }  // NaN * score is NaN
};

// A turbo value row's piece for PV: dims [dim0, dim0 + D/8) of the row (D * bits / 64 bytes; the
// scale is applied to P, see the kernel).
template <Fam F, int D>
struct TurboVPiece {
  static constexpr int kBits = turbo_bits(F), kBytes = D * kBits / 64, kWords = (kBytes + 3) / 4;
  static constexpr int kAlign = kBytes & -kBytes;
  // Pieces only 2-byte aligned (turbo3 at D = 128: 6 bytes) keep their 16-bit loads in separate
  // registers until the step decodes them: joined at the load, the first tile's joins waited for
  // their loads in the prologue, before q's loads went out (session 15's SASS).
  static constexpr bool kHalves = kAlign == 2 && kBytes > 2;
  uint32_t raw[kHalves ? kBytes / 2 : kWords];
  __device__ __forceinline__ void load(const HeadCodec& hc, uint32_t j, int) {
    const uint8_t* p = hc.code_row(j);
    if constexpr (kHalves) {
#pragma unroll
      for (int i = 0; i < kBytes / 2; ++i) raw[i] = load_u16(p + 2 * i);
    } else {
      load_chunk<kBytes, (kAlign < 16 ? kAlign : 16)>(p, raw);
    }
  }
  __device__ __forceinline__ uint32_t nibbles(int o) const {
    if constexpr (kHalves) {
      uint32_t words[kWords];
#pragma unroll
      for (int i = 0; i < kWords; ++i) words[i] = 2 * i + 1 < kBytes / 2 ? prmt(raw[2 * i], raw[2 * i + 1], 0x5410) : raw[2 * i];
      return turbo_nibbles<kBits>(turbo_octet_word<kBits, kWords>(words, o));
    } else {
      return turbo_nibbles<kBits>(turbo_octet_word<kBits, kWords>(raw, o));
    }
  }
};

// The dim of q that a lane's K fragment element meets: k-step s (16 dims), lane column t, position
// i of the octet. KRow: octet t of 32-dim block s/2; TurboKRow: octet s/2 of the lane's quarter.
template <Fam KF, int D>
__host__ __device__ constexpr int k_dim0(int s, int t) {
  return is_turbo(KF) ? t * (D / 4) + 8 * (s / 2) : 32 * (s / 2) + 8 * t;
}

// The f32 factor of a whole head that the f16 path leaves out (folded into q for K, into the
// output for V): fp8's tensor scale, nvfp4's global scale.
template <Fam F>
__device__ __forceinline__ float head_factor(const fmt::RowCodec& c) {
  if constexpr (F == Fam::e4m3) {
    if (c.kind == FormatKind::fp8) return c.tensor_scale;
  } else if constexpr (F == Fam::nv4) {
    return fmt::nvfp4_global_factor(c.global_scale);
  }
  return 1.0f;
}

__device__ inline HeadCodec head_codec(const fmt::RowCodec& c, const CacheView& cv, int64_t b, int64_t hk,
                                       const fmt::F16Lut (&luts)[2]) {
  HeadCodec h;
  h.codec = c;
  const bool grouped = c.kind == FormatKind::affine || c.kind == FormatKind::mxfp4 || c.kind == FormatKind::mxfp8 ||
                       c.kind == FormatKind::nvfp4;
  h.group_shift = grouped ? __ffs(c.group) - 1 : -1;
  h.codes = cv.code_row(b, hk, 0);
  h.scales = cv.scale_row(b, hk, 0);
  h.biases = cv.bias_row(b, hk, 0);
  h.code_stride = uint32_t(cv.code_strides[2]);
  h.scale_stride = uint32_t(cv.scale_strides[2]);
  h.bias_stride = uint32_t(cv.bias_strides[2]);
  h.lut_hi = luts[0], h.lut_lo = luts[1];
  return h;
}

// The lane's base pointers of the K and V arrays (codes, scales, biases, each at the lane's piece),
// kept in shared memory through the loop and read back by the loads of each step. Held in
// registers, they were what ptxas gave up first at the 128-register cap: it rebuilt them every
// step from the kernel's parameters (constant-bank loads, the batch and head strides' 64-bit
// products, the lane offsets' adds), ~25 of the 407 instructions of the mxfp4 step's common path
// (SASS, session 33). A volatile shared load cannot be rebuilt or hoisted: the loop reads each
// side's pointers where its row addresses need them (one LDS.128), and each row's address is one
// IMAD.WIDE.U32 of its key index. The pointers depend on the lane, not on the warp: warp 0 writes
// the block's table before the barrier that ends q's staging.
// QSDPA_LANE_BASES_MODE (an A/B switch): 2 every pair but u4 keys (the fallback affine4 key family,
// whose 4-warp loop spilled 2 -> 18 local accesses a step with the table), 1 all, 0 none.
#ifndef QSDPA_LANE_BASES_MODE
#define QSDPA_LANE_BASES_MODE 2
#endif
constexpr bool lane_bases_in_smem(Fam key_family) {
  return QSDPA_LANE_BASES_MODE == 1 || (QSDPA_LANE_BASES_MODE == 2 && key_family != Fam::u4);
}
template <bool kInSmem>
struct LaneBases {
  struct alignas(16) Slot {
    const uint8_t *k_codes, *k_scales, *v_codes, *v_scales, *k_biases, *v_biases;
  };
  uint32_t slot = 0;  // the lane's slot (a shared-memory address)
  __device__ __forceinline__ LaneBases(const HeadCodec& kh, const HeadCodec& vh, int lane) {
    if constexpr (kInSmem) {
      __shared__ Slot slots[32];
      if (threadIdx.x < 32) slots[lane] = Slot{kh.codes, kh.scales, vh.codes, vh.scales, kh.biases, vh.biases};
      // Through a shuffle, which ptxas does not rebuild: computed from the lane index, the address
      // was rebuilt at each use (6-7 instructions a step).
      slot = __shfl_sync(0xFFFFFFFFu, uint32_t(__cvta_generic_to_shared(&slots[lane])), lane);
    }
  }
  __device__ __forceinline__ static void pair(uint32_t at, const uint8_t** a, const uint8_t** b) {
    uint64_t x, y;
    asm volatile("ld.shared.v2.u64 {%0, %1}, [%2];" : "=l"(x), "=l"(y) : "r"(at));
    *a = reinterpret_cast<const uint8_t*>(x), *b = reinterpret_cast<const uint8_t*>(y);
  }
  __device__ __forceinline__ static const uint8_t* one(uint32_t at) {
    uint64_t x;
    asm volatile("ld.shared.u64 %0, [%1];" : "=l"(x) : "r"(at));
    return reinterpret_cast<const uint8_t*>(x);
  }
  // Families whose loads read a bias array (the generic decoder's may be null: read back as such).
  static constexpr bool biased(Fam f) { return is_affine4(f) || f == Fam::u8 || f == Fam::generic; }
  template <Fam F>
  __device__ __forceinline__ void reload_k(HeadCodec& kh) const {
    if constexpr (!kInSmem) return;
    pair(slot + offsetof(Slot, k_codes), &kh.codes, &kh.scales);
    if constexpr (biased(F)) kh.biases = one(slot + offsetof(Slot, k_biases));
  }
  template <Fam F>
  __device__ __forceinline__ void reload_v(HeadCodec& vh) const {
    if constexpr (!kInSmem) return;
    pair(slot + offsetof(Slot, v_codes), &vh.codes, &vh.scales);
    if constexpr (biased(F)) vh.biases = one(slot + offsetof(Slot, v_biases));
  }
};
// Dynamic shared memory a kernel may take without asking for more: 48 KB less its static shared
// memory (the lane bases' table and a few words).
constexpr size_t kDefaultDynamicSmem = 48 * 1024 - sizeof(LaneBases<true>::Slot) * 32 - 64;

struct MmaParams : KernelArgs {
  int rows;        // R = G * Lq
  int splits;      // key splits per (b, kv head) = partials per row
  int row_chunks;  // blocks per split, each taking NT*8 of the R rows (R above one block's tiles)
  // The prologue's divisors (detail::Divider): the query heads per KV head (G), splits, row_chunks.
  detail::Divider heads_per_kv, split_div, chunk_div;
  float* work;
  int cluster;     // > 1: the splits of a (b, kv head) are one thread-block cluster that merges them
                   // (then row_chunks is 1 and there is no work); 1: partials to work, merge kernel
  int cluster_warps = kWarps;  // warps per block of the cluster kernel (kWarps, kWideWarps, or whole_sm_warps)
  uint32_t cluster_magic;  // ceil(2^32 / cluster): r / cluster = umulhi(r, magic) for r < 2^16
  bool q_octets;   // q's rows load as 16-byte octets (see the prologue): d contiguous, rows and data aligned
  // Turbo K / V: the levels' f16 hi and lo planes (fmt::turbo_luts), built once on the host: built
  // in every block's prologue, their 32 conversions a side came before the block's first load.
  fmt::F16Lut k_luts[2]{}, v_luts[2]{};
  bool programmatic = false;  // host: launched with programmatic dependent launch (sm_90)
  bool early_next = false;    // the cluster kernel lets the next kernel launch at its start (mma_split)
  bool whole_sm = false;  // launched as whole-SM blocks (whole_sm_warps)
};

// r / C for the cluster merge's small counts (r < 2^16, C <= 16) from C's magic number: a 32-bit
// division by a run-time C is ~20 instructions, and the 1K epilogue's pushes did two per element
// (~0.5 us of a block's one warp per scheduler; phase probe, session 9).
__device__ __forceinline__ int div_cluster(int r, uint32_t magic) { return int(__umulhi(uint32_t(r), magic)); }

// The warps' partials in shared memory at the end of the kernel, [warp][row][row_stride]: row r's
// dim d at chunk d / C (C = D / 8, the dims of one lane group g of the accumulators) times C + 1,
// plus d % C; then m and l. The epilogue's scatter of the accumulators (for one store, lanes (g, t)
// hold rows 2t(+1) and dims g * C + k) then hits 32 distinct banks: the chunk's +1 spreads g, and a
// row stride of 4 (mod 16) words spreads t by 8 banks. (Rows of D + 2 words put those stores 4-way
// on a bank, D + 4 words 8-way: +0.3-0.5 us at 1K-4K and +1 us at 32K, session 14.)
template <int D>
struct WarpPartials {
  static constexpr int kChunk = D / 8, kChunkStride = kChunk + 1;
  static constexpr int kM = 8 * kChunkStride, kL = kM + 1;            // the row's m and l
  static constexpr int kRowStride = (kL + 1 - 4 + 15) / 16 * 16 + 4;  // >= kL + 1, 4 (mod 16)
  __host__ __device__ static constexpr int at(int d) { return d / kChunk * kChunkStride + d % kChunk; }
};
// The partials a cluster block receives: rows of D values, m and l, padded to 16-byte multiples so
// that a lane pushes 4 dims in one st.async.v4.
template <int D>
constexpr int receive_stride() {
  return D + 4;
}
// The row tiles of an instance, by a code (the template parameter NT of the kernel and the host's
// instances): 1, 2 or 4 n-tiles of 8 rows, or 0 for one n-tile of 4 rows whose q and P lo terms are
// columns of their own (session 24). With at most 4 rows a block (GQA <= 4 at Lq 1: the decode of
// the reference shapes), the n-tile's 8 columns hold each row twice, hi in column 2r and lo in
// 2r + 1, instead of 8 rows whose lo terms take a second mma: lane (g, t) then holds row t's hi and
// lo scores in one register pair, added once per step; P's hi and lo go into the PV product's
// columns the same way, and the epilogue adds each row's two columns. Half the mma of both
// products, half the softmax a lane (every lane holds a real row), one P transposed instead of two:
// the common path of a 16-key step at D = 128 (SASS) E2M1 452 -> 400 instructions, affine4 619 ->
// 568 (6 -> 2 local accesses), E4M3 440 -> 401, nvfp4 475 -> 424, affine8 591 -> 531, turbo4 741
// -> 691, f16 277 -> 251.
__host__ __device__ constexpr int n_tiles_of(int code) { return code == 0 ? 1 : code; }
__host__ __device__ constexpr bool packs_lo(int code) { return code == 0; }
__host__ __device__ constexpr int tile_rows(int code) { return code == 0 ? 4 : 8 * code; }

// Shared memory: q's B fragments [D/16][n-tiles][32] (hi and lo: uint4) until the loop; at the end
// the warp partials over them (after the barrier that follows every warp's loop).
template <int D, int NT>
constexpr size_t qfrag_bytes() {
  return size_t(D / 16) * n_tiles_of(NT) * 32 * 16;
}
template <int D, int NT>
constexpr size_t partial_slot_bytes() {  // one warp's partial of the block's rows
  return size_t(tile_rows(NT)) * WarpPartials<D>::kRowStride * 4;
}
template <int D, int NT, int Warps = kWarps>
constexpr size_t smem_bytes() {
  return std::max(qfrag_bytes<D, NT>(), size_t(Warps) * partial_slot_bytes<D, NT>());
}
// Cluster launches (D * NT <= 128) add a receive area after it: the partials of the block's rows
// from every split of the cluster, [C][slot rows][receive_stride] with C * slot rows <= RP + C - 1.
template <int D, int NT>
constexpr bool clusters_fit() {
  return D * n_tiles_of(NT) <= 128;
}
template <int D, int NT>
constexpr size_t receive_bytes() {
  return clusters_fit<D, NT>() ? size_t(tile_rows(NT) + kMaxCluster - 1) * receive_stride<D>() * 4 : 0;
}

// One step's K and V pieces of a lane: keys g, g+8 (K, octet t of each 32-dim block) and keys 2t,
// 2t+1, 2t+8, 2t+9 (V, dims [g*D/8, ...)), all clamped into the warp's range.
template <int D, Fam KF, Fam VF>
struct Tile {
  std::conditional_t<is_turbo(KF), TurboKRow<KF, D>, KRow<KF, D / 32>> k[2];
  std::conditional_t<is_turbo(VF), TurboVPiece<VF, D>, RowPiece<VF, D / 64>> v[4];
  uint32_t vscale[is_turbo(VF) ? 2 : 1];  // turbo V: the f16 scales of keys g, g+8 (the lane's P)
  std::conditional_t<KF == Fam::u8, AffineKScales<D>, NoKScales> kscales;
  __device__ __forceinline__ void load_k(const HeadCodec& kh, int j0, int last, int g, int t) {
    const uint32_t ja = uint32_t(min(j0 + g, last)), jb = uint32_t(min(j0 + g + 8, last));
    k[0].load(kh, ja, t);
    k[1].load(kh, jb, t);
    kscales.load(kh, ja, jb, t);
  }
  // Key row r's (0: key g, 1: key g + 8) f32 multiplier and affine bias of block b (KRow's, or
  // AffineKScales' for 8-bit affine keys).
  __device__ __forceinline__ float k_multiplier(const HeadCodec& kh, int r, int b) const {
    if constexpr (KF == Fam::u8) return AffineKScales<D>::pick(kscales.scale, r, b);
    else return k[r].multiplier(kh, b);
  }
  __device__ __forceinline__ float k_bias(int r, int b) const {
    if constexpr (KF == Fam::u8) return AffineKScales<D>::pick(kscales.bias, r, b);
    else return k[r].bias(b);
  }
  // Turbo V's row scales of keys g, g+8, which the step's softmax takes (loaded after it, a step ahead).
  __device__ __forceinline__ void load_vscale(const HeadCodec& vh, int j0, int last, int g) {
    if constexpr (is_turbo(VF)) {
#pragma unroll
      for (int i = 0; i < 2; ++i)
        vscale[i] = load_u16(vh.scale_row(uint32_t(min(j0 + g + 8 * i, last))));
    }
  }
  __device__ __forceinline__ void load_v(const HeadCodec& vh, int j0, int last, int g, int t) {
#pragma unroll
    for (int i = 0; i < 4; ++i) v[i].load(vh, min(j0 + 2 * t + (i & 1) + 8 * (i >> 1), last), g * (D / 8));
  }
};

// Whether the kernel loads a step's codes a step ahead (see the loop): where one step's code words
// are few enough to stay in registers through a step (f16's 64 would spill; the generic decoder
// loads value by value).
template <int D, Fam KF, Fam VF>
constexpr bool rolls() {
  constexpr int words = 2 * (D / 32) * octet_bytes<KF>() / 4 + 4 * (D / 64) * octet_bytes<VF>() / 4;
  return KF != Fam::generic && VF != Fam::generic && words <= 32;
}

// Resident blocks per SM the compiled families are held to: 4 (<= 128 registers a thread) for the
// 4-bit and f16 families (the loop is bound by issue and latency and needs the warps), 3 for the
// 8-bit families (at 4 they spill ~10 local loads and stores a step, session 5) and for turbo (at 4
// it spilled 40 bytes; 3 was 3-6% faster, A/B on the H200, session 6); the generic decoder's scalar
// rule cannot fit either, nor can D * NT = 256 (64 accumulator registers) except f16 at D = 128 with
// two row tiles (Lq 4-8 at GQA 4), which runs 3 blocks without spilling (Lq 8: 87 -> 77 us at 32K;
// the other families lost 0-17% there, spilling). Stage ab of gpu-check.sh tries other values
// through these switches. Session 23 (H100, A/B, µs): the 8-bit families at 4 blocks (128
// registers; E4M3 now spills only 2 local accesses a step, 455 instructions against 440) were
// slower at every length from 4K: mxfp8 32K 33.5 -> 35.0, 128K 107 -> 113.5, affine8 128K 113 ->
// 117; D = 256 at 3 blocks instead of 2 (168 registers, spilling) gained f16 102 -> 100 at 32K and
// lost 5-11 for mxfp8 and affine8.
#ifndef QSDPA_WIDE_TILE_BLOCKS
#define QSDPA_WIDE_TILE_BLOCKS 1
#endif
#ifndef QSDPA_TURBO_BLOCKS
#define QSDPA_TURBO_BLOCKS 3
#endif
#ifndef QSDPA_EIGHT_BIT_BLOCKS
#define QSDPA_EIGHT_BIT_BLOCKS 3
#endif
template <int D, int NT, Fam KF, Fam VF>
constexpr int min_blocks_of_4_warps() {
  if (KF == Fam::generic || VF == Fam::generic) return 1;
  if (D * n_tiles_of(NT) > 128) {
    if (D == 128 && NT == 2) return KF == Fam::f16 && VF == Fam::f16 ? 3 : QSDPA_WIDE_TILE_BLOCKS;
#ifdef QSDPA_D256_BLOCKS  // A/B switch (session 23): D = 256 runs 2 blocks a SM (8 warps) at 214-250 registers; 3 lost (below)
    if (D == 256 && n_tiles_of(NT) == 1) return QSDPA_D256_BLOCKS;
#endif
    return 1;
  }
  // D = 64 with one n-tile has 16 accumulator registers and fits 5 blocks (96 registers) without
  // spilling in its loops, D = 256 on tile code 0 3 blocks (168) for E2M1 and nvfp4. A/B (session
  // 25, H100, GQA 4 at D 64, GQA 2 at D 256, µs): 5 blocks at D 64 slower at 4K-32K for every
  // format (32K mxfp4 15.3 -> 16.9, affine4 17.5 -> 20.2, f16 30.4 -> 30.9), at 128K f16 99.5 ->
  // 98.5 and mxfp8 60.6 -> 59.2 but mxfp4 39.2 -> 40.1; 3 at D 256: 128K mxfp4 118.5 -> 115.2,
  // nvfp4 123.7 -> 120.7, 32K both +1 and the spilling families +5-15%. More blocks a SM mean more
  // prologues sharing its issue slots and more partials, which the short calls pay.
#ifdef QSDPA_D64_BLOCKS  // A/B switch
  if (D == 64 && n_tiles_of(NT) == 1) return QSDPA_D64_BLOCKS;
#endif
  if (is_turbo(KF) || is_turbo(VF)) return QSDPA_TURBO_BLOCKS;
  return KF == Fam::u8 || KF == Fam::e4m3 || VF == Fam::u8 || VF == Fam::e4m3 ? QSDPA_EIGHT_BIT_BLOCKS : 4;
}
// The same registers per thread with more warps a block: proportionally fewer blocks.
template <int D, int NT, Fam KF, Fam VF, int W>
constexpr int min_blocks() {
  return std::max(1, min_blocks_of_4_warps<D, NT, KF, VF>() * 4 / W);
}

// The loop's software pipeline (see the loop) and the softmax's lazy reference point (see softmax
// in the kernel); 0 turns either off (stage ab of gpu-check.sh compares builds). A/B on the H100
// (session 7, B=1, Hq=32, Hkv=8, D=128): together they took 128K mxfp4 77 -> 72 us, nvfp4 80 -> 75,
// affine4 119 -> 113, turbo3 120 -> 118, 32K and 4K mxfp4 -1 us; the 8-bit families (E4M3, affine
// 8-bit; 3 blocks per SM, where the pipeline spilled) lost 1-3 us with them then (see pipelined_pair).
#ifndef QSDPA_PIPELINE
#define QSDPA_PIPELINE 1
#endif
#ifndef QSDPA_LAZY_MAX
#define QSDPA_LAZY_MAX 1
#endif
// Key families whose loop runs unpipelined at two or more n-tiles (Lq 4-8 at GQA 4): a bit mask
// over Fam's values. Affine 4-bit keys spilled there (D 128: 758 instructions and 6 local accesses
// a step at 255 registers; unpipelined 751 and none). A/B on the H100 (session 26, prebuilt
// archives in one call, GQA 4, D 128, us): affine4 Lq 4 32K 40.8 / 41.2 -> 39.3 / 39.2 (1.44x its
// Lq 1 time in a later run; issue 3 asks 1.5x), affine4-g32 41.5 / 41.6 -> 39.4 / 39.2, Lq 4 128K
// 121 -> 114 / 116, Lq 8 32K 65.3 / 65.4 -> 64.8 / 64.2; mxfp4 (code unchanged) within 0.3. The
// other pipelined 4-bit and turbo families, which do not spill there, lost without it (mask 970,
// a second call: mxfp4 Lq 4 32K 32.0 / 32.5 -> 34.3, Lq 8 51.0 -> 54.2, Lq 4 128K 89.6 -> 97.6;
// nvfp4 and turbo alike), so only affine 4-bit keys take it.
#ifndef QSDPA_WIDE_UNPIPELINED
#define QSDPA_WIDE_UNPIPELINED (1 << int(Fam::u4) | 1 << int(Fam::u4g64) | 1 << int(Fam::u4g32) | 1 << int(Fam::u4g128))
#endif
constexpr bool eight_bit(Fam f) { return f == Fam::u8 || f == Fam::e4m3; }
// The families whose 4-warp loop asks L2 for its rows two steps ahead (see prefetch_rows in the kernel).
constexpr bool prefetches_rows(Fam f) { return f == Fam::e2m1 || f == Fam::nv4; }
// The pairs that take both: all but those with affine 8-bit codes or with E4M3 beside another family
// (at 3 blocks per SM they spilled; session 7). E4M3:E4M3 (mxfp8, fp8) took them in session 8: A/B
// on the H100 (B=1, Hq=32, D=128, mxfp8) 128K 110.7 -> 109.2 us with Hkv=8 (83.4 -> 84.6% of the
// copy peak), Hkv=32 395 -> 390 us (93.4 -> 94.5%), 32K 37.8 -> 37.0 and 110.0 -> 108.4 us; common
// path per step 462 -> 442, no spills. Four blocks per SM with them ran slower (116 us, 79%).
// Kernels with all the registers (one block per SM) take both for every pair since session 17: A/B
// on the H100 (us) affine8 1K 7.12 -> 6.89, 2K 9.16 -> 8.89; affine8:affine4 2K 8.98 -> 8.62;
// Lq 8 at 32K (two row tiles) affine8 74.4 -> 70.3, mxfp8:mxfp4 59.4 -> 54.1; D 256 unchanged.
constexpr bool pipelined_pair(Fam k, Fam v) {
  return (!eight_bit(k) && !eight_bit(v)) || (k == Fam::e4m3 && v == Fam::e4m3);
}

// The 8-warp cluster kernel runs one block per SM (attention_mma.cu, mma_split), so it may take all
// the registers. A/B (session 13, H100, GQA 4, min blocks 2 -> 1, µs at 1K / 2K): affine4 8.00 ->
// 7.83 / 10.97 -> 10.30, nvfp4 6.80 -> 6.70 / 8.50 -> 8.25, mxfp4 6.65 -> 6.60 / 7.76 -> 7.64, the
// 8-bit and turbo families at 1 already; f16 7.79 -> 7.75 / 9.72 -> 9.85, so f16 keeps 2.
template <int D, int NT, Fam KF, Fam VF, bool Cluster, int W>
constexpr int kernel_min_blocks() {
  return Cluster && W == kWideWarps && !(KF == Fam::f16 && VF == Fam::f16) ? 1 : min_blocks<D, NT, KF, VF, W>();
}
// Whole-SM blocks (session 30): one block of all the warps a SM holds (16 warps, four 4-warp
// blocks' worth at the same 128 registers a thread) for affine 4-bit keys and values and, since
// session 31, mxfp4 and nvfp4 (which calls take them: attention_mma.cu, whole_sm_split). With four
// 4-warp blocks a SM the blocks end in launch order (the first block of a SM takes its issue slots
// first; session 24's probe: 128K ranks' loops end 53.0 / 55.0 / 57.9 / 60.7 us on average), and no
// static share could even them (session 24). One block's warps start together and end within ~0.6
// us (32K) to ~1.5 us (128K) of each other (phase probe, mxfp4), and a SM stages q once instead of
// four times; the cost is the SMs beyond B * Hkv * splits (4 of 132 at 8 KV heads) left idle, and
// what remains of the tail is the SMs' spread (~2.2 us at 32K, ~4.5 at 128K). A/B in one call
// (H100, GQA 4, us, 4-warp -> whole-SM): affine4 32K 25.1 -> 24.8, 64K 41.5 -> 39.8, 128K 73.5 ->
// 70.0; MHA 32K 72.1 -> 69.6, 128K 256.0 -> 239.8 (the kept version, another call: 128K 74.0 ->
// 72.1, affine4-g32 75.1 -> 72.7, MHA 128K 258.4 -> 246.9). Session 31 (A B A B, us): mxfp4 64K
// 34.9 / 35.0 -> 33.9 / 33.7, 128K 63.1 / 63.2 -> 60.5 / 60.4, MHA 32K 60.3 / 60.3 -> 59.8 / 59.3,
// B 8 32K 117 -> 114 (in clusters: 111); nvfp4 64K 36.1 -> 34.8, 128K 65.5 / 65.3 -> 62.8, B 8
// 32K 119 -> 119 (clusters: 114); but at 32K with one KV head's 16 splits of ~2K keys mxfp4 20.9 /
// 20.8 -> 21.1 / 21.2 (session 30: nvfp4 21.9 -> 22.2). The 8-bit families (12 warps) were 2-5%
// slower, f16 0-2%; a tail of key chunks that free warps took from a shared counter (branch
// s30-tail-chunks: each chunk a fresh softmax and a slot of its own, so deterministic, but a
// chunk's first tile then waits out a full memory latency) 8-14% slower.
// bench/results/cuda-h100-2026-11-27-session30.md, -session31.md.
// Steps after the first whose code rows a warp asks into L2 in its prologue (session 35), one
// prefetch.global.L2 a lane a step (lanes 0-15 K rows, 16-31 V rows), issued after the first tile's
// loads: from the grid's wait until the loop starts (~3 us at 32K-128K, q's staging behind the first
// tile's loads) the memory is otherwise busy with one step a warp. Where the loop asks for nothing
// ahead (whole-SM mxfp4 / nvfp4 blocks, the 8-bit 4-warp ones), that gained; where it already asks
// two steps ahead (the 4-warp mxfp4 / nvfp4 kernels) it lost. A B C (H100, session 35, GQA 4, us,
// none / 2 steps / 4 steps): whole-SM mxfp4 128K 57.5 / 57.1 / 56.5, nvfp4 59.4 / 58.9 / 58.6,
// MHA 32K mxfp4 56.6 / 56.3 / 55.7; 4-warp mxfp8 32K 30.4 / 29.8 / 30.5, affine8 31.8 / 31.3 /
// 32.1, 128K mxfp8 100.8 / 100.2 / 100.5, affine8 104.7 / 103.9 / 104.5; not taken: 4-warp mxfp4
// 32K 19.8 / 20.3 / 21.6, nvfp4 20.1 / 20.3 / 21.6, turbo4 32K 32.4 / 33.7 / 34.1, affine4 (whole-SM
// at 128K) 65.1 / 65.5 / 65.7. Only where measured: D 128, up to 4 rows a block, no cluster.
// Off by default since session 42: on the H200 every step of it lost (below), so
// -DQSDPA_PROLOGUE_PREFETCH=1 brings back session 35's H100 setting (whole-SM 4 steps, 8-bit 2);
// re-measure both there when an H100 is lent.
// - Whole-SM mxfp4 / nvfp4 (H200, A B in one call each, GQA 4, us): 4 -> 2 steps (session 40)
//   mxfp4 64K 27.94 -> 27.28, 128K 47.33 -> 46.57, nvfp4 64K 28.57 -> 27.74, 128K 48.41 -> 47.62;
//   2 -> 1 (session 41) mxfp4 16K 12.45 -> 12.05, 32K 17.50 -> 17.07, 128K 46.73 -> 46.18, nvfp4
//   32K 17.72 -> 17.33, 128K 47.76 -> 47.13; 1 -> 0 (session 42, means of 3) mxfp4 16K 12.28 ->
//   11.94, 32K 17.29 -> 16.90, 64K 27.10 -> 26.62, 128K 46.54 -> 45.98, nvfp4 16K 12.19 -> 11.88,
//   32K 17.59 -> 17.12, 128K 47.47 -> 46.87, MHA 32K mxfp4 45.83 -> 45.30, nvfp4 46.79 -> 46.28.
// - The 8-bit 4-warp kernels, 2 -> 0 steps (session 42, means of 3): GQA 4 mxfp8 16K 17.29 ->
//   16.60, 32K 25.32 -> 24.86, 128K 75.46 -> 75.16, affine8 16K 19.25 -> 18.31, 32K 28.29 ->
//   27.00, 128K 80.42 -> 79.20; 4K and MHA 32K within ±1.1%.
// On the H200 the first tiles' loads alone keep the memory busy through the prologue; asking for
// more there only delays them.
#ifndef QSDPA_PROLOGUE_PREFETCH
#define QSDPA_PROLOGUE_PREFETCH 0
#endif
#ifndef QSDPA_WHOLE_SM_PREFETCH_STEPS  // with QSDPA_PROLOGUE_PREFETCH=1 (4: session 35's H100 setting)
#define QSDPA_WHOLE_SM_PREFETCH_STEPS 4
#endif
template <int D, int TC, Fam KF, Fam VF, bool Cluster, int W>
constexpr int prologue_prefetch_steps() {
  if (!QSDPA_PROLOGUE_PREFETCH || Cluster || TC != 0 || D != 128) return 0;
  if (W > kWarps && prefetches_rows(KF) && prefetches_rows(VF)) return QSDPA_WHOLE_SM_PREFETCH_STEPS;  // mxfp4, nvfp4
  return W == kWarps && eight_bit(KF) && KF == VF ? 2 : 0;  // mxfp8 / fp8, affine8
}
template <int D, int NT, Fam KF, Fam VF>
constexpr int whole_sm_warps() {
  constexpr bool family = (is_affine4(KF) && VF == Fam::u4) || (KF == Fam::e2m1 && VF == Fam::e2m1) ||
                          (KF == Fam::nv4 && VF == Fam::nv4);
  constexpr bool takes = family && NT <= 1 && D <= 128 && min_blocks_of_4_warps<D, NT, KF, VF>() == 4;
  return takes ? 16 : 0;
}
// Every pair with whole-SM blocks also has them merging in a cluster (attention_mma.cu,
// whole_sm_split; the Cluster kernel with whole_sm_warps warps): at up to 8 rows a block, tile codes
// 0 and 1 (session 31 ran 4 rows, session 32 added 8: Lq 2 at GQA 4, 88 KB of shared memory at D 128).
// q's fragments, then the warps' slots (not over q's fragments: a warp writes its partial while
// others still loop).
template <int D, int NT, int W>
constexpr size_t whole_sm_smem() {
  return qfrag_bytes<D, NT>() + size_t(W) * partial_slot_bytes<D, NT>();
}
#ifndef QSDPA_F16_L1_FIRST  // f16's first step asked into L1 before the prologue (see the kernel); 0: not
#define QSDPA_F16_L1_FIRST 1
#endif

// Whole-SM blocks' epilogue: the block's W warp partials (WarpPartials' layout in shared memory,
// read by `at(i)`: the float at index i; m in base 2) merged into its partial at `out` (rows of D
// values, then m in natural-log units and l), a warp per (row, 32 dims), lane l taking dim l + 32 e:
// the block's 16 warps all work, no weights pass, no barrier. Lane w < W reads warp w's (m, l),
// takes its weight by one ex2 against the row's maximum (a max over those lanes), and the lanes take
// the W weights by shuffles and l by a sum over those lanes. Every lane reading all W maxima and
// weighting them with exp2f (its range fix-ups: ~10 instructions a weight), and summing l itself,
// took ~335 instructions a warp from the last barrier to the stores (SASS, fin35, D 128), which 16
// warps issue after the last warp's loop has ended; now ~157 (session 36: the phase probe's span
// from the last warp's loop end to the stored partial 1.25 -> 0.92 us at 128K, the calls 0.2-1 us,
// nvfp4 -1.6%, mxfp4 -0.2%). Weights are those exp2f gave (the same MUFU.EX2) but below 2^-126,
// which flush to 0 here; v sums the warps in warp order.
template <int D, int RP, int W, class At>
__device__ __forceinline__ void merge_whole_sm_warps(At at, float* out, int R, int warp, int lane) {
  static_assert(W <= 32 && (W & (W - 1)) == 0, "the warps' (m, l) lie in a power of two of lanes");
  using WP = WarpPartials<D>;
  constexpr int E = D / 32;
  for (int task = warp; task < R * E; task += W) {
    const int r = task / E, d = lane + 32 * (task - r * E);
    const int part = r * WP::kRowStride;  // warp w's row: part + w * RP * kRowStride
    const int its = part + (lane % W) * RP * WP::kRowStride;
    const float m_w = lane < W ? at(its + WP::kM) : -INFINITY;
    float top = m_w;
#pragma unroll
    for (int o = W / 2; o > 0; o >>= 1) top = fmaxf(top, __shfl_xor_sync(0xFFFFFFFFu, top, o));
    // A warp that saw no key of the row (m = -inf) weighs 0, as does every warp of a row none saw.
    const float weight_w = fast_exp2(m_w - (top == -INFINITY ? 0.0f : top));
    float l = lane < W && weight_w != 0.0f ? at(its + WP::kL) * weight_w : 0.0f;
#pragma unroll
    for (int o = W / 2; o > 0; o >>= 1) l += __shfl_xor_sync(0xFFFFFFFFu, l, o);  // lanes 0 to W - 1
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < W; ++w) {
      const float weight = __shfl_sync(0xFFFFFFFFu, weight_w, w);
      if (weight != 0.0f) v += at(part + w * RP * WP::kRowStride + WP::at(d)) * weight;
    }
    float* row = out + r * (D + 2);
    row[d] = v;
    if (d == 0) row[D] = top == -INFINITY ? -INFINITY : top / kLog2e, row[D + 1] = l;  // lane 0 of the row's first slice
  }
}

// The same, called rather than inlined, with the warp partials at shared-memory address `wpart`:
// for affine 4-bit, whose loops spilled more when this code was inlined after them (SASS: u4g64
// 3 -> 13 local accesses a step, u4g32 8 -> 17, u4g128 3 -> 22), a register allocation moved by
// code after the loop. Called, the loops keep their lengths and local accesses (session 36's ni36,
// which called it for every family: H200, GQA 4 128K affine4 59.5 -> 58.8 us, nvfp4 49.2 -> 50.2,
// so mxfp4 / nvfp4 keep it inlined). As kept (session 38, H200, A B A B A B in one call, us): GQA 4
// 128K affine4 58.83 -> 58.11, affine4-g32 62.92 -> 62.58, mxfp4 48.38 -> 47.51 (its loop's length
// unchanged: the code after it moved), nvfp4 48.09 -> 48.43; 4K even; MHA 32K affine4 -0.7, mxfp4
// -1.0, nvfp4 +0.1-0.3 (1-2 rounds).
template <int D, int RP, int W>
__device__ __noinline__ void merge_whole_sm_warps_apart(uint32_t wpart, float* out, int R, int warp, int lane) {
  merge_whole_sm_warps<D, RP, W>(
      [wpart](int i) {
        float v;
        asm("ld.shared.f32 %0, [%1];" : "=f"(v) : "r"(wpart + 4u * uint32_t(i)));
        return v;
      },
      out, R, warp, lane);
}

template <int D, int TC, Fam KF, Fam VF, bool Cluster, int W = kWarps>
__global__ void __launch_bounds__(32 * W, (kernel_min_blocks<D, TC, KF, VF, Cluster, W>())) mma_partials(MmaParams p) {
  // Two kernels per instance where clusters fit: this one (Cluster) only for cluster launches, so that
  // the other keeps the register allocation of its loop (the cluster code in the same kernel moved
  // it: mxfp4 and mxfp8 +1-1.5 us at 32K-128K, session 8).
  constexpr int KS = D / 16;     // QK k-steps = PV m-tiles
  constexpr int NB = D / 32;     // 32-dim blocks of a K row (lane t: octet t of each)
  constexpr int VOCT = D / 64;   // octets per lane of a V row (lane g: dims [g*D/8, (g+1)*D/8))
  constexpr int NT = n_tiles_of(TC);     // n-tiles (TC: the tile code, see tile_rows)
  constexpr bool kPack = packs_lo(TC);   // lo terms as columns of their own
  constexpr int CS = kPack ? 1 : 2;      // rows a lane holds per n-tile: 2t, 2t+1 (or t, packed)
  constexpr int RP = tile_rows(TC);      // padded rows
  constexpr int kT = 32 * W;  // threads
  constexpr bool kWholeSm = !Cluster && W > kWarps;  // whole_sm_warps
  // K: group scales go on partial sums, so codes are one term (generic and turbo values: hi + lo).
  constexpr int KT = KF == Fam::generic || is_turbo(KF) ? 2 : 1, VT = n_terms<VF>();
  constexpr bool kPartial = has_group_scales(KF);
  extern __shared__ __align__(16) uint8_t smem[];
  uint4* qfrag = reinterpret_cast<uint4*>(smem);

  // Row chunks of one split are adjacent block indices, so they stream the same keys at about the
  // same time and all but the first read them from L2.
  QSDPA_PHASE(0);  // phase_times.cuh: experiments only
  const int split_i = p.chunk_div.quotient(int(blockIdx.x));
  const int64_t hk = blockIdx.y, b = blockIdx.z;
  const int row0 = (int(blockIdx.x) - split_i * p.row_chunks) * RP;  // this block's first row of the R
  // Row, head and key arithmetic in 32 bits (the host checks the sizes): 64-bit divisions are calls
  // of ~100 instructions, and 29 of them sat in the prologue, which at short contexts runs with one
  // warp per scheduler and makes most of a call's latency.
  const int Lq = int(p.q.shape[2]), G = p.heads_per_kv.divisor;
  const int R = min(p.rows - row0, RP);  // rows of this block (global row = row0 + local row)
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  // The kernel after this one in the stream may launch now and wait for this grid: the merge kernel
  // after the ordinary kernel, and after the cluster kernel where the host asks for it (early_next:
  // the next call's blocks then take their SMs as this grid's leave, not after a launch once it has
  // ended; attention_mma.cu).
  if (!Cluster || p.early_next) allow_dependent_launch();

  // Programmatic dependent launch (the host's launch, sm_90): this grid may start while the kernel
  // before it in the stream is still ending. Until wait_for_prior_grid the block reads nothing that
  // kernel may write (q, the caches, kv_lens, tensor scales, sinks) and writes nothing.
  wait_for_prior_grid();
  QSDPA_PHASE(9);
  // q's octets, 16 bytes a thread (two in f32; see the staging below), where the host found q
  // aligned. f16 caches load them first, before the key ranges: f16 asks only its first step's lines
  // into L1 here, so q's latency is its prologue's longest chain. The other families issue their
  // first tile's loads first and q's after them. A/B in one call (session 28, H100, GQA 4, µs, q in
  // the staging -> q first): f16 1K 6.15 -> 5.78, 4K 10.70 -> 10.47; mxfp4 1K 4.82 -> 5.07, 4K 7.87
  // -> 8.10; affine4 1K 5.26 -> 5.61, 4K 8.99 -> 9.40. Whole-SM blocks with q first (session 39,
  // H200, A B A B A B): mxfp4 128K 47.3 -> 48.0 us, 0.7-1.4% slower at every whole-SM shape.
  constexpr int kQOctets = RP * D / 8, kQPer = (kQOctets + kT - 1) / kT, kQRowOctets = D / 8;
  constexpr bool kQFirst = KF == Fam::f16 && VF == Fam::f16;
  uint4 q_raw[kQFirst ? kQPer : 1][2];
  auto load_q_octet = [&](int k) {
    const int c = int(threadIdx.x) + k * kT, r = c / kQRowOctets, d0 = (c % kQRowOctets) * 8;
    q_raw[k][0] = q_raw[k][1] = make_uint4(0u, 0u, 0u, 0u);
    if (p.q_octets && c < kQOctets && r < R) {
      const int row = row0 + r, qi = p.heads_per_kv.quotient(row);  // row = qi * G + head within the group
      const int64_t off = p.q.offset(b, hk * G + (row - qi * G), qi, d0);
      if (p.q.dtype == DType::f32) {
        const uint4* src = reinterpret_cast<const uint4*>(static_cast<const float*>(p.q.data) + off);
        q_raw[k][0] = __ldg(src), q_raw[k][1] = __ldg(src + 1);
      } else {
        q_raw[k][0] = __ldg(reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p.q.data) + off));
      }
    }
  };
  if constexpr (kQFirst)
#pragma unroll
    for (int k = 0; k < kQPer; ++k) load_q_octet(k);
  fmt::RowCodec kc, vc;
  head_codecs(p, hk, p.k_levels, p.v_levels, &kc, &vc);
  HeadCodec kh = head_codec(kc, p.k, b, hk, p.k_luts), vh = head_codec(vc, p.v, b, hk, p.v_luts);
  vh.at_piece<VF>(g * (D / 8), D / 64);  // lane layouts: see Tile
  kh.k_lane<KF, D>(t);
  LaneBases<lane_bases_in_smem(KF)> lane_bases(kh, vh, lane);
  const int64_t n = sequence_length(p, b);
  uint32_t bad = 0;  // a value or scale the f16 products cannot hold (status bit 2)

  // The in-cluster merge (see the epilogue): this block's mbarrier is set up now to count the bytes
  // of the partials it will receive, long before any peer sends them (the cluster barrier's wait,
  // which orders the two, is in the epilogue).
  constexpr bool kClusters = Cluster && clusters_fit<D, TC>();
  __shared__ uint64_t received;
  if (kClusters && p.cluster > 1) {
    const int C = p.cluster, rank = int(blockIdx.x) - div_cluster(int(blockIdx.x), p.cluster_magic) * C;
    if (threadIdx.x == 0)  // C partials of each owned row, D values, m and l each
      expect_bytes(&received, uint32_t(C * (rank < R ? div_cluster(R - rank + C - 1, p.cluster_magic) : 0) * (D + 2) * 4));
    cluster_arrive_relaxed();
  }

  // The block's keys, narrowed to what any row can see; then this warp's quarter. Splits of n keys
  // take n / splits keys each, the first n % splits one more.
  // Key indices fit in 32 bits (the host checks tokens < 2^31); a window beyond 2^30 keys sees all.
  const int n32 = int(n), window = int(std::min<int64_t>(p.window, 1 << 30));
  auto visible = [&](int i) { return detail::visible_keys_of<int>(p.causal, window, n32, Lq, i); };
  const int n_per = p.split_div.quotient(n32), n_rem = n32 - n_per * p.splits;
  int lo = split_i * n_per + min(split_i, n_rem), hi = lo + n_per + (split_i < n_rem ? 1 : 0);
  lo = max(lo, visible(0).lo);
  hi = min(hi, visible(Lq - 1).hi);
#ifdef QSDPA_SKIP_LOOP  // timing experiments only (docs/gpu-tests.md, session 7): the block sees no key
  const int span = 0;
#else
  const int span = hi > lo ? hi - lo : 0;
#endif
  const int wlo = lo + int(int64_t(span) * warp / W), whi = lo + int(int64_t(span) * (warp + 1) / W);

  // The tile of codes the loop steps through (see step below). Its first keys are loaded now, so
  // that their memory latency overlaps q's prologue (A/B on the H200: no measurable change at 1K to
  // 128K, kept as the simpler order to reason about). f16, which loads each step's codes in the
  // step, spilled 60 bytes when its first tile was loaded here.
  constexpr bool kRolling = rolls<D, KF, VF>();
  // Kernels held to one block per SM (the 8-warp cluster kernel, D * NT > 128) have the registers
  // for the pipeline and the lazy maximum whatever the pair (see pipelined_pair).
  constexpr bool kAllRegisters = kernel_min_blocks<D, TC, KF, VF, Cluster, W>() == 1;
  constexpr bool kPipelined = kRolling && QSDPA_PIPELINE && (pipelined_pair(KF, VF) || kAllRegisters) &&
                              !((QSDPA_WIDE_UNPIPELINED >> int(KF) & 1) && NT >= 2);  // see the loop
  constexpr bool kLazyMax = QSDPA_LAZY_MAX && (pipelined_pair(KF, VF) || kAllRegisters);               // see softmax
  // f16, which loads each step's codes in the step (see rolls), asks its first step's lines into L1
  // here, so that their latency overlaps the prologue: 128 B a lane per side at D = 128. A/B on the
  // H100 (session 14, µs): the cluster kernels 1K 7.35 -> 6.7 (GQA 4), 12.3 -> 11.05 (MHA), 2K 9.35
  // -> 8.6 (GQA 4); the ordinary kernel 4K 13.68 -> 13.30, MHA 2K 19.5 -> 19.1; 32K-128K unchanged.
  // (session 13's L2 prefetches, cp.async.bulk.prefetch.L2 and prefetch.global.L2, were slower.)
  if constexpr (!kRolling && KF == Fam::f16 && VF == Fam::f16 && QSDPA_F16_L1_FIRST) {
    constexpr int kLines = D / 64;  // 128-byte lines of a row
    const uint8_t* kbase = kh.codes - 2 * t * 8;          // undoing k_lane
    const uint8_t* vbase = vh.codes - 2 * g * (D / 8);    // undoing at_piece
    for (int i = lane; i < 16 * kLines && wlo < whi; i += 32) {
      const uint32_t key = uint32_t(min(wlo + i / kLines, whi - 1)), line = uint32_t(i % kLines) * 128u;
      asm volatile("prefetch.L1 [%0];" ::"l"(kbase + uint64_t(key) * kh.code_stride + line));
      asm volatile("prefetch.L1 [%0];" ::"l"(vbase + uint64_t(key) * vh.code_stride + line));
    }
  }
  Tile<D, KF, VF> cur;
  if (kRolling && wlo < whi) {
    cur.load_k(kh, wlo, whi - 1, g, t), cur.load_v(vh, wlo, whi - 1, g, t);
    cur.load_vscale(vh, wlo, whi - 1, g);
  }
  // L2 asked for the code rows of the step at j0: lanes 0-15 its 16 K rows, lanes 16-31 its V rows
  // (a row is at most one 128-byte line), the key clamped to the warp's last as the loads' are. In
  // the loop it needs both lane bases loaded (reload_k / reload_v).
  auto prefetch_rows = [&](int j0) {
    const uint32_t key = uint32_t(min(j0 + (lane & 15), whi - 1));
    const HeadCodec& side = lane < 16 ? kh : vh;
    asm volatile("prefetch.global.L2 [%0];" ::"l"(side.code_row(key)));
  };
  // The code rows of the next steps asked into L2 now, while q is staged (prologue_prefetch_steps).
  constexpr int kPrologueSteps = kRolling ? prologue_prefetch_steps<D, TC, KF, VF, Cluster, W>() : 0;
  if constexpr (kPrologueSteps > 0)
    if (wlo < whi)
#pragma unroll
      for (int s = 1; s <= kPrologueSteps; ++s) prefetch_rows(wlo + 16 * s);

  // Turbo V: the warp's first key's scale (see vnorm below), loaded with the other early loads
  // where the first tile (whose vscale[0] is that scale in lanes g = 0) is not loaded here.
  const uint32_t vscale0_load =
      is_turbo(VF) && !kRolling && wlo < whi ? load_u16(vh.scale_row(wlo)) : 0u;

  // q, scaled by scale * log2(e) * K's head factor, staged in f32; turbo rotates it. A thread's
  // loads go out in one round, the dtype chosen once: a loop of load_float issued them one after
  // another, RP * D / 128 round trips to memory in every block's prologue.
  const float qmul = p.scale * kLog2e * head_factor<KF>(kc);
  // Each row is brought to [2^13, 2^14) by a power of two (f16 keeps its range), undone on the f32
  // scores; then split into hi + lo f16 fragments. (The power and its inverse are both kept: an
  // f32 division is a dozen instructions and a branch, and the prologue is latency.)
  __shared__ float row_unscale[RP];
  auto row_exponent = [](float mx) {
    int e = 0;
    if (mx > 0.0f) frexpf(mx, &e);
    return e;
  };
  // Affine keys: q's sum over each 32-dim block (in the fragments' scale), for the bias term.
  constexpr bool kAffineK = is_affine4(KF) || KF == Fam::u8;
  constexpr int kGroupBlocks = key_group_blocks(KF);  // blocks whose partial scores share a multiplier
  __shared__ float qsum[kAffineK ? NB * RP : 1];
  // Keys whose q the prologue rotates: turbo, or the generic decoder's turbo keys.
  constexpr bool kRotatesQ = is_turbo(KF) || KF == Fam::generic;
  const bool rotate = kRotatesQ && kc.kind == FormatKind::turbo;
  // q's B fragments for QK, written from the registers that staged q (session 28). A second pass
  // over q staged in f32 in shared memory took ~180 instructions a warp and a barrier of its own
  // (ncu, 32K mxfp4: the prologue 696 -> 594 instructions a warp; A/B, µs, GQA 4: mxfp4 1K 4.96
  // -> 4.82, 4K 8.21 -> 7.87, MHA 4K 13.85 -> 13.32; 32K-128K within 1%). Row r's octet at dims
  // [d0, d0 + 8) is what k_dim0 gives k-steps s0 and s0 + 1 at quad position t: dims 0-3 of the
  // octet go to k-step s0 and 4-7 to s0 + 1, each 4 in the pairing (0, 2) (1, 3) of pair_lo, as
  // hi + lo f16 after the row's power of two `inv`. Packed (tile code 0): column 2r' of the n-tile
  // takes the hi terms (lane 8r' + t) and column 2r' + 1 the lo terms (lane 8r' + 4 + t); a uint4's
  // .z and .w (the lo terms of unpacked tiles' second mma) go unused there.
  auto write_q_fragments = [&](int r, int d0, const float(&v)[8], float inv) {
    static_assert(pair_lo(1) == 1 && pair_hi(0) == 2 && pair_hi(1) == 3 && pair_lo(2) == 4, "see pair_lo");
    constexpr int kQuarter = D / 4;  // turbo: lane t's contiguous quarter of a row
    const int t = is_turbo(KF) ? d0 / kQuarter : (d0 % 32) / 8;
    const int s0 = 2 * (is_turbo(KF) ? (d0 % kQuarter) / 8 : d0 / 32);
    inv *= is_affine4(KF) ? 1.0f / 16.0f : 1.0f;  // see key_code_offset
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      uint32_t hi[2], lo[2];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const float a = v[4 * h + j] * inv, c = v[4 * h + 2 + j] * inv;
        const __half2 x = __floats2half2_rn(a, c);
        const float2 back = __half22float2(x);
        hi[j] = as_u32(x);
        lo[j] = as_u32(__floats2half2_rn(a - back.x, c - back.y));
      }
      const int s = s0 + h;
      if constexpr (kPack) {
        const int at = (s * NT + r / 4) * 32 + 8 * (r % 4) + t;
        qfrag[at] = make_uint4(hi[0], hi[1], lo[0], lo[1]);
        qfrag[at + 4] = make_uint4(lo[0], lo[1], 0u, 0u);
      } else {
        qfrag[(s * NT + r / 8) * 32 + 4 * (r % 8) + t] = make_uint4(hi[0], hi[1], lo[0], lo[1]);
      }
    }
  };
  {
    // A thread stages whole octets of q (8 consecutive dims of a row: one 16-byte load in f16 /
    // bf16, two in f32, where the host found q aligned), and the row maxima come from shuffles
    // among the D / 8 lanes of a row (session 10; turbo keys' since session 16, after the rotation,
    // which had a pass over shared memory and a barrier of its own: ~0.5 us at 1K). Element by
    // element, with 64-bit offsets and a barrier for the rows' offsets, it took ~180 instructions a
    // thread and then a row-max pass over shared memory (~130), in a prologue that four blocks per
    // SM run at once (~5 us at 32K-128K). The same registers then give q's fragments
    // (write_q_fragments), so one barrier ends the staging.
    constexpr int kOctets = kQOctets, kPer = kQPer, kRowOctets = kQRowOctets;
    static_assert(kRowOctets <= 32 && 32 % kRowOctets == 0 && kOctets % 32 == 0, "a row's octets lie in one warp");
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
      const int c = int(threadIdx.x) + k * kT, r = c / kRowOctets, d0 = (c % kRowOctets) * 8;
      float v[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
      if (c < kOctets && r < R) {
        const int row = row0 + r;
        const int qi = p.heads_per_kv.quotient(row);  // row = qi * G + head within the group
        const int64_t off = p.q.offset(b, hk * G + (row - qi * G), qi, d0);
        if (!p.q_octets) {  // any strides and alignment: value by value
#pragma unroll
          for (int j = 0; j < 8; ++j) v[j] = detail::load_float(p.q.data, p.q.dtype, off + j * p.q.strides[3]);
        } else if (p.q.dtype == DType::f32) {
          uint4 x, y;
          if constexpr (kQFirst) {
            x = q_raw[k][0], y = q_raw[k][1];
          } else {
            const uint4* src = reinterpret_cast<const uint4*>(static_cast<const float*>(p.q.data) + off);
            x = __ldg(src), y = __ldg(src + 1);
          }
          const uint32_t words[8] = {x.x, x.y, x.z, x.w, y.x, y.y, y.z, y.w};
#pragma unroll
          for (int j = 0; j < 8; ++j) v[j] = __uint_as_float(words[j]);
        } else {
          uint4 w;
          if constexpr (kQFirst) w = q_raw[k][0];
          else w = __ldg(reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p.q.data) + off));
          const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            const uint16_t h = uint16_t(words[j / 2] >> (16 * (j % 2)));
            v[j] = p.q.dtype == DType::f16 ? __half2float(__ushort_as_half(h)) : fmt::bf16_to_f32(h);
          }
        }
      }
      float mx = 0.0f, sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] *= qmul, sum += v[j];
      // Turbo keys rotate q's rows here, in the registers that staged them: a row's D / 8 octets
      // lie in adjacent lanes, so the butterflies beyond an octet are shuffles among those lanes.
      if (rotate) rotate_row_lanes<8, kRowOctets>(v, c % kRowOctets, kc.seed, false);
#pragma unroll
      for (int j = 0; j < 8; ++j) mx = fmaxf(mx, fabsf(v[j]));
      // Whole warps are in or out of c < kOctets (a multiple of 32): every lane shuffles.
#pragma unroll
      for (int o = kRowOctets / 2; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, o));
      const int row_e = row_exponent(mx);
      const float row_inv = exp2f(float(14 - row_e));
      if (c < kOctets && c % kRowOctets == 0) row_unscale[r] = exp2f(float(row_e - 14));
      if (c < kOctets) write_q_fragments(r, d0, v, row_inv);
      if constexpr (kAffineK) {
        // A 32-dim block is 4 adjacent octets, 4 adjacent lanes. (A warp per (block, row) after
        // the staging took 8 rounds of 5 dependent shuffles at D = 128, in every block's prologue.)
        // u4g64 / u4g128: the groups' sums (8 or 16 lanes), indexed by group.
        sum += __shfl_xor_sync(0xFFFFFFFFu, sum, 1);
        sum += __shfl_xor_sync(0xFFFFFFFFu, sum, 2);
#pragma unroll
        for (int m = 4; m < 4 * kGroupBlocks; m *= 2) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, m);
        if (c < kOctets && c % (4 * kGroupBlocks) == 0)
          qsum[(d0 / (32 * kGroupBlocks)) * RP + r] = sum * row_inv;
      }
    }
    __syncthreads();
    QSDPA_PHASE(1);
  }

  // This lane's rows in the score fragments: 2t, 2t+1 of each n-tile (packed: t).
  auto lane_row = [&](int nt, int c) { return kPack ? nt * 4 + t : nt * 8 + 2 * t + c; };
  float unscale[NT][2];
  int vis_lo[NT][2], vis_hi[NT][2];  // key indices fit in 32 bits (the host checks)
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const int r = lane_row(nt, c);
      unscale[nt][c] = row_unscale[r] * (KF == Fam::e2m1 || KF == Fam::nv4 ? 1.0f / fmt::kE2M1F16Factor : 1.0f);
      if (r < R) {
        const auto vr = visible(p.heads_per_kv.quotient(row0 + r));
        vis_lo[nt][c] = max(vr.lo, 0);
        vis_hi[nt][c] = min(vr.hi, n32);
      } else {
        vis_lo[nt][c] = 0;
        vis_hi[nt][c] = 0;
      }
    }


  float acc[KS][NT][4];
#pragma unroll
  for (int u = 0; u < KS; ++u)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) acc[u][nt][0] = acc[u][nt][1] = acc[u][nt][2] = acc[u][nt][3] = 0.0f;
  // Affine 4-bit V: sum over keys of bias * P, the same for all of this lane's dims (see the PV).
  // (8-bit V keeps three terms per value: pairing its codes first spilled ~10 registers a step.)
  constexpr bool kAffineV = VF == Fam::u4;
  float bias_acc[kAffineV ? NT : 1][4];
#pragma unroll
  for (int nt = 0; nt < (kAffineV ? NT : 1); ++nt) bias_acc[nt][0] = bias_acc[nt][1] = bias_acc[nt][2] = bias_acc[nt][3] = 0.0f;
  float m_run[NT][2], l_run[NT][2];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) m_run[nt][0] = m_run[nt][1] = -INFINITY, l_run[nt][0] = l_run[nt][1] = 0.0f;

  const int vdim0 = g * (D / 8);
  // The keys that every row of the block sees (warp-uniform): steps inside them skip the masks.
  int all_lo = 0, all_hi = INT_MAX;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int c = 0; c < CS; ++c)
      if (lane_row(nt, c) < R) all_lo = max(all_lo, vis_lo[nt][c]), all_hi = min(all_hi, vis_hi[nt][c]);
  all_lo = __reduce_max_sync(0xFFFFFFFFu, all_lo);
  all_hi = min(__reduce_min_sync(0xFFFFFFFFu, all_hi), whi);
  // mxfp4 V: P carries 2^7 and the values 2^-7 (see the V decode); the epilogue takes it out of l.
  constexpr float kPShift = VF == Fam::e2m1 ? 7.0f : 0.0f;
  uint32_t vexp_lo = 0xFFFFFFFFu, vexp_hi = 0u;  // mxfp4 V: per-half min / max of the scale bytes
  // Turbo V: each key's row scale goes into P (in f32, before P's split into hi + lo f16), times
  // 2^(19 - E) with E the f16 exponent field of the warp's first key's scale, so that the weights
  // of keys whose scales lie within [2^-12, 2^11) of it stay in f16's normal range with room to
  // spare (P * scale * that < 2^15) and keep ~2^-17 precision; a scale outside sets status bit 2.
  // The epilogue takes 2^(E - 19) back out.
  constexpr bool kTurboV = is_turbo(VF);
  float vnorm = 1.0f;
  uint32_t vscale_lo = 0u, vscale_span = 0xFFFFu;
  if constexpr (kTurboV) {
    uint32_t e = 15;
    // Taken here, after q's staging and its barriers: the scale's first use, hoisted by ptxas to
    // just after its load in the prologue, made q's loads wait a memory latency (session 15).
    const uint32_t vscale0 = !kRolling ? vscale0_load : wlo < whi ? __shfl_sync(0xFFFFFFFFu, cur.vscale[0], 0) : 0u;
    const uint32_t field = (vscale0 >> 10) & 31u;
    if (field >= 1u && field <= 30u) e = field;
    vnorm = __uint_as_float((127u + 19u - e) << 23);
    vscale_lo = e > 12u ? (e - 12u) << 10 : 1u;
    vscale_span = min((e + 11u) << 10, 0x7C00u) - 1u - vscale_lo;
  }

  // The loop is software-pipelined: an iteration decodes and multiplies step i's keys (QK) and
  // runs its softmax, and in the same straight-line code decodes step i - 1's values and adds
  // their PV product with that step's P. The two halves do not depend on each other, so the
  // scheduler fills the softmax's chain of shuffles, exp2 and transposes (~300 cycles a step) with
  // the other half's decoding. The tile holds step i's K codes and step i - 1's V codes; each is
  // reloaded (a step ahead) as soon as it is decoded (the loads are unconditional: the last step
  // reloads the warp's last key; a branch kept the scheduler from moving them up to where the old
  // codes die). One tile of registers serves: two tiles, or copies between them, left 4-bit
  // families short of registers at 4 blocks per SM. f16 and the generic decoder, which load a
  // step's codes in the step, and the pairs pipelined_pair leaves out run the parts in plain order.
  uint32_t pb[NT][2][2];  // P of the step awaiting its PV: [n-tile][hi, lo][keys 0-7, 8-15]
  QSDPA_PHASE(2);
  float alphas[NT][2];    // the accumulators' rescale factors of the latest softmax

  // S^T = K Q^T into s: lane holds keys g, g+8 x rows 2t, 2t+1 of each n-tile.
  auto qk = [&](float s[NT][4]) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
    float c[NT][4];  // the block's partial scores (kPartial; u4g64 / u4g128: its group's)
#pragma unroll
    for (int b = 0; b < NB; ++b) {
      uint32_t ha[KT][4], hb[KT][4];
      cur.k[0].decode(kh, b, t, ha, &bad);
      cur.k[1].decode(kh, b, t, hb, &bad);
      if (b % kGroupBlocks == 0)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) c[nt][0] = c[nt][1] = c[nt][2] = c[nt][3] = 0.0f;
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int st = 2 * b + half, i0 = 2 * half;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          float* acc_s = kPartial ? c[nt] : s[nt];  // (else the scores themselves)
          const uint4 qb = qfrag[(st * NT + nt) * 32 + lane];
#pragma unroll
          for (int term = 0; term < KT; ++term) {
            mma16816(acc_s, ha[term][i0], hb[term][i0], ha[term][i0 + 1], hb[term][i0 + 1], qb.x, qb.y);
            if (!kPack && term_takes_lo(term))
              mma16816(acc_s, ha[term][i0], hb[term][i0], ha[term][i0 + 1], hb[term][i0 + 1], qb.z, qb.w);
          }
        }
      }
      if constexpr (kPartial) {
        if (b % kGroupBlocks != kGroupBlocks - 1) continue;  // a group's later blocks add in first
        const int gb = b / kGroupBlocks;  // the multipliers' index
        const float ma = cur.k_multiplier(kh, 0, gb), mb = cur.k_multiplier(kh, 1, gb);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          s[nt][0] = fmaf(ma, c[nt][0], s[nt][0]);
          s[nt][1] = fmaf(ma, c[nt][1], s[nt][1]);
          s[nt][2] = fmaf(mb, c[nt][2], s[nt][2]);
          s[nt][3] = fmaf(mb, c[nt][3], s[nt][3]);
        }
        if constexpr (kAffineK) {
          constexpr float kOffset = key_code_offset<KF>();
          const float ba = fmaf(-kOffset, ma, cur.k_bias(0, gb)), bb = fmaf(-kOffset, mb, cur.k_bias(1, gb));
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) {
            const float q0 = qsum[gb * RP + lane_row(nt, 0)];
            s[nt][0] = fmaf(ba, q0, s[nt][0]);
            s[nt][2] = fmaf(bb, q0, s[nt][2]);
            if constexpr (!kPack) {  // packed: column 1 is row t's lo term, the bias went into column 0
              const float q1 = qsum[gb * RP + lane_row(nt, 1)];
              s[nt][1] = fmaf(ba, q1, s[nt][1]);
              s[nt][3] = fmaf(bb, q1, s[nt][3]);
            }
          }
        }
      }
    }

    if constexpr (is_turbo(KF)) {
      const float ka = cur.k[0].row_scale(), kb = cur.k[1].row_scale();
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) s[nt][0] *= ka, s[nt][1] *= ka, s[nt][2] *= kb, s[nt][3] *= kb;
    }
    if (cur.k[0].any_nan_scale(kh))
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = __int_as_float(0x7FC00000);
    if (cur.k[1].any_nan_scale(kh))
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) s[nt][2] = s[nt][3] = __int_as_float(0x7FC00000);
    if constexpr (kPack)  // row t's hi and lo columns
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) s[nt][0] += s[nt][1], s[nt][2] += s[nt][3];
  };

  // Online softmax of the step at j0; `masked` (a bool, or a compile-time std::bool_constant):
  // some row sees only part of its 16 keys.
  // A row's reference point m_run moves only when one of its scores exceeds it by more than kSlack
  // (log2 units), so the weights P = 2^(s - m_run) stay below 2^kSlack (the f16 terms of P, which
  // carry mxfp4's 2^7 too, keep their precision up to 2^15; turbo V, whose P also carries the row
  // scales, takes no slack). A step whose scores all stay under that bound, most steps once the
  // first keys are seen, skips the warp's max reductions (3 shuffles a row) and the rescale;
  // otherwise every row's m_run moves to its running max, as the plain online softmax has it.
  // The result is the same either way up to f32 rounding: m_run only sets the scale of l and acc.
  auto softmax = [&](int j0, const float s[NT][4], auto masked) {
    constexpr float kSlack = kTurboV ? 0.0f : 8.0f;
    const int ja = j0 + g, jb = j0 + g + 8;
    [[maybe_unused]] float wscale[2] = {1.0f, 1.0f};  // turbo V: keys g, g+8's scales times vnorm (NaN and inf clamped,
                                     // and flagged: they lie outside the range)
    if constexpr (kTurboV) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const uint32_t sb = cur.vscale[i];
        bad |= (sb - vscale_lo > vscale_span) & (sb != 0u);
        wscale[i] = fminf(__half2float(__ushort_as_half(uint16_t(sb))) * vnorm, 32768.0f);
      }
    }
    float sc[NT][4];  // [n-tile][key g row 2t, row 2t+1, key g+8 row 2t, row 2t+1], log2 units (packed: row t at 0, 2)
    bool grow = false;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < CS; ++c) {
        float sa = s[nt][c] * unscale[nt][c], sb = s[nt][c + 2] * unscale[nt][c];
        if (bool(masked)) {
          if (!(ja < whi && ja >= vis_lo[nt][c] && ja < vis_hi[nt][c])) sa = -INFINITY;
          if (!(jb < whi && jb >= vis_lo[nt][c] && jb < vis_hi[nt][c])) sb = -INFINITY;
        }
        sc[nt][c] = sa, sc[nt][c + 2] = sb;
        grow |= fmaxf(sa, sb) > m_run[nt][c] + kSlack;
      }
    if (!kLazyMax || __any_sync(0xFFFFFFFFu, grow)) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int c = 0; c < CS; ++c) {
          float mx = fmaxf(sc[nt][c], sc[nt][c + 2]);
          mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 4));
          mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 8));
          mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 16));
          const float m_new = fmaxf(m_run[nt][c], mx);
          alphas[nt][c] = fast_exp2(m_run[nt][c] - (m_new == -INFINITY ? 0.0f : m_new));
          m_run[nt][c] = m_new;
        }
    } else {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) alphas[nt][0] = alphas[nt][1] = 1.0f;
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      float pr[4];
#pragma unroll
      for (int c = 0; c < CS; ++c) {
        const float m_p = (m_run[nt][c] == -INFINITY ? 0.0f : m_run[nt][c]) - kPShift;
        pr[c] = fast_exp2(sc[nt][c] - m_p);
        pr[c + 2] = fast_exp2(sc[nt][c + 2] - m_p);
        l_run[nt][c] = l_run[nt][c] * alphas[nt][c] + pr[c] + pr[c + 2];
        if constexpr (kTurboV) pr[c] *= wscale[0], pr[c + 2] *= wscale[1];
      }
#pragma unroll
      for (int kk = 0; kk < 2; ++kk) {
        if constexpr (kPack) {  // key g (kk = 0) or g + 8, row t: (hi, lo) in columns 2t, 2t+1
          const __half hi = __float2half_rn(pr[2 * kk]);
          pb[nt][0][kk] = transpose8x8(as_u32(__halves2half2(hi, __float2half_rn(pr[2 * kk] - __half2float(hi)))));
        } else {
          const __half2 x = __floats2half2_rn(pr[2 * kk], pr[2 * kk + 1]);
          const float2 back = __half22float2(x);
          pb[nt][0][kk] = transpose8x8(as_u32(x));
          pb[nt][1][kk] = transpose8x8(as_u32(__floats2half2_rn(pr[2 * kk] - back.x, pr[2 * kk + 1] - back.y)));
        }
      }
    }
  };

  auto rescale = [&] {
    // The running max rarely moves after the first steps: rescale the accumulators only when some
    // row's did (a warp-uniform branch; multiplying by exactly 1 would change nothing).
    bool moved = false;
    if constexpr (kPack)  // columns 2t and 2t+1 are both row t
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) alphas[nt][1] = alphas[nt][0];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) moved |= alphas[nt][0] != 1.0f || alphas[nt][1] != 1.0f;
    if (__any_sync(0xFFFFFFFFu, moved)) {
#pragma unroll
      for (int u = 0; u < KS; ++u)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          acc[u][nt][0] *= alphas[nt][0];
          acc[u][nt][1] *= alphas[nt][1];
          acc[u][nt][2] *= alphas[nt][0];
          acc[u][nt][3] *= alphas[nt][1];
        }
      if constexpr (kAffineV) {
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          bias_acc[nt][0] *= alphas[nt][0];
          bias_acc[nt][1] *= alphas[nt][1];
          bias_acc[nt][2] *= alphas[nt][0];
          bias_acc[nt][3] *= alphas[nt][1];
        }
      }
    }
  };

  // acc += the A fragment a0..a3 times P's hi term, and (with_lo) its lo term; packed, one mma
  // takes both (they are columns of their own).
  auto p_mma = [&](float* out, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, int nt, bool with_lo) {
    mma16816(out, a0, a1, a2, a3, pb[nt][0][0], pb[nt][0][1]);
    if (!kPack && with_lo) mma16816(out, a0, a1, a2, a3, pb[nt][1][0], pb[nt][1][1]);
  };

  // O^T += V^T P^T (pb) from the tile's V codes.
  auto pv = [&] {
    if constexpr (VF == Fam::e2m1 || VF == Fam::nv4) {
      // Two keys' code words interleaved by bytes decode straight into the A fragments' key pairs
      // (register = one dim of keys 2t, 2t+1 or 2t+8, 2t+9), with no transposing permutes after,
      // and one HMUL2 by the pair's two group multipliers makes them exact f16 terms:
      // - mxfp4: E2M1 * 2^-14 (the decode) * 2^(e - 120) = the value * 2^-7, exact in f16 for
      //   exponent bytes e in [111, 135] (scales 2^-16 .. 2^8; checked after the loop, else status
      //   bit 2); P carries the 2^7. The multiplier's f16 bits are (e - 105) << 10, built from the
      //   bytes of both keys at once.
      // - nvfp4: E2M1 * 2^-14 * the E4M3 block scale is a multiple of 2^-24 below 0.17, always exact
      //   (the 2^14 goes into the output's f32 factor).
      if constexpr (VF == Fam::e2m1) {
        // mxfp4's range check once per scale the lane's piece holds, not once per octet: the octets
        // of a group share its scale, and ptxas kept the repeated (idempotent) min and max (at D =
        // 128, 4 of the step's ALU instructions; session 21).
#pragma unroll
        for (int pr = 0; pr < 2; ++pr)
#pragma unroll
          for (int i = 0; i < RowPiece<VF, VOCT>::kGroups; ++i) {
            const uint32_t both = prmt(cur.v[2 * pr].scale[i], cur.v[2 * pr + 1].scale[i], 0x5410);
            vexp_lo = __vminu2(vexp_lo, both);
            vexp_hi = __vmaxu2(vexp_hi, both);
          }
      }
#pragma unroll
      for (int o = 0; o < VOCT; ++o) {
        uint32_t hk[2][2][4];  // [key pair][dims 0-3, 4-7 of the octet][dim]
        uint32_t mul[2];       // the pair's two group multipliers, one per half
#pragma unroll
        for (int pr = 0; pr < 2; ++pr) {
          const uint32_t ea = cur.v[2 * pr].scale_of(vh, vdim0, o), eb = cur.v[2 * pr + 1].scale_of(vh, vdim0, o);
          if constexpr (VF == Fam::e2m1) {
            const uint32_t both = prmt(ea, eb, 0x5410);  // e_a | e_b << 16
            mul[pr] = (both - 0x00690069u) << 10;
          } else {
            mul[pr] = e4m3_pair_f16(prmt(ea, eb, 0x0040));
          }
          const uint32_t xa = cur.v[2 * pr].raw[o], xb = cur.v[2 * pr + 1].raw[o];
          fmt::e2m1_octet_f16(prmt(xa, xb, 0x5140), hk[pr][0]);
          fmt::e2m1_octet_f16(prmt(xa, xb, 0x7362), hk[pr][1]);
        }
        auto reg = [&](int pr, int d) { return as_u32(__hmul2(as_h2(hk[pr][d >> 2][d & 3]), as_h2(mul[pr]))); };
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
          const int u = 4 * o + jj;
          const uint32_t a0 = reg(0, pair_lo(jj)), a1 = reg(0, pair_hi(jj)), a2 = reg(1, pair_lo(jj)),
                         a3 = reg(1, pair_hi(jj));
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) p_mma(acc[u][nt], a0, a1, a2, a3, nt, true);
        }
      }
    } else if constexpr (kTurboV) {
      // Turbo: the nibbles of two keys interleaved by bytes (as mxfp4's codes) look up straight into
      // the A fragments' key pairs; the level's hi and lo terms take P's hi + lo and hi.
      constexpr int kBits = turbo_bits(VF);
#pragma unroll
      for (int o = 0; o < VOCT; ++o) {
        uint32_t hk[2][2][2][4];  // [key pair][dims 0-3, 4-7 of the octet][term][dim]
#pragma unroll
        for (int pr = 0; pr < 2; ++pr) {
          const uint32_t na = cur.v[2 * pr].nibbles(o), nb = cur.v[2 * pr + 1].nibbles(o);
          turbo_lookup<kBits>(prmt(na, nb, 0x5140), vh, hk[pr][0]);
          turbo_lookup<kBits>(prmt(na, nb, 0x7362), vh, hk[pr][1]);
        }
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
          const int u = 4 * o + jj;
#pragma unroll
          for (int term = 0; term < 2; ++term) {
            const int dl = pair_lo(jj), dh = pair_hi(jj);
            const uint32_t a0 = hk[0][dl >> 2][term][dl & 3], a1 = hk[0][dh >> 2][term][dh & 3],
                           a2 = hk[1][dl >> 2][term][dl & 3], a3 = hk[1][dh >> 2][term][dh & 3];
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) p_mma(acc[u][nt], a0, a1, a2, a3, nt, term_takes_lo(term));
          }
        }
      }
    } else if constexpr (kAffineV) {
      // Affine: value = code * scale + bias. The codes of two keys are paired (key 2t | key 2t+1 in
      // one register) before any scaling, so each term lands in the A fragments without transposing
      // permutes; code * scale is two exact f16 terms (hi, and lo = code * scale - hi), and the bias
      // term, the same for all of a lane's dims (they lie in one group: groups >= 32 >= D/8), is
      // summed once per step by one small mma into bias_acc, added to every dim at the end.
      uint32_t mul[2], add[2];  // per key pair: (scale a, scale b), (bias a, bias b)
#pragma unroll
      for (int pr = 0; pr < 2; ++pr) {
        mul[pr] = prmt(cur.v[2 * pr].scale[0], cur.v[2 * pr + 1].scale[0], 0x5410);
        add[pr] = prmt(cur.v[2 * pr].bias_bits[0], cur.v[2 * pr + 1].bias_bits[0], 0x5410);
      }
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) p_mma(bias_acc[nt], add[0], add[0], add[1], add[1], nt, true);
#pragma unroll
      for (int o = 0; o < VOCT; ++o) {
        uint32_t code[2][8];  // [key pair][dim of the octet]: both keys' codes as f16
#pragma unroll
        for (int pr = 0; pr < 2; ++pr) {
          const uint32_t xa = cur.v[2 * pr].raw[o], xb = cur.v[2 * pr + 1].raw[o];
          u4_codes(prmt(xa, xb, 0x5140), code[pr]);      // dims 0-3 of both keys
          u4_codes(prmt(xa, xb, 0x7362), code[pr] + 4);  // dims 4-7
        }
        auto term_hi = [&](int pr, int d) { return as_u32(__hmul2(as_h2(code[pr][d]), as_h2(mul[pr]))); };
        auto term_lo = [&](int pr, int d, uint32_t h) {
          return as_u32(__hfma2(as_h2(code[pr][d]), as_h2(mul[pr]), __hneg2(as_h2(h))));  // exact in f16
        };
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
          const int u = 4 * o + jj;
          const uint32_t h0 = term_hi(0, pair_lo(jj)), h1 = term_hi(0, pair_hi(jj)), h2 = term_hi(1, pair_lo(jj)),
                         h3 = term_hi(1, pair_hi(jj));
          const uint32_t l0 = term_lo(0, pair_lo(jj), h0), l1 = term_lo(0, pair_hi(jj), h1),
                         l2 = term_lo(1, pair_lo(jj), h2), l3 = term_lo(1, pair_hi(jj), h3);
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) {
            p_mma(acc[u][nt], h0, h1, h2, h3, nt, true);
            p_mma(acc[u][nt], l0, l1, l2, l3, nt, false);
          }
        }
      }
    } else {
      GroupScale vgs[4][RowPiece<VF, VOCT>::kGroups];
#pragma unroll
      for (int i = 0; i < 4; ++i) cur.v[i].group_scales(vh, vgs[i], &bad);
#pragma unroll
      for (int o = 0; o < VOCT; ++o) {
        uint32_t hv[4][VT][4];
#pragma unroll
        for (int i = 0; i < 4; ++i) cur.v[i].decode(vh, vgs[i], vdim0, o, hv[i], &bad);
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
          const int u = 4 * o + jj;
#pragma unroll
          for (int term = 0; term < VT; ++term) {
            const uint32_t a0 = prmt(hv[0][term][jj], hv[1][term][jj], 0x5410);
            const uint32_t a1 = prmt(hv[0][term][jj], hv[1][term][jj], 0x7632);
            const uint32_t a2 = prmt(hv[2][term][jj], hv[3][term][jj], 0x5410);
            const uint32_t a3 = prmt(hv[2][term][jj], hv[3][term][jj], 0x7632);
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) p_mma(acc[u][nt], a0, a1, a2, a3, nt, term_takes_lo(term));
          }
        }
      }
    }
  };

  // Whether every row of the block sees all 16 keys of the step at j0: its softmax skips the masks.
  // The pipelined loop compiles each iteration twice, so that the choice is one branch at its top
  // and the rest is straight-line code; the plain loop asks inside the softmax.
  auto whole = [&](int j0) { return j0 >= all_lo && j0 + 16 <= all_hi; };
  // The 4-warp kernels of the 4-bit FP pairs (mxfp4, nvfp4) at tile code 0 (up to 4 rows: Lq 1 at
  // GQA <= 4) and D <= 128 ask L2 for their code rows two steps ahead (prefetch_rows). One
  // instruction a lane and no register past its address: their loop has no register left for a
  // deeper pipeline (the pipelined loop reads V's bases again before its V loads rather than hold
  // them across pv()). A/B on the H100 (session 34, A B A B, us,
  // without -> with): GQA 4 32K mxfp4 21.18 / 21.18 -> 20.39 / 20.31, nvfp4 21.63 / 21.59 -> 20.59 /
  // 20.52, 16K -1 to -2%, 4K-8K and MHA 4K-32K within 1%. Not taken: the row-tile kernels (Lq 4 and
  // 8 at GQA 4, 32K: mxfp4 0 and +1.3%, nvfp4 +1.5% and +3.4%), whole-SM blocks (session 33's
  // run-time switch: -1% to +3% at 128K) and the 8-bit pairs (mxfp8 32K 31.24 -> 30.72, but 128K
  // 103.6 -> 108.9, affine8 128K 107.1 -> 114.0, MHA 32K +3-5%). Whole-SM blocks again in session 38
  // (H200, at compile time, 2 or 4 steps ahead, branch s38-prefetch-whole-sm): 128K mxfp4 47.4 ->
  // 50.1 / 50.5 us, nvfp4 48.6 -> 50.6 / 51.1, 32K even.
#ifndef QSDPA_PREFETCH_4WARP
#define QSDPA_PREFETCH_4WARP 1
#endif
  constexpr bool kPrefetchL2 = QSDPA_PREFETCH_4WARP && W == kWarps && !Cluster && TC == 0 && D <= 128 &&
                               prefetches_rows(KF) && prefetches_rows(VF);
  if constexpr (kPipelined) {
    auto iteration = [&](int j0, auto masked) {
      float s[NT][4];
      qk(s);
      lane_bases.reload_k<KF>(kh);
      cur.load_k(kh, j0 + 16, whi - 1, g, t);
      if constexpr (kPrefetchL2) lane_bases.reload_v<VF>(vh), prefetch_rows(j0 + 32);
      pv();  // step j0 - 16
      lane_bases.reload_v<VF>(vh);
      cur.load_v(vh, j0, whi - 1, g, t);
      softmax(j0, s, masked);
      cur.load_vscale(vh, j0 + 16, whi - 1, g);
      rescale();
    };
    if (wlo < whi) {
      float s[NT][4];  // the first step: no PV before it, the accumulators are zero (no rescale)
      qk(s);
      cur.load_k(kh, wlo + 16, whi - 1, g, t);
      if (whole(wlo)) softmax(wlo, s, std::false_type());
      else softmax(wlo, s, std::true_type());
      cur.load_vscale(vh, wlo + 16, whi - 1, g);
      for (int j0 = wlo + 16; j0 < whi; j0 += 16) {
        if (whole(j0)) iteration(j0, std::false_type());
        else iteration(j0, std::true_type());
      }
      pv();
    }
  } else {
    for (int j0 = wlo; j0 < whi; j0 += 16) {
      lane_bases.reload_k<KF>(kh), lane_bases.reload_v<VF>(vh);
      if (!kRolling) cur.load_k(kh, j0, whi - 1, g, t), cur.load_v(vh, j0, whi - 1, g, t), cur.load_vscale(vh, j0, whi - 1, g);
      float s[NT][4];
      qk(s);
      if (kRolling) cur.load_k(kh, j0 + 16, whi - 1, g, t);
      if constexpr (kPrefetchL2) prefetch_rows(j0 + 32);
      softmax(j0, s, !whole(j0));
      if (kRolling) cur.load_vscale(vh, j0 + 16, whi - 1, g);
      rescale();
      pv();
      if (kRolling) cur.load_v(vh, j0 + 16, whi - 1, g, t);
    }
  }
  QSDPA_PHASE(3);
  if constexpr (VF == Fam::e2m1)
    bad |= min(vexp_lo & 0xFFFFu, vexp_lo >> 16) < 111u || max(vexp_hi & 0xFFFFu, vexp_hi >> 16) > 135u;
  if (bad && p.status) atomicOr(p.status, kStatusRange);

  // Warp partials to shared memory (WarpPartials' layout, m in base 2): over q's fragments after
  // the barrier below, or, in whole-SM blocks, beside them at once.
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int c = 0; c < CS; ++c) {
      float l = l_run[nt][c];
      l += __shfl_xor_sync(0xFFFFFFFFu, l, 4);
      l += __shfl_xor_sync(0xFFFFFFFFu, l, 8);
      l += __shfl_xor_sync(0xFFFFFFFFu, l, 16);
      l_run[nt][c] = l;
    }
  if constexpr (!kWholeSm) __syncthreads();
  // P's 2^kPShift leaves l (the products P * V carry none: V's values carry 2^-kPShift).
  const float punscale = exp2f(-kPShift);
  const float vmul = head_factor<VF>(vc) * (VF == Fam::nv4 ? 1.0f / fmt::kE2M1F16Factor : 1.0f) / vnorm;
  using WP = WarpPartials<D>;
  float* const wpart = reinterpret_cast<float*>(smem + (kWholeSm ? qfrag_bytes<D, TC>() : 0));
  float* wp = wpart + warp * RP * WP::kRowStride;
#pragma unroll
  for (int u = 0; u < KS; ++u) {
    const int o = u / 4, jj = u % 4;
    const int d_lo = g * (D / 8) + 8 * o + pair_lo(jj), d_hi = g * (D / 8) + 8 * o + pair_hi(jj);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < CS; ++c) {
        const int r = lane_row(nt, c);
        float v_lo = acc[u][nt][c], v_hi = acc[u][nt][c + 2];
        if constexpr (kPack) v_lo += acc[u][nt][1], v_hi += acc[u][nt][3];  // row t's lo columns
        if constexpr (kAffineV) {
          v_lo += bias_acc[nt][c], v_hi += bias_acc[nt][c + 2];
          if constexpr (kPack) v_lo += bias_acc[nt][1], v_hi += bias_acc[nt][3];
        }
        wp[r * WP::kRowStride + WP::at(d_lo)] = v_lo * vmul;
        wp[r * WP::kRowStride + WP::at(d_hi)] = v_hi * vmul;
      }
  }
  if (g == 0)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < CS; ++c) {
        const int r = lane_row(nt, c);
        wp[r * WP::kRowStride + WP::kM] = m_run[nt][c];
        wp[r * WP::kRowStride + WP::kL] = l_run[nt][c] * punscale;
      }
  __syncthreads();
  QSDPA_PHASE(7);  // every warp's loop has ended and its partial is in shared memory

  // Merge the block's warps; its partial goes out with m in natural-log units. Each row's warp
  // weights 2^(m_w - top) are computed once per row, not per element: per element they were ~50 of
  // the epilogue's ~200 instructions a thread, and the epilogue runs in every block.
  // The block's partial goes to the workspace for the merge kernel, or, in a cluster (one per
  // (b, kv head), holding all its splits), to the blocks that own its rows (row r: cluster block
  // r % C), into their receive areas with st.async; each owner merges its rows once all C partials
  // have arrived. No cluster-wide barrier after it: a block's own shared memory is read by no peer.
  // Row r's warp weights 2^(m_w - top) into weight[0, W) (0: the warp saw no key of the row, its
  // acc takes no part); returns the row's m in natural-log units.
  auto warp_weights = [&](int r, float* weight) {
    float top = -INFINITY;
#pragma unroll
    for (int w = 0; w < W; ++w) weight[w] = wpart[(w * RP + r) * WP::kRowStride + WP::kM], top = fmaxf(top, weight[w]);
#pragma unroll
    for (int w = 0; w < W; ++w) weight[w] = top == -INFINITY || weight[w] == -INFINITY ? 0.0f : exp2f(weight[w] - top);
    return top == -INFINITY ? -INFINITY : top / kLog2e;
  };
  // Whole-SM blocks: merge_whole_sm_warps (inlined for mxfp4 / nvfp4; a call for affine 4-bit, see
  // merge_whole_sm_warps_apart).
  if constexpr (kWholeSm) {
    float* out = p.work + (((b * p.k.heads + hk) * p.splits + split_i) * int64_t(p.rows) + row0) * (D + 2);
    if constexpr (is_affine4(KF))
      merge_whole_sm_warps_apart<D, RP, W>(uint32_t(__cvta_generic_to_shared(wpart)), out, R, warp, lane);
    else
      merge_whole_sm_warps<D, RP, W>([&](int i) { return wpart[i]; }, out, R, warp, lane);
    QSDPA_PHASE(5);
    return;
  }
  const bool clustered = kClusters && p.cluster > 1;
  const int C = p.cluster, rank = int(blockIdx.x) - div_cluster(int(blockIdx.x), p.cluster_magic) * C;
  const int slot_rows = div_cluster(R + C - 1, p.cluster_magic);
  float* recv = reinterpret_cast<float*>(smem + smem_bytes<D, TC, W>());
  if (clustered) {
    // A warp per row, each lane taking the row's weights itself: no barrier between the weights
    // and the pushes (session 13's probe at 1K: the weights pass and its barrier took ~0.4 us).
    const bool unrotate = (is_turbo(VF) || VF == Fam::generic) && p.vc.kind == FormatKind::turbo;
    cluster_wait();  // every block's mbarrier is initialised
    for (int r = warp; r < R; r += W) {
      float weight[W];
      const float m = warp_weights(r, weight);
      const int slot = div_cluster(r, p.cluster_magic);
      const uint32_t owner = uint32_t(r - slot * C);
      const uint32_t dst = in_block(shared_addr(recv + (rank * slot_rows + slot) * receive_stride<D>()), owner);
      const uint32_t bar = in_block(shared_addr(&received), owner);
      QSDPA_PHASE(4);
      // Lane i sends dims [4i, 4i + 4) in one 16-byte store and lane 0 the row's m and l in one
      // 8-byte store: 33 stores a row at D = 128, where 4-byte stores took 130.
      const float* row = wpart + r * WP::kRowStride;  // warp w's row: row + w * RP * kRowStride
      float v[4] = {};
      if (4 * lane < D) {
        const float* x = row + WP::at(4 * lane);  // 4 dims inside one chunk (C is a multiple of 4)
#pragma unroll
        for (int w = 0; w < W; ++w, x += RP * WP::kRowStride)
          if (weight[w] != 0.0f)
#pragma unroll
            for (int e = 0; e < 4; ++e) v[e] += x[e] * weight[w];
      }
      // Turbo values are un-rotated here, each split's partial in its own block, before the push
      // (the rotation is linear: R^T of the weighted sum is the weighted sum of R^T partial), so
      // that the owner's merge is the direct one. Un-rotated by the owner, a warp per row after
      // the receive, it took ~0.6 us more than the direct merge (session 18's probe, turbo4 1K).
      if constexpr (clusters_fit<D, TC>())  // (D <= 128: a row's lanes lie in one warp)
        if (unrotate) rotate_row_lanes<4, D / 4>(v, lane % (D / 4), p.vc.seed, true);  // every lane: shuffles
      if (4 * lane < D) store_async(dst + 16 * uint32_t(lane), make_float4(v[0], v[1], v[2], v[3]), bar);
      if (lane == 0) {
        float l = 0.0f;
#pragma unroll
        for (int w = 0; w < W; ++w)
          if (weight[w] != 0.0f) l += row[w * RP * WP::kRowStride + WP::kL] * weight[w];
        store_async(dst + 4 * uint32_t(D), make_float2(m, l), bar);
      }
    }
  } else {
    float* out = p.work + (((b * p.k.heads + hk) * p.splits + split_i) * int64_t(p.rows) + row0) * (D + 2);
    // Turbo values are un-rotated here too, a warp per row (lane l: dims [E l, E l + E)), so that
    // the merge kernel's is the plain per-slice merge (partials.cu; session 22, A/B on the H100:
    // turbo4 4K 12.31 -> 10.81 us, 32K 37.60 -> 36.53; turbo3 4K 11.83 -> 10.42).
    constexpr bool kMayRotate = is_turbo(VF) || VF == Fam::generic;
    const bool unrotate = kMayRotate && p.vc.kind == FormatKind::turbo;
    constexpr int E = D / 32;
    if constexpr (!kMayRotate) {
      // A warp per row, each lane taking the row's weights itself, as the cluster's pushes do
      // (session 28: the weights in shared memory, a barrier, then a loop over the block's R * (D +
      // 2) values took 1.3 us a block at 32K from the last warp's loop end to the stored partial,
      // phase probe). A/B in one call, µs, GQA 4: mxfp4 4K 7.87 -> 7.64, 32K 21.85 -> 21.54, 128K
      // 62.93 -> 62.42; mxfp8 4K 9.65 -> 9.39, 32K 32.71 -> 32.46; f16 4K 10.35 -> 10.16. Turbo V
      // keeps the pass below: with this one its loops lost 4-5% (turbo4 128K 106.0 -> 111.0 us; a
      // register allocation moved, not its step count).
      QSDPA_PHASE(4);
      for (int r = warp; r < R; r += W) {
        float weight[W];
        const float m = warp_weights(r, weight);
        const float* part = wpart + r * WP::kRowStride;  // warp w's row: part + w * RP * kRowStride
        float* row = out + r * (D + 2);
        // Lane l: dims l, l + 32, ...: the warp's stores are whole lines, its reads of a warp's
        // partial on distinct banks (WarpPartials' chunks of D / 8).
#pragma unroll 1
        for (int e = 0; e < E; ++e) {
          const int d = lane + 32 * e;
          float v = 0.0f;
#pragma unroll
          for (int w = 0; w < W; ++w)
            if (weight[w] != 0.0f) v += part[w * RP * WP::kRowStride + WP::at(d)] * weight[w];
          row[d] = v;
        }
        if (lane == 0) {
          float l = 0.0f;
#pragma unroll
          for (int w = 0; w < W; ++w)
            if (weight[w] != 0.0f) l += part[w * RP * WP::kRowStride + WP::kL] * weight[w];
          row[D] = m, row[D + 1] = l;
        }
      }
    } else {
      __shared__ float warp_weight[RP][W + 1];  // [row][warp], then the row's m (natural log)
      if (threadIdx.x < R) warp_weight[threadIdx.x][W] = warp_weights(threadIdx.x, warp_weight[threadIdx.x]);
      __syncthreads();
      QSDPA_PHASE(4);
      if (unrotate) {
        for (int r = warp; r < R; r += W) {
          float v[E] = {};
#pragma unroll
          for (int w = 0; w < W; ++w) {
            const float weight = warp_weight[r][w];
            const float* x = wpart + (w * RP + r) * WP::kRowStride + WP::at(E * lane);  // E dims in one chunk
            if (weight != 0.0f)
#pragma unroll
              for (int e = 0; e < E; ++e) v[e] += x[e] * weight;
          }
          rotate_row_lanes<E>(v, lane, p.vc.seed, true);
          float* row = out + r * (D + 2);
#pragma unroll
          for (int e = 0; e < E; ++e) row[E * lane + e] = v[e];
          if (lane == 0) {
            float l = 0.0f;
#pragma unroll
            for (int w = 0; w < W; ++w)
              if (warp_weight[r][w] != 0.0f) l += wpart[(w * RP + r) * WP::kRowStride + WP::kL] * warp_weight[r][w];
            row[D] = warp_weight[r][W], row[D + 1] = l;
          }
        }
      } else
      for (int idx = threadIdx.x; idx < R * (D + 2); idx += kT) {
        const int r = idx / (D + 2), d = idx % (D + 2);
        const int at = d < D ? WP::at(d) : WP::kM + (d - D);
        float v = 0.0f;
#pragma unroll
        for (int w = 0; w < W; ++w) {
          const float weight = warp_weight[r][w];
          if (weight != 0.0f) v += wpart[(w * RP + r) * WP::kRowStride + at] * weight;
        }
        out[idx] = d == D ? warp_weight[r][W] : v;
      }
    }
  }
  QSDPA_PHASE(5);
  // Rows this block owns: the prologue's count too (a shared helper changed this kernel's register
  // allocation, session 9, with no device time left to test it).
  const int mine = rank < R ? div_cluster(R - rank + C - 1, p.cluster_magic) : 0;
  if (!clustered || mine == 0) return;
  merge_received_rows_direct<D>(p, recv, receive_stride<D>(), C, slot_rows, rank, mine, b, hk, [&] {
    wait_for_bytes(&received);
    QSDPA_PHASE(8);
  });  // turbo: un-rotated by the pushes
  QSDPA_PHASE(6);
}

using Launch = void (*)(const MmaParams&, unsigned, cudaStream_t);

// A cluster kernel's shared memory (its warp partials and receive area), above the default 48 KB
// at D = 128 with 8 warps: asked for once per device (host only).
template <int D, int NT, Fam KF, Fam VF, int W>
size_t cluster_smem() {
  constexpr size_t bytes = smem_bytes<D, NT, W>() + receive_bytes<D, NT>();
  if constexpr (clusters_fit<D, NT>() && bytes > kDefaultDynamicSmem) {
    raise_dynamic_smem<mma_partials<D, NT, KF, VF, true, W>>(int(bytes));
  }
  return bytes;
}

template <int D, int NT, Fam KF, Fam VF>
void launch(const MmaParams& p, unsigned blocks, cudaStream_t stream) {
  constexpr size_t smem = smem_bytes<D, NT>();
  static_assert(smem <= kDefaultDynamicSmem, "the kernel uses default shared memory limits");
  QSDPA_PHASE_HOST("the split kernel");
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(blocks * unsigned(p.row_chunks), unsigned(p.k.heads), unsigned(p.q.shape[0]));
  config.blockDim = dim3(32 * kWarps);
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attr[2];
  config.attrs = attr;
  if (p.cluster > 1) {
    config.blockDim = dim3(32 * p.cluster_warps);
    attr[config.numAttrs].id = cudaLaunchAttributeClusterDimension;
    attr[config.numAttrs].val.clusterDim.x = unsigned(p.cluster);
    attr[config.numAttrs].val.clusterDim.y = attr[config.numAttrs].val.clusterDim.z = 1;
    ++config.numAttrs;
  }
  if (p.programmatic) {
    attr[config.numAttrs].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[config.numAttrs].val.programmaticStreamSerializationAllowed = 1;
    ++config.numAttrs;
  }
  if constexpr (constexpr int W = whole_sm_warps<D, NT, KF, VF>(); W > 0) {
    if (p.whole_sm) {
      constexpr size_t bytes = whole_sm_smem<D, NT, W>();
      if constexpr (bytes > kDefaultDynamicSmem) {
        raise_dynamic_smem<mma_partials<D, NT, KF, VF, false, W>>(int(bytes));
      }
      config.blockDim = dim3(32 * W);
      config.dynamicSmemBytes = bytes;
      QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, mma_partials<D, NT, KF, VF, false, W>, p));
      return;
    }
  }
  if constexpr (clusters_fit<D, NT>()) {
    if (p.cluster > 1) {
      auto kernel = mma_partials<D, NT, KF, VF, true, kWarps>;
      config.dynamicSmemBytes = cluster_smem<D, NT, KF, VF, kWarps>();
      if (p.cluster_warps == kWideWarps)
        kernel = mma_partials<D, NT, KF, VF, true, kWideWarps>, config.dynamicSmemBytes = cluster_smem<D, NT, KF, VF, kWideWarps>();
      if constexpr (constexpr int W = whole_sm_warps<D, NT, KF, VF>(); W > 0)  // whole-SM blocks in clusters
        if (p.cluster_warps == W) kernel = mma_partials<D, NT, KF, VF, true, W>, config.dynamicSmemBytes = cluster_smem<D, NT, KF, VF, W>();
      QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, p));
      return;
    }
  }
  QSDPA_CUDA_CHECK(cudaLaunchKernelEx(&config, mma_partials<D, NT, KF, VF, false>, p));
}

// Resident blocks per SM, asked once per instance (host only, no synchronization).
template <int D, int NT, Fam KF, Fam VF>
int occupancy() {
  static const int blocks = [] {
    int n = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, mma_partials<D, NT, KF, VF, false>, 32 * kWarps, smem_bytes<D, NT>()) !=
        cudaSuccess)
      n = 1;
    return std::max(n, 1);
  }();
  return blocks;
}

// Clusters of c blocks (2..kMaxCluster) of W warps resident at once on the whole GPU, asked once per
// instance, W and size (host only, no synchronization); 0 where the device has none of that size.
template <int D, int NT, Fam KF, Fam VF, int W>
int resident_clusters(int c) {
  static std::atomic<int> cached[kMaxCluster + 1] = {};  // n + 1; 0: not asked yet
  if (c < 2 || c > kMaxCluster) return 0;
  int known = cached[c].load(std::memory_order_relaxed);
  if (known == 0) {
    const auto kernel = mma_partials<D, NT, KF, VF, true, W>;
    int n = 0;
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(unsigned(c));
    config.blockDim = dim3(32 * W);
    config.dynamicSmemBytes = cluster_smem<D, NT, KF, VF, W>();
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = unsigned(c);
    attr[0].val.clusterDim.y = attr[0].val.clusterDim.z = 1;
    config.attrs = attr;
    config.numAttrs = 1;
    if ((c <= 8 || cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) == cudaSuccess) &&
        cudaOccupancyMaxActiveClusters(&n, kernel, &config) == cudaSuccess) {
      n = std::max(n, 0);
    } else {
      n = 0;
      (void)cudaGetLastError();  // a refused size is an answer, not an error of the next launch
    }
    known = n + 1;
    cached[c].store(known, std::memory_order_relaxed);
  }
  return known - 1;
}

struct Instance {
  Launch run;
  int (*resident)();
  int (*clusters)(int);       // resident_clusters of 4 warps; null where the receive area does not fit (D * NT > 128)
  int (*wide_clusters)(int);  // the same for the cluster kernel of 8 warps
  int (*sm_clusters)(int);    // the same for whole-SM blocks; null where the pair has none (whole_sm_warps)
  bool compiled_pair;    // false: the pair runs on the generic decoders
  int whole_sm_warps = 0;    // > 0: the pair has whole-SM blocks of that many warps (whole_sm_warps)
};

// resident_clusters of W warps where clusters fit the instance, else null: only then are its cluster
// kernels compiled (a ternary would compile them for every instance).
template <int D, int NT, Fam KF, Fam VF, int W>
constexpr auto clusters_counter() -> int (*)(int) {
  if constexpr (clusters_fit<D, NT>() && W > 0) return &resident_clusters<D, NT, KF, VF, W>;
  else return nullptr;
}

// The compiled (K, V) decoder pairs: same-format families plus issue 3's named mixed pairs
// (mxfp8:turbo3 -> e4m3:turbo3, fp8:turbo4 -> e4m3:turbo4; mxfp8:mxfp4; affine8:affine4). Any other
// pair of f16-representable formats runs as generic:generic. turbo3 at D = 64 (24-byte rows, not
// 16-byte aligned) is not compiled.
template <int D, int NT>
Instance pick_pair(Fam kf, Fam vf) {
#define QSDPA_PAIR(K, V) \
  if (kf == Fam::K && vf == Fam::V)                                                                          \
    return {&launch<D, NT, Fam::K, Fam::V>, &occupancy<D, NT, Fam::K, Fam::V>,                               \
            clusters_counter<D, NT, Fam::K, Fam::V, kWarps>(),                                               \
            clusters_counter<D, NT, Fam::K, Fam::V, kWideWarps>(),                                           \
            clusters_counter<D, NT, Fam::K, Fam::V, whole_sm_warps<D, NT, Fam::K, Fam::V>()>(), true,        \
            whole_sm_warps<D, NT, Fam::K, Fam::V>()};
  QSDPA_PAIR(f16, f16)
  QSDPA_PAIR(u4, u4)
  QSDPA_PAIR(u4g64, u4)
  QSDPA_PAIR(u4g32, u4)
  QSDPA_PAIR(u8, u8)
  QSDPA_PAIR(e2m1, e2m1)
  QSDPA_PAIR(nv4, nv4)
  QSDPA_PAIR(e4m3, e4m3)
  QSDPA_PAIR(e4m3, e2m1)
  QSDPA_PAIR(u8, u4)
  QSDPA_PAIR(turbo2, turbo2)
  QSDPA_PAIR(turbo4, turbo4)
  QSDPA_PAIR(e4m3, turbo4)
  if constexpr (D >= 128) {
    QSDPA_PAIR(u4g128, u4)
    QSDPA_PAIR(turbo3, turbo3)
    QSDPA_PAIR(e4m3, turbo3)
  }
  // The per-value generic decoder takes ptxas minutes per instance (its unrolled scalar rule
  // exhausts the registers; at D = 256 it never finished), so it is compiled for one row tile and
  // D <= 128 only; other generic calls take the f32 split-key kernel (run == nullptr).
  if constexpr (D < 256 && NT == 1) {
    return {&launch<D, NT, Fam::generic, Fam::generic>, &occupancy<D, NT, Fam::generic, Fam::generic>,
            clusters_counter<D, NT, Fam::generic, Fam::generic, kWarps>(),
            clusters_counter<D, NT, Fam::generic, Fam::generic, kWideWarps>(), nullptr, kf == Fam::generic && vf == Fam::generic};
  } else {
    return {nullptr, nullptr, nullptr, nullptr, nullptr, false};
  }
#undef QSDPA_PAIR
}


// Instantiated once per (D, NT) in attention_mma_d*.cu, so that a 16-core machine compiles them in
// parallel.
extern template Instance pick_pair<64, 0>(Fam, Fam);
extern template Instance pick_pair<64, 1>(Fam, Fam);
extern template Instance pick_pair<64, 2>(Fam, Fam);
extern template Instance pick_pair<64, 4>(Fam, Fam);
extern template Instance pick_pair<128, 0>(Fam, Fam);
extern template Instance pick_pair<128, 1>(Fam, Fam);
extern template Instance pick_pair<128, 2>(Fam, Fam);
extern template Instance pick_pair<256, 0>(Fam, Fam);
extern template Instance pick_pair<256, 1>(Fam, Fam);

}  // namespace qsdpa::cuda::mma
