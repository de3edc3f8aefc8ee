#!/usr/bin/env bash
# Seed 000's ablation (its Tables 3 and 4) in the mini world: a benchmark,
# not a test. On the same degraded validation scenes (preset rass, fixed
# seeds), mIoU by rass-eval-miou of
#   DT           head + Seg LoRA trained on clean scenes (no SCR), tested on LQ
#   R2S          DT on LQ first restored by SCR (with SCL)
#   FT-none      RAS on LQ without restoration adaptation (plain backbone)
#   FT-OSEDiff+  RAS from an SCR trained without SCL
#   RASS         RAS from SCR with SCL
# the restoration side (PSNR, SSIM, NIQE; LPIPS with RASS_LPIPS_WEIGHTS) of
# SCR with and without SCL (on 192x192 scenes: NIQE needs 2x2 blocks), and GleSAM's LQ-Seg levels 1-3 (presets
# lqseg-1/2/3) for RASS vs DT. Every trained part is trained once per seed
# (SEEDS, default "1 2 3") from the one pretrained mini backbone of
# `make mini-model` (its work folder; made first if missing); the table gives
# the mean and the spread (sample standard deviation) over the seeds.
#
#   scripts/bench-mini-rass.sh [BUILD_DIR]   -> bench/results/mini-rass.txt
#
# Prompts at test: the scenes' own tag lines stand in for RAM's tags of the
# LQ image (the mini world has no tagger); every row gets the same ones.
#
# Environment: MINI_WORK (./mini-work), BENCH_WORK (./mini-bench), SEEDS,
# SCR_STEPS (300), RAS_STEPS (600), N_VAL (100), THREADS (2),
# RASS_NIQE_PARAMS (default ../shared/data/niqe_pris_params.npz),
# RASS_LPIPS_WEIGHTS (lpips_vgg.safetensors; none here). Resumable: rerun
# with the same folders and finished parts are skipped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${1:-$root/build}" && pwd)
mini=${MINI_WORK:-$root/mini-work}
work=${BENCH_WORK:-$root/mini-bench}
seeds=${SEEDS:-1 2 3}
scr_steps=${SCR_STEPS:-300}
ras_steps=${RAS_STEPS:-600}
n_val=${N_VAL:-100}
threads=${THREADS:-2}
niqe=${RASS_NIQE_PARAMS:-$root/../shared/data/niqe_pris_params.npz}
lpips=${RASS_LPIPS_WEIGHTS:-}
out_txt=${BENCH_OUT:-$root/bench/results/mini-rass.txt}
t_all=$(date +%s)
mkdir -p "$work"
work=$(cd "$work" && pwd)
results=$work/results.tsv  # seed, row, metric, value
# TABLE_ONLY=1: only the table again, from the last full run's results.tsv and wall time.
if [ "${TABLE_ONLY:-0}" = 1 ]; then
  [ -f "$results" ] || { echo "bench-mini-rass.sh: TABLE_ONLY: $results is missing (run without it first)" >&2; exit 1; }
else

if [ ! -d "$mini/unet/final" ] || [ ! -f "$mini/prompts.tsv" ]; then
  echo "== the pretrained mini backbone is missing: scripts/mini-model.sh first" >&2
  MINI_WORK=$mini "$root/scripts/mini-model.sh" "$bin"
fi
base=$mini/unet/final
done_or() { [ -e "$1" ] || { shift; "$@"; }; }
train() {  # train STAGE OUT STEPS BATCH LR SEED [--set ...]
  local st=$1 out=$2 steps=$3 batch=$4 lr=$5 seed=$6
  shift 6
  done_or "$out/final" "$bin/rass-train" "$st" -o "$out" --resume --steps "$steps" --batch "$batch" --lr "$lr" \
    --seed "$seed" --threads "$threads" --checkpoint-every 100 --log-every 10 -q "$@"
}

# Validation scenes (never trained on: another scene seed) and their LQ versions.
val=$work/val
done_or "$val/scenes/manifest.jsonl" "$bin/rass-scenes" -n "$n_val" --size 128 -s 4242 -o "$val/scenes" -q
for p in rass lqseg-1 lqseg-2 lqseg-3; do
  done_or "$val/$p/.done" bash -c '"$1/rass-degrade" "$2/scenes/images" -o "$2/$3" -p "$3" -s 7 -q && touch "$2/$3/.done"' _ "$bin" "$val" "$p"
