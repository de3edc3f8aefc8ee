# rass-t5 on the committed tiny T5 encoder (tests/fixtures/nn/t5_tiny, random
# weights; tests/nn/make_t5_fixture.py) and tiny SentencePiece model: caption
# files, a folder, --text, stdin/stdout, the features against the reference's
# (tools/extract_t5_features.py run by the fixture script), a batch with
# --resume and --shard, the output read by rass-dreamclear, and bad inputs with
# their exit codes and no partial output. Token-level and numerical equality
# are tests/text/test_sentencepiece.cpp and tests/nn/test_t5.cpp.
. "$(dirname "$0")/lib.sh"
E=$B/rass-t5
[ -x "$E" ] || { echo "skipped: rass-t5 not built (no LibTorch)"; exit 77; }
N=$FIX/nn
M=$N/t5_tiny
TOK=$FIX/text/t5_tiny_spiece.model
CAPS=$N/t5_captions
GOLD=$N/t5_golden
CMP=$SRC/tests/cli/npz_compare.py
run() { "$E" -m "$M" --tokenizer "$TOK" "$@"; }

expect_exit 0 "one caption file" -- run "$CAPS/cat.caption" -o "$T/cat.npz" --json
python3 "$CMP" "$T/cat.npz" "$GOLD/cat.npz" caption_feature 5e-5 >/dev/null || fail "features differ from the reference's"
python3 "$CMP" "$T/cat.npz" "$GOLD/cat.npz" attention_mask 0 >/dev/null || fail "the mask differs from the reference's"
grep -q '"tokens":58,"kept":58,"truncated":false' "$T/.out" || fail "the record counts the tokens: $(cat "$T/.out")"
expect_exit 0 "same again" -- run "$CAPS/cat.caption" -o "$T/cat2.npz" -q
cmp -s "$T/cat.npz" "$T/cat2.npz" || fail "one caption gives one file, byte for byte"
expect_exit 0 "a caption longer than 120 tokens" -- run "$CAPS/long.caption" -o "$T/long.npz" --json
python3 "$CMP" "$T/long.npz" "$GOLD/long.npz" caption_feature 5e-5 >/dev/null || fail "truncated features differ"
grep -q '"truncated":true' "$T/.out" || fail "the record says the caption was cut: $(cat "$T/.out")"
expect_exit 0 "an empty caption" -- run "$CAPS/empty.caption" -o "$T/empty.npz"
python3 "$CMP" "$T/empty.npz" "$GOLD/empty.npz" caption_feature 5e-5 >/dev/null || fail "the empty caption's features differ"
expect_exit 0 "--text" -- run --text "$(head -n1 "$CAPS/street.caption")" -o "$T/street.npz"
python3 "$CMP" "$T/street.npz" "$GOLD/street.npz" caption_feature 5e-5 >/dev/null || fail "--text gives other features"
expect_exit 0 "stdin to stdout" -- bash -c "'$E' -m '$M' --tokenizer '$TOK' - -o - <'$CAPS/cat.caption' >'$T/pipe.npz'"
python3 "$CMP" "$T/pipe.npz" "$GOLD/cat.npz" caption_feature 5e-5 >/dev/null || fail "stdin gives other features"
expect_exit 0 "--clean none" -- run "$CAPS/cat.caption" --clean none -o "$T/raw.npz"
python3 "$CMP" "$T/raw.npz" "$GOLD/cat.npz" attention_mask 0 >/dev/null 2>&1 && \
  python3 "$CMP" "$T/raw.npz" "$GOLD/cat.npz" caption_feature 1e-3 >/dev/null 2>&1 && fail "--clean none changes nothing"
