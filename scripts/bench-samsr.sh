#!/usr/bin/env bash
# Seconds per image of the SAMSR/SinSR network (one Gaussian step: bicubic
# x4, VQ encode, the released UNetModelSwin, quantise, decode) with random
# weights of the released size: rass-samsr (LibTorch) next to the reference
# code in PyTorch eager (scripts/bench_samsr_torch.py), in one run, on the CPU.
#
#   SAMSR_SRC=/path/to/SAMSR scripts/bench-samsr.sh [--size 128] [--dtypes "fp32 bf16"] [--threads N] [--runs R] [--build DIR] [--python PY]
#
# Needs a Python with torch, numpy and einops (default PYTHON=python3) and a
# checkout of Liu-Zihang/SAMSR in SAMSR_SRC (run, not copied). The model
# folder is ${XDG_CACHE_HOME:-~/.cache}/rass/bench/samsr-sinsr-seed0, written
# once by the Python side. The input is --size x --size random pixels.
# rass-samsr runs as a user runs it (batch, --jobs 1) on R+1 copies; per
# image is the spacing of its output files, (last - first) / R, so loading
# and the first image's warm-up are not in it. SAM's masks (SAMSR's noise)
# are not timed: they are rass-sam's automatic mask generator
# (scripts/bench-sam.sh times SAM's encoder).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
python=${PYTHON:-python3}
threads=$(nproc)
runs=2
size=128
dtypes=fp32
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=$2; shift 2 ;;
    --dtypes) dtypes=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench-samsr: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$runs" -ge 1 ] 2>/dev/null || { echo "bench-samsr: --runs must be a positive integer" >&2; exit 2; }
[ "$size" -ge 64 ] && [ $((size % 64)) = 0 ] 2>/dev/null || { echo "bench-samsr: --size must be a multiple of 64" >&2; exit 2; }
[ -n "${SAMSR_SRC:-}" ] || { echo "bench-samsr: set SAMSR_SRC to a checkout of Liu-Zihang/SAMSR" >&2; exit 2; }
[ -x "$build/rass-samsr" ] || { echo "bench-samsr: $build/rass-samsr not built" >&2; exit 2; }
cache=${XDG_CACHE_HOME:-$HOME/.cache}/rass/bench
mkdir -p "$cache"
folder=$cache/samsr-sinsr-seed0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" "$here/bench_samsr_torch.py" --folder "$folder" --write --size "$size" --runs "$runs" --threads "$threads"
mkdir "$tmp/in"
"$python" -c "import sys; n=int(sys.argv[1]); import random; random.seed(0); sys.stdout.buffer.write(b'P6\n%d %d\n255\n' % (n, n) + bytes(random.randrange(256) for _ in range(3 * n * n)))" "$size" >"$tmp/img.ppm"
for i in $(seq 0 "$runs"); do cp "$tmp/img.ppm" "$tmp/in/$(printf %04d "$i").ppm"; done
for dt in $dtypes; do
  "$build/rass-samsr" -m "$folder" "$tmp/in" -O "$tmp/out-$dt" --dtype "$dt" --threads "$threads" -q
  first=$(stat -c %.Y "$tmp/out-$dt/0000.png")
  last=$(stat -c %.Y "$tmp/out-$dt/$(printf %04d "$runs").png")
  echo "rass-samsr $dt, SinSR one step, ${size}x$size -> $((4 * size)): $(echo "($last - $first) / $runs" | bc -l | xargs printf '%.2f') s/img ($threads threads, $(nproc) cores, $(uname -m))"
done
