# rass-scenes end to end: determinism across --jobs and shards, resume, the
# output formats, and round trips through the tools that read them
# (rass-eval-miou of the labels against themselves, rass-caption-map reading
# the label maps and the tags). Expected values are properties, not checksums
# of the tool's own output.
. "$(dirname "$0")/lib.sh"
S=$B/rass-scenes

expect_exit 0 "5 scenes, 1 job" -- "$S" -n 5 --size 80 -s 3 -j 1 -o "$T/j1" -q
expect_exit 0 "5 scenes, 2 jobs" -- "$S" -n 5 --size 80 -s 3 -j 2 -o "$T/j2" -q
for i in 0 1 2 3 4; do
  k=scene_00000$i
  for f in images/$k.png labels/$k.png tags/$k.txt captions/$k.txt; do
    [ -s "$T/j1/$f" ] || fail "missing $f"
    cmp -s "$T/j1/$f" "$T/j2/$f" || fail "$f differs between --jobs 1 and 2"
  done
done
[ "$(wc -l <"$T/j1/manifest.jsonl")" -eq 5 ] || fail "manifest should list 5 scenes"
[ "$(wc -l <"$T/j1/tags.tsv")" -eq 5 ] || fail "tags.tsv should list 5 scenes"
cmp -s "$T/j1/manifest.jsonl" "$T/j2/manifest.jsonl" || fail "manifests differ between --jobs 1 and 2"
grep -q '"image":"images/scene_000002.png","label":"labels/scene_000002.png","tags":"tags/scene_000002.txt"' \
  "$T/j1/manifest.jsonl" || fail "manifest paths relative to the manifest"
grep -q '"key":"scene_000004","seed":3,"width":80,"height":80' "$T/j1/manifest.jsonl" || fail "manifest key/seed/size"

# A different seed gives different scenes.
expect_exit 0 "seed 4" -- "$S" -n 1 --size 80 -s 4 -o "$T/s4" -q
cmp -s "$T/j1/images/scene_000000.png" "$T/s4/images/scene_000000.png" && fail "seed 4 drew the same scene as seed 3"

