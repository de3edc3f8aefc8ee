# The scripts in examples/ run as their headers say, with the built tools
# first in PATH: before this test none was run, and eval-lq-seg.sh called
# rass-segment on a folder with -o (exit 2) since batch mode moved to -O.
# Each is checked for exit 0 and for outputs whose counts follow from the
# inputs (images x levels x variants, one row per set), not for numbers.
# Needs the network tools; skipped (77) where they are not built.
. "$(dirname "$0")/lib.sh"
E=$SRC/examples
for t in rass-degrade rass-segment rass-sam rass-samsr rass-restore rass-eval-miou rass-eval-iqa rass-caption-map rass-scenes rass-train; do
  [ -x "$B/$t" ] || { echo "skipped: $t not built"; exit 77; }
done
export PATH=$B:$PATH RASS_MINI_MODEL=${RASS_MINI_MODEL:-$SRC/models/mini} TMPDIR=$T
cd "$T" || exit 1
expect_exit 0 "scenes for the examples" -- rass-scenes -n 2 --size 64 -o sc -q
expect_exit 0 "their LQ images" -- rass-degrade sc/images -o lq -p rass -s 1 -q

# eval-lq-seg.sh: HQ + three LQ-Seg levels segmented (the embedded model)
# and scored: a header and one row per set, each of the 2 pairs.
expect_exit 0 "eval-lq-seg.sh" -- env EVAL_FLAGS="--classes ade20k" bash "$E/eval-lq-seg.sh" sc/images sc/labels ev
[ "$(wc -l <ev/summary.tsv)" = 5 ] || fail "eval-lq-seg.sh: summary.tsv should hold a header and 4 sets: $(cat ev/summary.tsv)"
[ "$(awk -F'\t' 'NR > 1 && $5 == 2' ev/summary.tsv | wc -l)" = 4 ] || fail "eval-lq-seg.sh: every set has 2 pairs"

# eval-lqseg-sam.sh: GleSAM's protocol with the tiny SAM: every object of
# the scenes' label maps prompted by its box on HQ and three levels.
expect_exit 0 "eval-lqseg-sam.sh" -- bash "$E/eval-lqseg-sam.sh" "$FIX/nn/sam_tiny" sc/images sc/labels sam
[ "$(wc -l <sam/summary.tsv)" = 5 ] || fail "eval-lqseg-sam.sh: a header and 4 sets expected: $(cat sam/summary.tsv)"
objs=$(awk -F'\t' 'NR == 2 { print $2 }' sam/summary.tsv)
[ "$(awk -F'\t' -v n="$objs" 'NR > 1 && $2 == n && n > 0' sam/summary.tsv | wc -l)" = 4 ] ||
  fail "eval-lqseg-sam.sh: every set scores the same objects: $(cat sam/summary.tsv)"
cp sam/summary.tsv sam-first.tsv
expect_exit 0 "eval-lqseg-sam.sh again (degradations resumed)" -- bash "$E/eval-lqseg-sam.sh" "$FIX/nn/sam_tiny" sc/images sc/labels sam
cmp -s sam/summary.tsv sam-first.tsv || fail "eval-lqseg-sam.sh: a second run gives another summary"

# train-glesam-decoder.sh: one epoch of the tiny SAM's decoder on the scenes'
# objects, then both folders evaluated: a header and a row per set, each
# scoring the same objects before and after; a rerun resumes (no new step).
expect_exit 0 "train-glesam-decoder.sh" -- env EPOCHS=1 BATCH=2 SIZE=64 \
  bash "$E/train-glesam-decoder.sh" "$FIX/nn/sam_tiny" sc/images sc/labels gd
