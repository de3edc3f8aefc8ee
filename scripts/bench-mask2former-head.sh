#!/usr/bin/env bash
# Seconds per forward of the Mask2Former head in RASS's released configuration
# (150 classes, 100 queries, 9 decoder layers, 6 deformable encoder layers) on
# the features of a 512x512 crop (res2 128x128 ... res5 16x16, 512 channels,
# batch 1), fp32 on the CPU: rass (LibTorch, build/rass-bench-m2f) next to
# Mask2Former's own modules in PyTorch eager, same random weights and inputs,
# in one run; also prints how far apart their outputs are.
#
#   MASK2FORMER_SRC=/path/to/Mask2Former scripts/bench-mask2former-head.sh [threads] [runs]
#
# Needs a Python with torch and fvcore (PYTHON, default /tmp/loravenv/bin/python)
# and `cmake --build build --target rass-bench-m2f`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
python=${PYTHON:-/tmp/loravenv/bin/python}
threads=${1:-$(nproc)}
runs=${2:-3}
[ -n "${MASK2FORMER_SRC:-}" ] || { echo "bench-mask2former-head: set MASK2FORMER_SRC" >&2; exit 2; }
[ -x "$build/rass-bench-m2f" ] || { echo "bench-mask2former-head: build $build/rass-bench-m2f first" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; head: released config, 512x512 crop features, fp32"
"$python" "$here/bench_mask2former_torch.py" "$tmp" "$threads" "$runs" 2>&1 | grep -v -e meshgrid -e '_VF'
"$build/rass-bench-m2f" "$tmp/m2f_weights.safetensors" "$tmp/m2f_io.safetensors" "$threads" "$runs"
