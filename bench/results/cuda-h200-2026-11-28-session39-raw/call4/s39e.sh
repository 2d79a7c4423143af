#!/bin/bash
# Session 39, nvidia-h200 (~200 s): the phase probe on the H200 for the first time. mn38 (main's
# kernels) timed beside ph39 (the same tree with -DQSDPA_PHASE_TIMES): where a GQA 4 call's per-call
# cost goes (MHA 32K has the same bytes as GQA 4 128K and took 47.0 against 47.7 us; MHA 128K 166.1:
# ~7 us a call that do not grow with the keys, the rest streams at ~87% of the copy peak).
set -u
cd "$(dirname "$0")/../.."
trap 'cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .' EXIT
QSDPA_PREBUILT=third_party_carry/mn38.tar.xz QSDPA_PHASE_PREBUILT=third_party_carry/ph39.tar.xz \
  QSDPA_STAGES=phases QSDPA_PHASE_RUNS="mxfp4:131072 mxfp4:32768:32-32 mxfp4:131072:32-32 mxfp4:32768 nvfp4:131072 affine4:131072 f16:131072" \
  timeout 400 bash scripts/gpu-check.sh > "$OUT/phases.log" 2>&1
grep -v "^$" "$OUT/phases.log" | tail -150
echo "elapsed ${SECONDS}s"
