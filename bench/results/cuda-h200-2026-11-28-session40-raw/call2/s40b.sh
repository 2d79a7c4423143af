#!/bin/bash
# Session 40, nvidia-h200 (~330 s). Sides: mn38 (main); wf40 (-DQSDPA_WHOLE_SM_FP4_KEYS=1024, run
# with QSDPA_WHOLE_SM=16384: mxfp4 / nvfp4 take whole-SM blocks from 16K keys a KV head instead of
# 64K, affine4 from 16K instead of 32K); pf40 (-DQSDPA_WHOLE_SM_PREFETCH_STEPS=2: the whole-SM
# mxfp4 / nvfp4 prologue asks L2 for 2 steps ahead instead of 4).
# First the split and whole-SM tests on wf40 (with its env) and pf40, then A B C x3 at GQA 4.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for s in mn38 wf40 pf40; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$s.tar.xz || exit 1
  echo "$s: $(cat pb/$s/COMMIT)"
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
F='CudaAttentionSplits.*:*WholeSm*:*Graph*:*Chained*'
tests() {  # side env...
  local side=$1; shift
  local n=8 pids=()
  for s in $(seq 0 $((n-1))); do
    env "$@" GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 150 pb/$side/qsdpa_tests --gtest_filter="$F" > "$OUT/t-$side-$s.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait $p; done
  echo "$side tests ($F): passed $(grep -h '^\[  PASSED' $OUT/t-$side-*.log | awk '{s+=$4} END {print s}'), failed:"
  grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-$side-*.log | sort -u | head
  for s in $(seq 0 $((n-1))); do grep -q '^\[  PASSED' $OUT/t-$side-$s.log || echo "shard $s unfinished: $(grep '^\[ RUN' $OUT/t-$side-$s.log | tail -1)"; done
  echo "$side tests done at ${SECONDS}s"
}
{ tests wf40 QSDPA_WHOLE_SM=16384; tests pf40 X=1; } | tee "$OUT/tests-summary.txt"
ab() {  # side round env...
  local side=$1 r=$2; shift 2
  env "$@" timeout 90 pb/$side/qsdpa bench --device cuda --min-seconds 0.1 --heads 32:8 --context 16384,24576,32768,49152,65536,131072 \
    --formats mxfp4,nvfp4,affine4 --json "$OUT/g-$side-$r.json" > "$OUT/g-$side-$r.log" 2>&1 || tail -3 "$OUT/g-$side-$r.log"
}
for r in 1 2 3; do
  [ "$SECONDS" -gt 420 ] && { echo "A/B stopped at ${SECONDS}s"; break; }
  ab mn38 $r X=1; ab wf40 $r QSDPA_WHOLE_SM=16384; ab pf40 $r X=1
  echo "round $r done at ${SECONDS}s"
done
grep -h "whole\|split" "$OUT/g-wf40-1.log" | head -20
echo "== wf40 against mn38"; python3 scripts/ab_table.py "$OUT" mn38 wf40
echo "== pf40 against mn38"; python3 scripts/ab_table.py "$OUT" mn38 pf40
echo "elapsed ${SECONDS}s"
