#!/usr/bin/env bash
# make mini-model: the embedded default model (models/mini) from nothing, with
# this project's own tools, seeds fixed:
#   1 rass-scenes        N_TRAIN clean 128x128 scenes (images, labels, tags, captions)
#   2 rass-model init    --preset mini (SD's architecture, small; word tokenizer)
#   3 rass-train vae     reconstruction (L1) + KL on 64x64 crops
#   4 rass-train unet    epsilon DDPM on the captions, 10% empty prompts (CFG)
#   5 rass-caption-map   SCL's masks + token positions per scene
#   6 rass-train scr     SCR LoRA with SCL, LQ made online (preset rass)
#   7 rass-merge-lora    merge (restore/) and init-seg (SCR merged, Seg LoRA, head)
#   8 rass-train ras     Seg LoRA + conv_in + projection + head on LQ crops
#   9 assemble           models/mini/{base,restore,segment} + recipe.json
# Every stage skips what is finished, so a killed run continues where it
# stopped (rass-train --resume picks the newest checkpoint: the same weights
# bit for bit as an uninterrupted run).
#
#   scripts/mini-model.sh [BUILD_DIR]
#
# Environment: MINI_WORK (work folder, default ./mini-work), MINI_DEST (the
# model folder written, default models/mini), THREADS (2: the thread count is
# part of what makes the weights bit-identical), and the sizes N_TRAIN,
# VAE_STEPS, UNET_STEPS, SCR_STEPS, RAS_STEPS, SCR_SCL (true; false trains
# OSEDiff+), SEED (1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${1:-$root/build}" && pwd)
work=${MINI_WORK:-$root/mini-work}
dest=${MINI_DEST:-$root/models/mini}
threads=${THREADS:-2}
seed=${SEED:-1}
n_train=${N_TRAIN:-1000}
vae_steps=${VAE_STEPS:-1200}
unet_steps=${UNET_STEPS:-1600}
scr_steps=${SCR_STEPS:-300}
ras_steps=${RAS_STEPS:-600}
scl=${SCR_SCL:-true}
mkdir -p "$work"
work=$(cd "$work" && pwd)
times=$work/times.tsv
t_all=$(date +%s)
stage() {  # stage NAME DONE_TEST_FILE COMMAND...: runs unless DONE exists, logs its wall time
  local name=$1 done=$2
  shift 2
  if [ -e "$done" ]; then echo "== $name: done" >&2; return; fi
  echo "== $name" >&2
  local t0=$(date +%s)
  "$@"
  printf '%s\t%s\n' "$name" $(( $(date +%s) - t0 )) >> "$times"
}
train() {  # train STAGE OUT STEPS BATCH LR [--set ...]: resumable rass-train run
  local st=$1 out=$2 steps=$3 batch=$4 lr=$5
  shift 5
  "$bin/rass-train" "$st" -o "$out" --resume --steps "$steps" --batch "$batch" --lr "$lr" --seed "$seed" \
    --threads "$threads" --checkpoint-every 200 --log-every 10 -q "$@"
}

stage scenes "$work/scenes/manifest.jsonl" \
  "$bin/rass-scenes" -n "$n_train" --size 128 -s "$seed" -o "$work/scenes" -q --resume
stage init "$work/init" \
  "$bin/rass-model" init --preset mini --seed "$seed" -q "$work/init"
stage vae "$work/vae/final" train vae "$work/vae" "$vae_steps" 8 5e-4 \
  --set vae.sd="$work/init" --set vae.images="$work/scenes/images" --set vae.crop_size=64
stage unet "$work/unet/final" train unet "$work/unet" "$unet_steps" 8 3e-4 \
  --set unet.sd="$work/vae/final" --set unet.images="$work/scenes/images" --set unet.crop_size=128
base=$work/unet/final
stage caption-map "$work/prompts.tsv" bash -c '
  "$1/rass-caption-map" --tags "$2/scenes/tags.tsv" --tokenizer "$3" -O "$2/packs" -q --resume "$2/scenes/labels" > "$2/prompts.tsv.tmp"
  mv "$2/prompts.tsv.tmp" "$2/prompts.tsv"' _ "$bin" "$work" "$base"
stage scr "$work/scr/final" train scr "$work/scr" "$scr_steps" 4 2e-4 \
  --set scr.sd="$base" --set scr.hq_dir="$work/scenes/images" --set scr.pack_dir="$work/packs" \
  --set scr.crop_size=128 --set scr.scl="$scl"
scr=$work/scr/final/scr.unet.safetensors
stage restore-folder "$work/restore" bash -c '
  rm -rf "$4.tmp"  # a run killed here left it
  "$1/rass-merge-lora" merge --model "$2" --lora "$3" -O "$4.tmp" -q
  cp "$5" "$4.tmp/rass.json"
  mv "$4.tmp" "$4"' _ "$bin" "$base" "$scr" "$work/restore" "$work/scr/final/rass.json"
stage init-seg "$work/seg-init" \
  "$bin/rass-merge-lora" init-seg --model "$base" --lora "$scr" --timestep 1 --formula residual \
  --head "$root/scripts/mini/head.json" --classes ade20k --seed "$seed" -q -O "$work/seg-init"
# RAS at 10x the released lr (1e-4 for 160k steps) with a 50-step warmup: at
# 1e-4 the head from scratch reached 7% mIoU on clean scenes in 600 steps.
stage ras "$work/ras/final" train ras "$work/ras" "$ras_steps" 4 1e-3 \
  --set ras.model="$work/seg-init" --set ras.images="$work/scenes/images" --set ras.labels="$work/scenes/labels" \
  --set ras.crop_size=128 --set ras.num_points=2048 --set loop.warmup_steps=50

# 9. The model folder: links resolved (files, not links into the work folder),
#    written beside the destination and renamed into place.
tmp=$dest.tmp.$$
rm -rf "$tmp"
mkdir -p "$tmp"
cp -rL "$base" "$tmp/base"
cp -rL "$work/restore" "$tmp/restore"
cp -rL "$work/ras/final" "$tmp/segment"
# The embedded model is no training export: a later export may not take it for one.
find "$tmp" -name .rass-export -delete
secs=$(awk -F'\t' '{s += $2} END {print s + 0}' "$times")
python_free_json() {  # recipe.json without python: what made the folder
  printf '{\n'
  printf '  "made_by": "make mini-model (scripts/mini-model.sh)",\n'
  printf '  "rass_version": "%s",\n' "$("$bin/rass-train" --version 2>/dev/null | head -1 | sed 's/"/\\"/g')"
  printf '  "git_commit": "%s",\n' "$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
  printf '  "seed": %s, "threads": %s,\n' "$seed" "$threads"
  printf '  "scenes": {"count": %s, "size": 128, "seed": %s},\n' "$n_train" "$seed"
  printf '  "steps": {"vae": %s, "unet": %s, "scr": %s, "ras": %s},\n' "$vae_steps" "$unet_steps" "$scr_steps" "$ras_steps"
  printf '  "scl": %s,\n' "$scl"
  printf '  "machine": "%s, %s cores",\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" "$(nproc)"
  printf '  "stage_seconds": {'
  awk -F'\t' 'BEGIN{n=0} {printf "%s\"%s\": %s", (n++ ? ", " : ""), $1, $2}' "$times"
  printf '},\n  "wall_seconds_total": %s\n}\n' "$secs"
}
python_free_json > "$tmp/recipe.json"
rm -rf "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$tmp" "$dest"
rm -rf "$dest.old"
echo "mini model written to $dest ($(du -sh "$dest" | cut -f1); stages: $secs s, this run $(( $(date +%s) - t_all )) s)" >&2
