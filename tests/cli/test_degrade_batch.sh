# rass-degrade batch mode: determinism across --jobs and shards, resume,
# variants, manifests, and bad files that must not stop the batch.
. "$(dirname "$0")/lib.sh"
D=$B/rass-degrade

mkdir -p "$T/in/sub"
cp "$IMG/chelsea.png" "$IMG/coffee.png" "$T/in/"
cp "$IMG/rocket.jpg" "$T/in/sub/"
cp "$FIX/images/gray64.png" "$T/in/sub/"

expect_exit 0 "batch --jobs 1" -- "$D" "$T/in" -o "$T/j1" -j 1 -s 3 -q
expect_exit 0 "batch --jobs 2" -- "$D" "$T/in" -o "$T/j2" -j 2 -s 3 -q
for f in chelsea coffee sub/rocket sub/gray64; do
  [ -s "$T/j1/$f.png" ] && [ -s "$T/j1/$f.json" ] || fail "missing $f outputs"
  cmp -s "$T/j1/$f.png" "$T/j2/$f.png" || fail "$f differs between --jobs 1 and 2"
done
[ "$(wc -l <"$T/j1/manifest.jsonl")" -eq 4 ] || fail "manifest should list 4 items"
cmp -s "$T/j1/manifest.jsonl" "$T/j2/manifest.jsonl" || fail "manifests differ between --jobs 1 and 2"
grep -q '"hq":"../in/sub/rocket.jpg"' "$T/j1/manifest.jsonl" || fail "manifest hq path relative to the manifest"

# Shards: the union of 3 shards equals the unsharded run, byte for byte.
for i in 0 1 2; do
  expect_exit 0 "shard $i/3" -- "$D" "$T/in" -o "$T/sh" --shard $i/3 -s 3 -q
done
for f in chelsea coffee sub/rocket sub/gray64; do cmp -s "$T/j1/$f.png" "$T/sh/$f.png" || fail "$f differs when sharded"; done
[ "$(cat "$T"/sh/manifest.*-of-3.jsonl | wc -l)" -eq 4 ] || fail "shard manifests should list 4 items in all"
# Slurm array variables pick the shard by default.
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 "$D" "$T/in" -o "$T/slurm" -s 3 -q
[ -f "$T/slurm/manifest.1-of-2.jsonl" ] && [ "$(wc -l <"$T/slurm/manifest.1-of-2.jsonl")" -eq 2 ] \
  && ok "Slurm shard" || fail "Slurm variables not used for the shard"

