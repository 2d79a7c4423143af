#!/bin/bash
# Session 42, call 3, nvidia-h200-x4. pz0 = main's tree with the whole-SM prologue prefetch at 0
# steps (its default from this session); pp0 = the same with -DQSDPA_PROLOGUE_PREFETCH=0 (the 8-bit
# 4-warp kernels' 2-step prologue prefetch off too; the only kernels it changes).
# GPU 0: every CUDA test on pz0, then on pp0 (+ the CLI's CUDA test each); GPU 1: A B x3 pz0 / pp0
# (mxfp8, affine8); GPU 2: gpu-check stage bench on pz0, then on pp0 (README table); GPU 3: stage
# shapes on pz0, then memcheck on the whole-SM split tests of pz0.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
ngpu=$(nvidia-smi -L | wc -l)
for s in pz0 pp0 wt3; do
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
    for s in pz0 pp0; do
      [ "$SECONDS" -gt 340 ] && { echo "A/B stopped at ${SECONDS}s"; break 2; }
      ab g $s $r --heads 32:8 --context 4096,16384,32768,131072 --formats mxfp8,affine8
      ab m $s $r --heads 32:32 --context 32768 --formats mxfp8,affine8
    done
    echo "round $r done at ${SECONDS}s"
  done
  # Why session 41's 3 blocks a SM at two row tiles (wt3: 168 registers, 12 warps) lost 7-14%:
  # the same ncu as call 2's lq4-128k on main.
  CUDA_VISIBLE_DEVICES=1 timeout 90 ncu --clock-control none --kernel-name-base mangled -k "regex:mma_partials.*ILi128ELi2ELNS1_3FamE3ELS3_3E" -s 6 -c 1 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,regex:sm__inst_executed_pipe_.*\.avg\.pct_of_peak_sustained_active,smsp__inst_executed.sum' \
    pb/wt3/qsdpa bench --device cuda --formats mxfp4 --heads 32:8 --min-seconds 0 --context 131072 --lq 4 > "$OUT/ncu-wt3-lq4-128k.log" 2>&1
  echo "ncu wt3 rc $? at ${SECONDS}s"
  grep -E "Duration|Achieved Active|Registers Per|Warp Cycles Per Issued|Grid Size|inst_executed.sum" "$OUT/ncu-wt3-lq4-128k.log"
  grep -E "issue_stalled" "$OUT/ncu-wt3-lq4-128k.log" | sed -E 's/ +/ /g' | awk '{print $NF, $1}' | sort -nr | head -8
}
gpu1 > "$OUT/gpu1.txt" 2>&1 &
pids=($!)
run_suite() {  # side gpu
  local side=$1 gpu=$2 n=15 pids=() s
  for s in $(seq 0 $((n-1))); do
    CUDA_VISIBLE_DEVICES=$gpu GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 240 pb/$side/qsdpa_tests --gtest_filter='*Cuda*' > "$OUT/t-$side-$s.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait $p; done
  echo "$side tests (GPU $gpu): passed $(grep -h '^\[  PASSED' $OUT/t-$side-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-$side-*.log | awk '{s+=$4} END {print s}'), failed:"
  grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-$side-*.log | sort -u | head
  for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-$side-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-$side-$s.log | tail -1)"; done
  echo "$side tests done at ${SECONDS}s"
  CUDA_VISIBLE_DEVICES=$gpu QSDPA_CLI_PATH="$PWD/pb/$side/qsdpa" timeout 60 pb/$side/qsdpa_cli_tests --gtest_filter='*Cuda*' > "$OUT/cli-$side.log" 2>&1
  echo "$side CLI CUDA tests rc $?: $(grep -E '^\[  (PASSED|FAILED)' $OUT/cli-$side.log | tr '\n' ' ')"
}
(run_suite pz0 0; [ "$SECONDS" -lt 330 ] && run_suite pp0 0) > "$OUT/gpu0.txt" 2>&1 &
pids+=($!)
if [ "$ngpu" -ge 3 ]; then
  (
    for s in pz0 pp0; do
      [ "$SECONDS" -gt 330 ] && { echo "bench $s skipped at ${SECONDS}s"; break; }
      CUDA_VISIBLE_DEVICES=2 OUT=$OUT/bench-$s QSDPA_PREBUILT=third_party_carry/$s.tar.xz QSDPA_STAGES=bench timeout 260 bash scripts/gpu-check.sh
      echo "bench $s done at ${SECONDS}s"
    done
  ) > "$OUT/gpu2.txt" 2>&1 &
  pids+=($!)
fi
if [ "$ngpu" -ge 4 ]; then
  (
    CUDA_VISIBLE_DEVICES=3 OUT=$OUT/shapes QSDPA_PREBUILT=third_party_carry/pz0.tar.xz QSDPA_STAGES=shapes timeout 300 bash scripts/gpu-check.sh
    echo "shapes done at ${SECONDS}s"
    CUDA_VISIBLE_DEVICES=3 timeout $((540 - SECONDS)) compute-sanitizer --tool memcheck --error-exitcode 9 pb/pz0/qsdpa_tests \
      --gtest_filter='CudaAttentionSplits.WholeSm*' > "$OUT/memcheck.log" 2>&1
    echo "memcheck rc $? at ${SECONDS}s: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | sort | uniq -c | tr '\n' ' ') $(grep -E '^\[  (PASSED|FAILED)|^\[       OK' "$OUT/memcheck.log" | tr '\n' ' ')"
  ) > "$OUT/gpu3.txt" 2>&1 &
  pids+=($!)
fi
for p in "${pids[@]}"; do wait $p; done
cat "$OUT/gpu0.txt"
echo "== GPU 3"; grep -v "^|" "$OUT/gpu3.txt" | tail -30
echo "== GPU 2"; grep -E "done|skipped|peak" "$OUT/gpu2.txt"
cat "$OUT/gpu1.txt"
for set in g m; do echo "== set $set"; python3 scripts/ab_table.py "$OUT/$set" pz0 pp0; done
echo "elapsed ${SECONDS}s"