expect_exit 0 "bf16" -- run "$CAPS/cat.caption" --dtype bf16 -o "$T/bf.npz"
python3 "$CMP" "$T/bf.npz" "$GOLD/cat.npz" caption_feature 0.15 >/dev/null || fail "bf16 is far from the reference"
# The tokenizer found beside the model as a diffusers pipeline lays them out.
mkdir -p "$T/pipe/text_encoder" "$T/pipe/tokenizer"
cp "$M"/* "$T/pipe/text_encoder/"
cp "$TOK" "$T/pipe/tokenizer/spiece.model"
expect_exit 0 "a pipeline's text_encoder/ with ../tokenizer/" -- "$E" -m "$T/pipe/text_encoder" "$CAPS/cat.caption" -o "$T/p.npz"
python3 "$CMP" "$T/p.npz" "$GOLD/cat.npz" caption_feature 5e-5 >/dev/null || fail "the pipeline layout gives other features"

# Batch: a folder of .caption files, --resume, --shard, --json lines.
expect_exit 0 "batch" -- run "$CAPS" -O "$T/out" --json -j 2
for k in cat street long empty; do
  python3 "$CMP" "$T/out/$k.npz" "$GOLD/$k.npz" caption_feature 5e-5 >/dev/null || fail "batch: $k differs"
done
[ "$(grep -c '"tool":"rass-t5"' "$T/.out")" = 4 ] || fail "one record per caption"
expect_exit 0 "--resume keeps all" -- run "$CAPS" -O "$T/out" --resume
stderr_has "0 encoded, 4 already done" "--resume skips finished outputs"
expect_exit 0 "--resume with another --max-length" -- run "$CAPS" -O "$T/out" --resume --max-length 64 -q
python3 "$CMP" "$T/out/cat.npz" "$GOLD/cat.npz" caption_feature 5e-5 >/dev/null 2>&1 && fail "--resume kept outputs of other settings"
head -c 100 "$T/out/cat.npz" >"$T/cut" && mv "$T/cut" "$T/out/cat.npz"
expect_exit 0 "--resume over a cut output" -- run "$CAPS" -O "$T/out" --resume --max-length 64
stderr_has "1 encoded, 3 already done" "a cut output is made again"
expect_exit 0 "--shard 1/2" -- run "$CAPS" -O "$T/sh" --shard 1/2 -q
[ "$(ls "$T/sh" | wc -l)" = 2 ] || fail "--shard 1/2 wrote $(ls "$T/sh" | wc -l) outputs, expected 2"

# The features as rass-dreamclear reads them: the tiny DreamClear takes 8 tokens of 32 channels.
D=$B/rass-dreamclear
if [ -x "$D" ]; then
  expect_exit 0 "8 tokens for the tiny DreamClear" -- run "$CAPS/cat.caption" --max-length 8 -o "$T/c8.npz"
  expect_exit 0 "rass-dreamclear reads rass-t5's file" -- "$D" -m "$N/dreamclear_tiny" --min-size 128 --steps 1 --tile 0 \
    "$N/dreamclear_lq.png" --caption "$T/c8.npz" -o "$T/dc.png" -q
  [ -s "$T/dc.png" ] || fail "no restored image"
fi

# Refusals, and nothing written.
expect_exit 2 "no model" -- "$E" "$CAPS/cat.caption" -o "$T/x.npz"
expect_exit 2 "no output" -- run "$CAPS/cat.caption"
expect_exit 2 "--text and a file" -- run --text hi "$CAPS/cat.caption" -o "$T/x.npz"
expect_exit 2 "--text with -O" -- run --text hi -O "$T/xo"
expect_exit 2 "--max-length 1" -- run "$CAPS/cat.caption" --max-length 1 -o "$T/x.npz"
expect_exit 2 "--clean other" -- run "$CAPS/cat.caption" --clean other -o "$T/x.npz"
cp "$CAPS/cat.caption" "$T/in.caption"
expect_exit 2 "-o over the input" -- run "$T/in.caption" -o "$T/in.caption"
cmp -s "$CAPS/cat.caption" "$T/in.caption" || fail "the input was written over"
expect_exit 2 "-o inside the model folder" -- run "$CAPS/cat.caption" -o "$M/x.npz"
expect_exit 3 "a missing caption file" -- run "$T/none.caption" -o "$T/x.npz"
stderr_has "none.caption" "the message names the file"
printf 'a \377 cat\n' >"$T/latin1.caption"
expect_exit 3 "a caption that is not UTF-8" -- run "$T/latin1.caption" -o "$T/x.npz"
stderr_has "not UTF-8" "the message says why"
expect_exit 3 "/dev/zero as the caption" -- timeout 60 "$E" -m "$M" --tokenizer "$TOK" /dev/zero -o "$T/x.npz"
head -c 20000 /dev/zero | tr '\0' a >"$T/huge.caption"
expect_exit 3 "a caption of 20000 bytes" -- run "$T/huge.caption" -o "$T/x.npz"
stderr_has "at most 16384" "the message gives the limit"
expect_exit 3 "no tokenizer beside the model" -- "$E" -m "$M" "$CAPS/cat.caption" -o "$T/x.npz"
stderr_has "spiece.model" "the message says what is missing"
expect_exit 3 "a tokenizer that is no SentencePiece model" -- "$E" -m "$M" --tokenizer "$M/config.json" "$CAPS/cat.caption" -o "$T/x.npz"
stderr_has "not a SentencePiece model" "the message says what the file is not"
expect_exit 3 "not a T5 folder" -- "$E" -m "$N/dreamclear_tiny" --tokenizer "$TOK" "$CAPS/cat.caption" -o "$T/x.npz"
stderr_has "config.json" "the message names the file"
mkdir -p "$T/nan"
cp "$M/config.json" "$T/nan/"
python3 "$SRC/tests/cli/poison_tensor.py" "$M/model.safetensors" "$T/nan/model.safetensors" encoder.final_layer_norm.weight nan
expect_exit 3 "a weight holding NaN" -- "$E" -m "$T/nan" --tokenizer "$TOK" "$CAPS/cat.caption" -o "$T/x.npz"
stderr_has "encoder.final_layer_norm.weight' holds non-finite values" "the message names the tensor"
expect_exit 3 "--text that is not UTF-8" -- run --text "$(printf 'a \377 b')" -o "$T/x.npz"
stderr_has "--text: is not UTF-8" "the message names --text"
expect_exit 2 "--resume with -o" -- run "$CAPS/cat.caption" --resume -o "$T/x.npz"
expect_exit 3 "-m naming a file" -- "$E" -m "$M/config.json" --tokenizer "$TOK" "$CAPS/cat.caption" -o "$T/x.npz"
stderr_has "is not a directory" "the message says what -m takes"
mkdir -p "$T/pickled"
cp "$M/config.json" "$T/pickled/"
: >"$T/pickled/pytorch_model.bin"
expect_exit 3 "weights as pickles only" -- "$E" -m "$T/pickled" --tokenizer "$TOK" "$CAPS/cat.caption" -o "$T/x.npz"
stderr_has "convert it once" "the message says how to go on"
mkdir -p "$T/emptydir"
expect_exit 3 "a folder without captions" -- run "$T/emptydir" -O "$T/eo"
stderr_has ".caption .txt" "the message says which files are read"
[ -e "$T/x.npz" ] && fail "a refused run wrote its output"
# Many spaces around nothing: the cleaning stays linear (with the regexes it took 10 s; the timeout guards a hang).
{ printf 'a'; head -c 16000 /dev/zero | tr '\0' ' '; printf 'b\n'; } >"$T/spaces.caption"
expect_exit 0 "16000 spaces in a caption" -- timeout 60 "$E" -m "$M" --tokenizer "$TOK" "$T/spaces.caption" -o "$T/sp.npz"
# A folder with a bad caption among good ones: the others are written.
mkdir -p "$T/mixed"
cp "$CAPS/cat.caption" "$T/mixed/"
cp "$T/latin1.caption" "$T/mixed/"
expect_exit 3 "a batch with one bad caption" -- run "$T/mixed" -O "$T/mo" -q
[ -s "$T/mo/cat.npz" ] || fail "the good caption is written beside the bad one"
[ -e "$T/mo/latin1.npz" ] && fail "no output for the bad caption"
# A whole T5 (T5ForConditionalGeneration's file: the decoder and lm_head
# beside the encoder) loads as its encoder, as transformers' T5EncoderModel
# loads it (it was refused: "2 unexpected"); other stray tensors still are.
mkdir -p "$T/whole"
cp "$M/config.json" "$T/whole/"
python3 "$SRC/tests/cli/add_tensors.py" "$M/model.safetensors" "$T/whole/model.safetensors" \
  decoder.block.0.layer.0.SelfAttention.q.weight=4x4 decoder.final_layer_norm.weight=4 lm_head.weight=8x4
expect_exit 0 "a whole T5 checkpoint" -- "$E" -m "$T/whole" --tokenizer "$TOK" "$CAPS/cat.caption" -o "$T/whole.npz" -q
python3 "$CMP" "$T/whole.npz" "$GOLD/cat.npz" caption_feature 5e-5 >/dev/null || fail "the whole checkpoint gives other features"
python3 "$SRC/tests/cli/add_tensors.py" "$M/model.safetensors" "$T/whole/model.safetensors" encoder.extra.weight=4
expect_exit 3 "a stray encoder tensor" -- "$E" -m "$T/whole" --tokenizer "$TOK" "$CAPS/cat.caption" -o "$T/x.npz" -q
stderr_has "encoder.extra.weight" "names the tensor"
# --shard with one caption is refused (it was ignored).
expect_exit 2 "--shard with -o FILE" -- run "$CAPS/cat.caption" -o "$T/x.npz" --shard 1/2
stderr_has "--shard splits a batch" "the flag is named"
finish
