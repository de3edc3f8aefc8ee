#!/usr/bin/env bash
# Seconds per training step of rass-train ras (RASS stage 2) on the tiny RAS
# folder, fp32 on the CPU: rass (LibTorch, build/rass-bench-train-ras: the full
# step with data, online degradation and the Mask2Former criterion, and the
# fixed-loss step) next to the released code in PyTorch eager doing the
# fixed-loss step (scripts/bench_train_ras_torch.py), in one run.
#
#   RASS_SRC=/path/to/RASS MASK2FORMER_SRC=/path/to/Mask2Former scripts/bench-train-ras.sh [crop] [batch] [steps] [threads]
#
# Needs a Python with torch 2.1, diffusers 0.25, peft 0.7, transformers and
# fvcore (PYTHON, default /tmp/loravenv/bin/python) and
# `cmake --build build --target rass-bench-train-ras`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
python=${PYTHON:-/tmp/loravenv/bin/python}
model=${MODEL:-$here/../tests/fixtures/nn/ras_tiny}
crop=${1:-128}
batch=${2:-2}
steps=${3:-5}
threads=${4:-$(nproc)}
[ -n "${RASS_SRC:-}" ] && [ -n "${MASK2FORMER_SRC:-}" ] || { echo "bench-train-ras: set RASS_SRC and MASK2FORMER_SRC" >&2; exit 2; }
[ -x "$build/rass-bench-train-ras" ] || { echo "bench-train-ras: build $build/rass-bench-train-ras first" >&2; exit 2; }
echo "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; model: $model, fp32"
"$build/rass-bench-train-ras" "$model" "$crop" "$batch" "$steps" "$threads"
"$python" "$here/bench_train_ras_torch.py" "$model" "$crop" "$batch" "$steps" "$threads" 2>&1 | grep -v -e meshgrid -e '_VF'
