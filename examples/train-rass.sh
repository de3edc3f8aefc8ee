#!/usr/bin/env bash
# Both RASS training stages end to end, from nothing, with this project's own
# tools: synthetic scenes with exact labels -> caption-map packs (masks and
# token positions for SCL) -> rass-train scr (SCR LoRA with the semantic-
# constrained loss, LQ made online) -> rass-merge-lora init-seg (SCR merged,
# a new Seg LoRA, projection and Mask2Former head initialised as RASS's
# training starts) -> rass-train ras (Seg LoRA + conv_in + projection + head,
# Mask2Former criterion) -> rass-restore and rass-segment with the trained
# weights -> rass-eval-miou -> rass-train plot.
#
#   examples/train-rass.sh [OUT_DIR] [SD_FOLDER]
#
# Default SD folder: a tiny random-weight one made by `rass-model init
# --preset tiny4` (four UNet levels, as SD's: RAS taps four up blocks), with
# the tiny head (--head tiny). The run shows the plumbing; nothing here
# learns in 40 steps (measured, 2 shared cores: 68 s in all; the RAS loss
# goes from 68.5 to 67.5 over the first and last 5 steps, the SCR loss at
# OSEDiff's lr 5e-5 does not fall yet, every step seeing new degradations). With a
# real SD 2.1-base folder drop HEAD=tiny (the released head is the default),
# add LPIPS weights (--set scr.lpips_weights=...) and raise STEPS, CROP (512)
# and BATCH. Environment: THREADS (2), STEPS (40), CROP (64), BATCH (2),
# RASS_BIN (the build folder). Rerunning with the same OUT_DIR resumes: every
# stage skips what is finished.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RASS_BIN:-$here/build}
out=${1:-$(mktemp -d)}
sd=${2:-}
threads=${THREADS:-2}
steps=${STEPS:-40}
crop=${CROP:-64}
batch=${BATCH:-2}
head=${HEAD:-}
every=$(( steps / 2 > 0 ? steps / 2 : 1 ))
mkdir -p "$out"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" >&2; }

# 1. 24 scenes, 128x128: images, ADE20K label maps, tags (key<TAB>tags).
[ -f "$out/scenes/manifest.jsonl" ] || "$bin/rass-scenes" -n 24 --size 128 -s 1 -o "$out/scenes" -q
if [ -z "$sd" ]; then
  sd=$out/sd
  [ -d "$sd" ] || "$bin/rass-model" init --preset tiny4 --seed 1 -q "$sd"
  head=${head:-tiny}
fi
head=${head:-released}
stamp "scenes and SD folder ready"

# 2. SCL's data: per term, the mask and its token positions in the 77-token prompt.
"$bin/rass-caption-map" --tags "$out/scenes/tags.tsv" --tokenizer "$sd" -O "$out/packs" -q --resume \
  "$out/scenes/labels" > "$out/prompts.tsv"
stamp "caption-map packs written"

# 3. Stage 1: SCR LoRA (MSE; + LPIPS with weights; + SCL), degradations made online.
"$bin/rass-train" scr -o "$out/scr" --resume --steps "$steps" --batch "$batch" --threads "$threads" \
  --checkpoint-every "$every" -q \
  --set scr.sd="$sd" --set scr.hq_dir="$out/scenes/images" --set scr.pack_dir="$out/packs" \
  --set scr.crop_size="$crop"
stamp "stage 1 (scr) done"

# 4. SCR merged into the UNet, a Gaussian Seg LoRA on the same targets minus
#    conv_out, a fresh projection + head for the 150 ADE20K classes.
[ -d "$out/seg-init" ] || "$bin/rass-merge-lora" init-seg --model "$sd" --lora "$out/scr/final/scr.unet.safetensors" \
  --timestep 1 --formula residual --head "$head" --classes ade20k --seed 1 -q -O "$out/seg-init"
stamp "init-seg folder written"

# 5. Stage 2: RAS on LQ crops of the same scenes.
"$bin/rass-train" ras -o "$out/ras" --resume --steps "$steps" --batch "$batch" --threads "$threads" \
  --checkpoint-every "$every" -q \
  --set ras.model="$out/seg-init" --set ras.images="$out/scenes/images" \
  --set ras.labels="$out/scenes/labels" --set ras.crop_size="$crop" --set ras.num_points=1024
stamp "stage 2 (ras) done"

# 6. The trained weights in the inference tools.
"$bin/rass-degrade" -p rass -s 7 "$out/scenes/images" -o "$out/lq" -q --resume
"$bin/rass-restore" -m "$sd" --lora "$out/scr/final/scr.unet.safetensors" --timestep 1 --formula residual \
  --threads "$threads" -q --resume "$out/lq" -O "$out/restored"
"$bin/rass-segment" -m "$out/ras/final" --threads "$threads" -q --resume "$out/lq" -O "$out/seg"
stamp "restored/ and seg/ written"
"$bin/rass-eval-miou" --classes ade20k "$out/seg" "$out/scenes/labels" | head -5
"$bin/rass-train" plot "$out/scr/log.jsonl" -o "$out/scr-curves.png" --smooth 5
"$bin/rass-train" plot "$out/ras/log.jsonl" -o "$out/ras-curves.png" --smooth 5 --terms loss,loss_ce,loss_mask,loss_dice
stamp "done"
echo "outputs in $out (scr-curves.png, ras-curves.png, seg/, restored/)"
