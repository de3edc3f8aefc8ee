# rass-caption-map end to end on a hand-made 4x2 label map (values worked out in
# tests/text/test_caption_map.cpp): the prompt, --json, tags files (plain,
# RAM's "|", keyed), a table, batch with a bad item, --resume, build-table,
# chaining, and bad inputs (exit codes, messages, no partial output).
. "$(dirname "$0")/lib.sh"
C=$B/rass-caption-map
TOK=$FIX/text/tiny-clip
stdout_has() { grep -qF -- "$1" "$T/.out" || fail "$2: stdout lacks '$1': $(head -c 600 "$T/.out")"; }
stdout_is() { [ "$(cat "$T/.out")" = "$1" ] || fail "$2: stdout is '$(head -c 600 "$T/.out")', expected '$1'"; }

# Classes 0 wall, 1 "building, edifice", 2 sky, 3 lake; map: wall wall building ignore / sky building building ignore.
printf 'wall\nbuilding, edifice\nsky\nlake\n' > "$T/classes.txt"
printf 'P5\n4 2\n255\n\000\000\001\377\002\001\001\377' > "$T/lm.pgm"
printf '# hand-made\nchurch\tbuilding\t0.8\nchurch\tsky\t0.3\nspire\tedifice\t0.45\npond\tlake\t0.7\n' > "$T/table.tsv"
printf 'church, spire, Wall, pond, xyzzy\n' > "$T/tags.txt"
COMMON=(--classes "$T/classes.txt" --table "$T/table.tsv")

expect_exit 0 "classes only" -- "$C" "${COMMON[@]}" "$T/lm.pgm"
stdout_is "building, wall, sky" "classes by area, largest first"
expect_exit 0 "classes and tags" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tags "$T/tags.txt"
stdout_is "building, wall, sky, church, spire, pond, xyzzy" "the union, duplicates once"
expect_exit 0 "rass style" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tags "$T/tags.txt" --prompt-style rass
stdout_is "building wall sky church spire pond xyzzy" "no commas"
printf 'Image Tags:  church | spire\n' | expect_exit 0 "RAM's format on stdin" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tags -
stdout_is "building, wall, sky, church, spire" "RAM tags"
# A tag holding a terminal escape (it retitled the terminal) is shown escaped;
# --json keeps the raw text, as JSON escapes.
printf 'ch\033]0;pwn\007urch\n' > "$T/esc.txt"
expect_exit 0 "a tag with an escape sequence" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tags "$T/esc.txt"
stdout_is 'building, wall, sky, ch\x1b]0;pwn\x07urch' "the escape is shown, not sent"
expect_exit 0 "json" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tags "$T/tags.txt" --json --tokenizer "$TOK"
stdout_has '"tag":"church","class_index":1,"class":"building, edifice","score":0.8,"kept":true,"term":3' "church -> building"
stdout_has '"tag":"spire","class_index":1,"class":"building, edifice","score":0.45,"kept":false' "spire below the threshold"
stdout_has '"text":"building","source":"label_map","class_index":1,"class":"building, edifice","score":1.0,"pixels":3,"positions":[' "positions in json"
expect_exit 0 "threshold 0.4 keeps spire" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tags "$T/tags.txt" --json --threshold 0.4
stdout_has '"tag":"spire","class_index":1,"class":"building, edifice","score":0.45,"kept":true' "spire kept"

# HDF5 (read back by h5dump in test_caption_map_h5.sh): written whole or not at all.
expect_exit 0 "single HDF5" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tags "$T/tags.txt" --tokenizer "$TOK" -o "$T/a.h5"
[ -s "$T/a.h5" ] || fail "a.h5 written"
expect_exit 2 "HDF5 needs a tokenizer" -- "$C" "${COMMON[@]}" "$T/lm.pgm" -o "$T/b.h5"
stderr_has "--tokenizer" "names the flag"
mkdir -p "$T/notok"
expect_exit 3 "tokenizer folder without vocab.json" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tokenizer "$T/notok" -o "$T/b.h5"
stderr_has "vocab.json" "names the missing file"
expect_exit 2 "output over the input" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tokenizer "$TOK" -o "$T/lm.pgm"
cmp -s "$T/lm.pgm" <(printf 'P5\n4 2\n255\n\000\000\001\377\002\001\001\377') || fail "the input is untouched"

