#!/usr/bin/env bash
# The main job on the shipped example images: builds an LQ-HQ dataset with the
# RASS preset (plus x4 and LQSeg variants), with records and a manifest, then
# shows that a record regenerates its LQ image exactly.
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
echo "outputs in $out"
