# The semantic-prompt pipeline: rass-caption-map's batch output (key<TAB>prompt
# lines) is rass-restore's --tags, item by item through the shared key rule.
# Expected prompts are worked by hand from the label maps below and OSEDiff's
# test-time join f"{tags}, {prompt}," (REFERENCE.md 3) / RASS's comma-free form.
. "$(dirname "$0")/lib.sh"
C=$B/rass-caption-map
R=$B/rass-restore
[ -x "$R" ] || { echo "skipped: rass-restore not built (no LibTorch)"; exit 77; }
SD=$FIX/nn/sd_tiny
LQ=$FIX/nn/restore_lq.png

# Classes 0 wall, 1 building, 2 sky. a: sky over building (building larger);
# b: wall only. Tags: a has "church" (table: building 0.8: inherits the
# building mask), b "xyzzy" (no table row: no mask, but still in the prompt,
# as seed 000's T = T_Seg u T_RAM).
printf 'wall\nbuilding\nsky\n' >"$T/classes.txt"
printf 'church\tbuilding\t0.8\n' >"$T/table.tsv"
mkdir -p "$T/maps" "$T/lq"
printf 'P5\n3 2\n255\n\002\002\001\001\001\001' >"$T/maps/a.pgm"
printf 'P5\n2 1\n255\n\000\000' >"$T/maps/b.pgm"
printf 'a\tchurch\nb\txyzzy\n' >"$T/tags.tsv"
cp "$LQ" "$T/lq/a.png"
cp "$LQ" "$T/lq/b.png"

expect_exit 0 "caption-map batch" -- "$C" --classes "$T/classes.txt" --table "$T/table.tsv" "$T/maps" --tags "$T/tags.tsv"
cp "$T/.out" "$T/prompts.tsv"
[ "$(cat "$T/prompts.tsv")" = "$(printf 'a\tbuilding, sky, church\nb\twall, xyzzy')" ] ||
  fail "caption-map prompts: $(cat "$T/prompts.tsv")"

expect_exit 0 "restore with caption-map's prompts as tags" -- "$R" -m "$SD" --size-policy pad --vae-mode -q \
  --tags "$T/prompts.tsv" "$T/lq" -O "$T/out" --json
grep -q '"key":"a".*"prompt":"building, sky, church, ,"' "$T/.out" || fail "a's prompt (osediff style): $(cat "$T/.out")"
grep -q '"key":"b".*"prompt":"wall, xyzzy, ,"' "$T/.out" || fail "b's prompt (osediff style): $(cat "$T/.out")"
[ -s "$T/out/a.png" ] && [ -s "$T/out/b.png" ] || fail "restored images"

# RASS style end to end: caption-map and restore both without commas.
"$C" --classes "$T/classes.txt" --table "$T/table.tsv" "$T/maps" --tags "$T/tags.tsv" --prompt-style rass >"$T/rass.tsv" 2>/dev/null
expect_exit 0 "restore, rass prompt style" -- "$R" -m "$SD" --size-policy pad --vae-mode -q --prompt-style rass \
  --tags "$T/rass.tsv" "$T/lq" -O "$T/out2" --json
grep -q '"key":"a".*"prompt":"building sky church"' "$T/.out" || fail "a's prompt (rass style): $(cat "$T/.out")"

# A key without a prompt line is bad input for that item, named.
printf 'a\tchurch\n' >"$T/only_a.tsv"
expect_exit 3 "an item without tags" -- "$R" -m "$SD" --size-policy pad --vae-mode -q --tags "$T/only_a.tsv" "$T/lq" -O "$T/out3"
stderr_has "b" "names the item without tags"
[ -s "$T/out3/a.png" ] || fail "the item with tags is still restored"
finish
