#!/bin/bash
# Session 37, call 3 (H200): does wm37 hang in CudaAttention.MatchesF64ReferencePairwise/fp8_turbo4
# (call 2's shard 6 stopped there at its 150 s limit; ni36 ran it in 4.6 s in call 1)? Five processes
# at once, 45 s each: wm37 x3 (one with QSDPA_SPLIT_PDL=0), ep36 x1, wm37's whole Pairwise suite.
# Then gpu-check's stage bench on ep36 (main) with PyTorch in the same run: the H200 table.
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
for a in ep36 wm37; do
  python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/$a.tar.xz || exit 1
done
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
F='*Pairwise/fp8_turbo4'
timeout 45 pb/wm37/qsdpa_tests --gtest_filter="$F" > "$OUT/d-wm37-a.log" 2>&1 & p1=$!
timeout 45 pb/wm37/qsdpa_tests --gtest_filter="$F" > "$OUT/d-wm37-b.log" 2>&1 & p2=$!
QSDPA_SPLIT_PDL=0 timeout 45 pb/wm37/qsdpa_tests --gtest_filter="$F" > "$OUT/d-wm37-nopdl.log" 2>&1 & p3=$!
timeout 45 pb/ep36/qsdpa_tests --gtest_filter="$F" > "$OUT/d-ep36.log" 2>&1 & p4=$!
timeout 45 pb/wm37/qsdpa_tests --gtest_filter='*CudaAttention.MatchesF64ReferencePairwise/*turbo*:*CudaAttention.MatchesF64ReferencePairwise/fp8' > "$OUT/d-wm37-turbos.log" 2>&1 & p5=$!
for p in $p1 $p2 $p3 $p4 $p5; do wait $p; echo "rc $?"; done
for f in $OUT/d-*.log; do echo "$(basename $f): $(grep -c '^\[       OK' $f) ok, $(grep -c '^\[  FAILED  \] [A-Za-z]' $f) failed; last: $(grep -E '^\[' $f | tail -1 | cut -c1-90)"; done
grep -h "OK \]" $OUT/d-*.log | head -20
echo "diagnosis done at ${SECONDS}s"
QSDPA_PREBUILT=third_party_carry/ep36.tar.xz QSDPA_STAGES=bench timeout 420 bash scripts/gpu-check.sh > "$OUT/bench.log" 2>&1
echo "bench rc $?"
grep -v "^$" "$OUT/bench.log" | tail -45
echo "elapsed ${SECONDS}s"
