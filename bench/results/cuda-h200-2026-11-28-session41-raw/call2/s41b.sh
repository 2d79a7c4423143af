#!/bin/bash
# Session 41, nvidia-h200-x2 (~520 s). w2 (branch s41-whole-sm-two-tiles): whole-SM blocks of 8 warps
# for two row tiles at D 128 (Lq 3-4 at GQA 4, Lq 8's row chunks) of the 4-bit and 8-bit pairs, from
# 16K keys. GPU 0: every CUDA test on w2 (15 shards), the CLI's CUDA test, memcheck + racecheck on
# the new test, then gpu-check's stage shapes on w2. GPU 1: A B (mn41 = main, w2) at Lq 4 and 8, and
# A B (mn41, mn41 with QSDPA_WHOLE_SM=4096) at 4K-12K, GQA 4 and MHA.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for s in mn41 w2; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$s.tar.xz || exit 1
  echo "$s: $(cat pb/$s/COMMIT)"
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
gpu1() {
  ab() {  # set side round bench-args...
    local set=$1 side=$2 r=$3; shift 3
    local bin=$side envs=()
    case $side in
      t4k) bin=mn41; envs=(QSDPA_WHOLE_SM=4096) ;;
    esac
    mkdir -p "$OUT/$set"
    env "${envs[@]}" CUDA_VISIBLE_DEVICES=1 timeout 120 pb/$bin/qsdpa bench --device cuda --min-seconds 0.1 "$@" \
      --json "$OUT/$set/$set-$side-$r.json" > "$OUT/$set/$set-$side-$r.log" 2>&1 || tail -3 "$OUT/$set/$set-$side-$r.log"
  }
  for r in 1 2 3; do
    for s in mn41 w2; do
      [ "$SECONDS" -gt 430 ] && { echo "A/B stopped at ${SECONDS}s"; break 2; }
      ab q $s $r --lq 4 --heads 32:8 --context 16384,32768,131072 --formats mxfp4,nvfp4,affine4,affine4-g32,mxfp8,affine8
      ab o $s $r --lq 8 --heads 32:8 --context 32768 --formats mxfp4,nvfp4,affine4,affine4-g32,mxfp8,affine8
    done
    for s in mn41 t4k; do
      ab e $s $r --heads 32:8 --context 4096,6144,8192,12288 --formats mxfp4,nvfp4,affine4,affine4-g32
      ab f $s $r --heads 32:32 --context 4096,8192 --formats mxfp4,nvfp4,affine4
    done
    echo "round $r done at ${SECONDS}s"
  done
}
gpu1 > "$OUT/gpu1.txt" 2>&1 &
g1=$!
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  CUDA_VISIBLE_DEVICES=0 GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 240 pb/w2/qsdpa_tests --gtest_filter='*Cuda*' > "$OUT/t-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
{
  echo "w2 tests (GPU 0): passed $(grep -h '^\[  PASSED' $OUT/t-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-*.log | awk '{s+=$4} END {print s}'), failed:"
  grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-*.log | sort -u | head
  for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-$s.log | tail -1)"; done
  echo "tests done at ${SECONDS}s"
  grep -h " warps" $OUT/t-*.log | sort | uniq | head -40
  CUDA_VISIBLE_DEVICES=0 QSDPA_CLI_PATH="$PWD/pb/w2/qsdpa" timeout 60 pb/w2/qsdpa_cli_tests --gtest_filter='*Cuda*' > "$OUT/cli.log" 2>&1
  echo "CLI CUDA tests rc $?: $(grep -E '^\[  (PASSED|FAILED)' $OUT/cli.log | tr '\n' ' ')"
  CUDA_VISIBLE_DEVICES=0 timeout 150 compute-sanitizer --tool memcheck pb/w2/qsdpa_tests --gtest_filter='*WholeSmBlocksOfTwoRowTiles*' > "$OUT/memcheck.log" 2>&1
  echo "memcheck rc $?: $(grep -E 'ERROR SUMMARY' $OUT/memcheck.log | tail -1) $(grep -E '^\[  (PASSED|FAILED)' $OUT/memcheck.log | tr '\n' ' ') at ${SECONDS}s"
  CUDA_VISIBLE_DEVICES=0 timeout 150 compute-sanitizer --tool racecheck pb/w2/qsdpa_tests --gtest_filter='*WholeSmBlocksOfTwoRowTiles*' > "$OUT/racecheck.log" 2>&1
  echo "racecheck rc $?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' $OUT/racecheck.log | tail -1) $(grep -E '^\[  (PASSED|FAILED)' $OUT/racecheck.log | tr '\n' ' ') at ${SECONDS}s"
} | tee "$OUT/tests-summary.txt"
# Stage shapes of w2 on GPU 0 while GPU 1 finishes (PyTorch in the same run).
if [ "$SECONDS" -lt 320 ]; then
  mkdir -p "$OUT/shapes"
  CUDA_VISIBLE_DEVICES=0 OUT="$OUT/shapes" QSDPA_PREBUILT=third_party_carry/w2.tar.xz QSDPA_STAGES=shapes \
    timeout $((560 - SECONDS)) bash scripts/gpu-check.sh > "$OUT/shapes/shapes.txt" 2>&1
  echo "shapes rc $? at ${SECONDS}s"
fi
wait $g1
cat "$OUT/gpu1.txt"
for set in q o; do echo "== set $set"; python3 scripts/ab_table.py "$OUT/$set" mn41 w2; done
for set in e f; do echo "== set $set"; python3 scripts/ab_table.py "$OUT/$set" mn41 t4k; done
tail -40 "$OUT/shapes/shapes.txt" 2>/dev/null
echo "elapsed ${SECONDS}s"