# Bad inputs: exit 3, the file named, no output.
printf 'not an image' > "$T/corrupt.png"
expect_exit 3 "corrupt label map" -- "$C" "${COMMON[@]}" "$T/corrupt.png" --tokenizer "$TOK" -o "$T/b.h5"
stderr_has "$T/corrupt.png" "names the file"
printf 'P5\n2 1\n255\n\000\007' > "$T/big.pgm"
expect_exit 3 "label value beyond the class list" -- "$C" "${COMMON[@]}" "$T/big.pgm" --tokenizer "$TOK" -o "$T/b.h5"
stderr_has "label value 7 at (1, 0) is beyond the 4 classes" "names the value"
expect_exit 3 "unreadable tags file" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tags "$T/missing.txt" --tokenizer "$TOK" -o "$T/b.h5"
stderr_has "$T/missing.txt" "names the tags file"
printf 'church\tbuilding\t0.8\nspire\tbuilding\n' > "$T/bad_table.tsv"
expect_exit 3 "malformed table line" -- "$C" --classes "$T/classes.txt" --table "$T/bad_table.tsv" "$T/lm.pgm" --tokenizer "$TOK" -o "$T/b.h5"
stderr_has "$T/bad_table.tsv:2: expected three tab-separated fields" "names the line"
printf 'church\tbuilding\t0.8\nspire\xff\tbuilding\t0.5\n' > "$T/latin1_table.tsv"
expect_exit 3 "a table line that is not UTF-8" -- "$C" --classes "$T/classes.txt" --table "$T/latin1_table.tsv" "$T/lm.pgm" --tokenizer "$TOK" -o "$T/b.h5"
stderr_has "latin1_table.tsv:2: is not UTF-8 text" "names the line"
printf 'church\tbuilding\t0x1p-1\n' > "$T/hex_table.tsv"
expect_exit 3 "a hexadecimal score" -- "$C" --classes "$T/classes.txt" --table "$T/hex_table.tsv" "$T/lm.pgm" --tokenizer "$TOK" -o "$T/b.h5"
stderr_has "hex_table.tsv:1: score '0x1p-1' is not a finite number" "names the score"
expect_exit 2 "a hexadecimal --threshold" -- "$C" "${COMMON[@]}" --threshold 0x1p-1 "$T/lm.pgm" --tags - <<<"pond"
# A byte-order mark (Windows editors) is not part of the first tag.
printf '\xef\xbb\xbfpond\tlake\t0.7\n' > "$T/bom_table.tsv"
expect_exit 0 "a table with a byte-order mark" -- "$C" --classes "$T/classes.txt" --table "$T/bom_table.tsv" "$T/lm.pgm" --tags - --json <<<"pond"
grep -q '"lake"' "$T/.out" || fail "the BOM table's first tag matched nothing: $(cat "$T/.out")"
printf 'a, b\nc, d\n' > "$T/two.txt"
expect_exit 3 "two unkeyed tag lines for one label map" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tags "$T/two.txt"
[ -e "$T/b.h5" ] && fail "no partial output after failures"
expect_exit 2 "unknown similarity" -- "$C" --similarity lsa "$T/lm.pgm"
expect_exit 2 "-O in single mode" -- "$C" "${COMMON[@]}" "$T/lm.pgm" -O "$T/out"

