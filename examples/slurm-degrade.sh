#!/usr/bin/env bash
# Build the degraded ADE20K training set as a Slurm job array: each task takes
# one shard (rass-degrade reads SLURM_ARRAY_TASK_ID/COUNT/MIN by itself), so
#   sbatch --array=0-15 examples/slurm-degrade.sh /data/ADE20K/images/training /data/ade20k-lq
# writes /data/ade20k-lq/<name>_v<k>.png + .json and manifest.<i>-of-16.jsonl.
# The result does not depend on the number of tasks: re-running with another
# array size, or with --resume after a preemption, gives the same bytes.
#SBATCH --job-name=rass-degrade
#SBATCH --cpus-per-task=8
#SBATCH --time=02:00:00
#SBATCH --requeue
set -euo pipefail
hq=${1:?usage: sbatch --array=0-N slurm-degrade.sh HQ_DIR OUT_DIR}
out=${2:?usage: sbatch --array=0-N slurm-degrade.sh HQ_DIR OUT_DIR}
rass-degrade "$hq" -o "$out" --preset rass --seed 0 --variants 2 \
  --jobs "${SLURM_CPUS_PER_TASK:-0}" --resume
# After all tasks: cat "$out"/manifest.*-of-*.jsonl > "$out"/manifest.jsonl
