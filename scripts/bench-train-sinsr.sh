#!/usr/bin/env bash
# Seconds per training sample of rass-train sinsr (or --stage resshift) at
# the released size (UNetModelSwin of SinSR.yaml, VQ-f4, random weights; HQ
# crops of 256, LQ 64). sinsr: the ResShift teacher's 15 steps, the
# student's four passes (its one step, the inverse map, the HQ latent's
# inverse and return) and its backward; resshift: one pass at a random step
# and its backward. On this machine's CPU or --device cuda.
#
#   scripts/bench-train-sinsr.sh [--stage sinsr|resshift] [--device cpu|cuda] [--batch B] [--steps N] [--threads T] [--build DIR]
#
# The model folder is the one scripts/bench-samsr.sh writes
# (${XDG_CACHE_HOME:-~/.cache}/rass/bench/samsr-sinsr-seed0; run it once
# first). The time per step is log.jsonl's, the first step (warm-up) left out.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
device=cpu
stage=sinsr
batch=1
steps=3
threads=$(nproc)
while [ $# -gt 0 ]; do
  case $1 in
    --stage) stage=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench-train-sinsr: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$steps" -ge 2 ] 2>/dev/null || { echo "bench-train-sinsr: --steps must be at least 2" >&2; exit 2; }
folder=${XDG_CACHE_HOME:-$HOME/.cache}/rass/bench/samsr-sinsr-seed0
[ -s "$folder/unet.safetensors" ] || { echo "bench-train-sinsr: $folder missing: run scripts/bench-samsr.sh once" >&2; exit 2; }
[ -x "$build/rass-train" ] || { echo "bench-train-sinsr: $build/rass-train not built" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/hq"
for i in 0 1; do
  python3 -c "import sys, random; random.seed(int(sys.argv[1])); sys.stdout.buffer.write(b'P6\n256 256\n255\n' + bytes(random.randrange(256) for _ in range(3 * 256 * 256)))" "$i" >"$tmp/hq/$i.ppm"
done
case $stage in
  sinsr) start=(--set sinsr.teacher="$folder" --set sinsr.images="$tmp/hq") ;;
  resshift) start=(--set resshift.model="$folder" --set resshift.images="$tmp/hq") ;;
  *) echo "bench-train-sinsr: --stage must be sinsr or resshift" >&2; exit 2 ;;
esac
"$build/rass-train" "$stage" "${start[@]}" --set loop.warmup_steps=0 \
  -o "$tmp/run" --steps "$steps" --batch "$batch" --device "$device" --threads "$threads" -q
python3 - "$tmp/run/log.jsonl" "$batch" "$device" "$threads" "$stage" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
t = [b["time"] - a["time"] for a, b in zip(rows, rows[1:])]
per = sum(t) / len(t)
b = int(sys.argv[2])
print(f"rass-train {sys.argv[5]}, released size, batch {b}, {sys.argv[3]} ({sys.argv[4]} threads): {per:.1f} s/step, "
      f"{per / b:.1f} s/sample, peak {max(r['peak_memory_mb'] for r in rows):.0f} MB")
PY