# Batch: keys are relative paths; keyed tags; a bad item does not stop the run.
mkdir -p "$T/maps/sub"
cp "$T/lm.pgm" "$T/maps/a.pgm"
cp "$T/lm.pgm" "$T/maps/sub/b.pgm"
cp "$T/big.pgm" "$T/maps/bad.pgm"
printf 'a\tchurch | pond\nsub/b\tspire\nnone\tx\n' > "$T/keyed.tsv"
expect_exit 3 "batch with a bad label map" -- "$C" "${COMMON[@]}" "$T/maps" --tags "$T/keyed.tsv" --tokenizer "$TOK" -O "$T/out" -j 2
stdout_is "$(printf 'a\tbuilding, wall, sky, church, pond\nsub/b\tbuilding, wall, sky, spire')" "key<TAB>prompt in key order"
stderr_has "bad.pgm" "the bad item is named"
stderr_has "1 tag line(s) match no label map (first key: 'none')" "unmatched keys warned"
[ -s "$T/out/a.h5" ] && [ -s "$T/out/sub/b.h5" ] || fail "batch outputs written"
[ -e "$T/out/bad.h5" ] && fail "no output for the bad item"
cp "$T/.out" "$T/first.out"
touch -d '2000-01-01' "$T/out/a.h5"
rm "$T/maps/bad.pgm"
expect_exit 0 "resume" -- "$C" "${COMMON[@]}" "$T/maps" --tags "$T/keyed.tsv" --tokenizer "$TOK" -O "$T/out" --resume -q
cmp -s "$T/.out" "$T/first.out" || fail "resume prints the same prompts"
[ "$(stat -c %Y "$T/out/a.h5")" = "$(date -d 2000-01-01 +%s)" ] || fail "resume keeps finished packs"
# --resume with other tags: a pack whose prompt is not this run's is rewritten.
printf 'a\tspire\nsub/b\tspire\n' > "$T/keyed2.tsv"
expect_exit 0 "resume with other tags" -- "$C" "${COMMON[@]}" "$T/maps" --tags "$T/keyed2.tsv" --tokenizer "$TOK" -O "$T/out" --resume -q
[ "$(stat -c %Y "$T/out/a.h5")" = "$(date -d 2000-01-01 +%s)" ] && fail "a pack made from other tags is rewritten"
grep -aq "building, wall, sky, spire" "$T/out/a.h5" || fail "the rewritten pack holds the new prompt"
touch -d '2000-01-01' "$T/out/sub/b.h5"
expect_exit 0 "resume with the same tags again" -- "$C" "${COMMON[@]}" "$T/maps" --tags "$T/keyed2.tsv" --tokenizer "$TOK" -O "$T/out" --resume -q
[ "$(stat -c %Y "$T/out/sub/b.h5")" = "$(date -d 2000-01-01 +%s)" ] || fail "a pack with this run's prompt is kept"
# A manifest key whose pack name passes 255 bytes (253 + ".h5") is a bad item
# up front, not a failed write after the work; with no -O no file is named by key.
printf '{"key":"%s","label":"%s"}\n{"key":"ok","label":"%s"}\n' "$(printf 'k%.0s' $(seq 253))" "$T/lm.pgm" "$T/lm.pgm" >"$T/long.jsonl"
expect_exit 3 "a 253-byte key with -O" -- "$C" "${COMMON[@]}" --manifest "$T/long.jsonl" --tokenizer "$TOK" -O "$T/out-long" -q
stderr_has "256 bytes, longer than a file name can be (255 bytes)" "the reason is given"
[ -s "$T/out-long/ok.h5" ] && [ "$(find "$T/out-long" -name 'kkk*' | wc -l)" = 0 ] || fail "a 253-byte key: outputs $(find "$T/out-long" -type f | cut -c1-80)"
expect_exit 0 "a 253-byte key without -O" -- "$C" "${COMMON[@]}" --manifest "$T/long.jsonl" -q
expect_exit 0 "shard 1/2" -- "$C" "${COMMON[@]}" "$T/maps" --tags "$T/keyed.tsv" --shard 1/2
stdout_is "$(printf 'sub/b\tbuilding, wall, sky, spire')" "the second key only"

# Chaining: batch output as keyed tags of another run (the classes come back as tags, de-duplicated).
"$C" "${COMMON[@]}" "$T/maps" --tags "$T/keyed.tsv" > "$T/prompts.tsv" 2>/dev/null
expect_exit 0 "own output as --tags" -- "$C" "${COMMON[@]}" "$T/maps" --tags "$T/prompts.tsv"
cmp -s "$T/.out" "$T/prompts.tsv" || fail "a fixed point"
expect_exit 2 "-o in batch mode" -- "$C" "${COMMON[@]}" "$T/maps" -o "$T/x.h5"
expect_exit 2 "-O inside the input directory" -- "$C" "${COMMON[@]}" "$T/maps" --tokenizer "$TOK" -O "$T/maps/packs"
[ -e "$T/maps/packs" ] && fail "nothing made inside the input"
expect_exit 0 "single map, keyed tags, --key" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tags "$T/keyed.tsv" --key sub/b
stdout_is "building, wall, sky, spire" "the line of key sub/b"
expect_exit 3 "single map, keyed tags without its key" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tags "$T/keyed.tsv"
stderr_has "no line for key 'lm'" "names the key"

