#!/bin/bash
# Prepared in session 35 for the next session's first call (not run yet): issue 3's other shapes
# (stage shapes: Lq 1/4/8/32, B 8/32, D 64/256 at 32K, PyTorch in the same run) on main's kernels
# (fin35 = 8ec398d) under the new batch rule (>= 8 calls over >= 2 copies a timed replay).
set -u
cd "$(dirname "$0")/../.."
QSDPA_PREBUILT=third_party_carry/fin35.tar.xz QSDPA_STAGES=shapes timeout 560 bash scripts/gpu-check.sh > "$OUT/shapes.log" 2>&1
grep -v "^$" "$OUT/shapes.log" | tail -100
cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .
