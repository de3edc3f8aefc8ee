#!/usr/bin/env bash
# MUSIQ images/s at 512x512 on this CPU: rass (LibTorch) next to pyiqa's
# module (PyTorch) on the same released-size random weights and images, in
# one run, and the largest score difference between the two (a full-size
# parity check the committed tiny fixtures cannot make).
#   PYIQA_SRC=/tmp/pyiqa-dl/x PYTHON=/tmp/loravenv/bin/python scripts/bench-iqa-musiq.sh [N] [threads]
# Needs build/rass-bench-iqa-musiq (cmake --build build --target rass-bench-iqa-musiq)
# and a Python with torch, numpy and safetensors; PYIQA_SRC as in
# tests/nn/make_iqa_musiq_fixture.py.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-8}
THREADS=${2:-$(nproc)}
PY=${PYTHON:-python3}
BIN=${BIN:-build/rass-bench-iqa-musiq}
[ -x "$BIN" ] || { echo "build $BIN first" >&2; exit 2; }
[ -n "${PYIQA_SRC:-}" ] || { echo "set PYIQA_SRC (see tests/nn/make_iqa_musiq_fixture.py)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
"$PY" scripts/bench_iqa_musiq_ref.py "$tmp" "$N" "$THREADS"
"$BIN" "$tmp/musiq_full.safetensors" "$tmp/images.safetensors" "$THREADS" | tee "$tmp/ours.txt" | grep '^rass:'
paste <(grep '^score_' "$tmp/ref_scores.txt") <(grep '^score_' "$tmp/ours.txt") |
  awk '{d = $2 - $4; if (d < 0) d = -d; if (d > m) m = d} END {printf "max |rass - pyiqa| score difference: %.3g\n", m}'
