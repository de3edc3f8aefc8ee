# Hostile invocations found by the third sweep (2026-12-03), classical tools:
# endless or binary files where an image, an array or text is expected
# (/dev/zero was read until the memory ran out), an output file that is an
# existing directory (found only after the work), an output named
# /dev/stdout or /dev/fd/N. The network tools' findings are checked in
# test_merge_lora.sh and test_train_hostile.sh.
. "$(dirname "$0")/lib.sh"
E=$B/rass-eval-miou
Q=$B/rass-eval-iqa
D=$B/rass-degrade
MI=$FIX/miou
A=$FIX/metrics/pair_a.png

# 1. /dev/zero as an image, a label map, an array or a text file: exit 3
#    naming it at once (each run under a 30 s limit and 4 GiB of memory, so
#    reading it whole fails the check instead of the machine).
limited() { bash -c 'ulimit -v 4194304; exec timeout 30 "$@"' limited "$@"; }
expect_exit 3 "eval-miou: /dev/zero as a prediction" -- limited "$E" -n 3 /dev/zero "$MI/gt/a.png"
stderr_has "/dev/zero: unsupported image format" "the file and the reason are named"
expect_exit 3 "eval-iqa: /dev/zero as an image" -- limited "$Q" -m psnr /dev/zero "$A"
stderr_has "/dev/zero" "the file is named"
expect_exit 3 "degrade: /dev/zero as the HQ image" -- limited "$D" /dev/zero -o "$T/x.png" -q
stderr_has "/dev/zero" "the file is named"
expect_exit 3 "eval-miou: /dev/zero as the class list" -- limited "$E" --match-stem "$MI/pred" "$MI/gt" --classes /dev/zero
stderr_has "not a text file" "the reason is given"
expect_exit 3 "eval-miou: /dev/zero as a manifest" -- limited "$E" -n 3 --manifest /dev/zero
stderr_has "/dev/zero" "the file is named"
expect_exit 3 "eval-iqa: /dev/zero as NIQE's parameters" -- limited "$Q" -m niqe --niqe-params /dev/zero "$A"
stderr_has "not a ZIP archive" "the reason is given"

# 2. An output file that is an existing directory: exit 2 before any work.
mkdir -p "$T/somedir"
expect_exit 2 "eval-miou --csv a directory" -- "$E" --match-stem "$MI/pred" "$MI/gt" -n 3 --csv "$T/somedir"
stderr_has "is an existing directory" "the reason is given"
expect_exit 2 "eval-iqa --csv a directory" -- "$Q" -m psnr "$A" "$FIX/metrics/pair_b.png" --csv "$T/somedir"
[ -z "$(ls -A "$T/somedir")" ] || fail "nothing written into the directory"

# 3. /dev/fd/N: written through the open descriptor.
expect_exit 0 "--per-image /dev/fd/3" -- bash -c \
  "'$E' --match-stem '$MI/pred' '$MI/gt' -n 3 -q --per-image /dev/fd/3 3>'$T/fd3.jsonl'"
[ "$(wc -l <"$T/fd3.jsonl")" -ge 2 ] || fail "the per-image lines reached descriptor 3: $(head -c 200 "$T/fd3.jsonl")"

# 4. rass-scenes --resume with another seed, kind or size: refused (the kept
#    scenes would not match the manifest, which recorded the new seed).
S=$B/rass-scenes
expect_exit 0 "3 scenes, seed 3" -- "$S" -n 3 --size 64 -s 3 -o "$T/sc" -q
cp "$T/sc/manifest.jsonl" "$T/manifest.before"
expect_exit 2 "--resume with seed 4" -- "$S" -n 3 --size 64 -s 4 -o "$T/sc" --resume -q
stderr_has "seed 3 (this run: 4)" "the difference is named"
expect_exit 2 "--resume with another kind" -- "$S" -n 3 --size 64 -s 3 -k room -o "$T/sc" --resume -q
cmp -s "$T/sc/manifest.jsonl" "$T/manifest.before" || fail "a refused run left the manifest as it was"
expect_exit 2 "a shard with another seed" -- "$S" -n 3 --size 64 -s 5 --shard 0/3 -o "$T/sc" -q
stderr_has "other settings" "the reason is given"
expect_exit 0 "--resume with the same settings" -- "$S" -n 4 --size 64 -s 3 -o "$T/sc" --resume -q
[ "$(wc -l <"$T/sc/manifest.jsonl")" = 4 ] || fail "the fourth scene was added"
# A whole new set with another seed is refused too (sweep 4: replacing the
# old set would first delete it; a typo must not wipe a set).
expect_exit 2 "a whole new set with another seed" -- "$S" -n 2 --size 64 -s 6 -o "$T/sc" -q
grep -q '"seed":3' "$T/sc/scenes.json" || fail "the old set's settings are kept"
rm -r "$T/sc"
expect_exit 0 "another seed once the folder is removed" -- "$S" -n 2 --size 64 -s 6 -o "$T/sc" -q
grep -q '"seed":6' "$T/sc/scenes.json" || fail "the new set's settings are recorded"
expect_exit 2 "--start 2^64-1" -- "$S" -n 1 --start 18446744073709551615 -o "$T/sc2" -q
stderr_has "at most 1000000000000" "the limit is given, not only 'a non-negative integer'"

# 5. An output through a link: the link is never removed by clean-up, and a
#    link into the input folder via ".." is refused (links resolved first).
mkdir -p "$T/inA/deep"
cp "$A" "$T/inA/x.png"
ln -s "$T/inA/deep" "$T/lnk"
expect_exit 2 "-o lnk/../o lands in the input folder" -- "$D" "$T/inA" -o "$T/lnk/../o" -q
[ -e "$T/inA/o" ] && fail "nothing written inside the input folder"
mkdir -p "$T/lk"
ln -s /proc/self/fd/1 "$T/lk/out"
expect_exit 1 "degrade: -o a link to stdout, the record fails" -- bash -c \
  "'$D' '$A' -o '$T/lk/out' --format png --record /dev/full -q >'$T/deg.png'"
[ -L "$T/lk/out" ] || fail "the link was not removed by the clean-up"

# 6. /dev/stdout is stdout: one report there (the CSV alone, as --csv -).
"$E" --match-stem "$MI/pred" "$MI/gt" -n 3 -q --csv - >"$T/dash.csv" 2>/dev/null
expect_exit 0 "--csv /dev/stdout" -- bash -c "'$E' --match-stem '$MI/pred' '$MI/gt' -n 3 -q --csv /dev/stdout >'$T/devout.csv'"
cmp -s "$T/dash.csv" "$T/devout.csv" || fail "--csv /dev/stdout wrote what --csv - writes: $(head -c 300 "$T/devout.csv")"
expect_exit 2 "--per-image /dev/fd/7, not open" -- "$E" --match-stem "$MI/pred" "$MI/gt" -n 3 -q --per-image /dev/fd/7
stderr_has "is not open" "the reason is given"
finish
