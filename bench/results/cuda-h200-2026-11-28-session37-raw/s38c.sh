#!/bin/bash
# Prepared in session 37 for an `nvidia-h200-x2` call (not run yet; ~300 s): pd37 (branch
# s37-per-device-smem: the shared partials workspace and the raised shared-memory limits per device)
# under CudaAttentionDevices.EachDeviceOfOneProcess on both GPUs of one process, then every CUDA test
# on GPU 0 (15 shards, 200 s limits; the change touches every launch's host path). Carry pd37.tar.xz
# (kept in /work/archives; at most three 13 MB archives fit the 64 MiB carry with the repo).
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/pd37.tar.xz || exit 1
cat pb/pd37/COMMIT
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
T=pb/pd37/qsdpa_tests
timeout 200 $T --gtest_filter='CudaAttentionDevices.*' > "$OUT/devices.log" 2>&1
echo "devices test rc $?"; grep -E "^device|splits, cluster|^\[  (PASSED|FAILED|SKIPPED) " "$OUT/devices.log"
n=15; pids=()
for s in $(seq 0 $((n-1))); do
  CUDA_VISIBLE_DEVICES=0 GTEST_TOTAL_SHARDS=$n GTEST_SHARD_INDEX=$s timeout 200 $T --gtest_filter='*Cuda*' > "$OUT/t-pd37-$s.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "pd37 tests (GPU 0): passed $(grep -h '^\[  PASSED' $OUT/t-pd37-*.log | awk '{s+=$4} END {print s}'), skipped $(grep -h '^\[  SKIPPED \] [0-9]' $OUT/t-pd37-*.log | awk '{s+=$4} END {print s}'), failed:"
grep -h "^\[  FAILED  \] [A-Za-z]" $OUT/t-pd37-*.log | sort -u | head
echo "elapsed ${SECONDS}s"
