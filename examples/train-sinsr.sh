#!/usr/bin/env bash
# SinSR's one-step distillation (or SAMSR's, NOISE=sam) of a ResShift teacher
# and what it buys, with rass-train and rass-samsr:
#   1. rass-train sinsr: TEACHER's network (a rass-samsr folder of ResShift,
#      e.g. resshift_realsrx4_s15_v1.pth converted with --method resshift)
#      copied into a student trained to map the prior to the teacher's
#      15-step result in one step, on HQ crops of TRAIN_HQ degraded online by
#      the Real-ESRGAN x4 model (+ the inverse map and the HQ latents' loss),
#   2. examples/eval-sr-samsr.sh for the teacher (its whole chain) and for
#      the student (one step) on EVAL_HQ: PSNR and SSIM on Y, crop 4,
#   3. one table: images, then PSNR and SSIM of the teacher and the student.
# With RESSHIFT_STEPS > 0 the teacher is first fine-tuned on TRAIN_HQ by
# rass-train resshift (ResShift's own loss), and that network is distilled.
# A second run resumes the training and the evaluation where they stopped.
#
# Usage: examples/train-sinsr.sh TEACHER TRAIN_HQ EVAL_HQ [OUT_DIR]
#   e.g. examples/train-sinsr.sh resshift-s15 imagenet/train imagenet256/gt sinsr
# Environment:
#   NOISE      gaussian (SinSR, default) or sam (SAMSR; the teacher's sam/ or SAM=DIR)
#   STEPS      optimizer steps (default 500000 as released: give far fewer to try it)
#   BATCH      samples a step (default 64, as released); CROP the HQ crop (256)
#   WARMUP     linear warmup steps (default 5000, SinSR's; SAMSR's config has 50000)
#   RESSHIFT_STEPS  fine-tune the teacher first for this many steps (default 0: as given)
#   TRAIN_FLAGS more rass-train flags, e.g. "--device cuda --set loop.amp=true"
#   SAMSR_FLAGS more rass-samsr flags for the evaluation
set -euo pipefail
usage="usage: train-sinsr.sh TEACHER TRAIN_HQ EVAL_HQ [OUT_DIR]"
teacher=${1:?$usage}
train_hq=${2:?$usage}
eval_hq=${3:?$usage}
out=${4:-sinsr}
noise=${NOISE:-gaussian}
steps=${STEPS:-500000}
batch=${BATCH:-64}
crop=${CROP:-256}
warmup=${WARMUP:-5000}
read -r -a train_flags <<<"${TRAIN_FLAGS:-}"
here=$(cd "$(dirname "$0")" && pwd)
unset CDPATH

mkdir -p "$out"
if [ "${RESSHIFT_STEPS:-0}" -gt 0 ]; then
  resume=()
  [ -n "$(ls -A "$out/teacher/checkpoints" 2>/dev/null)" ] && resume=(--resume)
  rass-train resshift --set resshift.model="$teacher" --set resshift.images="$train_hq" --set resshift.crop_size="$crop" \
    --set loop.warmup_steps="$warmup" -o "$out/teacher" --steps "$RESSHIFT_STEPS" --batch "$batch" -q \
    ${resume[@]+"${resume[@]}"} ${train_flags[@]+"${train_flags[@]}"}
  teacher=$out/teacher/final
fi
sam=()
[ -n "${SAM:-}" ] && sam=(--set sinsr.sam="$SAM")
resume=()
[ -n "$(ls -A "$out/train/checkpoints" 2>/dev/null)" ] && resume=(--resume)
rass-train sinsr --set sinsr.teacher="$teacher" --set sinsr.images="$train_hq" --set sinsr.noise="$noise" \
  --set sinsr.crop_size="$crop" --set loop.warmup_steps="$warmup" ${sam[@]+"${sam[@]}"} -o "$out/train" \
  --steps "$steps" --batch "$batch" -q ${resume[@]+"${resume[@]}"} ${train_flags[@]+"${train_flags[@]}"}

# The teacher runs its own chain with Gaussian noise; the student its one step with its noise.
NOISES=gaussian bash "$here/eval-sr-samsr.sh" "$teacher" "$eval_hq" "$out/eval-teacher" >/dev/null
NOISES=$noise bash "$here/eval-sr-samsr.sh" "$out/train/final" "$eval_hq" "$out/eval-student" >/dev/null
paste "$out/eval-teacher/summary.tsv" "$out/eval-student/summary.tsv" |
  awk -F'\t' 'NR == 1 { print "images\tPSNR_teacher\tPSNR_student\tSSIM_teacher\tSSIM_student"; next }
              { print $2 "\t" $3 "\t" $7 "\t" $4 "\t" $8 }' >"$out/summary.tsv"
column -t "$out/summary.tsv" 2>/dev/null || cat "$out/summary.tsv"
