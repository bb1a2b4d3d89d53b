#!/usr/bin/env bash
# Builds the release preset and runs the crypto micro-benchmarks. Extra arguments go to the
# benchmark binary, e.g. bash bench/run.sh --benchmark_filter=Seal
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release
cmake --build --preset release -j2 --target kith_crypto_bench
exec build-release/bench/kith_crypto_bench --benchmark_repetitions=5 \
  --benchmark_report_aggregates_only=true "$@"
