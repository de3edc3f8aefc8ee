#!/usr/bin/env bash
# Degrade clean images, segment the clean and the degraded ones with the RAS
# model, and score the LQ labels against the HQ labels: how much does the
# degradation cost the segmenter? rass-degrade -> rass-segment -> rass-eval-miou.
#
#   examples/segment-pipeline.sh [MODEL_DIR] [HQ_IMAGE...]
#
# Default model: the tiny random-weight RAS folder the tests use
# (tests/fixtures/nn/ras_tiny): it shows the plumbing, not a segmentation
# (random weights recognise nothing). With a folder converted from the
# released rass.pth (scripts/convert_rass.py rass.pth --sd sd21-base -o DIR)
# the same lines segment ADE20K's 150 classes. With ground truth, score
# against it instead: rass-eval-miou --classes ade20k --reduce-zero-label
# pred/ ADEChallengeData2016/annotations/validation.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RASS_BIN:-$here/build}
model=${1:-$here/tests/fixtures/nn/ras_tiny}
shift || true
[ $# -gt 0 ] || set -- "$here/examples/images/chelsea.png" "$here/examples/images/coffee.png"
out=$(mktemp -d)
mkdir -p "$out/hq"
cp "$@" "$out/hq/"

# LQ at the HQ size (RASS: scale 1), one JSON record per image of every sampled parameter.
"$bin/rass-degrade" -p rass -s 1 "$out/hq" -o "$out/lq" -q
# Labels (class index PNGs), colour maps and overlays with a legend, for both sets.
for set in hq lq; do
  "$bin/rass-segment" -m "$model" -q "$out/$set" -O "$out/seg_$set" --color "$out/color_$set" --overlay "$out/overlay_$set"
done
# The LQ predictions scored against the HQ ones (mmseg convention, ADE20K names).
"$bin/rass-eval-miou" --classes ade20k "$out/seg_lq" "$out/seg_hq"
echo "outputs in $out (overlay_lq/*.png to look at)"
