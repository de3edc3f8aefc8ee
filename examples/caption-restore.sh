#!/usr/bin/env bash
# Semantic prompts for restoration: label maps (+ RAM/DAPE tags) -> prompts
# with rass-caption-map, then rass-restore with those prompts, item by item
# (the key rule pairs maps/<key>.png with lq/<key>.png).
#
#   examples/caption-restore.sh MAPS_DIR LQ_DIR OUT_DIR [MODEL_DIR] [LORA] [TAGS.tsv]
#
# TAGS.tsv holds "key<TAB>tag, tag, ..." lines (RAM/DAPE output keyed by
# image); without it the prompts are the classes present in each label map.
# Defaults: the tiny random-weight SD folder of the tests (plumbing only).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RASS_BIN:-$here/build}
maps=${1:?label-map folder}; lq=${2:?LQ image folder}; out=${3:?output folder}
model=${4:-$here/tests/fixtures/nn/sd_tiny}
lora=${5:-$here/tests/fixtures/nn/sd_tiny_lora.safetensors}
tags=(); [ $# -ge 6 ] && tags=(--tags "$6")
mkdir -p "$out"

# ADE20K ground truth (raw annotations: --reduce-zero-label), WordNet mapping.
"$bin/rass-caption-map" --reduce-zero-label "$maps" "${tags[@]}" >"$out/prompts.tsv"
"$bin/rass-restore" -m "$model" --lora "$lora" --method scr --tags "$out/prompts.tsv" \
  "$lq" -O "$out/restored" --resume --json >"$out/records.jsonl"
echo "prompts: $out/prompts.tsv; restored: $out/restored; records: $out/records.jsonl"
