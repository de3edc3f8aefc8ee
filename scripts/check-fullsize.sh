#!/usr/bin/env bash
# Full-size parity check (not in CI): SD 2.1-base configs with random weights,
# reference outputs from diffusers/transformers sources, compared with
# `rass-model run`. Needs python3-torch and the reference sources:
#   DIFFUSERS_SRC=/path/diffusers-0.25.1/src TRANSFORMERS_SRC=/path/transformers/src scripts/check-fullsize.sh [build] [workdir]
set -euo pipefail
build=${1:-build}
work=${2:-/tmp/rass-fullsize}
root=$(cd "$(dirname "$0")/.." && pwd)
M=$build/rass-model
[ -d "$work/unet" ] || (cd "$root/tests/nn" && /usr/bin/python3 make_fullsize_check.py "$work")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
t() { local s=$(date +%s.%N); "$@"; awk -v s="$s" -v e="$(date +%s.%N)" 'BEGIN { printf "  %.1f s\n", e - s }'; }
echo "rass-model UNet 64x64 (load + forward):"; t "$M" -q run "$work" -c unet --sample "$work/z.npy" --context "$work/ctx.npy" --timestep 999 -o "$work/c_unet.npy"
echo "rass-model VAE encode 256x256:"; t "$M" -q run "$work" -c vae-encode --sample "$work/x.npy" -o "$work/c_mean.npy"
echo "rass-model VAE decode 32x32 latent:"; t "$M" -q run "$work" -c vae-decode --sample "$work/zl.npy" -o "$work/c_dec.npy"
echo "rass-model text encoder:"; t "$M" -q run "$work" -c text-encoder --input-ids "$work/ids.npy" -o "$work/c_text.npy"
/usr/bin/python3 - "$work" <<'PY'
import sys
import numpy as np
w = sys.argv[1]
for ours, ref in (("c_unet", "unet_out"), ("c_mean", "vae_mean"), ("c_dec", "vae_dec"), ("c_text", "text_out")):
    a, b = np.load(f"{w}/{ours}.npy"), np.load(f"{w}/{ref}.npy")
    print(f"{ref:10s} shape {a.shape} max abs error {np.abs(a - b).max():.3g} (max |ref| {np.abs(b).max():.3g})")
PY