[ "$(wc -l <gd/summary.tsv)" = 5 ] || fail "train-glesam-decoder.sh: a header and 4 sets expected: $(cat gd/summary.tsv)"
[ -s gd/train/final/sam.safetensors ] || fail "train-glesam-decoder.sh: no fine-tuned folder"
cmp -s gd/train/final/sam.safetensors "$FIX/nn/sam_tiny/sam.safetensors" && fail "train-glesam-decoder.sh: nothing trained"
[ "$(awk -F'\t' 'NR > 1 && $2 > 0' gd/summary.tsv | wc -l)" = 4 ] || fail "train-glesam-decoder.sh: sets without objects"
cp gd/summary.tsv gd-first.tsv
expect_exit 0 "train-glesam-decoder.sh again (resumed)" -- env EPOCHS=1 BATCH=2 SIZE=64 \
  bash "$E/train-glesam-decoder.sh" "$FIX/nn/sam_tiny" sc/images sc/labels gd
cmp -s gd/summary.tsv gd-first.tsv || fail "train-glesam-decoder.sh: a rerun gives another summary"
# With SD: GleSAM's whole training (the enhancer, then the decoder in its export).
expect_exit 0 "train-glesam-decoder.sh with SD" -- env EPOCHS=1 BATCH=2 SIZE=64 ENHANCER_STEPS=2 SD="$FIX/nn/sd_tiny" \
  bash "$E/train-glesam-decoder.sh" "$FIX/nn/sam_tiny" sc/images sc/labels gle
[ -s gle/enhancer/final/unet/diffusion_pytorch_model.safetensors ] || fail "train-glesam-decoder.sh: no enhancer"
[ -s gle/train/final/unet/diffusion_pytorch_model.safetensors ] || fail "train-glesam-decoder.sh: the decoder's folder lacks the enhancer"
grep -q '"enhancer"' gle/train/final/sam.json || fail "train-glesam-decoder.sh: the tuned folder is not GleSAM's"
[ "$(wc -l <gle/summary.tsv)" = 5 ] || fail "train-glesam-decoder.sh with SD: a header and 4 sets expected: $(cat gle/summary.tsv)"

# eval-sr-samsr.sh: x4 SR of the scenes with the tiny SAMSR model, both
# noises scored (a header and one row per noise, each of the 2 images).
expect_exit 0 "eval-sr-samsr.sh" -- bash "$E/eval-sr-samsr.sh" "$FIX/nn/samsr_tiny" sc/images srv
[ "$(wc -l <srv/summary.tsv)" = 3 ] || fail "eval-sr-samsr.sh: a header and 2 noises expected: $(cat srv/summary.tsv)"
[ "$(awk -F'\t' 'NR > 1 && $2 == 2' srv/summary.tsv | wc -l)" = 2 ] || fail "eval-sr-samsr.sh: every noise scores 2 images"
cp srv/summary.tsv srv-first.tsv
expect_exit 0 "eval-sr-samsr.sh again (resumed)" -- bash "$E/eval-sr-samsr.sh" "$FIX/nn/samsr_tiny" sc/images srv
cmp -s srv/summary.tsv srv-first.tsv || fail "eval-sr-samsr.sh: a second run gives another summary"

# train-sinsr.sh: two distillation steps of the tiny network, then the
# teacher and the student scored on the scenes (one row, both columns).
expect_exit 0 "train-sinsr.sh" -- env STEPS=2 BATCH=2 CROP=64 WARMUP=0 \
  bash "$E/train-sinsr.sh" "$FIX/nn/samsr_tiny" sc/images sc/images sd
[ "$(wc -l <sd/summary.tsv)" = 2 ] || fail "train-sinsr.sh: a header and one row expected: $(cat sd/summary.tsv)"
[ "$(awk -F'\t' 'NR == 2 && $1 == 2' sd/summary.tsv | wc -l)" = 1 ] || fail "train-sinsr.sh: 2 images scored: $(cat sd/summary.tsv)"
grep -qF '"method": "sinsr"' sd/train/final/samsr.json || fail "train-sinsr.sh: the student is not method sinsr"
expect_exit 0 "train-sinsr.sh with the teacher fine-tuned first" -- env RESSHIFT_STEPS=1 STEPS=1 BATCH=2 CROP=64 WARMUP=0 \
  bash "$E/train-sinsr.sh" "$FIX/nn/samsr_tiny" sc/images sc/images sd2
