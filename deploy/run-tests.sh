#!/usr/bin/env bash
# README command (2): install what is missing, build with the default preset, run every test.
# Set KITH_PRESET=asan to run the same suite under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${KITH_PRESET:-default}

bash deploy/install-deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)"
