#!/usr/bin/env bash
# Peak memory of each rass-eval-iqa metric on top of a decoded 8-bit RGB pair
# (not a test): rass-bench-eval-iqa --memory, one metric per process, on a
# synthetic WIDTHxHEIGHT pair (default 6000x6000). Prints bytes per pixel.
# NIQE needs the pristine parameters: RASS_NIQE_PARAMS or ../shared/data.
set -euo pipefail
build=${1:-build}
w=${2:-6000}
h=${3:-${w}}
root=$(cd "$(dirname "$0")/.." && pwd)
params=${RASS_NIQE_PARAMS:-$root/../shared/data/niqe_pris_params.npz}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
cd "$root"
for m in psnr psnry ssim ssimc psnr@basicsr ssim@basicsr; do
  "$build/rass-bench-eval-iqa" --memory "$m" "$w" "$h"
done
"$build/rass-bench-eval-iqa" --memory psnr@basicsr "$w" "$h" --y-channel
"$build/rass-bench-eval-iqa" --memory ssim@basicsr "$w" "$h" --y-channel
if [ -f "$params" ]; then
  "$build/rass-bench-eval-iqa" --memory niqe "$w" "$h" "$params"
else
  echo "niqe: skipped (no parameters at $params; set RASS_NIQE_PARAMS)"
fi
