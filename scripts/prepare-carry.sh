#!/usr/bin/env bash
# Copies what the GPU machine lacks (it has no network and no -dev packages) into the git-ignored
# folder third_party_carry/: googletest sources and the CLI11, fmt and nlohmann-json headers.
# Pass `third_party_carry` in the device tool's `carry` list; scripts/gpu-check.sh builds with it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
ensure_packages googletest libcli11-dev libfmt-dev nlohmann-json3-dev
rm -rf third_party_carry
mkdir -p third_party_carry/include
cp -r /usr/src/googletest third_party_carry/googletest
cp -r /usr/include/CLI /usr/include/fmt /usr/include/nlohmann third_party_carry/include/
cp -r ../shared/mlx-golden third_party_carry/mlx-golden  # ../shared does not travel to the GPU machine
du -sh third_party_carry
