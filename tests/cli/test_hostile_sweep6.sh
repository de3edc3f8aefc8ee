# Found by a second hostile sweep (2026-12-03: formats, text and numeric
# edges), each case failing on the binaries before its fix:
# 1. rass-model sample ignored --max-pixels (--size 30000 took gigabytes,
#    then a LibTorch stack trace), took --seed -1 as 2^64-1 and "" as 0, and
#    --eta above 1 (NaN noise, blamed on the weights);
# 2. an empty value for a numeric option (`--timestep ""`, an unset shell
#    variable) ran as 0 or as "not given"; --kernel-sizes 1.5 ran as 1;
# 3. rass-train --set/--config skipped the --batch bound (loop.batch=2^32
#    tried to allocate 275 GB) and took a negative weight decay;
# 4. a JSON object with one key twice kept the last (a config section, a
#    label map entry, a manifest field silently dropped);
# 5. a UTF-8 byte-order mark in a --tags file became part of the first key
#    or prompt; rass-segment cut long prompts without the warning restore gives.
. "$(dirname "$0")/lib.sh"
for t in rass-model rass-train rass-segment rass-degrade rass-eval-miou rass-scenes; do
  [ -x "$B/$t" ] || { echo "skipped: $t not built"; exit 77; }
done
BASE=$SRC/models/mini/base
"$B/rass-scenes" -n 1 --size 64 -o "$T/sc" -q || { fail "rass-scenes"; finish; }
IMG1=$T/sc/images/scene_000000.png
LAB1=$T/sc/labels/scene_000000.png

# 1. rass-model sample: the pixel limit, seeds, eta.
expect_exit 2 "sample over --max-pixels" -- "$B/rass-model" sample "$BASE" --prompt cat --steps 1 --size 64 --max-pixels 100 -o "$T/s.png" -q
stderr_has "over the pixel limit 100" "the limit is named"
[ ! -e "$T/s.png" ] || fail "an image was written over the limit"
for s in -1 "" 18446744073709551616 1.5; do
  expect_exit 2 "sample --seed '$s'" -- "$B/rass-model" sample "$BASE" --prompt cat --steps 1 --size 16 --seed "$s" -o "$T/s.png" -q
  stderr_has "--seed '$s': expected an integer 0..18446744073709551615" "the seed is named"
done
expect_exit 2 "init --seed -1" -- "$B/rass-model" init "$T/m" --seed -1 -q
stderr_has "--seed '-1'" "the seed is named"
expect_exit 2 "sample --eta 2" -- "$B/rass-model" sample "$BASE" --prompt cat --steps 1 --size 16 --eta 2 -o "$T/s.png" -q
stderr_has "--eta" "eta is named"

# 2. Empty numeric values and fractional kernel sizes.
expect_exit 2 "restore --timestep ''" -- "$B/rass-restore" --timestep "" "$IMG1" -o "$T/r.png" -q
stderr_has "--timestep: expected a number, got an empty value" "the option is named"
expect_exit 2 "degrade --variants ''" -- "$B/rass-degrade" "$T/sc/images" -o "$T/d" --variants "" -q
stderr_has "--variants: expected a number, got an empty value" "the option is named"
expect_exit 2 "degrade --shard ''" -- "$B/rass-degrade" "$T/sc/images" -o "$T/d" --shard "" -q
stderr_has "--shard: expected a number, got an empty value" "an empty shard is not the whole set"
expect_exit 2 "degrade --blur-sigma ''" -- "$B/rass-degrade" "$IMG1" -o "$T/d.png" --blur-sigma "" -q
stderr_has "--blur-sigma" "the option is named"
expect_exit 2 "degrade --kernel-sizes 1.5" -- "$B/rass-degrade" "$IMG1" -o "$T/d.png" --kernel-sizes 1.5 -q
stderr_has "expected odd whole numbers" "the reason given"
expect_exit 2 "degrade --kernel-sizes 1e20" -- "$B/rass-degrade" "$IMG1" -o "$T/d.png" --kernel-sizes 99999999999999999999 -q
stderr_has "expected odd whole numbers" "the reason given"
[ ! -e "$T/d.png" ] || fail "degrade wrote an image for a refused flag"
expect_exit 0 "degrade --kernel-sizes 7,9" -- "$B/rass-degrade" "$IMG1" -o "$T/d.png" --kernel-sizes 7,9 -q

# 3. rass-train's loop settings from --set are bounded as the flags are.
expect_exit 2 "train --set loop.batch=2^32" -- "$B/rass-train" selftest -o "$T/t1" --steps 3 --set loop.batch=4294967296 -q
stderr_has "loop.batch must be in 1..1048576" "the bound is given"
expect_exit 2 "train --set loop.weight_decay=-1" -- "$B/rass-train" selftest -o "$T/t2" --steps 3 --set loop.weight_decay=-1 -q
stderr_has "loop.weight_decay must be" "the setting is named"

# 4. Duplicate keys in JSON are bad input, named.
"$B/rass-train" selftest --print-config >"$T/run.json" 2>/dev/null
printf '{"loop":{"lr":0.1},"loop":{"steps":5}}\n' >"$T/dup.json"
expect_exit 3 "train --config with a key twice" -- "$B/rass-train" selftest --config "$T/dup.json" -o "$T/t3" -q
stderr_has "\"loop\" appears twice" "the key is named"
printf '{"0": 1, "0": 2}\n' >"$T/lm.json"
expect_exit 3 "eval-miou --label-map with a key twice" -- "$B/rass-eval-miou" -n 2 --label-map "$T/lm.json" "$LAB1" "$LAB1" -q
stderr_has "lm.json" "the label map is named"
stderr_has "\"0\" appears twice" "the key is named"
printf '{"pred": "%s", "pred": "%s", "gt": "%s"}\n' "$LAB1" "$IMG1" "$LAB1" >"$T/m.jsonl"
expect_exit 3 "eval-miou --manifest row with a field twice" -- "$B/rass-eval-miou" -n 150 --manifest "$T/m.jsonl" -q
stderr_has "\"pred\" appears twice" "the field is named"

# 5. A BOM before the first key of a --tags file; the truncation warning.
printf '\xef\xbb\xbfscene_000000\tsky, road\n' >"$T/tags.tsv"
expect_exit 0 "segment --tags with a BOM" -- "$B/rass-segment" --tags "$T/tags.tsv" "$T/sc/images" -O "$T/seg" --json --vae-mode
grep -q $'\xef\xbb\xbf' "$T/.out" && fail "the BOM went into the prompt"
grep -q '"prompt":"sky road"' "$T/.out" || fail "the prompt is not the tags: $(head -c 300 "$T/.out")"
long=$(for i in $(seq 90); do printf 'tag%d, ' "$i"; done)
printf 'scene_000000\t%s\n' "$long" >"$T/long.tsv"
expect_exit 0 "segment with a prompt past 77 tokens" -- "$B/rass-segment" --tags "$T/long.tsv" "$IMG1" -o "$T/l.png" --vae-mode
stderr_has "the rest is cut off" "the truncation is warned of"
finish
