#!/usr/bin/env bash
# Training speed of both RASS stages on this CPU at a small size, next to the
# same step in PyTorch eager, in one run (the benchmark line of the training
# issue). Tiny random-weight models (tests/fixtures/nn/sd_tiny, ras_tiny),
# fp32, crop 64, batch 2:
#   scr: rass-bench-train-scr (full step through run_training with data and the
#        online degradation; fixed-sample step) vs scripts/bench_train_scr_torch.py
#        (diffusers 0.25 + peft 0.7: the fixed-sample step, MSE + SCL, no LPIPS);
#   ras: rass-bench-train-ras (full step with the 12544-point Mask2Former
#        criterion; fixed-loss step) vs scripts/bench_train_ras_torch.py (the
#        released Ka1Guan/RASS backbone + Mask2Former head: the fixed-loss step).
#
#   RASS_SRC=/path/to/RASS MASK2FORMER_SRC=/path/to/Mask2Former scripts/bench-train.sh [threads] [steps]
#
# Needs `cmake --build build --target rass-bench-train-scr rass-bench-train-ras
# rass-scenes rass-caption-map` and a Python with torch 2.1, diffusers 0.25,
# peft 0.7, transformers, fvcore (PYTHON, default /tmp/loravenv/bin/python).
# Without RASS_SRC/MASK2FORMER_SRC the ras reference side is skipped (said so).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build}
python=${PYTHON:-/tmp/loravenv/bin/python}
threads=${1:-$(nproc)}
steps=${2:-5}
crop=64
batch=2
for t in rass-bench-train-scr rass-bench-train-ras rass-scenes rass-caption-map; do
  [ -x "$build/$t" ] || { echo "bench-train: build $build/$t first" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%F); fp32, $threads threads"
# SCR data: scenes with caption-map packs (masks + token positions for SCL).
"$build/rass-scenes" -n 4 --size 96 -s 1 -o "$tmp/scenes" -q
"$build/rass-caption-map" --tags "$tmp/scenes/tags.tsv" --tokenizer "$here/tests/fixtures/nn/sd_tiny" \
  -O "$tmp/packs" -q "$tmp/scenes/labels" > /dev/null
"$build/rass-bench-train-scr" "$here/tests/fixtures/nn/sd_tiny" "$tmp/scenes/images" "$tmp/packs" $crop $batch "$steps" "$threads"
"$python" "$here/scripts/bench_train_scr_torch.py" --model "$here/tests/fixtures/nn/sd_tiny" --crop $crop --batch $batch \
  --steps $((steps + 1)) --threads "$threads" --no-lpips 2>&1 | grep -v -e meshgrid -e '_VF'
"$build/rass-bench-train-ras" "$here/tests/fixtures/nn/ras_tiny" $crop $batch "$steps" "$threads"
if [ -n "${RASS_SRC:-}" ] && [ -n "${MASK2FORMER_SRC:-}" ]; then
  "$python" "$here/scripts/bench_train_ras_torch.py" "$here/tests/fixtures/nn/ras_tiny" $crop $batch "$steps" "$threads" 2>&1 |
    grep -v -e meshgrid -e '_VF'
else
  echo "torch  ras step: skipped (set RASS_SRC and MASK2FORMER_SRC to checkouts of Ka1Guan/RASS and Mask2Former)"
fi
