#!/bin/bash
# Session 40, nvidia-h200-x2 (~420 s). ws40 (branch s40-docs): whole-SM blocks from 16K keys
# (QSDPA_WHOLE_SM default 16384; mxfp4 / nvfp4 from 1024 keys a block, not 4096) and the whole-SM
# prologue asking L2 for 2 steps, not 4. GPU 0: every CUDA test on ws40 (15 shards), the CLI's CUDA
# test, memcheck on the new whole-SM test. GPU 1: A B x3 (mn38 = main, ws40) over five sets of shapes,
# each set in its own folder (the table keys on KV heads, context and format only).
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for s in mn38 ws40; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$s.tar.xz || exit 1
  echo "$s: $(cat pb/$s/COMMIT)"
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
gpu1() {
  ab() {  # set side round bench-args...
    local set=$1 side=$2 r=$3; shift 3
    mkdir -p "$OUT/$set"
    CUDA_VISIBLE_DEVICES=1 timeout 90 pb/$side/qsdpa bench --device cuda --min-seconds 0.1 "$@" \
      --json "$OUT/$set/$set-$side-$r.json" > "$OUT/$set/$set-$side-$r.log" 2>&1 || tail -3 "$OUT/$set/$set-$side-$r.log"
  }
  for r in 1 2 3; do
    for s in mn38 ws40; do
      [ "$SECONDS" -gt 440 ] && { echo "A/B stopped at ${SECONDS}s"; break 2; }
      ab g $s $r --heads 32:8 --context 8192,16384,32768,49152,131072 --formats mxfp4,nvfp4,affine4
      ab m $s $r --heads 32:32 --context 16384,32768 --formats mxfp4,nvfp4,affine4
      ab b $s $r --batch 8 --heads 32:8 --context 16384 --formats mxfp4,nvfp4,affine4
      ab d $s $r --dim 64 --heads 32:8 --context 16384 --formats mxfp4,nvfp4,affine4
      ab l $s $r --lq 2 --heads 32:8 --context 32768 --formats mxfp4,nvfp4,affine4
    done
    echo "round $r done at ${SECONDS}s"
  done
}
gpu1 > "$OUT/gpu1.txt" 2>&1 &
g1=$!
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  CUDA_VISIBLE_DEVICES=0 GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 240 pb/ws40/qsdpa_tests --gtest_filter='*Cuda*' > "$OUT/t-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
{
  echo "ws40 tests (GPU 0): passed $(grep -h '^\[  PASSED' $OUT/t-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-*.log | awk '{s+=$4} END {print s}'), failed:"
  grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-*.log | sort -u | head
  for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-$s.log | tail -1)"; done
  echo "tests done at ${SECONDS}s"
  grep -h "warps$" $OUT/t-*.log | grep -E "N=(16384|20001|24577|16500|17001|16385|33000|40001) " | sort | uniq | head -20
  CUDA_VISIBLE_DEVICES=0 QSDPA_CLI_PATH="$PWD/pb/ws40/qsdpa" timeout 60 pb/ws40/qsdpa_cli_tests --gtest_filter='*Cuda*' > "$OUT/cli.log" 2>&1
  echo "CLI CUDA tests rc $?: $(grep -E '^\[  (PASSED|FAILED)' $OUT/cli.log | tr '\n' ' ')"
  CUDA_VISIBLE_DEVICES=0 timeout 200 compute-sanitizer --tool memcheck pb/ws40/qsdpa_tests --gtest_filter='*WholeSmBlocksFromSixteenKKeys*' > "$OUT/memcheck.log" 2>&1
  echo "memcheck rc $?: $(grep -E 'ERROR SUMMARY' $OUT/memcheck.log | tail -1) $(grep -E '^\[  (PASSED|FAILED)' $OUT/memcheck.log | tr '\n' ' ')"
} | tee "$OUT/tests-summary.txt"
wait $g1
cat "$OUT/gpu1.txt"
for set in g m b d l; do echo "== set $set"; python3 scripts/ab_table.py "$OUT/$set" mn38 ws40; done
echo "elapsed ${SECONDS}s"
