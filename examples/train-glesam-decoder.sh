#!/usr/bin/env bash
# GleSAM's decoder fine-tuning (seed 001, its second stage) and what it buys,
# with rass-train and rass-sam; with SD, its whole training:
#   0. (SD given) rass-train sam-enhancer: GleSAM's first stage, the latent
#      enhancer (SD's UNet, channels replicated, LoRA) trained on SAM's
#      embeddings of IMAGES and their online LQ versions; its export (a
#      GleSAM folder) is then the model the decoder is fine-tuned in,
#   1. rass-train sam-decoder: MODEL's mask decoder (a GleSAM folder: on its
#      enhanced embeddings; plain SAM: on SAM's) fine-tuned on LQ versions of
#      IMAGES made online by GleSAM's degradation, three clicks per object of
#      LABELS, focal + Dice, Adam 1e-4, EPOCHS passes over the images,
#   2. examples/eval-lqseg-sam.sh for MODEL and for the fine-tuned folder on
#      the evaluation set (HQ and LQ-Seg levels 1-3, prompts from its labels),
#   3. a table per set: objects, mean IoU, Dice and PA before and after.
# A second run resumes the training and the degradations where they stopped.
#
# Usage: examples/train-glesam-decoder.sh MODEL IMAGES LABELS [OUT_DIR]
#   e.g. examples/train-glesam-decoder.sh glesam-vit-l DIS5K/im DIS5K/gt gle-dec   (MASKS=binary)
# Environment:
#   EVAL_IMAGES, EVAL_LABELS  the evaluation set (default IMAGES and LABELS;
#              give a held-out set for figures that mean something)
#   EPOCHS     passes over the training images (default 6, as released)
#   BATCH      images a step (default 1, as released); SIZE  the training square (512)
#   MASKS      labels (one object per label value not in SKIP) or binary (0/255 masks)
#   SKIP       label values that are no object (default 255; 0 with MASKS=binary,
#              whose evaluation then scores each mask's 255 pixels: give hard 0/255 masks)
#   PROMPT     evaluation prompts: box, points or box+points (default points, GleSAM's code)
#   SD         a Stable Diffusion folder: train GleSAM's enhancer first (MODEL: plain SAM)
#   ENHANCER_STEPS  its steps (default 5 x the decoder's, the paper's 100K / 20K)
#   FEAT_WEIGHT its feature weight g (default 5, the paper's)
#   TRAIN_FLAGS more rass-train flags, e.g. "--device cuda --set loop.amp=true"
#   SAM_FLAGS  more rass-sam flags for the evaluation (eval-lqseg-sam.sh)
set -euo pipefail
usage="usage: train-glesam-decoder.sh MODEL IMAGES LABELS [OUT_DIR]"
model=${1:?$usage}
images=${2:?$usage}
labels=${3:?$usage}
out=${4:-glesam-decoder}
eval_images=${EVAL_IMAGES:-$images}
eval_labels=${EVAL_LABELS:-$labels}
epochs=${EPOCHS:-6}
batch=${BATCH:-1}
size=${SIZE:-512}
masks=${MASKS:-labels}
# Binary masks are scored on their object 255: 0 is skipped (label maps: 255, the ignore index).
[ "$masks" = binary ] && skip=${SKIP:-0} || skip=${SKIP:-255}
read -r -a train_flags <<<"${TRAIN_FLAGS:-}"
here=$(cd "$(dirname "$0")" && pwd)
unset CDPATH

n=$(find "$images" -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.ppm' -o -iname '*.pgm' \) | wc -l)
[ "$n" -gt 0 ] || { echo "train-glesam-decoder.sh: no images in $images" >&2; exit 3; }
steps=$(( (epochs * n + batch - 1) / batch ))
mkdir -p "$out"
skip_set=()  # a binary mask's object is its 255 pixels: skip is for label maps
[ "$masks" = binary ] || skip_set=(--set "sam-decoder.skip=[$skip]")
# A second run resumes a stage that has checkpoints.
resume_flag() { [ -n "$(ls -A "$1/checkpoints" 2>/dev/null)" ] && echo --resume || true; }
start=$model
if [ -n "${SD:-}" ]; then
  resume=()
  [ -n "$(resume_flag "$out/enhancer")" ] && resume=(--resume)
  rass-train sam-enhancer --set sam-enhancer.model="$model" --set sam-enhancer.sd="$SD" \
    --set sam-enhancer.images="$images" --set sam-enhancer.size="$size" --set sam-enhancer.feat_weight="${FEAT_WEIGHT:-5}" \
    -o "$out/enhancer" --steps "${ENHANCER_STEPS:-$((5 * steps))}" --batch "$batch" -q \
    ${resume[@]+"${resume[@]}"} ${train_flags[@]+"${train_flags[@]}"}
  start=$out/enhancer/final
fi
resume=()
[ -n "$(resume_flag "$out/train")" ] && resume=(--resume)
rass-train sam-decoder --set sam-decoder.model="$start" --set sam-decoder.images="$images" \
  --set sam-decoder.labels="$labels" --set sam-decoder.masks="$masks" ${skip_set[@]+"${skip_set[@]}"} \
  --set sam-decoder.size="$size" -o "$out/train" --steps "$steps" --batch "$batch" -q \
  ${resume[@]+"${resume[@]}"} ${train_flags[@]+"${train_flags[@]}"}

export PROMPT=${PROMPT:-points} SKIP=$skip
bash "$here/eval-lqseg-sam.sh" "$model" "$eval_images" "$eval_labels" "$out/eval-base" >/dev/null
bash "$here/eval-lqseg-sam.sh" "$out/train/final" "$eval_images" "$eval_labels" "$out/eval-tuned" >/dev/null
# One row per set: the base model's figures, then the fine-tuned one's.
paste "$out/eval-base/summary.tsv" "$out/eval-tuned/summary.tsv" |
  awk -F'\t' 'NR == 1 { print "set\tobjects\tIoU_base\tIoU_tuned\tDice_base\tDice_tuned\tPA_base\tPA_tuned"; next }
              { print $1 "\t" $2 "\t" $3 "\t" $8 "\t" $4 "\t" $9 "\t" $5 "\t" $10 }' >"$out/summary.tsv"
column -t "$out/summary.tsv" 2>/dev/null || cat "$out/summary.tsv"
