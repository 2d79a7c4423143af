#!/bin/bash
# Session 33, call 3: lb3 (the tree that lands) under compute-sanitizer (memcheck: gpu-check's list;
# racecheck: the whole-SM, split and shapes tests that read the lane-base table), then the bench
# stage with PyTorch (GQA 4 and MHA, 1K-128K) for the README.
set -u
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/lb3.tar.xz || exit 1
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/lb3/qsdpa_tests
( timeout 230 compute-sanitizer --tool memcheck --error-exitcode 9 $T \
    --gtest_filter='*CudaAttention.*/mxfp8_turbo3:*TensorCoreShapes/turbo4:*TensorCoreShapes/mxfp4:*TensorCoreShapes/f16:*CudaDequantize*/turbo3:*CudaDequantize*/affine3:*CudaAttentionStatus*:*CudaAppend*/nvfp4:*CudaAppend*/turbo3:*CudaAppendStatus*:*CudaAttentionChained*:*CudaAttentionSplits*:*TensorCoreShapes/affine4*:*CudaAttentionAlignment*' \
    > "$OUT/memcheck.log" 2>&1; echo "memcheck rc $?" >> "$OUT/memcheck.log" ) &
( timeout 230 compute-sanitizer --tool racecheck --error-exitcode 9 $T \
    --gtest_filter='*CudaAttentionSplits.WholeSm*:*TensorCoreShapes/mxfp4:*TensorCoreShapes/affine4:*CudaAttentionStatus*' \
    > "$OUT/racecheck.log" 2>&1; echo "racecheck rc $?" >> "$OUT/racecheck.log" ) &
wait
for f in memcheck racecheck; do
  echo "== $f: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|rc [0-9]+' "$OUT/$f.log" | sort | uniq -c | tr '\n' ' ')"
  grep -E "^\[  (PASSED|FAILED) |tests? ran" "$OUT/$f.log" | tail -3
done
QSDPA_PREBUILT=third_party_carry/lb3.tar.xz QSDPA_STAGES=bench timeout 300 bash scripts/gpu-check.sh > "$OUT/bench.log" 2>&1
tail -40 "$OUT/bench.log"
cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .
