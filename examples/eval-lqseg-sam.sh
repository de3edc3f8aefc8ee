#!/usr/bin/env bash
# GleSAM's evaluation protocol with rass-sam: how well does a prompted
# segmenter (SAM, or GleSAM's enhanced SAM) segment each object of the
# ground truth on every LQ-Seg level?
#   1. degrade the HQ images with the three LQ-Seg levels (the LQ image keeps
#      the HQ size, so the ground-truth label maps stay aligned),
#   2. run rass-sam on the HQ images and on every level with prompts made from
#      the ground truth (one object per label value: its tight box, or random
#      pixels of it),
#   3. print per set the objects scored and their mean IoU, Dice and pixel
#      accuracy against their label's pixels (GleSAM's per-object figures).
#
# Usage: examples/eval-lqseg-sam.sh MODEL HQ_DIR GT_DIR [OUT_DIR]
#   e.g. examples/eval-lqseg-sam.sh glesam-vit-l lqseg/hq lqseg/masks glesam-eval
#   GleSAM's baselines: MODEL a SAM, RobustSAM, HQ-SAM or SAM 2 folder
#   (scripts/convert_sam.py), each decoded as its own code decodes it.
# Environment:
#   PROMPT     box, points or box+points (default box; GleSAM's code draws 3 points)
#   SKIP       label values that are no object (default 255; binary 0/255 masks: 0)
#   SAM_FLAGS  more rass-sam flags, e.g. "--enhance off" (plain SAM from a GleSAM
#              folder), "--robust off", "--hq-token-only" or "--device cuda --dtype bf16"
#   SEED       seed of the degradations and of the drawn points (default 0)
set -euo pipefail
usage="usage: eval-lqseg-sam.sh MODEL HQ_DIR GT_DIR [OUT_DIR]"
model=${1:?$usage}
hq=${2:?$usage}
gt=${3:?$usage}
out=${4:-lqseg-sam-eval}
prompt=${PROMPT:-box}
skip=${SKIP:-255}
seed=${SEED:-0}
read -r -a sam_flags <<<"${SAM_FLAGS:-}"
unset CDPATH

mkdir -p "$out"
for level in 1 2 3; do
  # Same seed per level for every image: reproducible, and regenerable from the records.
  rass-degrade "$hq" -o "$out/lq-$level" -p "lqseg-$level" --seed "$((seed + level))" -q --resume
done

printf 'set\tobjects\tmean_IoU\tmean_Dice\tmean_PA\n' >"$out/summary.tsv"
for set in hq lq-1 lq-2 lq-3; do
  src=$hq
  [ "$set" = hq ] || src=$out/$set
  # Exit 3 means some items were bad (named on stderr): the rest is still scored.
  status=0
  rass-sam -m "$model" "$src" --prompts-from "$gt" --prompt-type "$prompt" --skip "$skip" -s "$seed" \
    ${sam_flags[@]+"${sam_flags[@]}"} -O "$out/pred-$set" --json -q >"$out/objects-$set.jsonl" || status=$?
  [ "$status" -eq 0 ] || [ "$status" -eq 3 ] || exit "$status"
  # Every object's "iou", "dice" and "pa" of every item's record.
  grep -o '"iou":[-0-9.e+]*,"dice":[-0-9.e+]*,"pa":[-0-9.e+]*' "$out/objects-$set.jsonl" |
    awk -F'[:,]' -v set="$set" '{ n++; iou += $2; dice += $4; pa += $6 }
      END { if (n == 0) { print "eval-lqseg-sam.sh: " set ": no object scored" > "/dev/stderr"; exit 3 }
            printf "%s\t%d\t%.4f\t%.4f\t%.4f\n", set, n, iou / n, dice / n, pa / n }' >>"$out/summary.tsv"
done
column -t "$out/summary.tsv" 2>/dev/null || cat "$out/summary.tsv"
