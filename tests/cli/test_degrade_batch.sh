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

# Resume with another seed redoes everything (the records name the old seed).
cp -r "$T/j1" "$T/j1b"
expect_exit 0 "resume with another seed" -- "$D" "$T/in" -o "$T/j1b" -s 4 --resume --json
grep -q '"written":4' "$T/.out" || fail "resume must redo outputs made with another seed: $(cat "$T/.out")"
# An output directory inside the input directory is not read back as input.
mkdir -p "$T/nest"; cp "$IMG/chelsea.png" "$T/nest/"
expect_exit 0 "output inside input" -- "$D" "$T/nest" -o "$T/nest/lq" -s 3 -q
expect_exit 0 "again" -- "$D" "$T/nest" -o "$T/nest/lq" -s 3 --json
grep -q '"inputs":1' "$T/.out" || fail "the output directory was scanned as input: $(cat "$T/.out")"

# Variants: different LQ images per HQ, each reproducible by its key.
expect_exit 0 "variants" -- "$D" "$IMG/chelsea.png" -o "$T/var" --variants 3 -s 3 -q
[ -s "$T/var/chelsea_v0.png" ] && [ -s "$T/var/chelsea_v2.png" ] || fail "variant outputs missing"
cmp -s "$T/var/chelsea_v0.png" "$T/var/chelsea_v1.png" && fail "variants 0 and 1 are identical"
"$D" "$IMG/chelsea.png" -o "$T/v1.png" -s 3 --key 'chelsea#v1' && cmp -s "$T/v1.png" "$T/var/chelsea_v1.png" \
  && ok "variant regenerated from its key" || fail "variant key"

# A manifest as input, with paths relative to the manifest.
printf '{"hq": "in/chelsea.png"}\nin/coffee.png\n' >"$T/list.jsonl"
expect_exit 0 "manifest input" -- "$D" --manifest "$T/list.jsonl" -o "$T/man" -s 3 -q
cmp -s "$T/man/chelsea.png" "$T/j1/chelsea.png" || fail "manifest input output differs"

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

# Colliding keys are refused before any work.
cp "$IMG/chelsea.png" "$T/in/coffee.jpg" 2>/dev/null
expect_exit 3 "colliding keys" -- "$D" "$T/in" -o "$T/collide" -q
stderr_has "same key" "collision message"
finish
