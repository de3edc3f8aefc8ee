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
# --resume redoes an interrupted one), so a killed run picks up where it was;
# OUT_DIR/settings records what the sets were made with, and a rerun with
# other settings (SEED, SEGMENT, EVAL_FLAGS, the folders) is refused. Every
# corruption and severity is checked before any work. A set where not every
# image was scored is marked in robustness.tsv (its pairs column) and said;
# a set with none scored stops the run.
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
set -f  # CORRUPTIONS and SEVERITIES are words, not patterns
usage="usage: eval-robustness.sh HQ_DIR GT_DIR [OUT_DIR]"
hq=${1:?$usage}
gt=${2:?$usage}
out=${3:-robustness-eval}
die() { echo "eval-robustness.sh: $*" >&2; exit 2; }
[ -d "$hq" ] || die "HQ_DIR $hq is not a folder"
[ -d "$gt" ] || die "GT_DIR $gt is not a folder"

corruptions=${CORRUPTIONS:-blur noise jpeg motion-blur defocus-blur zoom-blur glass-blur shot-noise impulse-noise \
speckle-noise contrast brightness saturate pixelate elastic fog snow spatter rain low-light}
severities=${SEVERITIES:-1 2 3 4 5}
seed=${SEED:-0}
read -r -a eval_flags <<<"${EVAL_FLAGS:---classes ade20k --reduce-zero-label}"

segment() {
  local status=0
  if [ -n "${SEGMENT:-}" ]; then
    $SEGMENT "$1" "$2" || status=$?
  else
    rass-segment "$1" -O "$2" -q || status=$?
  fi
  [ "$status" -eq 0 ] || { echo "eval-robustness.sh: segmenting $1 failed (exit $status)" >&2; exit 1; }
}

# Every corruption and severity before any work (rass-degrade says what is wrong).
for c in $corruptions; do
  for s in $severities; do
    rass-degrade --print-config -p "$c" --severity "$s" >/dev/null || die "CORRUPTIONS/SEVERITIES: $c at $s"
  done
done

# What the sets are made with: a rerun must match it.
mkdir -p "$out"
settings=$(printf 'hq\t%s\ngt\t%s\nseed\t%s\nsegment\t%s\neval_flags\t%s\nfrost_dir\t%s\n' \
  "$(CDPATH='' cd -- "$hq" && pwd)" "$(CDPATH='' cd -- "$gt" && pwd)" "$seed" "${SEGMENT:-rass-segment -O -q}" "${eval_flags[*]}" \
  "${RASS_FROST_DIR:-}")
if [ -f "$out/settings" ]; then
  [ "$(cat "$out/settings")" = "$settings" ] ||
    die "$out was made with other settings (see $out/settings); use another OUT_DIR"
else
  printf '%s\n' "$settings" >"$out/settings"
fi

# A number of the JSON summary rass-eval-miou writes ("key": value, once).
json_number() { sed -n "s/^ *\"$2\": \([-0-9.eE+]*\),\{0,1\}$/\1/p" "$1" | head -n 1; }

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
  [ "$(json_number "$out/miou-$name.json.part" evaluated)" -gt 0 ] ||
    { echo "eval-robustness.sh: no pair of set $name could be scored (rass-eval-miou said why)" >&2; exit 1; }
  mv "$out/miou-$name.json.part" "$out/miou-$name.json"
}

score clean "$hq"
clean=$(json_number "$out/miou-clean.json" mIoU)
[ -n "$clean" ] || die "the clean set has no mIoU (no class present: see $out/miou-clean.json)"
clean_pairs=$(json_number "$out/miou-clean.json" evaluated)
printf 'corruption\tseverity\tmIoU\trelative\tpairs\n' >"$out/robustness.tsv"
: >"$out/robustness.raw"
for c in $corruptions; do
  for s in $severities; do
    set_name=$c-$s
    if [ ! -s "$out/miou-$set_name.json" ]; then
      # Exit 3: some images were refused (named on stderr); the rest is
      # degraded, and the set's pairs column shows what is missing.
      status=0
      rass-degrade "$hq" -o "$out/lq-$set_name/" -p "$c" --severity "$s" --seed "$seed" --resume -q || status=$?
      [ "$status" -eq 0 ] || [ "$status" -eq 3 ] || exit "$status"
      score "$set_name" "$out/lq-$set_name"
    fi
    m=$(json_number "$out/miou-$set_name.json" mIoU)
    [ -n "$m" ] || die "set $set_name has no mIoU (no class present: see $out/miou-$set_name.json)"
    pairs=$(json_number "$out/miou-$set_name.json" evaluated)
    [ "$pairs" = "$clean_pairs" ] ||
      echo "eval-robustness.sh: warning: $set_name scored $pairs pairs, the clean set $clean_pairs" >&2
    printf '%s\t%s\t%s\n' "$c" "$s" "$m" >>"$out/robustness.raw"
    awk -v c="$c" -v s="$s" -v m="$m" -v k="$clean" -v p="$pairs" -v kp="$clean_pairs" \
      'BEGIN { printf "%s\t%s\t%.2f\t%.3f\t%s\n", c, s, m, (k > 0 ? m / k : 0), (p == kp ? p : p "/" kp) }' \
      >>"$out/robustness.tsv"
  done
done
column -t "$out/robustness.tsv" 2>/dev/null || cat "$out/robustness.tsv"
# The means from the full-precision values, not the table's two decimals.
awk -F'\t' -v k="$clean" '
  { sum[$1] += $3; n[$1]++; if (!($1 in seen)) { seen[$1] = 1; order[++m] = $1 } all += $3; count++ }
  END {
    printf "clean mIoU %.2f\n", k
    for (i = 1; i <= m; ++i) printf "%-14s mean mIoU %.2f\n", order[i], sum[order[i]] / n[order[i]]
    if (count) printf "mPC %.2f  rPC %.3f (%d sets)\n", all / count, (k > 0 ? all / count / k : 0), count
  }' "$out/robustness.raw" | tee "$out/summary"
