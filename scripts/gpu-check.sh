#!/usr/bin/env bash
# On the GPU machine: build with CUDA (sm_90a), run the CUDA tests and a CPU smoke test, print a short
# table last. Needs third_party_carry/ (scripts/prepare-carry.sh) carried along. Writes logs to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/qsdpa-gpu-out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DQSDPA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DQSDPA_VENDOR_DIR="$PWD/third_party_carry" >"$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build build-gpu -j"$(nproc)" >"$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -60; exit 1; }
grep -E "registers|spill" "$OUT/build.log" | sort | uniq -c | head -20
./build-gpu/tools/qsdpa info | head -6 | tee "$OUT/info.txt"
cuda_rc=0
./build-gpu/tests/qsdpa_tests --gtest_filter='*Cuda*' 2>&1 | tee "$OUT/cuda-tests.log" | tail -5 || cuda_rc=$?
if command -v compute-sanitizer >/dev/null; then
  compute-sanitizer --tool memcheck ./build-gpu/tests/qsdpa_tests --gtest_filter='*CudaDequantize*/affine3*:*CudaDequantize*/turbo3' \
    >"$OUT/memcheck.log" 2>&1; echo "memcheck: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
fi
cpu_rc=0
./build-gpu/tests/qsdpa_tests --gtest_filter='-*CpuAttention.*' >"$OUT/cpu-tests.log" 2>&1 || cpu_rc=$?
echo
echo "== summary =="
printf "%-28s %s\n" "GPU" "$(head -1 "$OUT/gpu.txt")"
printf "%-28s %s\n" "CUDA tests" "$(grep -E '^\[  (PASSED|FAILED)' "$OUT/cuda-tests.log" | tr '\n' ' ') (rc $cuda_rc)"
printf "%-28s %s\n" "CPU tests (no pairwise)" "$(grep -E '^\[  (PASSED|FAILED)' "$OUT/cpu-tests.log" | tr '\n' ' ') (rc $cpu_rc)"
[ $cuda_rc -eq 0 ] && [ $cpu_rc -eq 0 ]