# build-table and the WordNet backend (skipped without wordnet-base).
WN=${RASS_WORDNET_DIR:-/usr/share/wordnet}
if [ -f "$WN/data.noun" ]; then
  printf 'wall\nsofa\n' > "$T/c2.txt"
  printf 'couch\nxyzzy\nWall\n# comment\ncouch\n' > "$T/vocab.txt"
  expect_exit 0 "build-table" -- "$C" build-table "$T/vocab.txt" -o "$T/wn.tsv" --classes "$T/c2.txt"
  grep -q "^couch	sofa	1.0$" "$T/wn.tsv" || fail "couch -> sofa (same synset): $(cat "$T/wn.tsv")"
  grep -q "^Wall	wall	1.0$" "$T/wn.tsv" || fail "Wall -> wall (same spelling)"
  grep -q "^xyzzy" "$T/wn.tsv" && fail "xyzzy has no score"
  stderr_has "3 tag(s), 1 without any score" "summary"
  expect_exit 0 "build-table --all-classes to stdout" -- "$C" build-table "$T/vocab.txt" -o - --classes "$T/c2.txt" --all-classes -q
  [ "$(grep -c '^couch' "$T/.out")" = 2 ] || fail "every class for couch"
  printf 'P5\n2 1\n255\n\000\000' > "$T/wall.pgm"
  expect_exit 0 "the built table in use" -- "$C" --classes "$T/c2.txt" --table "$T/wn.tsv" "$T/wall.pgm" --tags - --json <<<"couch"
  stdout_has '"tag":"couch","class_index":1,"class":"sofa","score":1.0,"kept":true' "couch -> sofa"
  expect_exit 0 "wordnet backend" -- "$C" --classes "$T/c2.txt" "$T/wall.pgm" --tags - --json <<<"couch, xyzzy"
  stdout_has '"tag":"couch","class_index":1,"class":"sofa","score":1.0,"kept":true' "wordnet couch -> sofa"
  stdout_has '"tag":"xyzzy","class_index":-1,"score":null,"reasons":{"score":' "no score for xyzzy"
  expect_exit 3 "missing WordNet folder" -- "$C" --classes "$T/c2.txt" "$T/wall.pgm" --wordnet "$T/nowhere" --tags - <<<"couch"
  stderr_has "data.noun" "names the file"
else
  echo "skip: no WordNet data in $WN (wordnet-base)"
fi
expect_exit 2 "sbert without a model" -- "$C" --similarity sbert "$T/lm.pgm"
stderr_has "--text-model" "asks for the model"
# A flag of the similarity that does not run is refused, not ignored.
expect_exit 2 "--senses with sbert" -- "$C" --similarity sbert --text-model "$T" --senses 1 "$T/lm.pgm" --tags - <<<"pond"
stderr_has "--senses applies to --similarity wordnet, not to --similarity sbert" "names both"
expect_exit 2 "--senses with a table" -- "$C" "${COMMON[@]}" --senses 1 "$T/lm.pgm" --tags - <<<"pond"
stderr_has "not to --table" "names the table"
expect_exit 2 "--text-model with wordnet" -- "$C" --text-model "$T" "$T/lm.pgm" --tags - <<<"pond"
stderr_has "--text-model applies to --similarity sbert, not to --similarity wordnet" "names both"
expect_exit 2 "--device with a table" -- "$C" "${COMMON[@]}" --device cpu "$T/lm.pgm" --tags - <<<"pond"
stderr_has "--device applies to --similarity sbert" "names the flag"
expect_exit 2 "--wordnet with a table" -- "$C" "${COMMON[@]}" --wordnet "$T" "$T/lm.pgm" --tags - <<<"pond"
stderr_has "--wordnet applies to --similarity wordnet, not to --table" "names the flag and the table"
expect_exit 2 "--wordnet= with a table" -- "$C" "${COMMON[@]}" "--wordnet=$T" "$T/lm.pgm" --tags - <<<"pond"
# RASS_WORDNET_DIR, set for every run, is not the flag: a table run goes on.
expect_exit 0 "RASS_WORDNET_DIR with a table" -- env RASS_WORDNET_DIR="$T" "$C" "${COMMON[@]}" "$T/lm.pgm" --tags - <<<"pond"
# Sentence-BERT on the tiny random fixture (tests/nn/make_bert_fixture.py; parity in tests/nn/test_bert.cpp):
# built with LibTorch it runs; without, it says what is missing.
SB=(--classes "$T/classes.txt" --similarity sbert --text-model "$FIX/nn/sbert_tiny" "$T/lm.pgm" --tags - --json)
if "$C" "${SB[@]}" <<<"pond" >/dev/null 2>&1; then
  expect_exit 0 "sbert backend" -- "$C" "${SB[@]}" --threshold -1 <<<"pond, lake"
  stdout_has '"tag":"lake","class_index":3,"class":"lake","score":' "lake -> lake (cosine 1)"
  stdout_has '"tag":"pond","class_index":' "pond is scored"
  expect_exit 3 "sbert folder without weights" -- "$C" --classes "$T/classes.txt" --similarity sbert --text-model "$T" \
    "$T/lm.pgm" --tags - <<<"pond"
  stderr_has "model.safetensors: missing" "names the file"