done
# The restoration side on 192x192 scenes: NIQE needs at least 2x2 blocks of 96 px.
valr=$work/val-restore
done_or "$valr/scenes/manifest.jsonl" "$bin/rass-scenes" -n "$n_val" --size 192 -s 4343 -o "$valr/scenes" -q
done_or "$valr/rass/.done" bash -c '"$1/rass-degrade" "$2/scenes/images" -o "$2/rass" -p rass -s 7 -q && touch "$2/rass/.done"' _ "$bin" "$valr"

miou() { "$bin/rass-eval-miou" --classes ade20k "$1" "$val/scenes/labels" --json -q | jq -r '.summary.mIoU'; }
segment() {  # segment MODEL INPUT_DIR OUT_DIR -> prints mIoU
  done_or "$3/.done" bash -c '"$1/rass-segment" -m "$2" "$3" -O "$4" --tags "$6" --threads "$5" -q && touch "$4/.done"' \
    _ "$bin" "$1" "$2" "$3" "$threads" "$val/scenes/tags.tsv"
  miou "$3"
}
: > "$results.new"
put() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$results.new"; }

# The LQ input's own scores (the same for every seed).
lq_json=$("$bin/rass-eval-iqa" "$valr/rass" "$valr/scenes/images" -m psnr,ssim --json -q --no-table)
lq_niqe=$([ -f "$niqe" ] && "$bin/rass-eval-iqa" -m niqe --niqe-params "$niqe" "$valr/rass" --json -q --no-table | jq -r '.mean.niqe' || true)
hq_niqe=$([ -f "$niqe" ] && "$bin/rass-eval-iqa" -m niqe --niqe-params "$niqe" "$valr/scenes/images" --json -q --no-table | jq -r '.mean.niqe' || true)