# Resume: nothing is rewritten.
touch -d '2001-01-01' "$T/j1/chelsea.png"
expect_exit 0 "resume" -- "$D" "$T/in" -o "$T/j1" -s 3 --resume --json
grep -q '"skipped":4' "$T/.out" || fail "resume should skip all 4: $(cat "$T/.out")"
[ "$(stat -c %Y "$T/j1/chelsea.png")" -lt 1000000000 ] || fail "resume rewrote an output"
rm "$T/j1/coffee.json"
expect_exit 0 "resume redoes an output without record" -- "$D" "$T/in" -o "$T/j1" -s 3 --resume --json
grep -q '"written":1' "$T/.out" || fail "resume should redo 1"
# Outputs of an older record version (here rewritten as version 1) are finished:
# they replay with their own version's filter, so an upgrade redoes nothing.
for r in "$T"/j1/*.json "$T"/j1/sub/*.json; do
  sed -i 's/"record_version": 2/"record_version": 1/' "$r"
done
grep -q '"record_version": 1' "$T/j1/chelsea.json" || fail "could not age the records"
expect_exit 0 "resume over version-1 records" -- "$D" "$T/in" -o "$T/j1" -s 3 --resume --json
grep -q '"skipped":4' "$T/.out" || fail "resume redid outputs of an older record version: $(cat "$T/.out")"

# Resume with another seed redoes everything (the records name the old seed).
cp -r "$T/j1" "$T/j1b"
expect_exit 0 "resume with another seed" -- "$D" "$T/in" -o "$T/j1b" -s 4 --resume --json
grep -q '"written":4' "$T/.out" || fail "resume must redo outputs made with another seed: $(cat "$T/.out")"
# No output may replace an input: an output directory equal to or inside an
# input directory, or an output file that is an input, is refused before any work.
mkdir -p "$T/nest"; cp "$IMG/chelsea.png" "$T/nest/"
cp "$T/nest/chelsea.png" "$T/nest.orig"
expect_exit 2 "output directory = input directory" -- "$D" "$T/nest" -o "$T/nest" -s 3 -q
stderr_has "is the input directory" "refusal names the overlap"
expect_exit 2 "output directory inside the input" -- "$D" "$T/nest" -o "$T/nest/lq" -s 3 -q
expect_exit 2 "output directory via a link to the input" -- bash -c "ln -s '$T/nest' '$T/nestlink' && '$D' '$T/nest' -o '$T/nestlink' -s 3 -q"
expect_exit 2 "a listed file would be replaced" -- "$D" "$T/nest/chelsea.png" -o "$T/nest/" -s 3 -q
cmp -s "$T/nest/chelsea.png" "$T/nest.orig" || fail "an input was overwritten"
[ -e "$T/nest/lq" ] || [ -e "$T/nest/manifest.jsonl" ] && fail "a refused run left outputs"
expect_exit 2 "single file onto itself" -- "$D" "$T/nest/chelsea.png" -o "$T/nest/chelsea.png" -s 3
expect_exit 2 "record onto the input" -- "$D" "$T/nest/chelsea.png" -o "$T/x.png" --record "$T/nest/chelsea.png" -s 3
cmp -s "$T/nest/chelsea.png" "$T/nest.orig" || fail "an input was overwritten (single)"

# A directory link loop lists each file once.
mkdir -p "$T/loop/a"; cp "$IMG/chelsea.png" "$T/loop/a/"; ln -s .. "$T/loop/a/up"; ln -s "$T/loop" "$T/loop/self"
expect_exit 0 "symlink loop" -- "$D" "$T/loop" -o "$T/loopout" -s 3 --json
grep -q '"inputs":1' "$T/.out" || fail "a link loop multiplied the inputs: $(cat "$T/.out")"

# Variants: different LQ images per HQ, each reproducible by its key.
expect_exit 0 "variants" -- "$D" "$IMG/chelsea.png" -o "$T/var" --variants 3 -s 3 -q
[ -s "$T/var/chelsea_v0.png" ] && [ -s "$T/var/chelsea_v2.png" ] || fail "variant outputs missing"
cmp -s "$T/var/chelsea_v0.png" "$T/var/chelsea_v1.png" && fail "variants 0 and 1 are identical"
"$D" "$IMG/chelsea.png" -o "$T/v1.png" -s 3 --key 'chelsea#v1' && cmp -s "$T/v1.png" "$T/var/chelsea_v1.png" \
  && ok "variant regenerated from its key" || fail "variant key"
# A batch record names its HQ image's bytes (hq_hash): replayed on another
# file of the same size it warns (it gave another LQ image without a word;
# not refused: a file saved again without loss has other bytes).
expect_exit 0 "another image of chelsea's size" -- "$D" "$IMG/chelsea.png" -o "$T/other.png" -p noise -s 9 -q
expect_exit 0 "a batch record replayed on another image" -- "$D" "$T/other.png" --replay "$T/var/chelsea_v0.json" -o "$T/rp-other.png"
stderr_has "is not the file" "the other file is named"
stderr_has "(its hq_hash differs)" "the reason is given"
expect_exit 0 "a batch record replayed on its image" -- "$D" "$IMG/chelsea.png" --replay "$T/var/chelsea_v0.json" -o "$T/rp-own.png"
cmp -s "$T/rp-own.png" "$T/var/chelsea_v0.png" || fail "the replay of a batch record differs from its output"
# Endless inputs end at a bound, not when the memory runs out: a record at
# 16 MiB; an image (stdin) at 8 bytes a pixel of --max-pixels plus 64 MiB.
expect_exit 3 "--replay /dev/zero" -- "$D" "$IMG/chelsea.png" --replay /dev/zero -o "$T/z.png"
stderr_has "/dev/zero: holds NUL bytes" "refused from its first bytes"
expect_exit 3 "--replay of an endless text" -- bash -c "'$D' '$IMG/chelsea.png' --replay <(yes) -o '$T/z.png'"
stderr_has "larger than 16777216 bytes" "the bound is named"
{ printf 'P6\n64 64\n255\n'; cat /dev/zero; } 2>/dev/null | expect_exit 3 "an endless image on stdin" -- "$D" - -o "$T/z.png" --max-pixels 4096
stderr_has "more than an image of the pixel limit (4096) can take" "the pixel limit is named"
[ ! -e "$T/z.png" ] || fail "an output from an endless input"
expect_exit 2 "--variants with -o an image name" -- "$D" "$IMG/chelsea.png" -o "$T/f12.png" --variants 3 -q
stderr_has "names an image file" "the reason is given"
[ ! -e "$T/f12.png" ] || fail "a folder named f12.png was made"
# An input whose own key is another's variant key (x#v1 against x's variant
# 1) would get the same draws and manifest key: a bad item, the other written.
mkdir -p "$T/hv" && cp "$IMG/chelsea.png" "$T/hv/x.png" && cp "$IMG/coffee.png" "$T/hv/x#v1.png"
expect_exit 3 "an input keyed like another's variant" -- "$D" "$T/hv" -o "$T/hvo" --variants 2 -s 3 -q
stderr_has "its variant key 'x#v1' is also that of variant 1 of" "the clash is named"
[ -s "$T/hvo/x_v0.png" ] && [ -s "$T/hvo/x_v1.png" ] && [ ! -e "$T/hvo/x#v1_v0.png" ] || fail "variant clash: outputs $(ls "$T/hvo")"
[ "$(grep -c '"key":"x#v1"' "$T/hvo/manifest.jsonl")" = 1 ] || fail "variant clash: the manifest has one x#v1: $(cat "$T/hvo/manifest.jsonl")"

# A manifest as input, with paths relative to the manifest.
# Keys: the "key" field, else the stem of the path.
printf '{"hq": "in/chelsea.png", "key": "chelsea"}\nin/coffee.png\n{"hq": 5}\n{"hq": "in/cut\n' >"$T/list.jsonl"
expect_exit 3 "manifest input with two bad lines" -- "$D" --manifest "$T/list.jsonl" -o "$T/man" -s 3 -q
stderr_has "list.jsonl: line 3" "a non-string field is named with its line"
stderr_has "list.jsonl: line 4" "a line that is not JSON is named"
cmp -s "$T/man/chelsea.png" "$T/j1/chelsea.png" || fail "manifest input output differs"
cmp -s "$T/man/coffee.png" "$T/j1/coffee.png" || fail "manifest row keyed by its stem"

# Bad files in a batch: reported, counted, exit 3, good outputs kept.
cp -r "$T/in" "$T/bad"
: >"$T/bad/zero.png"
head -c 1000 "$IMG/coffee.png" >"$T/bad/cut.png"
cp "$FIX/images/rgba64.png" "$T/bad/alpha.png"
expect_exit 3 "batch with bad files" -- "$D" "$T/bad" -o "$T/badout" -s 3 --json
stderr_has "$T/bad/zero.png" "zero-size named"
stderr_has "$T/bad/cut.png" "truncated named"
stderr_has "$T/bad/alpha.png" "alpha named"
grep -q '"failed":3' "$T/.out" || fail "should count 3 failures: $(cat "$T/.out")"
for f in chelsea coffee sub/rocket sub/gray64; do cmp -s "$T/j1/$f.png" "$T/badout/$f.png" || fail "good output $f lost"; done
[ "$(wc -l <"$T/badout/manifest.jsonl")" -eq 4 ] || fail "manifest should list the 4 good items"
ls "$T/badout" | grep -q 'zero\|cut\|alpha\|tmp' && fail "partial outputs for bad files"

# Colliding keys: the later file is a bad item, named; the rest is made; exit 3.
cp "$IMG/chelsea.png" "$T/in/coffee.jpg" 2>/dev/null
expect_exit 3 "colliding keys" -- "$D" "$T/in" -o "$T/collide" -q
stderr_has "$T/in/coffee.png: has the same key 'coffee' as $T/in/coffee.jpg" "collision message names both files"
[ -s "$T/collide/chelsea.png" ] && [ -s "$T/collide/sub/rocket.png" ] || fail "a duplicate key stopped the other items"
[ "$(wc -l <"$T/collide/manifest.jsonl")" -eq 4 ] || fail "manifest should list the 4 good items"
rm "$T/in/coffee.jpg"

# Empty input is an error, not a silent success.
mkdir -p "$T/empty"
expect_exit 3 "empty input directory" -- "$D" "$T/empty" -o "$T/emptyout" -q
stderr_has "no inputs found" "empty input message"

# --resume redoes an output that was truncated (it no longer decodes).
expect_exit 0 "resume base" -- "$D" "$T/in" -o "$T/res" -s 3 -q
head -c 2000 "$T/res/chelsea.png" >"$T/cut" && mv "$T/cut" "$T/res/chelsea.png"
expect_exit 0 "resume after truncation" -- "$D" "$T/in" -o "$T/res" -s 3 --resume --json
grep -q '"written":1' "$T/.out" || fail "resume must redo the truncated output: $(cat "$T/.out")"
cmp -s "$T/res/chelsea.png" "$T/j1/chelsea.png" || fail "the redone output differs"

# A directory where the record goes: found before the item's work (exit 3;
# a record that fails to write after its image, a full disk, still takes the
# image with it: both or neither).
mkdir -p "$T/rec/chelsea.json"
expect_exit 3 "a directory where a record goes" -- "$D" "$T/in" -o "$T/rec" -s 3 -q
[ -e "$T/rec/chelsea.png" ] && fail "an image without its record was left behind"
[ -s "$T/rec/coffee.png" ] && [ -s "$T/rec/coffee.json" ] || fail "the other outputs were not made"

# Reports that cannot be written are failures (exit 1), never a silent 0.
if [ -w /dev/full ]; then
  expect_exit 1 "--json to a full disk" -- bash -c "'$D' '$T/in' -o '$T/full' -s 3 -q --json >/dev/full"
  expect_exit 1 "--print-config to a full disk" -- bash -c "'$D' --print-config >/dev/full"
fi

# Found by hostile use (each failed before its fix):
# a manifest key may not leave the output directory (it replaced the HQ input).
mkdir -p "$T/esc"; cp "$IMG/chelsea.png" "$T/esc/a.png"; cp "$T/esc/a.png" "$T/esc.orig"
printf '{"hq":"a.png","key":"../a"}\n{"hq":"a.png","key":"/tmp/abs"}\n{"hq":"a.png","key":7}\n' >"$T/esc/m.jsonl"
expect_exit 3 "keys escaping the output directory" -- "$D" --manifest "$T/esc/m.jsonl" -o "$T/esc/out" -s 3 -q
stderr_has "contains '..'" "a '..' key named"
stderr_has "is an absolute path" "an absolute key named"
stderr_has 'field "key" is not a string' "a non-string key named"
cmp -s "$T/esc/a.png" "$T/esc.orig" || fail "an escaping key overwrote the input"
# A file name that is not UTF-8 is a bad item, and no image is left without its record.
mkdir -p "$T/u8"; cp "$IMG/chelsea.png" "$T/u8/ok.png"; cp "$IMG/chelsea.png" "$T/u8/$(printf 'bad\xff').png"
expect_exit 3 "non-UTF-8 file name" -- "$D" "$T/u8" -o "$T/u8out" -s 3 -q
stderr_has "not valid UTF-8" "non-UTF-8 name message"
[ "$(ls "$T/u8out" | grep -c png)" -eq 1 ] && [ -s "$T/u8out/ok.json" ] || fail "bad-name outputs: $(ls "$T/u8out")"
# A dangling link in an input directory is named, not skipped.
mkdir -p "$T/dl"; cp "$IMG/chelsea.png" "$T/dl/"; ln -s nothere.png "$T/dl/gone.png"
expect_exit 3 "dangling link" -- "$D" "$T/dl" -o "$T/dlout" -s 3 -q
stderr_has "$T/dl/gone.png" "dangling link named"
# A byte-order mark at the start of a manifest is not part of its first line.
cp "$IMG/chelsea.png" "$T/bomimg.png"; printf '\xef\xbb\xbf{"hq":"bomimg.png"}\n' >"$T/bom.jsonl"
expect_exit 0 "manifest with a BOM" -- "$D" --manifest "$T/bom.jsonl" -o "$T/bomout" -s 3 -q
# --manifest-out may not replace an output, nor be a directory: refused before any work.
expect_exit 2 "--manifest-out onto a record" -- "$D" "$IMG/chelsea.png" "$IMG/coffee.png" -o "$T/mo" --manifest-out "$T/mo/chelsea.json" -s 3 -q
expect_exit 2 "--manifest-out a directory" -- "$D" "$IMG/chelsea.png" -o "$T/mo2" --manifest-out "$T/mo" -s 3 -q
[ -e "$T/mo/chelsea.png" ] && fail "outputs written before the refusal"
# --key is single-image only; --resume redoes outputs made with other settings.
expect_exit 2 "--key in batch mode" -- "$D" "$IMG/chelsea.png" --key foo -o "$T/kb/" -s 3
expect_exit 0 "resume with other settings" -- "$D" "$T/in" -o "$T/j1" -s 3 --resume --stages=-noise --json
grep -q '"skipped":0' "$T/.out" || fail "resume kept outputs made with other settings: $(cat "$T/.out")"

# A directory in the place of an item's image or record: that item is bad
# before any work (exit 3, named with the path), the others are made.
mkdir -p "$T/dir/chelsea_v1.json" "$T/dir/coffee_v0.png"
expect_exit 3 "a directory where an output goes" -- "$D" "$IMG/chelsea.png" "$IMG/coffee.png" "$IMG/rocket.jpg" -o "$T/dir" --variants 2 -s 3 --json
stderr_has "the record $T/dir/chelsea_v1.json is an existing directory" "the message names the record's place"
stderr_has "the image $T/dir/coffee_v0.png is an existing directory" "the message names the image's place"
grep -q '"written":2,"skipped":0,"failed":2' "$T/.out" || fail "rocket's two variants are made, the others not: $(cat "$T/.out")"
[ -s "$T/dir/rocket_v0.png" ] && [ -s "$T/dir/rocket_v1.json" ] || fail "the good item's outputs are missing"
[ -d "$T/dir/chelsea_v1.json" ] && [ -d "$T/dir/coffee_v0.png" ] || fail "a directory in the way was touched"
# A FIFO in an output's place blocked the run at the write (or at --resume's
# read of a record); a link to /dev/null swallowed the image, counted as made.
mkdir -p "$T/fifo"
mkfifo "$T/fifo/chelsea.png" "$T/fifo/rocket.json"
ln -s /dev/null "$T/fifo/coffee.png"
for r in "" --resume; do
  expect_exit 3 "a FIFO or a device where outputs go ${r:-(new run)}" -- timeout 120 "$D" "$IMG/chelsea.png" "$IMG/coffee.png" "$IMG/rocket.jpg" "$FIX/images/gray64.png" -o "$T/fifo" -s 3 $r --json
  stderr_has "the image $T/fifo/chelsea.png is an existing FIFO" "the message says what is in the way"
  stderr_has "the image $T/fifo/coffee.png is an existing device" "a link to /dev/null is named"
  stderr_has "the record $T/fifo/rocket.json is an existing FIFO" "a FIFO in the record's place is named"
  grep -q '"failed":3' "$T/.out" || fail "three items are bad: $(cat "$T/.out")"
  [ -s "$T/fifo/gray64.png" ] || fail "the good item was not made"
done
# -o a link loop: a usage error naming it, not a filesystem exception (exit 1).
ln -s selfloop "$T/selfloop"
expect_exit 2 "-o a link loop" -- "$D" "$IMG/chelsea.png" "$IMG/coffee.png" -o "$T/selfloop" -s 3
stderr_has "is a link that leads nowhere" "the message says why"
ln -s "$T/nowhere/deeper" "$T/dangling"
expect_exit 2 "-o a dangling link" -- "$D" "$IMG/chelsea.png" "$IMG/coffee.png" -o "$T/dangling" -s 3
finish

