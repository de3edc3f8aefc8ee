#!/usr/bin/env bash
# Seconds per 512x512 RAS segmentation (one window, as released at 512) with
# SD 2.1-base-sized random weights and the released Mask2Former head:
# rass-segment (LibTorch) next to the same computation in PyTorch eager
# (scripts/bench_segment_torch.py: diffusers + Mask2Former's own head modules),
# in one run.
#
#   scripts/bench-segment.sh [--threads N] [--runs R] [--dtypes "fp32 bf16"]
#                            [--build DIR] [--python PY] [--torch-only|--rass-only]
#
# Needs MASK2FORMER_SRC (a checkout of facebookresearch/Mask2Former) and a
# Python with torch, diffusers, transformers, safetensors and fvcore
# (default PYTHON=python3). The model folder is
# ${XDG_CACHE_HOME:-~/.cache}/rass/bench/sd21-base-seg-seed0: the components of
# sd21-base-seed0 (made by `rass-model init --preset sd21-base --seed 0` as
# bench-restore.sh does, reused when present) hard-linked, plus random
# projection and head weights written once by the Python side; there is no
# Seg LoRA (a merged LoRA costs nothing at run time). rass-segment runs as a
# user runs it (batch, --vae-mode, --jobs 1) on R+1 copies of the image;
# per image is the spacing of its output files, (last - first) / R, so
# neither loading nor the first image's warm-up is in it (a difference of two
# runs' times with loading was not: the page cache and a busy machine moved
# loading by more than an image's work, once giving 2.4 s for 5.0).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
python=${PYTHON:-python3}
threads=$(nproc)
runs=2
dtypes="fp32"
torch_only=0
rass_only=0
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --dtypes) dtypes=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --torch-only) torch_only=1; shift ;;
    --rass-only) rass_only=1; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "bench-segment: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$runs" -ge 1 ] 2>/dev/null || { echo "bench-segment: --runs must be a positive integer" >&2; exit 2; }
: "${MASK2FORMER_SRC:?bench-segment: set MASK2FORMER_SRC to a checkout of facebookresearch/Mask2Former}"
export MASK2FORMER_SRC

cache=${XDG_CACHE_HOME:-$HOME/.cache}/rass/bench
sd=$cache/sd21-base-seed0
model=$cache/sd21-base-seg-seed0
mkdir -p "$cache"
if [ ! -f "$sd/model_index.json" ]; then
  [ -x "$build/rass-model" ] || { echo "bench-segment: $build/rass-model not built" >&2; exit 1; }
  echo "bench-segment: creating $sd (rass-model init --preset sd21-base)" >&2
  "$build/rass-model" init "$sd" --preset sd21-base --seed 0 --quiet
fi
if [ ! -f "$model/seg_head.safetensors" ]; then
  rm -rf "$model.tmp" && mkdir -p "$model.tmp"
  for c in unet vae text_encoder tokenizer scheduler; do cp -al "$sd/$c" "$model.tmp/$c"; done
  "$python" "$here/bench_segment_torch.py" --model "$model.tmp" --make-head
  mv "$model.tmp" "$model"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; threads $threads"
for dt in $dtypes; do
  if [ "$rass_only" = 0 ]; then
    line=$("$python" "$here/bench_segment_torch.py" --model "$model" --dtype "$dt" --threads "$threads" --runs "$runs" --json)
    t_torch=$("$python" -c 'import json,sys; print("%.3f" % json.loads(sys.argv[1])["seconds_per_image"])' "$line")
    echo "torch $dt: $t_torch s/image; parts $("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["parts"])' "$line")"
  fi
  if [ "$torch_only" = 0 ]; then
    seg=$build/rass-segment
    [ -x "$seg" ] || { echo "bench-segment: $seg not built; use --torch-only" >&2; exit 1; }
    "$python" - "$work/in" "$runs" <<'PY'
import os, sys
import numpy as np
from PIL import Image
d, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
img = Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))
os.makedirs(d, exist_ok=True)
for i in range(n + 1):
    img.save(os.path.join(d, f"{i}.png"))
PY
    s=$(date +%s.%N)
    "$seg" -m "$model" --vae-mode --dtype "$dt" --threads "$threads" --jobs 1 -q "$work/in" -O "$work/out-$dt"
    e=$(date +%s.%N)
    [ "$(ls "$work/out-$dt"/*.png | wc -l)" -eq $((runs + 1)) ] ||
      { echo "bench-segment: rass-segment wrote $(ls "$work/out-$dt"/*.png | wc -l) label maps, not $((runs + 1))" >&2; exit 1; }
    first=$(stat -c '%.9Y' "$work/out-$dt"/*.png | sort -n | head -1)
    last=$(stat -c '%.9Y' "$work/out-$dt"/*.png | sort -n | tail -1)
    t_rass=$(echo "scale=3; ($last - $first) / $runs" | bc)
    echo "rass-segment $dt: $t_rass s/image (first image with loading $(echo "scale=1; ($first - $s) / 1" | bc) s; $((runs + 1)) images $(echo "scale=1; ($e - $s) / 1" | bc) s)"
    [ "$rass_only" = 0 ] && echo "ratio rass/torch $dt: $(echo "scale=2; $t_rass / $t_torch" | bc)"
  fi
done
