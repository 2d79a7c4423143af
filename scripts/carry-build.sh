#!/usr/bin/env bash
# Builds the CUDA library (shared), the CLI and both test binaries on this machine (Release, sm_90a)
# and packs them, with the one library the GPU machine's image lacks (libfmt.so.9) and the CUDA
# runtime they were linked against, into the git-ignored third_party_carry/<name>.tar.xz (~12 MB;
# default name "bin"), so that a GPU call runs them without building there: a build on the GPU
# machine took ~4.5 of a call's minutes and of the session's device time; here it takes ~7 min on
# 2 cores and none.
# The binaries find their libraries beside them ($ORIGIN), so several builds can sit side by side.
#   bash scripts/carry-build.sh                      # this tree -> third_party_carry/bin.tar.xz
#   bash scripts/carry-build.sh b0 "-DMY_SWITCH=1"   # a variant (CUDA flags) -> third_party_carry/b0.tar.xz
# Then, in the device call (carry third_party_carry):
#   QSDPA_PREBUILT=third_party_carry/bin.tar.xz QSDPA_STAGES="tests bench" bash scripts/gpu-check.sh
#   QSDPA_PREBUILT=third_party_carry/bin.tar.xz QSDPA_AB_PREBUILT=third_party_carry/b0.tar.xz QSDPA_STAGES=ab ...
# Session 25: a statically linked CLI built here ran on the GPU machine's image (Ubuntu 24.04, glibc
# 2.39); this packed form and gpu-check.sh's QSDPA_PREBUILT path have not run there yet.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-bin} flags=${2:-}
build=build-carry$([ "$name" = bin ] || echo "-$name")
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/results' ':!docs' || echo "-dirty")
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DQSDPA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DBUILD_SHARED_LIBS=ON "-DCMAKE_BUILD_RPATH=\$ORIGIN" "-DCMAKE_CUDA_FLAGS=$flags" \
  -DQSDPA_COMMIT_OVERRIDE="$commit${flags:+ ($flags)}" >/dev/null
cmake --build "$build" -j"$(nproc)" --target qsdpa_cli qsdpa_tests qsdpa_cli_tests
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
cp "$build/tools/qsdpa" "$build/tests/qsdpa_tests" "$build/tests/qsdpa_cli_tests" "$stage/$name/"
for lib in libqsdpa.so libfmt.so.9 libcudart.so.13; do  # as the CLI resolves them here
  path=$(ldd "$build/tools/qsdpa" | awk -v l="$lib" '$1 == l {print $3}')
  [ -n "$path" ] || { echo "carry-build: ldd does not resolve $lib" >&2; exit 1; }
  cp -L "$path" "$stage/$name/$lib"
done
echo "$commit${flags:+ ($flags)}" >"$stage/$name/COMMIT"
mkdir -p third_party_carry
XZ_OPT=-T0 tar -C "$stage" -cJf "third_party_carry/$name.tar.xz.tmp" "$name"
mv "third_party_carry/$name.tar.xz.tmp" "third_party_carry/$name.tar.xz"
du -sh "third_party_carry/$name.tar.xz" third_party_carry
