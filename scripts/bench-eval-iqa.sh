#!/usr/bin/env bash
# Benchmark of the rass-eval-iqa metrics (not a test), 512x512, one thread.
# NIQE needs the pristine parameters: RASS_NIQE_PARAMS or ../shared/data.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
params=${RASS_NIQE_PARAMS:-$root/../shared/data/niqe_pris_params.npz}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
cd "$root" && "$build/rass-bench-eval-iqa" "$params" "${BENCH_N:-50}"
