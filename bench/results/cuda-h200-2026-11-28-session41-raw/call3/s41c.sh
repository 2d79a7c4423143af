#!/bin/bash
# Session 41, nvidia-h200 (~350 s). fin41 (main 937d0c9): whole-SM blocks from 8K keys
# (QSDPA_WHOLE_SM default 8192). Every CUDA test (15 shards), the CLI's CUDA test, memcheck on the
# whole-SM test from 8K keys, then the bench rows the threshold moved (8K-16K) for the record.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/fin41.tar.xz || exit 1
echo "fin41: $(cat pb/fin41/COMMIT)"
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 300 pb/fin41/qsdpa_tests --gtest_filter='*Cuda*' > "$OUT/t-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
{
  echo "fin41 tests: passed $(grep -h '^\[  PASSED' $OUT/t-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-*.log | awk '{s+=$4} END {print s}'), failed:"
  grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-*.log | sort -u | head
  for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-$s.log | tail -1)"; done
  echo "tests done at ${SECONDS}s"
  grep -h " warps" $OUT/t-*.log | grep -E "N=(8192|12289|9000|8193|10001) " | sort | uniq
  QSDPA_CLI_PATH="$PWD/pb/fin41/qsdpa" timeout 60 pb/fin41/qsdpa_cli_tests --gtest_filter='*Cuda*' > "$OUT/cli.log" 2>&1
  echo "CLI CUDA tests rc $?: $(grep -E '^\[  (PASSED|FAILED)' $OUT/cli.log | tr '\n' ' ')"
  timeout 150 compute-sanitizer --tool memcheck pb/fin41/qsdpa_tests --gtest_filter='*WholeSmBlocksFromEightKKeys*' > "$OUT/memcheck.log" 2>&1
  echo "memcheck rc $?: $(grep -E 'ERROR SUMMARY' $OUT/memcheck.log | tail -1) $(grep -E '^\[  (PASSED|FAILED)' $OUT/memcheck.log | tr '\n' ' ') at ${SECONDS}s"
} | tee "$OUT/tests-summary.txt"
if [ "$SECONDS" -lt 380 ]; then
  timeout 60 pb/fin41/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 --context 8192,12288,16384 \
    --formats affine4,affine4-g32,mxfp4,nvfp4 --json "$OUT/bench-8k.json" > "$OUT/bench-8k.log" 2>&1
  python3 scripts/report.py bench "$OUT/bench-8k.json" | tail -n +3
fi
echo "elapsed ${SECONDS}s"
