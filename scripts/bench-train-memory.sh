#!/usr/bin/env bash
# Peak memory of one training step at SD 2.1-base size, with and without
# loop.gradient_checkpointing (not a test): an SD 2.1-base folder of random
# fp32 weights (rass-model init, about 5 GB on disk; 1.3 G parameters loaded,
# the UNet's 866 M frozen under SCR's LoRA), rass-scenes images with
# rass-caption-map packs, one `rass-train scr` step at CROP (default 512:
# a 64x64 latent) with SCL and LPIPS as the stage's defaults (LPIPS only with
# weights: none here, so MSE + SCL), and one `rass-train vae` step (the
# whole VAE trained). Peak resident memory and wall time of each run; the
# loss of the step is the same with checkpointing (printed). Needs
# /usr/bin/time, about 21 GiB of memory for CROP 512 and 6 GB of free disk in
# SCRATCH (default: a new folder under /tmp, removed at the end).
#
#   scripts/bench-train-memory.sh [build] [crop] [threads]
set -euo pipefail
build=${1:-build}
crop=${2:-512}
threads=${3:-$(nproc)}
root=$(cd "$(dirname "$0")/.." && pwd)
b=$root/$build
for t in rass-train rass-model rass-scenes rass-caption-map; do
  [ -x "$b/$t" ] || { echo "no $b/$t: build first (make build)" >&2; exit 1; }
done
scratch=${SCRATCH:-$(mktemp -d /tmp/rass-bench-train-memory.XXXXXX)}
trap 'rm -rf "$scratch"' EXIT
peak() {  # label command...: peak resident memory, wall time, the logged loss
  local label=$1 out=$2
  shift 2
  /usr/bin/time -f "%M %e" -o "$scratch/.t" "$@"
  read -r kb s <"$scratch/.t"
  printf '%-44s peak RSS %6.2f GiB  %7.1f s  %s\n' "$label" "$(awk -v k="$kb" 'BEGIN { print k / 1048576 }')" "$s" \
    "$(grep -o '"loss":[^,]*' "$out/log.jsonl" | tail -1)"
}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores," \
  "$(($(grep MemTotal /proc/meminfo | tr -dc 0-9) / 1048576)) GiB; $(date -u +%F); fp32, $threads threads, crop $crop, batch 1"
"$b/rass-model" init --preset sd21-base --seed 1 -q "$scratch/sd"
"$b/rass-scenes" -n 2 --size "$crop" -s 3 -q -o "$scratch/scenes"
"$b/rass-caption-map" --tags "$scratch/scenes/tags.tsv" --tokenizer "$scratch/sd" -O "$scratch/packs" -q \
  "$scratch/scenes/labels" >/dev/null
for gc in false true; do
  peak "scr, gradient_checkpointing $gc" "$scratch/scr-$gc" "$b/rass-train" scr -o "$scratch/scr-$gc" --steps 1 \
    --batch 1 --threads "$threads" -q --set scr.sd="$scratch/sd" --set scr.hq_dir="$scratch/scenes/images" \
    --set scr.pack_dir="$scratch/packs" --set scr.crop_size="$crop" --set loop.gradient_checkpointing=$gc
done
for gc in false true; do
  peak "vae, gradient_checkpointing $gc" "$scratch/vae-$gc" "$b/rass-train" vae -o "$scratch/vae-$gc" --steps 1 \
    --batch 1 --threads "$threads" -q --set vae.sd="$scratch/sd" --set vae.images="$scratch/scenes/images" \
    --set vae.crop_size="$crop" --set loop.gradient_checkpointing=$gc
done