# Shards: the union equals the unsharded run; Slurm variables pick the shard.
for i in 0 1; do expect_exit 0 "shard $i/2" -- "$S" -n 5 --size 80 -s 3 --shard $i/2 -o "$T/sh" -q; done
for f in "$T"/j1/images/*.png "$T"/j1/labels/*.png; do
  cmp -s "$f" "$T/sh/${f#$T/j1/}" || fail "${f#$T/j1/} differs when sharded"
done
[ "$(cat "$T"/sh/manifest.*-of-2.jsonl | wc -l)" -eq 5 ] || fail "shard manifests should list 5 scenes in all"
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 "$S" -n 5 --size 80 -s 3 -o "$T/slurm" -q
[ "$(wc -l <"$T/slurm/manifest.1-of-2.jsonl" 2>/dev/null)" = 2 ] && ok "Slurm shard" || fail "Slurm variables not used"

# PNG headers: RGB 8-bit images, gray 8-bit labels, at --width x --height.
expect_exit 0 "non-square" -- "$S" -n 1 --width 96 --height 64 -o "$T/ns" -q
ihdr() { od -An -tu1 -j16 -N10 "$1" | tr -s ' ' | sed 's/^ //'; }
[ "$(ihdr "$T/ns/images/scene_000000.png")" = "0 0 0 96 0 0 0 64 8 2" ] || fail "image IHDR: $(ihdr "$T/ns/images/scene_000000.png")"
[ "$(ihdr "$T/ns/labels/scene_000000.png")" = "0 0 0 96 0 0 0 64 8 0" ] || fail "label IHDR: $(ihdr "$T/ns/labels/scene_000000.png")"

# Resume: complete scenes are skipped; one without its caption (written last) or
# with a truncated image is redone, to the same bytes.
expect_exit 0 "resume, all done" -- "$S" -n 5 --size 80 -s 3 -o "$T/j1" --resume --json -q
grep -q '"written":0,"skipped":5' "$T/.out" || fail "resume should skip 5: $(cat "$T/.out")"
cp "$T/j1/images/scene_000001.png" "$T/img1.png"
rm "$T/j1/captions/scene_000003.txt"
head -c 100 "$T/img1.png" > "$T/j1/images/scene_000001.png"
expect_exit 0 "resume, two to redo" -- "$S" -n 5 --size 80 -s 3 -o "$T/j1" --resume --json -q
grep -q '"written":2,"skipped":3' "$T/.out" || fail "resume should redo 2: $(cat "$T/.out")"
cmp -s "$T/img1.png" "$T/j1/images/scene_000001.png" || fail "redone image differs"
cmp -s "$T/j1/manifest.jsonl" "$T/j2/manifest.jsonl" || fail "manifest after resume differs"
[ -z "$(find "$T/j1" -name '*.tmp*')" ] || fail "temporary files left behind"
# An emptied caption or tags file is not a finished scene (it was kept, and
# the manifest and tags.tsv got empty fields).
: >"$T/j1/captions/scene_000001.txt"
: >"$T/j1/tags/scene_000002.txt"
expect_exit 0 "resume, emptied text files" -- "$S" -n 5 --size 80 -s 3 -o "$T/j1" --resume --json -q
grep -q '"written":2,"skipped":3' "$T/.out" || fail "resume should redo the 2 emptied: $(cat "$T/.out")"
cmp -s "$T/j1/manifest.jsonl" "$T/j2/manifest.jsonl" && cmp -s "$T/j1/tags.tsv" "$T/j2/tags.tsv" ||
  fail "manifest or tags.tsv after redoing emptied texts differ"

# --start K continues a set in its folder: the listings keep the rows of the
# scenes already there (before, they held only the last run's), in key
# order, and equal the listings of one run of all the scenes.
expect_exit 0 "3 scenes" -- "$S" -n 3 --size 80 -s 3 -o "$T/cont" -q
expect_exit 0 "--start 3 continues the set" -- "$S" -n 2 --start 3 --size 80 -s 3 -o "$T/cont" -q
cmp -s "$T/cont/manifest.jsonl" "$T/j2/manifest.jsonl" || fail "the manifest of -n 3 then --start 3 -n 2 is not that of -n 5"
cmp -s "$T/cont/tags.tsv" "$T/j2/tags.tsv" || fail "tags.tsv of -n 3 then --start 3 -n 2 is not that of -n 5"
expect_exit 0 "scenes 1 and 2 again" -- "$S" -n 2 --start 1 --size 80 -s 3 -o "$T/cont" -q
cmp -s "$T/cont/manifest.jsonl" "$T/j2/manifest.jsonl" || fail "a run over scenes already listed duplicated or lost rows"
# Keys past six digits sort after the six-digit ones (by length, then text),
# and a sharded run's listing keeps the rows of its own shard file.
expect_exit 0 "scenes 999998 and 999999" -- "$S" -n 2 --start 999998 --size 64 -s 3 -o "$T/big" -q
expect_exit 0 "scenes 1000000 and 1000001" -- "$S" -n 2 --start 1000000 --size 64 -s 3 -o "$T/big" -q
[ "$(cut -f1 "$T/big/tags.tsv" | tr '\n' ' ')" = "scene_999998 scene_999999 scene_1000000 scene_1000001 " ] ||
  fail "key order across the 7-digit boundary: $(cut -f1 "$T/big/tags.tsv" | tr '\n' ' ')"
expect_exit 0 "shard 0/2 of scenes 0-3" -- "$S" -n 4 --size 64 -s 3 --shard 0/2 -o "$T/shl" -q
expect_exit 0 "shard 0/2 of scenes 4-7" -- "$S" -n 4 --start 4 --size 64 -s 3 --shard 0/2 -o "$T/shl" -q
[ "$(cut -f1 "$T/shl/tags.0-of-2.tsv" | tr '\n' ' ')" = "scene_000000 scene_000002 scene_000004 scene_000006 " ] ||
  fail "a shard's listing across two runs: $(cut -f1 "$T/shl/tags.0-of-2.tsv" | tr '\n' ' ')"
# A listing that cannot be read is refused before any scene is made.
cp "$T/cont/manifest.jsonl" "$T/cont.manifest" && printf 'not json\n' >>"$T/cont/manifest.jsonl"
expect_exit 3 "a damaged manifest" -- "$S" -n 1 --start 5 --size 80 -s 3 -o "$T/cont" -q
stderr_has "manifest.jsonl" "the listing is named"
stderr_has "line 6" "the line is named"
[ ! -e "$T/cont/images/scene_000005.png" ] || fail "a scene was made before the listing was refused"

# Round trips. Labels against themselves: mIoU 100 over the ADE20K classes.
expect_exit 0 "eval-miou labels vs labels" -- "$B/rass-eval-miou" "$T/j1/labels" "$T/j1/labels" --classes ade20k --json -q
grep -q '"mIoU": 100.0,' "$T/.out" || fail "mIoU of labels against themselves: $(head -c 300 "$T/.out")"
# caption-map lists a label map's classes as the tags file does, and accepts the tags.
for i in 0 1 2 3 4; do
  k=scene_00000$i
  expect_exit 0 "caption-map $k" -- "$B/rass-caption-map" "$T/j1/labels/$k.png"
  cmp -s "$T/.out" "$T/j1/tags/$k.txt" || fail "caption-map classes of $k '$(cat "$T/.out")' != tags '$(cat "$T/j1/tags/$k.txt")'"
done
if [ -d /usr/share/wordnet ] || [ -n "${RASS_WORDNET_DIR:-}" ]; then
  expect_exit 0 "caption-map with the tags file" -- "$B/rass-caption-map" "$T/j1/labels/scene_000002.png" --tags "$T/j1/tags/scene_000002.txt"
  cmp -s "$T/.out" "$T/j1/tags/scene_000002.txt" || fail "each tag should map onto its own class: $(cat "$T/.out")"
  expect_exit 0 "caption-map batch with tags.tsv" -- "$B/rass-caption-map" "$T/j1/labels" --tags "$T/j1/tags.tsv"
  [ "$(wc -l <"$T/.out")" -eq 5 ] || fail "caption-map batch should print 5 lines"
else
  echo "skip: WordNet (wordnet-base) not installed: caption-map --tags not checked"
fi

# Classes: ADE20K names with their label values.
expect_exit 0 "list classes" -- "$S" --list-classes
grep -qx "$(printf 'stairs\t53')" "$T/.out" && grep -qx "$(printf 'windowpane\t8')" "$T/.out" || fail "class list: $(cat "$T/.out")"
[ "$(wc -l <"$T/.out")" -ge 12 ] || fail "at least a dozen classes"

# Usage errors.
expect_exit 2 "no -n" -- "$S" -o "$T/x"
expect_exit 2 "size 63" -- "$S" -n 1 --size 63 -o "$T/x"
expect_exit 2 "width 513" -- "$S" -n 1 --width 513 -o "$T/x"
expect_exit 2 "-o -" -- "$S" -n 1 -o -
stderr_has "directory" "says why"
touch "$T/file"
expect_exit 2 "-o a file" -- "$S" -n 1 -o "$T/file"
expect_exit 2 "bad kind" -- "$S" -n 1 -k forest -o "$T/x"
expect_exit 2 "bad shard" -- "$S" -n 1 --shard 2/2 -o "$T/x"
# Numbers are decimal for every tool's numeric options (CLI11 alone read
# integers in base 0: "010" was 8 scenes, "0x3" 3; floats took "inf", "0x1p3").
expect_exit 0 "zero-padded -n and --start" -- "$S" -n 010 --start 008 --size 64 -o "$T/pad" -q
[ "$(ls "$T/pad/images" | wc -l)" = 10 ] || fail "-n 010 made $(ls "$T/pad/images" | wc -l) scenes, expected 10"
[ -e "$T/pad/images/scene_000008.png" ] && [ -e "$T/pad/images/scene_000017.png" ] || fail "--start 008 is 8: $(ls "$T/pad/images" | head -3)"
expect_exit 2 "hexadecimal -n" -- "$S" -n 0x3 -o "$T/x"
stderr_has "--count: expected a decimal number, got '0x3'" "names the option and the value"
expect_exit 2 "-n with a blank" -- "$S" -n " 3" -o "$T/x"
stderr_has "--count: expected a decimal number, got ' 3'" "the decimal check speaks first"
# An output folder whose images/ is a file: refused before any work, as
# other tools refuse an output path that cannot be made (it failed at the
# first write, exit 1).
mkdir -p "$T/blocked" && touch "$T/blocked/images"
expect_exit 2 "images/ is a file" -- "$S" -n 1 -o "$T/blocked" -q
stderr_has "blocked/images is not a folder" "the file in the way is named"
[ -e "$T/blocked/labels" ] && fail "nothing made before the refusal"
# A FIFO where a scene's file or a listing belongs is refused (it was
# opened and waited forever), never written into.
expect_exit 0 "scenes for the FIFO cases" -- "$S" -n 2 -o "$T/fifo" -q
rm -f "$T/fifo/captions/scene_000001.txt"
mkfifo "$T/fifo/captions/scene_000001.txt"
expect_exit 3 "a FIFO as a scene's caption, --resume" -- timeout 60 "$S" -n 2 -o "$T/fifo" -q --resume
stderr_has "scene_000001.txt: is a FIFO or device" "the FIFO is named"
rm -f "$T/fifo/captions/scene_000001.txt" "$T/fifo/manifest.jsonl"
mkfifo "$T/fifo/manifest.jsonl"
expect_exit 2 "a FIFO as the manifest" -- timeout 60 "$S" -n 2 -o "$T/fifo" -q --resume
stderr_has "manifest.jsonl is a FIFO or device" "the FIFO listing is named"
finish