else
  expect_exit 2 "sbert needs LibTorch" -- "$C" "${SB[@]}" <<<"pond"
  stderr_has "LibTorch" "says why"
fi
# Everything read is an input: no output over or inside the tokenizer, the
# WordNet folder (a copy here: never the system one) or the tag/class files.
cp -r "$TOK" "$T/tk"
voc_before=$(md5sum <"$T/tk/vocab.json")
expect_exit 2 "-o over the tokenizer's vocab.json" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tokenizer "$T/tk" -o "$T/tk/vocab.json"
[ "$(md5sum <"$T/tk/vocab.json")" = "$voc_before" ] || fail "the tokenizer was changed"
expect_exit 2 "-o inside the tokenizer folder" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tokenizer "$T/tk" -o "$T/tk/x.h5"
stderr_has "inside the input folder" "the folder named"
[ -e "$T/tk/x.h5" ] && fail "nothing written into the tokenizer folder"
expect_exit 2 "-o over --tags" -- "$C" "${COMMON[@]}" "$T/lm.pgm" --tokenizer "$T/tk" --tags "$T/tags.txt" -o "$T/tags.txt"
mkdir -p "$T/wn" && printf 'not a real database\n' > "$T/wn/data.noun"
printf 'couch\n' > "$T/voc1.txt"
expect_exit 2 "build-table -o over the WordNet data (--wordnet)" -- "$C" build-table "$T/voc1.txt" -o "$T/wn/data.noun" --classes "$T/classes.txt" --wordnet "$T/wn"
RASS_WORDNET_DIR=$T/wn expect_exit 2 "build-table -o over the WordNet data (RASS_WORDNET_DIR)" -- "$C" build-table "$T/voc1.txt" -o "$T/wn/data.noun" --classes "$T/classes.txt"
expect_exit 2 "build-table -o over --classes" -- "$C" build-table "$T/voc1.txt" -o "$T/classes.txt" --classes "$T/classes.txt" --wordnet "$T/wn"
# Caption-map flags build-table would ignore: refused (exit 0 before).
for f in "--threshold 0.9" "--tokenizer $TOK" "-O $T/unused" "--prompt-style rass" "--json" "--shard 0/2"; do
  # shellcheck disable=SC2086
  expect_exit 2 "build-table $f" -- "$C" build-table "$T/voc1.txt" -o "$T/ignored.tsv" --classes "$T/classes.txt" $f
  stderr_has "does not apply to build-table"
done
[ "$(cat "$T/wn/data.noun")" = "not a real database" ] || fail "the WordNet copy was changed"
expect_exit 2 "batch -O inside the tokenizer folder" -- "$C" "${COMMON[@]}" "$T/maps" --tokenizer "$T/tk" -O "$T/tk/packs"
[ -e "$T/tk/packs" ] && fail "no folder inside the tokenizer"

# A failed batch run leaves no -O folder it made (every item fails here).
printf '%s\n' "$T/missing1.png" "$T/missing2.png" > "$T/bad.list"
expect_exit 3 "manifest of missing maps" -- "$C" "${COMMON[@]}" --manifest "$T/bad.list" --tokenizer "$TOK" -O "$T/failed_out"
[ -e "$T/failed_out" ] && fail "an empty -O folder left after a failed run"
mkdir -p "$T/kept_out"
expect_exit 3 "manifest of missing maps, -O existing" -- "$C" "${COMMON[@]}" --manifest "$T/bad.list" --tokenizer "$TOK" -O "$T/kept_out"
[ -d "$T/kept_out" ] || fail "a folder the user made is kept"
expect_exit 2 "--jobs -1" -- "$C" "${COMMON[@]}" "$T/maps" -j -1
stderr_has "--jobs: expected a non-negative integer, got '-1'" "readable --jobs message"
finish
