#!/usr/bin/env bash
# Builds qsdpa for this machine's CPU and prints how fast and how accurate attention over each
# quantized KV format is here (about a minute on 2 cores). Extra arguments go to `qsdpa bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_packages "${QSDPA_BUILD_PACKAGES[@]}"
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=Release -DQSDPA_CUDA=OFF -DQSDPA_BUILD_TESTS=OFF >/dev/null
cmake --build build-demo -j"$(nproc)" --target qsdpa_cli
./build-demo/tools/qsdpa info | head -3
./build-demo/tools/qsdpa bench --device cpu --formats f16,affine8,affine4,mxfp8,mxfp4,nvfp4,turbo4,turbo3 \
  --context 32768 --min-seconds 0.15 "$@"
./build-demo/tools/qsdpa eval --formats f16,affine8,affine4,affine4-g32,affine3,affine2,mxfp8,mxfp4,nvfp4,fp8,turbo4,turbo3,turbo2,mxfp8:turbo3