grep -qF '"method": "resshift"' sd2/teacher/final/samsr.json || fail "train-sinsr.sh: no fine-tuned teacher"
grep -qF "sd2/teacher/final" sd2/train/final/samsr.json || fail "train-sinsr.sh: the student was not distilled from it"

# eval-robustness.sh: two corruptions at two severities, a row each, the
# summary's mPC over the four; a rerun finds every set done.
expect_exit 0 "eval-robustness.sh" -- env CORRUPTIONS="fog snow" SEVERITIES="1 3" EVAL_FLAGS="--classes ade20k" \
  bash "$E/eval-robustness.sh" sc/images sc/labels rb
[ "$(wc -l <rb/robustness.tsv)" = 5 ] || fail "eval-robustness.sh: a header and 4 rows expected: $(cat rb/robustness.tsv)"
grep -q "^mPC [0-9.]*  rPC [0-9.]* (4 sets)$" rb/summary || fail "eval-robustness.sh: no mPC line: $(cat rb/summary)"
cp rb/summary rb/summary.first
expect_exit 0 "eval-robustness.sh again" -- env CORRUPTIONS="fog snow" SEVERITIES="1 3" EVAL_FLAGS="--classes ade20k" \
  bash "$E/eval-robustness.sh" sc/images sc/labels rb
cmp -s rb/summary rb/summary.first || fail "eval-robustness.sh: the rerun changed the summary"

# build-dataset.sh: every example image at three levels, two variants each.
n_img=$(find "$E/images" -maxdepth 1 -type f \( -name '*.png' -o -name '*.jpg' \) | wc -l)
expect_exit 0 "build-dataset.sh" -- bash "$E/build-dataset.sh" "$E/images" bd
[ "$(wc -l <bd/train.jsonl)" = $((n_img * 6)) ] || fail "build-dataset.sh: train.jsonl should list $n_img x 6 rows"

# caption-restore.sh: prompts from the label maps, one restored image each.
expect_exit 0 "caption-restore.sh" -- bash "$E/caption-restore.sh" sc/labels lq cr
[ "$(wc -l <cr/prompts.tsv)" = 2 ] && [ "$(find cr/restored -name '*.png' | wc -l)" = 2 ] ||
  fail "caption-restore.sh: 2 prompts and 2 restored images expected"

# The two pipelines (tiny random-weight fixture models by default).
expect_exit 0 "restore-pipeline.sh" -- bash "$E/restore-pipeline.sh"
grep -q "^restored " "$T/.out" || fail "restore-pipeline.sh: no score row for the restored image"
expect_exit 0 "segment-pipeline.sh" -- bash "$E/segment-pipeline.sh"
stderr_has "2 pairs evaluated, 0 failed" "segment-pipeline.sh scores both images"

# slurm-degrade.sh as array task 1 of 2: its shard, its manifest.
expect_exit 0 "slurm-degrade.sh (task 1 of 2)" -- env SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 \
  bash "$E/slurm-degrade.sh" sc/images sl
[ -s sl/manifest.1-of-2.jsonl ] && [ ! -e sl/manifest.0-of-2.jsonl ] || fail "slurm-degrade.sh: shard 1's manifest only"

# train-torchrun.sh: two Gloo processes of the self-test.
expect_exit 0 "train-torchrun.sh 2 selftest" -- env MASTER_PORT=$((20000 + RANDOM % 20000)) \
  bash "$E/train-torchrun.sh" 2 selftest -o runs/st --steps 4 --threads 1
[ -d runs/st/final ] || fail "train-torchrun.sh: no final model"

# train-rass.sh: both stages end to end, two steps each (about a minute).
expect_exit 0 "train-rass.sh (2 steps)" -- env RASS_BIN="$B" STEPS=2 THREADS=1 bash "$E/train-rass.sh" tr
for f in scr-curves.png ras-curves.png; do [ -s "tr/$f" ] || fail "train-rass.sh: no tr/$f"; done
[ -n "$(find tr/seg -name '*.png' 2>/dev/null | head -1)" ] || fail "train-rass.sh: no label maps in tr/seg"
finish
