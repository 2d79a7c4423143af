#!/bin/bash
# Session 40, nvidia-h200-x2 (~480 s). Sides: mn38 (main), wm40 (the one-warp merge for up to 128
# splits: GQA 4 32K four-warp calls, ~66 splits, leave merge_slice_kernel), ml40 (main's tree with
# -DQSDPA_MERGE_EARLY_NEXT=1 -DQSDPA_SPLIT_TRIGGER_LATE=1: the merge lets the next call's split
# kernel launch at its start; the ordinary split kernel lets its merge launch only after its loop).
# GPU 0: every CUDA test on wm40 then on ml40 (15 shards, 200 s limits), the CLI tests on wm40.
# GPU 1: A B C rounds (mn38 wm40 ml40) at GQA 4 4K/16K/32K/128K and MHA 32K, 6 formats.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for s in mn38 wm40 ml40; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$s.tar.xz || exit 1
  echo "$s: $(cat pb/$s/COMMIT)"
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
gpu1() {
  ab() {  # set side heads contexts round
    CUDA_VISIBLE_DEVICES=1 timeout 90 pb/$2/qsdpa bench --device cuda --min-seconds 0.1 --heads $3 --context $4 \
      --formats f16,mxfp4,nvfp4,affine4,mxfp8,turbo4 --json "$OUT/$1-$2-$5.json" > "$OUT/$1-$2-$5.log" 2>&1 || tail -3 "$OUT/$1-$2-$5.log"
  }
  for r in 1 2 3; do
    for s in mn38 wm40 ml40; do
      [ "$SECONDS" -gt 400 ] && { echo "A/B stopped at ${SECONDS}s"; break 2; }
      ab g $s 32:8 4096,16384,32768,131072 $r
      ab m $s 32:32 32768 $r
    done
    echo "round $r done at ${SECONDS}s"
  done
}
gpu1 > "$OUT/gpu1.txt" 2>&1 &
g1=$!
tests() {  # side
  local n=15 pids=()
  for s in $(seq 0 $((n-1))); do
    CUDA_VISIBLE_DEVICES=0 GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 200 pb/$1/qsdpa_tests --gtest_filter='*Cuda*' > "$OUT/t-$1-$s.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait $p; done
  echo "$1 tests (GPU 0): passed $(grep -h '^\[  PASSED' $OUT/t-$1-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-$1-*.log | awk '{s+=$4} END {print s}'), failed:"
  grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-$1-*.log | sort -u | head
  for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-$1-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-$1-$s.log | tail -1)"; done
  echo "$1 tests done at ${SECONDS}s"
}
tests wm40 | tee "$OUT/tests-summary.txt"
CUDA_VISIBLE_DEVICES=0 QSDPA_CLI_PATH="$PWD/pb/wm40/qsdpa" timeout 60 pb/wm40/qsdpa_cli_tests --gtest_filter='*Cuda*' > "$OUT/cli-wm40.log" 2>&1
echo "wm40 CLI CUDA tests rc $?: $(grep -E '^\[  (PASSED|FAILED)' $OUT/cli-wm40.log | tr '\n' ' ')" | tee -a "$OUT/tests-summary.txt"
CUDA_VISIBLE_DEVICES=0 timeout 60 pb/wm40/qsdpa_tests --gtest_filter='CudaAttentionSplits.SplitCounts*:CudaAttentionSplits.Merges*' > /dev/null 2>&1  # warm
CUDA_VISIBLE_DEVICES=0 timeout 120 compute-sanitizer --tool memcheck pb/wm40/qsdpa_tests --gtest_filter='CudaAttentionSplits.SplitCounts*' > "$OUT/memcheck-wm40.log" 2>&1; echo "wm40 memcheck rc $?: $(grep -E 'ERROR SUMMARY' $OUT/memcheck-wm40.log | tail -1)" | tee -a "$OUT/tests-summary.txt"
[ "$SECONDS" -lt 260 ] && tests ml40 | tee -a "$OUT/tests-summary.txt"
wait $g1
cat "$OUT/gpu1.txt"
echo "== wm40 against mn38"; python3 scripts/ab_table.py "$OUT" mn38 wm40
echo "== ml40 against mn38"; python3 scripts/ab_table.py "$OUT" mn38 ml40
echo "elapsed ${SECONDS}s"
