#!/usr/bin/env bash
# x4 super-resolution evaluated as SAMSR's and SinSR's papers report it on
# synthetic data: how close to the HQ image does each noise bring the same
# network?
#   1. degrade the HQ images with the Real-ESRGAN x4 pipeline (seeded,
#      records kept: the LQ set can be made again bit for bit),
#   2. restore them with rass-samsr, once per noise (SAMSR's SAM-weighted
#      noise and schedule, and the Gaussian one step of SinSR),
#   3. print per noise PSNR and SSIM on the Y channel with a 4-pixel border
#      cropped (BasicSR's conventions).
# HQ sides should be multiples of 4, so the x4 output has the HQ's size.
#
# Usage: examples/eval-sr-samsr.sh MODEL HQ_DIR [OUT_DIR]
#   e.g. examples/eval-sr-samsr.sh samsr imagenet256/gt samsr-eval
# Environment:
#   NOISES       the noises to compare (default "sam gaussian"; a SinSR or
#                ResShift folder without sam/: "gaussian")
#   SAMSR_FLAGS  more rass-samsr flags, e.g. "--device cuda --dtype fp16"
#   SEED         seed of the degradations and of the noise (default 0)
set -euo pipefail
usage="usage: eval-sr-samsr.sh MODEL HQ_DIR [OUT_DIR]"
model=${1:?$usage}
hq=${2:?$usage}
out=${3:-sr-samsr-eval}
seed=${SEED:-0}
read -r -a noises <<<"${NOISES:-sam gaussian}"
read -r -a flags <<<"${SAMSR_FLAGS:-}"
unset CDPATH

mkdir -p "$out"
rass-degrade "$hq" -o "$out/lq" -p realesrgan-x4 --seed "$seed" -q --resume
printf 'noise\timages\tPSNR_Y\tSSIM_Y\n' >"$out/summary.tsv"
for noise in "${noises[@]}"; do
  # Exit 3 means some items were bad (named on stderr): the rest is still scored.
  status=0
  rass-samsr -m "$model" "$out/lq" --noise "$noise" -s "$seed" ${flags[@]+"${flags[@]}"} -O "$out/sr-$noise" -q \
    --resume || status=$?
  [ "$status" -eq 0 ] || [ "$status" -eq 3 ] || exit "$status"
  rass-eval-iqa -m psnr@basicsr,ssim@basicsr --y-channel --crop-border 4 --csv "$out/iqa-$noise.csv" -q \
    "$out/sr-$noise" "$hq" >/dev/null
  awk -F, -v noise="$noise" 'NR > 1 && $1 != "mean" { n++ } $1 == "mean" { p = $2; s = $3 }
    END { printf "%s\t%d\t%.4f\t%.4f\n", noise, n, p, s }' "$out/iqa-$noise.csv" >>"$out/summary.tsv"
done
column -t "$out/summary.tsv" 2>/dev/null || cat "$out/summary.tsv"
