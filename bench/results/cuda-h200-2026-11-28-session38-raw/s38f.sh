#!/bin/bash
# Session 38, call 5 (nvidia-h200, ~160 s): where the H200's mxfp4 whole-SM loop waits, per SASS
# instruction (stage ncusrc, GQA 4 128K, the GPU's own clock), and stage ncu with its merge regex fixed
# (merge_[a-z]*_kernel), on mn38 (main's kernels).
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && rm -f ncu-src.ncu-rep && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
QSDPA_PREBUILT=third_party_carry/mn38.tar.xz QSDPA_STAGES="ncusrc ncu" timeout 300 bash scripts/gpu-check.sh > "$OUT/ncu.log" 2>&1
echo "gpu-check rc $? at ${SECONDS}s"
grep -v "^$" "$OUT/ncu.log" | tail -45
ls -la "$OUT"
