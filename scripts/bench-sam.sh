#!/usr/bin/env bash
# Seconds per image of SAM (image encoder + one box prompt) with random
# weights of a released size: rass-sam (LibTorch) next to the reference's own
# code in PyTorch eager (scripts/bench_sam_torch.py), in one run, on the CPU.
# --family sam (segment-anything's SamPredictor), robust (RobustSAM's
# Sam.predict as its eval.py calls it; ROBUSTSAM_SRC names its checkout) or
# hq (segment-anything-hq's SamPredictor) or sam2 (sam2's SAM2ImagePredictor,
# --variant hiera_t|hiera_s|hiera_b+|hiera_l, default hiera_b+; a Python with
# PyTorch 2 and the sam2 package, e.g. PYTHONPATH=<sam2 checkout>).
#
#   scripts/bench-sam.sh [--family sam] [--variant vit_b] [--dtypes "fp32 bf16"] [--torch-bf16] [--threads N] [--runs R] [--build DIR] [--python PY]
#
# Needs a Python with torch, Pillow and segment-anything (hq:
# segment-anything-hq; default PYTHON=python3). The model folder is
# ${XDG_CACHE_HOME:-~/.cache}/rass/bench/<family>-<variant>-seed0, written once by
# the Python side (torch.manual_seed(0), SAM's own initialisation) through
# scripts/convert_sam.py. The image is examples/images/astronaut.png (512x512),
# resized by SamPredictor to 1024 as by rass-sam. rass-sam runs as a
# user runs it (batch, --jobs 1) on R+1 copies; per image is the spacing of
# its output files, (last - first) / R, so loading and the first image's
# warm-up are not in it. --dtypes are rass-sam's; the PyTorch side runs fp32,
# and with --torch-bf16 also under CPU autocast to bf16 (PyTorch 2 only:
# 1.13's fails inside SAM's LayerNorm).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
python=${PYTHON:-python3}
threads=$(nproc)
runs=2
variant=
family=sam
dtypes=fp32
torch_bf16=
while [ $# -gt 0 ]; do
  case $1 in
    --family) family=$2; shift 2 ;;
    --variant) variant=$2; shift 2 ;;
    --dtypes) dtypes=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --torch-bf16) torch_bf16=--bf16-autocast; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "bench-sam: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$runs" -ge 1 ] 2>/dev/null || { echo "bench-sam: --runs must be a positive integer" >&2; exit 2; }
case $family in sam|robust|hq|sam2) ;; *) echo "bench-sam: --family sam, robust, hq or sam2" >&2; exit 2 ;; esac
if [ "$family" = sam2 ]; then
  variant=${variant:-hiera_b+}
  case $variant in hiera_t|hiera_s|hiera_b+|hiera_l) ;; *) echo "bench-sam: SAM 2's --variant: hiera_t, hiera_s, hiera_b+ or hiera_l" >&2; exit 2 ;; esac
else
  variant=${variant:-vit_b}
  case $variant in vit_b|vit_l|vit_h) ;; *) echo "bench-sam: --variant vit_b, vit_l or vit_h" >&2; exit 2 ;; esac
fi
[ -x "$build/rass-sam" ] || { echo "bench-sam: $build/rass-sam not built" >&2; exit 2; }
cache=${XDG_CACHE_HOME:-$HOME/.cache}/rass/bench
mkdir -p "$cache"
# The plain SAM folder keeps its earlier name (sam-<variant>-seed0).
folder=$cache/$family-$variant-seed0
img=$here/../examples/images/astronaut.png
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" "$here/bench_sam_torch.py" --family "$family" --variant "$variant" --folder "$folder" --write --image "$img" --runs "$runs" \
  --threads "$threads" $torch_bf16
mkdir "$tmp/in"
for i in $(seq 0 "$runs"); do cp "$img" "$tmp/in/$(printf %04d "$i").png"; done
for dt in $dtypes; do
  "$build/rass-sam" -m "$folder" "$tmp/in" --box 40,30,400,300 -O "$tmp/out-$dt" --dtype "$dt" --threads "$threads" -q
  first=$(stat -c %.Y "$tmp/out-$dt/0000.png")
  last=$(stat -c %.Y "$tmp/out-$dt/$(printf %04d "$runs").png")
  echo "rass-sam $family $variant $dt: $(echo "($last - $first) / $runs" | bc -l | xargs printf '%.2f') s/img ($threads threads, $(nproc) cores, $(uname -m))"
done
