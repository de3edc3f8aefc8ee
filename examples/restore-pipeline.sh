#!/usr/bin/env bash
# Degrade a clean image, restore it one-step (OSEDiff/SCR form), and measure
# what restoration gave back: rass-degrade | rass-restore | rass-eval-iqa.
#
#   examples/restore-pipeline.sh [HQ_IMAGE] [MODEL_DIR] [LORA]
#
# Defaults: examples/images/coffee.png and the tiny random-weight SD folder
# the tests use (tests/fixtures/nn/sd_tiny with its OSEDiff-style LoRA): it
# shows the plumbing, not a restoration (random weights restore nothing).
# With SD 2.1-base and a converted OSEDiff/SCR LoRA the same lines restore.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RASS_BIN:-$here/build}
hq=${1:-$here/examples/images/coffee.png}
model=${2:-$here/tests/fixtures/nn/sd_tiny}
lora=${3:-$here/tests/fixtures/nn/sd_tiny_lora.safetensors}
out=$(mktemp -d)

# LQ at the HQ size (RASS: scale 1), restored at the same size (pad policy
# keeps the size exactly, so PSNR compares pixel for pixel).
"$bin/rass-degrade" -p rass -s 1 "$hq" -o "$out/lq.png"
"$bin/rass-degrade" -p rass -s 1 "$hq" -o - |
  "$bin/rass-restore" -m "$model" --lora "$lora" --size-policy pad --vae-mode -q - -o - >"$out/restored.png"
echo "LQ vs HQ:"
"$bin/rass-eval-iqa" -m psnr,ssim "$out/lq.png" "$hq"
echo "restored vs HQ:"
"$bin/rass-eval-iqa" -m psnr,ssim "$out/restored.png" "$hq"
echo "outputs in $out"
