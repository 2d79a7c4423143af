#!/bin/bash
# Session 42, call 2, nvidia-h200-x4 (or x2: GPUs 2-3's parts skipped). pf1 = main's kernels
# (937d0c9 + prefetch 1 = eba79ce), pz0 = the same with -DQSDPA_WHOLE_SM_PREFETCH_STEPS=0.
# GPU 0: ncu of mxfp4 GQA 4 at Lq 1 (whole-SM and 4-warp) and Lq 4 (tile code 2), 32K and 128K:
#        why two row tiles take 1.65x the Lq 1 time (session 41's 3-blocks-a-SM probe lost 7-14%).
# GPU 1: A B x3 pf1 / pz0 (whole-SM mxfp4 / nvfp4, GQA 4 16K-128K, MHA 32K).
# GPU 2: gpu-check stage bench on pf1 (GQA 4 and MHA, 1K-128K, PyTorch in the same run): README table.
# GPU 3: compute-sanitizer memcheck + racecheck subsets (gpu-check's lists) on pf1.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
ngpu=$(nvidia-smi -L | wc -l)
for s in pf1 pz0; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$s.tar.xz || exit 1
  echo "$s: $(cat pb/$s/COMMIT)"
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden" NCCL_NVLS_ENABLE=0
gpu1() {
  ab() {  # set side round bench-args...
    local set=$1 side=$2 r=$3; shift 3
    mkdir -p "$OUT/$set"
    CUDA_VISIBLE_DEVICES=1 timeout 120 pb/$side/qsdpa bench --device cuda --min-seconds 0.1 "$@" \
      --json "$OUT/$set/$set-$side-$r.json" > "$OUT/$set/$set-$side-$r.log" 2>&1 || tail -3 "$OUT/$set/$set-$side-$r.log"
  }
  for r in 1 2 3; do
    for s in pf1 pz0; do
      [ "$SECONDS" -gt 330 ] && { echo "A/B stopped at ${SECONDS}s"; break 2; }
      ab g $s $r --heads 32:8 --context 16384,32768,65536,131072 --formats mxfp4,nvfp4
      ab m $s $r --heads 32:32 --context 32768 --formats mxfp4,nvfp4
    done
    echo "round $r done at ${SECONDS}s"
  done
}
gpu1 > "$OUT/gpu1.txt" 2>&1 &
pids=($!)
if [ "$ngpu" -ge 3 ]; then
  (CUDA_VISIBLE_DEVICES=2 OUT=$OUT/bench QSDPA_PREBUILT=third_party_carry/pf1.tar.xz QSDPA_STAGES=bench timeout 380 bash scripts/gpu-check.sh > "$OUT/gpu2.txt" 2>&1) &
  pids+=($!)
fi
if [ "$ngpu" -ge 4 ]; then
  (
    export CUDA_VISIBLE_DEVICES=3
    timeout 330 compute-sanitizer --tool memcheck --error-exitcode 9 pb/pf1/qsdpa_tests \
      --gtest_filter='*CudaAttention.*/mxfp8_turbo3:*TensorCoreShapes/turbo4:*TensorCoreShapes/mxfp4:*TensorCoreShapes/f16:*CudaDequantize*/turbo3:*CudaDequantize*/affine3:*CudaAttentionStatus*:*CudaAppend*/nvfp4:*CudaAppend*/turbo3:*CudaAppendStatus*:*CudaAttentionChained*:*CudaAttentionSplits*:*TensorCoreShapes/affine4*:*CudaAttentionAlignment*' \
      > "$OUT/memcheck.log" 2>&1; echo "memcheck rc $? at ${SECONDS}s: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | sort | uniq -c | tr '\n' ' ') $(grep -E '^\[  (PASSED|FAILED)' "$OUT/memcheck.log" | tr '\n' ' ')"
    timeout $((540 - SECONDS)) compute-sanitizer --tool racecheck --error-exitcode 9 pb/pf1/qsdpa_tests \
      --gtest_filter='*CudaAttentionStatus*:*CudaDequantize*/nvfp4:*TensorCoreShapes/affine4*:*CudaAttentionSplits*:*CudaAttentionChained*' > "$OUT/racecheck.log" 2>&1
    echo "racecheck rc $? at ${SECONDS}s: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | sort | uniq -c | tr '\n' ' ') $(grep -E '^\[  (PASSED|FAILED)' "$OUT/racecheck.log" | tr '\n' ' ')"
  ) > "$OUT/gpu3.txt" 2>&1 &
  pids+=($!)
fi
# GPU 0: ncu, the GPU's own clock (gpu-check.sh: at base clock the 4-bit loop looked issue-bound).
nc() {  # name kernel-regex env bench-args...
  local name=$1 k=$2 e=$3; shift 3
  env $e CUDA_VISIBLE_DEVICES=0 timeout 120 ncu --clock-control none --kernel-name-base mangled -k "regex:$k" -s 6 -c 1 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
    --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,regex:sm__inst_executed_pipe_.*\.avg\.pct_of_peak_sustained_active,smsp__inst_executed.sum,sm__warps_active.avg.pct_of_peak_sustained_active' \
    pb/pf1/qsdpa bench --device cuda --formats mxfp4 --heads 32:8 --min-seconds 0 "$@" > "$OUT/ncu-$name.log" 2>&1
  echo "== ncu $name ($e $*) rc $?"
  grep -E "Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|Grid Size|Block Size|Compute \(SM\)|inst_executed.sum|Shared Memory Config|Dynamic Shared" "$OUT/ncu-$name.log" | head -14
  grep -E "issue_stalled|inst_executed_pipe" "$OUT/ncu-$name.log" | awk '$NF + 0 >= 0.1' | sed -E 's/ +/ /g' | sort -k3 -nr | head -16
}
{
  K='mma_partials.*ILi128ELi0ELNS1_3FamE3ELS3_3E'  # tile code 0 (Lq 1-2 at GQA 4)
  K2='mma_partials.*ILi128ELi2ELNS1_3FamE3ELS3_3E'  # tile code 2 (Lq 3-4)
  nc lq1-128k "$K" "X=1" --context 131072
  nc lq1w4-128k "$K" "QSDPA_WHOLE_SM=0" --context 131072
  nc lq4-128k "$K2" "X=1" --context 131072 --lq 4
  nc lq1w4-32k "$K" "QSDPA_WHOLE_SM=0" --context 32768
  nc lq4-32k "$K2" "X=1" --context 32768 --lq 4
  echo "ncu done at ${SECONDS}s"
} > "$OUT/gpu0.txt" 2>&1
for p in "${pids[@]}"; do wait $p; done
cat "$OUT/gpu0.txt"
echo "== GPU 2 (bench)"; tail -45 "$OUT/gpu2.txt" 2>/dev/null
echo "== GPU 3 (sanitizer)"; cat "$OUT/gpu3.txt" 2>/dev/null
cat "$OUT/gpu1.txt"
for set in g m; do echo "== set $set"; python3 scripts/ab_table.py "$OUT/$set" pf1 pz0; done
echo "elapsed ${SECONDS}s"
