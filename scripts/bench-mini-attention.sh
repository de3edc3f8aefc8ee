#!/usr/bin/env bash
# Does SCL align SCR's cross-attention with the objects in the mini world?
# For one seed of scripts/bench-mini-rass.sh (its SCR with and without SCL),
# rass-restore writes the cross-attention maps of every validation scene
# (--attn-out, --json for the token strings), and
# scripts/mini/attention_alignment.py measures the share of each class token's
# (min-max normalised) map that falls inside the class's mask, against the
# mask's area (what an evenly spread map gets), and draws scene | mask | SCL
# map | no-SCL map rows (and the other runs: SCR_RUNS, the bare backbone).
#
#   scripts/bench-mini-attention.sh [BUILD_DIR] -> bench/results/mini-attention.{txt,png}
#
# Environment: MINI_WORK (./mini-work), BENCH_WORK (./mini-bench), SEED (1),
# THREADS (2), SCR_RUNS ("scr-scl-true scr-scl-false scr-scl-strong": folders under
# seed-SEED; scr-scl-strong is trained here), SCR_STEPS (300, as bench-mini-rass.sh). Needs the seed's SCR runs (bench-mini-rass.sh first).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${1:-$root/build}" && pwd)
mini=${MINI_WORK:-$root/mini-work}
work=${BENCH_WORK:-$root/mini-bench}
seed=${SEED:-1}
threads=${THREADS:-2}
out=${BENCH_OUT:-$root/bench/results/mini-attention}
d=$work/seed-$seed
val=$work/val
# The runs: SCR folders of the seed (SCR_RUNS; e.g. add a run trained with
# other SCL weights), and the pretrained backbone alone (its own cross-attention).
scr_runs=${SCR_RUNS:-scr-scl-true scr-scl-false scr-scl-strong}
# scr-scl-strong: SCR with SCL at 100x the paper's weights (lambda_region 0.1,
# lambda_pixel 5e-3), otherwise as bench-mini-rass.sh's SCR (SCR_STEPS, seed):
# can SCL move the attention at all in this world?
case " $scr_runs " in
  *" scr-scl-strong "*)
    [ -e "$d/scr-scl-strong/final" ] || "$bin/rass-train" scr -o "$d/scr-scl-strong" --resume --steps "${SCR_STEPS:-300}" \
      --batch 4 --lr 2e-4 --seed "$seed" --threads "$threads" --checkpoint-every 100 --log-every 10 -q \
      --set scr.sd="$mini/unet/final" --set scr.hq_dir="$mini/scenes/images" --set scr.pack_dir="$mini/packs" \
      --set scr.crop_size=128 --set scr.scl=true --set scr.lambda_region=0.1 --set scr.lambda_pixel=0.005 ;;
esac
for r in $scr_runs; do
  [ -f "$d/$r/final/scr.unet.safetensors" ] ||
    { echo "bench-mini-attention.sh: $d/$r/final is missing (scripts/bench-mini-rass.sh first)" >&2; exit 1; }
done
runs=()
form=$d/${scr_runs%% *}/final/rass.json  # the SCR form (timestep, formula, prompt style) of the first run
for r in $scr_runs base; do
  a=$d/attn-$r
  lora=()
  [ "$r" = base ] || lora=(--lora "$d/$r/final/scr.unet.safetensors")
  if [ ! -f "$a.jsonl" ]; then
    rm -rf "$a" "$a.jsonl.tmp"
    "$bin/rass-restore" -m "$mini/unet/final" "${lora[@]}" --timestep "$(jq -r .timestep "$form")" \
      --formula "$(jq -r .formula "$form")" --prompt-style "$(jq -r .prompt_style "$form")" --process-size 128 \
      --tags "$val/scenes/tags.tsv" "$val/rass" -O "$a/restored" --attn-out "$a" --threads "$threads" --json -q > "$a.jsonl.tmp"
    mv "$a.jsonl.tmp" "$a.jsonl"
  fi
  case $r in
    scr-scl-true) name="SCR with SCL" ;;
    scr-scl-false) name="SCR without SCL" ;;
    scr-scl-strong) name="SCR with SCL x100 (lambda_region 0.1, lambda_pixel 5e-3)" ;;
    base) name="pretrained backbone (no LoRA)" ;;
    *) name=$r ;;
  esac
  runs+=("$name=$a:$a.jsonl")
done
mkdir -p "$(dirname "$out")"
{
  echo "# scripts/bench-mini-attention.sh — SCR cross-attention vs class masks, seed $seed, SCR ${SCR_STEPS:-300} steps, $(wc -l < "$a.jsonl") validation scenes (scene seed 4242, preset rass)"
  echo "# picture (mini-attention.png): per row a scene, then for its first classes: the mask and each run's map in the order of the lines below (min-max normalised, 8x up)"
  echo "# inside = sum(A*M)/sum(A) per class token (A min-max normalised, attn2 averaged over heads and layers; M at latent size); SCL's region loss is 1 - inside"
  python3 "$root/scripts/mini/attention_alignment.py" "$val/scenes" "$out.png" "${runs[@]}"
} | tee "$out.txt"