for s in $seeds; do
  d=$work/seed-$s
  echo "== seed $s" >&2
  put "$s" "LQ input (rass preset)" PSNR "$(jq -r '.mean.psnr' <<<"$lq_json")"
  put "$s" "LQ input (rass preset)" SSIM "$(jq -r '.mean.ssim' <<<"$lq_json")"
  [ -n "$lq_niqe" ] && put "$s" "LQ input (rass preset)" NIQE "$lq_niqe"
  [ -n "$hq_niqe" ] && put "$s" "HQ (clean scenes)" NIQE "$hq_niqe"
  for scl in true false; do
    train scr "$d/scr-scl-$scl" "$scr_steps" 4 2e-4 "$s" \
      --set scr.sd="$base" --set scr.hq_dir="$mini/scenes/images" --set scr.pack_dir="$mini/packs" \
      --set scr.crop_size=128 --set scr.scl="$scl"
    lora=$d/scr-scl-$scl/final/scr.unet.safetensors
    restore() {  # restore VAL_DIR OUT_DIR
      # The form SCR was trained in (its rass.json: timestep, formula, prompt style).
      local form=${lora%/*}/rass.json
      done_or "$2/.done" bash -c '"$1/rass-restore" -m "$2" --lora "$3" --timestep "$(jq -r .timestep "$7")" --formula "$(jq -r .formula "$7")" \
        --prompt-style "$(jq -r .prompt_style "$7")" --process-size 128 --tags "$4/scenes/tags.tsv" "$4/rass" -O "$5" --threads "$6" -q && touch "$5/.done"' \
        _ "$bin" "$base" "$lora" "$1" "$2" "$threads" "$form"
    }
    restore "$val" "$d/restored-scl-$scl"       # R2S's input (128 px)
    r=$d/restored192-scl-$scl
    restore "$valr" "$r"
    row=$([ "$scl" = true ] && echo "SCR (SCL)" || echo "SCR w/o SCL (OSEDiff+)")
    m=psnr,ssim
    [ -n "$lpips" ] && m=$m,lpips
    json=$("$bin/rass-eval-iqa" "$r" "$valr/scenes/images" -m "$m" ${lpips:+--weights lpips=$lpips} --json -q --no-table)
    put "$s" "$row" PSNR "$(jq -r '.mean.psnr' <<<"$json")"
    put "$s" "$row" SSIM "$(jq -r '.mean.ssim' <<<"$json")"
    [ -n "$lpips" ] && put "$s" "$row" LPIPS "$(jq -r '.mean.lpips' <<<"$json")"
    [ -f "$niqe" ] && put "$s" "$row" NIQE "$("$bin/rass-eval-iqa" -m niqe --niqe-params "$niqe" "$r" --json -q --no-table | jq -r '.mean.niqe')"
  done
  # Segmentation starts: plain backbone (DT, FT-none), SCR without / with SCL.
  for v in plain noscl scl; do
    case $v in
      plain) src=(--no-scr) ;;
      noscl) src=(--lora "$d/scr-scl-false/final/scr.unet.safetensors") ;;
      scl) src=(--lora "$d/scr-scl-true/final/scr.unet.safetensors") ;;
    esac
    done_or "$d/init-$v" "$bin/rass-merge-lora" init-seg --model "$base" "${src[@]}" --timestep 1 --formula residual \
      --head "$root/scripts/mini/head.json" --classes ade20k --seed "$s" -q -O "$d/init-$v"
  done
  ras() {  # ras NAME INIT PRESET
    # The mini recipe's RAS solver (scripts/mini-model.sh): lr 1e-3, 50 warmup steps.
    train ras "$d/ras-$1" "$ras_steps" 4 1e-3 "$s" --set ras.model="$d/init-$2" --set ras.images="$mini/scenes/images" \
      --set ras.labels="$mini/scenes/labels" --set ras.crop_size=128 --set ras.num_points=2048 --set ras.preset="$3" \
      --set loop.warmup_steps=50
  }
  ras dt plain none
  ras ftnone plain rass
  ras ftosediff noscl rass
  ras rass scl rass
  put "$s" "DT" mIoU "$(segment "$d/ras-dt/final" "$val/rass" "$d/seg-dt")"
  put "$s" "R2S" mIoU "$(segment "$d/ras-dt/final" "$d/restored-scl-true" "$d/seg-r2s")"
  put "$s" "FT-none" mIoU "$(segment "$d/ras-ftnone/final" "$val/rass" "$d/seg-ftnone")"
  put "$s" "FT-OSEDiff+" mIoU "$(segment "$d/ras-ftosediff/final" "$val/rass" "$d/seg-ftosediff")"
  put "$s" "RASS" mIoU "$(segment "$d/ras-rass/final" "$val/rass" "$d/seg-rass")"
  put "$s" "DT (clean input)" mIoU "$(segment "$d/ras-dt/final" "$val/scenes/images" "$d/seg-dt-clean")"
  for l in 1 2 3; do
    put "$s" "LQ-Seg level $l: DT" mIoU "$(segment "$d/ras-dt/final" "$val/lqseg-$l" "$d/seg-dt-l$l")"
    put "$s" "LQ-Seg level $l: RASS" mIoU "$(segment "$d/ras-rass/final" "$val/lqseg-$l" "$d/seg-rass-l$l")"
  done
done
mv "$results.new" "$results"
echo $(( $(date +%s) - t_all )) > "$work/run-seconds"
echo "seeds: $seeds; SCR $scr_steps steps, RAS $ras_steps steps (batch 4, crop 128); $n_val validation scenes (scene seed 4242, degradation seed 7); $threads threads" > "$work/run-settings"
fi

# One table: mean and sample standard deviation over the seeds.
secs=$(cat "$work/run-seconds")
mkdir -p "$(dirname "$out_txt")"
{
  echo "# scripts/bench-mini-rass.sh — seed 000's ablation in the mini world"
  echo "# $(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores; the run took ${secs} s"
  echo "# $(cat "$work/run-settings")"
  echo "# backbone: make mini-model's pretrained mini SD ($(jq -c '.steps' "$mini/../models/mini/recipe.json" 2>/dev/null || echo 'see recipe.json'))"
  awk -F'\t' '
    { key = $2 "\t" $3; if (!(key in n)) order[++k] = key; n[key]++; sum[key] += $4; sq[key] += $4 * $4; vals[key] = vals[key] sprintf(" %.3f", $4) }
    END {
      printf "%-26s %-6s %9s %8s   %s\n", "row", "metric", "mean", "spread", "per seed"
      for (i = 1; i <= k; i++) {
        key = order[i]; split(key, f, "\t"); m = sum[key] / n[key]
        var = n[key] > 1 ? (sq[key] - n[key] * m * m) / (n[key] - 1) : 0
        sd = var > 0 ? sqrt(var) : 0  # equal values: rounding can make var slightly negative
        printf "%-26s %-6s %9.3f %8.3f  %s\n", f[1], f[2], m, sd, vals[key]
      }
    }' "$results"
} | tee "$out_txt"
