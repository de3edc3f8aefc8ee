#!/usr/bin/env bash
# The main job. Part 1, on the shipped example images: builds an LQ-HQ
# dataset with the RASS preset (plus x4 and LQSeg variants), with records and
# a manifest, then shows that a record regenerates its LQ image exactly.
# Part 2, the whole RASS chain with the embedded mini model (models/mini, made
# by `make mini-model`): synthetic scenes -> degraded -> restored -> segmented
# -> restoration and segmentation evaluated (tables) -> overlays.
# Environment: DEMO_OUT (default ./demo-out), DEMO_SCENES (24), THREADS (2).
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
out=${DEMO_OUT:-$root/demo-out}
D=$build/rass-degrade
rm -rf "$out"
mkdir -p "$out"

echo "== rass preset (scale 1, LQ keeps the HQ size), 2 variants per image"
"$D" "$root/examples/images" -o "$out/rass" -p rass -s 0 --variants 2
echo "== realesrgan-x4 preset (LQ at 1/4 size)"
"$D" "$root/examples/images" -o "$out/x4" -p realesrgan-x4 -s 0 -q
for level in 1 2 3; do
  "$D" "$root/examples/images" -o "$out/lqseg-$level" -p lqseg-$level -s 0 -q
done
echo "== single named degradations (severity 3)"
for kind in blur noise jpeg downsample; do
  "$D" "$root/examples/images/chelsea.png" -o "$out/chelsea-$kind.png" -p $kind --severity 3
done
echo "== replay: regenerate one LQ image from its record"
"$D" "$root/examples/images/coffee.png" --replay "$out/rass/coffee_v0.json" -o "$out/coffee-replayed.png"
cmp "$out/rass/coffee_v0.png" "$out/coffee-replayed.png" && echo "replayed image is byte-identical"
echo "== how degraded is it? PSNR/SSIM of each LQ image against its HQ image"
"$build/rass-eval-iqa" --manifest "$out/rass/manifest.jsonl" -m psnr,ssim,psnr@basicsr,ssim@basicsr -q
params=${RASS_NIQE_PARAMS:-$root/../shared/data/niqe_pris_params.npz}
if [ -f "$params" ]; then
  echo "== NIQE of the HQ and of the LQ images (lower is better)"
  "$build/rass-eval-iqa" -m niqe --niqe-params "$params" "$root/examples/images" -q
  "$build/rass-eval-iqa" -m niqe --niqe-params "$params" "$out/rass" -q
fi
echo
echo "manifest: $out/rass/manifest.jsonl"
head -n 2 "$out/rass/manifest.jsonl"
echo "record of one output (first op):"
sed -n '1,30p' "$out/rass/coffee_v0.json"

if [ ! -x "$build/rass-segment" ]; then
  echo "(no LibTorch build: the mini-world part needs rass-restore and rass-segment)"
  echo "outputs in $out"
  exit 0
fi
echo
echo "==== the mini world: the RASS chain with the embedded model"
n=${DEMO_SCENES:-24}
threads=${THREADS:-2}
w=$out/mini
"$build/rass-scenes" -n "$n" --size 128 -s 2026 -o "$w/scenes" -q
"$D" "$w/scenes/images" -o "$w/lq" -p rass -s 7 -q
echo "== restore the LQ scenes (SCR, one step)"
# Prompts: the scenes' own tag lines stand in for RAM's tags of the LQ image
# (the mini world has no tagger); every row gets the same ones.
"$build/rass-restore" "$w/lq" -O "$w/restored" --tags "$w/scenes/tags.tsv" --threads "$threads" -q
echo "== segment HQ, LQ and restored scenes (RAS), with overlays"
for set in scenes/images lq restored; do
  name=${set%%/*}; [ "$name" = scenes ] && name=hq
  "$build/rass-segment" "$w/$set" -O "$w/seg-$name" --overlay "$w/overlay-$name" --tags "$w/scenes/tags.tsv" \
    --threads "$threads" -q
done
iqa() { "$build/rass-eval-iqa" "$1" "$w/scenes/images" -m psnr,ssim --json -q --no-table | jq -r '[.mean.psnr, .mean.ssim] | map(. * 1000 | round / 1000) | @tsv'; }
miou() { "$build/rass-eval-miou" --classes ade20k "$1" "$w/scenes/labels" --json -q | jq -r '.summary.mIoU * 100 | round / 100'; }
echo
printf '%-28s %8s %8s %8s\n' "mini world, $n scenes" PSNR SSIM mIoU
printf '%-28s %8s %8s %8s\n' "HQ (clean)" - - "$(miou "$w/seg-hq")"
read -r p s < <(iqa "$w/lq")
printf '%-28s %8s %8s %8s\n' "LQ (rass preset)" "$p" "$s" "$(miou "$w/seg-lq")"
read -r p s < <(iqa "$w/restored")
printf '%-28s %8s %8s %8s\n' "restored (SCR)" "$p" "$s" "$(miou "$w/seg-restored")"
echo "overlays: $w/overlay-{hq,lq,restored}/"
echo "outputs in $out"
