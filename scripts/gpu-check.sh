#!/usr/bin/env bash
# On the GPU machine: build with CUDA (sm_90a), run the CUDA tests and a CPU smoke test, print a short
# table last. Needs third_party_carry/ (scripts/prepare-carry.sh) carried along. Writes logs to $OUT.
# Usage there: QSDPA_COMMIT=<commit> bash scripts/gpu-check.sh   (the copy has no .git)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/qsdpa-gpu-out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DQSDPA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DQSDPA_VENDOR_DIR="$PWD/third_party_carry" -DQSDPA_COMMIT_OVERRIDE="${QSDPA_COMMIT:-}" >"$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build build-gpu -j"$(nproc)" >"$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -60; exit 1; }
grep -E "registers|spill" "$OUT/build.log" | sort | uniq -c | head -20
./build-gpu/tools/qsdpa info | head -6 | tee "$OUT/info.txt"
cuda_rc=0
ctest --test-dir build-gpu -R 'Cuda' -j"$(nproc)" --timeout 600 >"$OUT/cuda-tests.log" 2>&1 || cuda_rc=$?
tail -4 "$OUT/cuda-tests.log"
if command -v compute-sanitizer >/dev/null; then
  compute-sanitizer --tool memcheck --error-exitcode 9 ./build-gpu/tests/qsdpa_tests \
    --gtest_filter='*CudaAttention.*/mxfp8_turbo3:*CudaDequantize*/turbo3:*CudaDequantize*/affine3:*CudaAttentionStatus*' \
    >"$OUT/memcheck.log" 2>&1; echo "memcheck rc $?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | sort | uniq -c | tr '\n' ' ')"
  compute-sanitizer --tool racecheck --error-exitcode 9 ./build-gpu/tests/qsdpa_tests \
    --gtest_filter='*CudaAttentionStatus*:*CudaDequantize*/nvfp4' >"$OUT/racecheck.log" 2>&1
  echo "racecheck rc $?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | sort | uniq -c | tr '\n' ' ')"
fi
cpu_rc=0
ctest --test-dir build-gpu -E 'Cuda' -j"$(nproc)" --timeout 600 >"$OUT/cpu-tests.log" 2>&1 || cpu_rc=$?
echo
echo "== summary =="
printf "%-14s %s\n" "GPU" "$(head -1 "$OUT/gpu.txt")"
printf "%-14s %s\n" "CUDA tests" "$(grep -E 'tests passed|tests failed' "$OUT/cuda-tests.log" | tail -1) (rc $cuda_rc)"
printf "%-14s %s\n" "other tests" "$(grep -E 'tests passed|tests failed' "$OUT/cpu-tests.log" | tail -1) (rc $cpu_rc)"
[ $cuda_rc -eq 0 ] && [ $cpu_rc -eq 0 ]
