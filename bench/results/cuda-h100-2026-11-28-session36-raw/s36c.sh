#!/bin/bash
# Session 36, call 3: memcheck over ep36's whole-SM tests (call 2's 100 s limit was too short);
# issue 3's D 256 row at Hq 32 (ep36, PyTorch in the same run); the phase probe (ph36 = ep36 with
# -DQSDPA_PHASE_TIMES) at 128K for mxfp4 and nvfp4: the epilogue's span (marks 7 -> 5).
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('pb')" third_party_carry/ep36.tar.xz || exit 1
export QSDPA_GOLDEN_DIR="$PWD/third_party_carry/mlx-golden"
F='*CudaAttentionSplits.WholeSm*:*TensorCoreShapes/mxfp4:*TensorCoreShapes/nvfp4'
pb/ep36/qsdpa_tests --gtest_list_tests --gtest_filter="$F" | grep -c '^  '
timeout 190 compute-sanitizer --tool memcheck --error-exitcode 9 pb/ep36/qsdpa_tests --gtest_filter="$F" > "$OUT/memcheck.log" 2>&1
echo "memcheck rc $?"; grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED) " "$OUT/memcheck.log" | sort | uniq -c
fmts=f16,affine8,affine4,affine4-g32,mxfp8,mxfp4,nvfp4
timeout 80 pb/ep36/qsdpa bench --device cuda --heads 32:8 --context 32768 --min-seconds 0.1 --dim 256 --formats $fmts,turbo4,turbo3 \
  --json "$OUT/bench-d256.json" > "$OUT/bench-d256.log" 2>&1 || tail -3 "$OUT/bench-d256.log"
timeout 60 python3 scripts/torch_sdpa.py "$OUT/bench-d256.json" --min-seconds 0.1 > "$OUT/torch-d256.log" 2>&1 || tail -5 "$OUT/torch-d256.log"
python3 scripts/report.py bench "$OUT/bench-d256.json" | tail -n +3
QSDPA_PREBUILT=third_party_carry/ep36.tar.xz QSDPA_PHASE_PREBUILT=third_party_carry/ph36.tar.xz \
  QSDPA_STAGES=phases QSDPA_PHASE_RUNS="mxfp4:131072 nvfp4:131072" \
  timeout 120 bash scripts/gpu-check.sh > "$OUT/phases.log" 2>&1
grep -v "^$" "$OUT/phases.log" | grep -v "^ptxas\|^\[" | tail -60
