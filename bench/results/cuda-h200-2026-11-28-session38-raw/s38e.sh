#!/bin/bash
# Session 38, call 4 (nvidia-h200, ~330 s): gpu-check's stages "shapes" (issue 3's item 3 shapes at
# 32K: Lq 1/4/8/32, B 8/32, D 64/256, PyTorch in the same run) and "ncu" (the mxfp4 split kernel at
# 128K and the merge kernel, at the GPU's own clock, with the pipes' use) on mn38 (main).
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
nvidia-smi --query-gpu=index,name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
QSDPA_PREBUILT=third_party_carry/mn38.tar.xz QSDPA_STAGES="shapes ncu" timeout 540 bash scripts/gpu-check.sh > "$OUT/shapes.log" 2>&1
echo "gpu-check rc $? at ${SECONDS}s"
grep -v "^$" "$OUT/shapes.log" | grep -v -E '^\| (f16|affine|mxfp|nvfp|turbo)' | tail -60
