#!/usr/bin/env bash
# Builds qsdpa (Release, CPU; CUDA too where a GPU is present) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_packages "${QSDPA_BUILD_PACKAGES[@]}" "${QSDPA_TEST_PACKAGES[@]}"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build-test -j"$(nproc)"
ctest --test-dir build-test -j"$(nproc)" --output-on-failure --timeout 900
