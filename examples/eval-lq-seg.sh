#!/usr/bin/env bash
# An evaluation pipeline after rass-degrade: how much mIoU does a segmenter
# lose on each GleSAM LQ-Seg level?
#   1. degrade the HQ images with the three LQ-Seg levels (the LQ image keeps
#      the HQ size, so the ground-truth label maps stay aligned),
#   2. segment the HQ images (the reference) and every LQ image,
#   3. evaluate each set against the ground truth with rass-eval-miou
#      (mmseg convention; JSON summary, per-image lines, confusion matrix),
#   4. print one line per level, and the three worst images of the hardest level.
#
# Usage: examples/eval-lq-seg.sh HQ_DIR GT_DIR [OUT_DIR]
#   e.g. examples/eval-lq-seg.sh ADEChallengeData2016/images/validation \
#          ADEChallengeData2016/annotations/validation ade-lqseg
# Environment:
#   SEGMENT     command run as "$SEGMENT IN_DIR OUT_DIR" that writes OUT_DIR/<stem>.png
#               label maps (default: rass-segment IN_DIR -O OUT_DIR -q). Any segmenter
#               works, e.g. a script around an mmseg or detectron2 model.
#   EVAL_FLAGS  rass-eval-miou flags for the data set (default, ADE20K's raw annotations:
#               "--classes ade20k --reduce-zero-label"; Cityscapes: "--classes cityscapes
#               --gt-suffix _gtFine_labelTrainIds.png --pred-suffix _leftImg8bit.png").
set -euo pipefail
hq=${1:?usage: eval-lq-seg.sh HQ_DIR GT_DIR [OUT_DIR]}
gt=${2:?usage: eval-lq-seg.sh HQ_DIR GT_DIR [OUT_DIR]}
out=${3:-lqseg-eval}
read -r -a eval_flags <<<"${EVAL_FLAGS:---classes ade20k --reduce-zero-label}"

segment() {
  if [ -n "${SEGMENT:-}" ]; then
    $SEGMENT "$1" "$2"
  elif command -v rass-segment >/dev/null; then
    rass-segment "$1" -O "$2" -q
  else
    echo "eval-lq-seg.sh: no segmenter: set SEGMENT='cmd' (run as: cmd IN_DIR OUT_DIR)" >&2
    exit 2
  fi
}

mkdir -p "$out"
for level in 1 2 3; do
  # Same seed per level for every image: reproducible, and regenerable from the records.
  rass-degrade "$hq" -o "$out/lq-$level" -p "lqseg-$level" --seed "$level" -q
done

printf 'set\tmIoU\taAcc\tmAcc\tpairs\n' >"$out/summary.tsv"
for set in hq lq-1 lq-2 lq-3; do
  src=$hq
  [ "$set" = hq ] || src=$out/$set
  segment "$src" "$out/pred-$set"
  # Exit 3 means some pairs were bad (named on stderr): the rest is still evaluated.
  status=0
  rass-eval-miou "$out/pred-$set" "$gt" "${eval_flags[@]}" --json -q \
    --per-image "$out/per-image-$set.jsonl" --confusion "$out/confusion-$set.npy" \
    >"$out/miou-$set.json" || status=$?
  [ "$status" -eq 0 ] || [ "$status" -eq 3 ] || exit "$status"
  # The first "mIoU"/"aAcc"/"mAcc" keys of the JSON are the summary's (x100, full precision).
  value() { grep -m1 "\"$1\":" "$out/miou-$set.json" | sed 's/.*: *//; s/,$//'; }
  printf '%s\t%.2f\t%.2f\t%.2f\t%s\n' "$set" "$(value mIoU)" "$(value aAcc)" "$(value mAcc)" "$(value evaluated)" \
    >>"$out/summary.tsv"
done
column -t "$out/summary.tsv" 2>/dev/null || cat "$out/summary.tsv"

echo "worst images at LQ-3 (per-image mIoU):"
sed -n 's/.*"key":"\([^"]*\)".*"mIoU":\([^,}]*\).*/\2\t\1/p' "$out/per-image-lq-3.jsonl" | sort -g | head -n 3
