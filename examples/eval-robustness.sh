#!/usr/bin/env bash
# A robustness benchmark of a segmenter, RobustSeg- / ImageNet-C-style: each
# single corruption of rass-degrade at each severity, applied to the HQ
# images (the LQ image keeps the HQ size, so the label maps stay aligned),
# segmented and scored with rass-eval-miou against the same ground truth.
#   robustness.tsv  one row per set: corruption, severity, mIoU, and mIoU
#                   relative to the clean images;
#   summary         the clean mIoU, each corruption's mean over the
#                   severities, mPC (the mean over every corruption and
#                   severity) and rPC = mPC / clean (Michaelis et al. 2019's
#                   performance under corruption).
# Rerunning with the same OUT_DIR skips the finished sets (rass-degrade
# --resume redoes an interrupted one), so a killed run picks up where it was.
#
# Usage: examples/eval-robustness.sh HQ_DIR GT_DIR [OUT_DIR]
#   e.g. examples/eval-robustness.sh ECSSD/images ECSSD/masks ecssd-robust
# Environment:
#   CORRUPTIONS  the presets (default: every single degradation of rass-degrade
#                but downsample, whose LQ is a resize, and frost, which needs
#                RASS_FROST_DIR: `rass-degrade --help`)
#   SEVERITIES   default "1 2 3 4 5"
#   SEED         rass-degrade --seed (default 0): the same draws for every set
#   SEGMENT      command run as "$SEGMENT IN_DIR OUT_DIR" writing OUT_DIR/<stem>.png
#                label maps (default: rass-segment IN_DIR -O OUT_DIR -q)
#   EVAL_FLAGS   rass-eval-miou flags for the data set (default, ADE20K's raw
#                annotations: "--classes ade20k --reduce-zero-label")
set -euo pipefail
usage="usage: eval-robustness.sh HQ_DIR GT_DIR [OUT_DIR]"
hq=${1:?$usage}
gt=${2:?$usage}
out=${3:-robustness-eval}
corruptions=${CORRUPTIONS:-blur noise jpeg motion-blur defocus-blur zoom-blur glass-blur shot-noise impulse-noise \
speckle-noise contrast brightness saturate pixelate elastic fog snow spatter rain low-light}
severities=${SEVERITIES:-1 2 3 4 5}
seed=${SEED:-0}
read -r -a eval_flags <<<"${EVAL_FLAGS:---classes ade20k --reduce-zero-label}"

segment() {
  if [ -n "${SEGMENT:-}" ]; then
    $SEGMENT "$1" "$2"
  else
    rass-segment "$1" -O "$2" -q
  fi
}

# Scores one set of images (segmented into pred-NAME) unless done before:
# miou-NAME.json is written last, through a temporary name.
score() {
  local name=$1 src=$2 status=0
  [ -s "$out/miou-$name.json" ] && return 0
  rm -rf "$out/pred-$name"
  segment "$src" "$out/pred-$name"
  # Exit 3: some pairs were bad (named on stderr); the rest is still scored.
  rass-eval-miou "$out/pred-$name" "$gt" "${eval_flags[@]}" --json -q >"$out/miou-$name.json.part" || status=$?
  [ "$status" -eq 0 ] || [ "$status" -eq 3 ] || exit "$status"
  mv "$out/miou-$name.json.part" "$out/miou-$name.json"
}
miou() { grep -m1 '"mIoU":' "$out/miou-$1.json" | sed 's/.*: *//; s/,$//'; }

mkdir -p "$out"
score clean "$hq"
clean=$(miou clean)
printf 'corruption\tseverity\tmIoU\trelative\n' >"$out/robustness.tsv"
for c in $corruptions; do
  for s in $severities; do
    set_name=$c-$s
    if [ ! -s "$out/miou-$set_name.json" ]; then
      rass-degrade "$hq" -o "$out/lq-$set_name/" -p "$c" --severity "$s" --seed "$seed" --resume -q
      score "$set_name" "$out/lq-$set_name"
    fi
    awk -v c="$c" -v s="$s" -v m="$(miou "$set_name")" -v k="$clean" \
      'BEGIN { printf "%s\t%s\t%.2f\t%.3f\n", c, s, m, (k > 0 ? m / k : 0) }' >>"$out/robustness.tsv"
  done
done
column -t "$out/robustness.tsv" 2>/dev/null || cat "$out/robustness.tsv"
awk -F'\t' -v k="$clean" '
  NR > 1 { sum[$1] += $3; n[$1]++; if (!($1 in seen)) { seen[$1] = 1; order[++m] = $1 } all += $3; count++ }
  END {
    printf "clean mIoU %.2f\n", k
    for (i = 1; i <= m; ++i) printf "%-14s mean mIoU %.2f\n", order[i], sum[order[i]] / n[order[i]]
    if (count) printf "mPC %.2f  rPC %.3f (%d sets)\n", all / count, (k > 0 ? all / count / k : 0), count
  }' "$out/robustness.tsv" | tee "$out/summary"
