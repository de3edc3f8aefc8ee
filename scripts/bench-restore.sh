#!/usr/bin/env bash
# Seconds per 512x512 one-step restore (OSEDiff form) with SD 2.1-base-sized
# random weights: rass-restore (LibTorch) next to the same computation in
# PyTorch eager (scripts/bench_restore_torch.py), in one run, fp32 and bf16.
#
#   scripts/bench-restore.sh [--threads N] [--runs R] [--dtypes "fp32 bf16"]
#                            [--build DIR] [--python PY] [--torch-only|--rass-only] [--model DIR]
#
# The model folder is made once by `rass-model init --preset sd21-base --seed 0`
# and cached under ${XDG_CACHE_HOME:-~/.cache}/rass/bench/ (5.2 GB in fp32);
# --model takes another folder (e.g. a `rass-model init` tiny one, to try
# the script in seconds).
# rass-restore runs as a user runs it, in batch mode (--method osediff
# --vae-mode --color-fix none --jobs 1, so it does the same work as the Python
# side, which takes the latent mean and fixes no colours); model
# loading is taken out of its time by timing a batch of R+1 copies of the
# image and a batch of 1: per image = (T(R+1) - T(1)) / R. The Python side
# loads once and reports the median of R runs after one warm-up.
# Prints seconds per image for both and the ratio rass / torch.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
python=${PYTHON:-python3}
threads=$(nproc)
runs=2
dtypes="fp32 bf16"
torch_only=0
rass_only=0
model=""
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --dtypes) dtypes=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --torch-only) torch_only=1; shift ;;
    --rass-only) rass_only=1; shift ;;
    --model) model=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench-restore: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$runs" -ge 1 ] 2>/dev/null || { echo "bench-restore: --runs must be a positive integer" >&2; exit 2; }

if [ -z "$model" ]; then
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/rass/bench
  model=$cache/sd21-base-seed0
  mkdir -p "$cache"
fi
if [ ! -f "$model/model_index.json" ]; then
  [ -x "$build/rass-model" ] || { echo "bench-restore: $build/rass-model not built" >&2; exit 1; }
  echo "bench-restore: creating $model (rass-model init --preset sd21-base)" >&2
  "$build/rass-model" init "$model" --preset sd21-base --seed 0 --quiet
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; threads $threads"

declare -A torch_s rass_s
for dt in $dtypes; do
  [ "$rass_only" = 1 ] && break
  line=$("$python" "$here/bench_restore_torch.py" --model "$model" --dtype "$dt" --threads "$threads" --runs "$runs" --json)
  torch_s[$dt]=$("$python" -c 'import json,sys; print("%.3f" % json.loads(sys.argv[1])["seconds_per_image"])' "$line")
  echo "torch $dt: ${torch_s[$dt]} s/image; parts $("$python" -c 'import json,sys; print(json.loads(sys.argv[1])["parts"])' "$line")" >&2
done

if [ "$torch_only" = 0 ]; then
  restore=$build/rass-restore
  [ -x "$restore" ] || { echo "bench-restore: $restore not built (branch restore); use --torch-only" >&2; exit 1; }
  # A fixed 512x512 image (noise over a gradient), written by the Python side's libraries.
  "$python" - "$work/in" "$runs" <<'EOF'
import os, sys
import numpy as np
from PIL import Image
d, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
y, x = np.mgrid[0:512, 0:512]
img = np.clip(np.stack([x / 2, y / 2, (x + y) / 4], -1) + rng.normal(0, 20, (512, 512, 3)), 0, 255).astype(np.uint8)
os.makedirs(d, exist_ok=True)
for i in range(n + 1):
    Image.fromarray(img).save(os.path.join(d, f"img{i}.png"))
EOF
  for dt in $dtypes; do
    # Items run one after another (--jobs 1): the time between the first and
    # the last output file is R images' work, with no model loading in it.
    out=$work/out-$dt
    s=$(date +%s.%N)
    "$restore" --model "$model" --method osediff --vae-mode --color-fix none --dtype "$dt" --threads "$threads" \
      --jobs 1 --quiet -O "$out" "$work/in"/*.png
    e=$(date +%s.%N)
    first=$(stat -c '%.9Y' "$out"/*.png | sort -n | head -1)
    last=$(stat -c '%.9Y' "$out"/*.png | sort -n | tail -1)
    [ "$(ls "$out" | wc -l)" -eq $((runs + 1)) ] || { echo "bench-restore: rass-restore wrote $(ls "$out" | wc -l) images, not $((runs + 1))" >&2; exit 1; }
    rass_s[$dt]=$(echo "($last - $first) / $runs" | bc -l | xargs printf '%.3f')
    tn=$(echo "$e - $s" | bc -l)
    t1=$(echo "$first - $s" | bc -l)
    echo "rass $dt: ${rass_s[$dt]} s/image (first image with loading: $(printf '%.1f' "$t1") s; $((runs + 1)) images: $(printf '%.1f' "$tn") s)" >&2
  done
fi

echo
printf '%-6s %14s %14s %8s\n' dtype "rass s/image" "torch s/image" ratio
for dt in $dtypes; do
  if [ -n "${rass_s[$dt]:-}" ] && [ -n "${torch_s[$dt]:-}" ]; then
    ratio=$(echo "${rass_s[$dt]} / ${torch_s[$dt]}" | bc -l | xargs printf '%.2f')
    printf '%-6s %14s %14s %8s\n' "$dt" "${rass_s[$dt]}" "${torch_s[$dt]}" "$ratio"
  else
    printf '%-6s %14s %14s %8s\n' "$dt" "${rass_s[$dt]:--}" "${torch_s[$dt]:--}" "-"
  fi
done
