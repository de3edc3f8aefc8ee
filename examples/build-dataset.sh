#!/usr/bin/env bash
# A dataset-building pipeline with ordinary Unix tools:
#   1. find the HQ images (here: the examples; point it at your own data),
#   2. degrade them with three GleSAM LQ-Seg levels, two variants each,
#   3. merge the per-level manifests into one training list.
# Usage: examples/build-dataset.sh [HQ_DIR] [OUT_DIR]
set -euo pipefail
hq=${1:-$(dirname "$0")/images}
out=${2:-dataset}
mkdir -p "$out"
for level in 1 2 3; do
  # --manifest - reads paths from stdin (relative paths: from the current directory;
  # in a manifest file they are relative to the file's own directory).
  find "$hq" -type f \( -name '*.png' -o -name '*.jpg' \) |
    rass-degrade --manifest - -o "$out/lq-$level" -p lqseg-$level --seed "$level" --variants 2 -q
done
# One manifest: each row gets its level; paths are made relative to $out.
for level in 1 2 3; do
  sed "s|\"lq\":\"|\"level\":\"LQ-$level\",\"lq\":\"lq-$level/|; s|\"record\":\"|\"record\":\"lq-$level/|; s|\"hq\":\"\.\./|\"hq\":\"|" \
    "$out/lq-$level/manifest.jsonl"
done >"$out/train.jsonl"
wc -l "$out/train.jsonl"
# A single image through a pipe, e.g. to look at one degradation:
#   rass-degrade - -o - -p realesrgan-x4 <photo.jpg | display -
