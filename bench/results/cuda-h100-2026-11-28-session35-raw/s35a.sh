#!/bin/bash
# Prepared in session 34 for the next session's first call (not run yet): where a GQA 4 call's
# per-call costs go on today's kernels (docs/gpu-tests.md, session 34's head-count model: 7-12 us a
# call that do not grow with the heads). fin34b = main's kernels (d92118e; 7b491b6 differs in
# comments and docs), ph34 = the same tree with -DQSDPA_PHASE_TIMES. MHA 128K as the control whose
# per-call costs are the same but whose loop is 4x longer.
set -u
cd "$(dirname "$0")/../.."
QSDPA_PREBUILT=third_party_carry/fin34b.tar.xz QSDPA_PHASE_PREBUILT=third_party_carry/ph34.tar.xz \
  QSDPA_STAGES=phases QSDPA_PHASE_RUNS="mxfp4:32768 mxfp4:131072 nvfp4:131072 affine4:131072 mxfp4:131072:32-32 mxfp4:4096" \
  timeout 400 bash scripts/gpu-check.sh > "$OUT/phases.log" 2>&1
grep -v "^$" "$OUT/phases.log" | tail -120
cd "$OUT" && tar czf /tmp/all.tgz --exclude=all.tgz . && find . -mindepth 1 -delete && mv /tmp/all.tgz .
