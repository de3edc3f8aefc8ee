#!/usr/bin/env bash
# Both RASS training stages end to end, from nothing, with this project's own
# tools: synthetic scenes with exact labels -> caption-map packs (masks and
# token positions for SCL) -> rass-train scr (SCR LoRA with the semantic-
# constrained loss, LQ made online) -> rass-merge-lora init-seg (SCR merged,
# a new Seg LoRA) -> rass-train ras (Seg LoRA + conv_in + projection + head,
# Mask2Former criterion) -> rass-restore and rass-segment with the trained
# weights -> rass-eval-miou -> rass-train plot.
#
#   examples/train-rass.sh [OUT_DIR] [SD_FOLDER]
#
# Default SD folder: a tiny random-weight one made by `rass-model init`: the
# run shows the plumbing and that the losses fall in a few steps; nothing here
# learns to segment in 40 steps. With a real SD 2.1-base folder (and LPIPS
# weights: --set scr.lpips_weights=...) raise the steps, the crop (512) and
# the batch. Steps are few so the run takes about two minutes on two cores.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RASS_BIN:-$here/build}
out=${1:-$(mktemp -d)}
sd=${2:-}
threads=${THREADS:-2}
mkdir -p "$out"

# 1. 24 scenes, 128x128: images, ADE20K label maps, tags (key<TAB>tags).
"$bin/rass-scenes" -n 24 --size 128 -s 1 -o "$out/scenes" -q
if [ -z "$sd" ]; then
  sd=$out/sd
  [ -d "$sd" ] || "$bin/rass-model" init --preset tiny --seed 1 "$sd"
fi

# 2. SCL's data: per term, the mask and its token positions in the 77-token prompt.
"$bin/rass-caption-map" --tags "$out/scenes/tags.tsv" --tokenizer "$sd" -O "$out/packs" -q --resume \
  "$out/scenes/labels" > "$out/prompts.tsv"

# 3. Stage 1: SCR LoRA (MSE; + LPIPS with weights; + SCL), degradations made online.
"$bin/rass-train" scr -o "$out/scr" --resume --steps 40 --batch 2 --threads "$threads" --checkpoint-every 20 \
  --set scr.sd="$sd" --set scr.hq_dir="$out/scenes/images" --set scr.pack_dir="$out/packs" \
  --set scr.crop_size=64

# 4. SCR merged into the UNet, a Gaussian Seg LoRA on the same targets minus
#    conv_out, a fresh projection + head for the 150 ADE20K classes.
[ -d "$out/seg-init" ] || "$bin/rass-merge-lora" init-seg "$sd" --lora "$out/scr/final/scr.unet.safetensors" \
  --preset tiny -o "$out/seg-init"

# 5. Stage 2: RAS on LQ crops of the same scenes.
"$bin/rass-train" ras -o "$out/ras" --resume --steps 40 --batch 2 --threads "$threads" --checkpoint-every 20 \
  --set ras.model="$out/seg-init" --set ras.images="$out/scenes/images" --set ras.labels="$out/scenes/labels" \
  --set ras.crop_size=64 --set ras.num_points=1024

# 6. The trained weights in the inference tools.
"$bin/rass-degrade" -p rass -s 7 "$out/scenes/images" -o "$out/lq" -q --resume
"$bin/rass-restore" -m "$sd" --lora "$out/scr/final/scr.unet.safetensors" --timestep 1 --formula residual \
  --threads "$threads" -q --resume "$out/lq" -O "$out/restored"
"$bin/rass-segment" -m "$out/ras/final" --threads "$threads" -q --resume "$out/lq" -O "$out/seg"
"$bin/rass-eval-miou" --classes ade20k "$out/seg" "$out/scenes/labels" | head -5
"$bin/rass-train" plot "$out/scr/log.jsonl" -o "$out/scr-curves.png" --smooth 5
"$bin/rass-train" plot "$out/ras/log.jsonl" -o "$out/ras-curves.png" --smooth 5 --terms loss,loss_ce,loss_mask,loss_dice
echo "outputs in $out (scr-curves.png, ras-curves.png, seg/, restored/)"
