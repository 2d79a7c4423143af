#!/bin/bash
# Session 37, call 4 (H200): does call 2's stall come back? The CUDA tests in 15 shards, wm37 then
# ep36 (main) as the control, then wm37 again while time allows. A shard still running at 175 s gets
# cuda-gdb attached (its CUDA kernels and host stacks) before it is killed at 200 s.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in ep36 wm37; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
round() {  # build tag
  local T=pb/$1/qsdpa_tests n=15 pids=() start=$SECONDS
  for s in $(seq 0 $((n-1))); do
    GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 200 $T --gtest_filter='*Cuda*' > "$OUT/t-$2-$s.log" 2>&1 &
    pids+=($!)
  done
  while [ $((SECONDS - start)) -lt 175 ]; do
    alive=0; for p in "${pids[@]}"; do kill -0 $p 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 2
  done
  for s in $(seq 0 $((n-1))); do
    p=${pids[$s]}
    kill -0 $p 2>/dev/null || continue
    child=$(pgrep -P $p | head -1)
    echo "$2 shard $s still running at $((SECONDS - start))s: $(grep -E '^\[ RUN' "$OUT/t-$2-$s.log" | tail -1)"
    timeout 25 cuda-gdb -batch -p ${child:-$p} -ex "info cuda kernels" -ex "info cuda blocks" -ex "thread apply all bt 12" > "$OUT/gdb-$2-$s.log" 2>&1
    head -40 "$OUT/gdb-$2-$s.log"
  done
  for p in "${pids[@]}"; do wait $p; done
  echo "$2: passed $(grep -h '^\[  PASSED' $OUT/t-$2-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-$2-*.log | awk '{s+=$4} END {print s}'), failed: $(grep -h '^\[  FAILED  \] [A-Za-z]' $OUT/t-$2-*.log | sort -u | head -5 | tr '\n' ' '), took $((SECONDS - start))s"
}
round wm37 wm37-1
round ep36 ep36-1
[ "$SECONDS" -lt 330 ] && round wm37 wm37-2
echo "elapsed ${SECONDS}s"
