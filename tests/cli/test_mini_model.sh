# The embedded mini model (models/mini, made by `make mini-model`): the tools
# use it when no --model is given, it segments and restores scenes it never
# saw (quality floors well under what it measured when committed: a model
# that loads wrongly or a broken default lookup falls far below them), the
# lookup's errors, and recipe.json matching the recipe's current defaults.
. "$(dirname "$0")/lib.sh"
[ -x "$B/rass-segment" ] || { echo "skipped: rass-segment not built (no LibTorch)"; exit 77; }
MINI=$SRC/models/mini
# Floors about half the mIoU and 3 dB under the PSNR the committed model
# measured on these 12 scenes (28.2 mIoU; PSNR 22.2, LQ 22.8).
MIOU_FLOOR=15
PSNR_FLOOR=19
[ -f "$MINI/recipe.json" ] || { fail "models/mini/recipe.json: the committed mini model is missing"; finish; }

# recipe.json records the defaults of scripts/mini-model.sh that made it.
for k in vae unet scr ras; do
  want=$(sed -n "s/^${k}_steps=\${[A-Z_]*:-\([0-9]*\)}.*/\1/p" "$SRC/scripts/mini-model.sh")
  got=$(sed -n "s/.*\"$k\": \([0-9]*\).*/\1/p" "$MINI/recipe.json" | head -1)
  [ -n "$want" ] && [ "$want" = "$got" ] || fail "recipe.json $k steps $got != scripts/mini-model.sh default $want"
done

# Scenes it was not trained on (another seed), their LQ versions.
"$B/rass-scenes" -n 12 --size 128 -s 31337 -o "$T/sc" -q || fail "rass-scenes"
"$B/rass-degrade" "$T/sc/images" -o "$T/lq" -p rass -s 3 -q || fail "rass-degrade"

expect_exit 0 "rass-segment without --model" -- "$B/rass-segment" "$T/sc/images" -O "$T/seg" --tags "$T/sc/tags.tsv" --threads 2
stderr_has "embedded mini model" "says it uses the embedded model"
miou=$("$B/rass-eval-miou" --classes ade20k "$T/seg" "$T/sc/labels" --json -q | sed -n 's/.*"mIoU": \([0-9.]*\).*/\1/p' | head -1)
awk -v m="$miou" -v f="$MIOU_FLOOR" 'BEGIN { exit !(m >= f) }' || fail "clean-scene mIoU $miou under the floor $MIOU_FLOOR"
ok "clean-scene mIoU $miou"

expect_exit 0 "rass-restore without --model" -- "$B/rass-restore" "$T/lq" -O "$T/res" --tags "$T/sc/tags.tsv" --threads 2 -q
[ "$(ls "$T/res" | grep -c '\.png$')" = 12 ] || fail "12 restored images"
psnr() { "$B/rass-eval-iqa" "$1" "$T/sc/images" -m psnr --json -q --no-table | sed -n 's/.*"psnr": \([0-9.]*\).*/\1/p' | tail -1; }
p_lq=$(psnr "$T/lq") p_res=$(psnr "$T/res")
awk -v a="$p_res" -v f="$PSNR_FLOOR" 'BEGIN { exit !(a >= f) }' || fail "restored PSNR $p_res under the floor $PSNR_FLOOR (LQ: $p_lq)"
ok "PSNR LQ $p_lq, restored $p_res"

expect_exit 0 "rass-model sample without a folder" -- "$B/rass-model" sample --prompt "a photo of a meadow with sky, grass and tree" --steps 4 -o "$T/s.png" -q
[ -s "$T/s.png" ] || fail "sample written"

# The lookup's errors: a RASS_MINI_MODEL that is not a model folder is a usage error naming it.
expect_exit 2 "RASS_MINI_MODEL not a model" -- env RASS_MINI_MODEL="$T/nowhere" "$B/rass-segment" "$T/sc/images/scene_000000.png" -o "$T/x.png"
stderr_has "$T/nowhere" "names the variable's folder"
# An explicit --model wins over the default (and says nothing about it).
expect_exit 0 "explicit --model" -- "$B/rass-segment" -m "$MINI/segment" "$T/sc/images/scene_000000.png" -o "$T/y.png" --tags "$T/sc/tags.tsv"
grep -q "embedded mini model" "$T/.err" && fail "no default-model note with --model"
cmp -s "$T/y.png" "$T/seg/scene_000000.png" || fail "-m models/mini/segment gives the default's label map"
finish
