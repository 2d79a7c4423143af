#!/usr/bin/env bash
# Builds the CUDA library (shared), the CLI and the tests on this machine (Release, sm_90a) and
# gathers them into the git-ignored third_party_carry/bin/ with the one library the GPU machine's
# image lacks (libfmt.so.9) and the CUDA runtime they were linked against, so that a GPU call runs
# them without building there: a build on the GPU machine took ~4.5 of a call's minutes and of the
# session's device time; here it takes ~7 min on 2 cores and no device time. A binary built here ran
# on the GPU machine's image (Ubuntu 24.04, glibc 2.39) in session 25: the statically linked CLI;
# this shared-library form and gpu-check.sh's QSDPA_PREBUILT path have not run there yet.
# Then, in the device call (carry third_party_carry):
#   QSDPA_PREBUILT=third_party_carry/bin QSDPA_STAGES="tests bench" bash scripts/gpu-check.sh
# The CLI and the tests share libqsdpa.so, whose kernels are most of the bytes (the carry limit is
# 64 MiB: two statically linked binaries would not fit beside the rest of third_party_carry).
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/results' || echo "-dirty")
cmake -S . -B build-carry -DCMAKE_BUILD_TYPE=Release -DQSDPA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DBUILD_SHARED_LIBS=ON -DQSDPA_COMMIT_OVERRIDE="$commit" >/dev/null
cmake --build build-carry -j"$(nproc)" --target qsdpa_cli qsdpa_tests
out=third_party_carry/bin
rm -rf "$out"
mkdir -p "$out"
cp build-carry/tools/qsdpa build-carry/tests/qsdpa_tests "$out/"
for lib in libqsdpa.so libfmt.so.9 libcudart.so.13; do  # as the CLI resolves them here
  path=$(ldd build-carry/tools/qsdpa | awk -v l="$lib" '$1 ~ "^"l {print $3}')
  [ -n "$path" ] || { echo "carry-build: $lib not found by ldd" >&2; exit 1; }
  cp -L "$path" "$out/$(basename "$(ldd build-carry/tools/qsdpa | awk -v l="$lib" '$1 ~ "^"l {print $1}')")"
done
echo "$commit" >"$out/COMMIT"
du -sh "$out" third_party_carry
