# rass-dreamclear on the committed tiny model folder
# (tests/fixtures/nn/dreamclear_tiny, random weights; tests/nn/make_dreamclear_fixture.py):
# captions from a file, a folder or the null caption, seeds, tiles, stdin/stdout,
# a batch with --resume and --shard, and bad inputs with their exit codes and
# no partial output. Numerical equality with DreamClear's own code is
# tests/nn/test_dreamclear.cpp.
. "$(dirname "$0")/lib.sh"
D=$B/rass-dreamclear
[ -x "$D" ] || { echo "skipped: rass-dreamclear not built (no LibTorch)"; exit 77; }
N=$FIX/nn
M=$N/dreamclear_tiny
L=$N/dreamclear_lq.png  # 32x32
C=$N/dreamclear_caption.npz
run() { "$D" -m "$M" --min-size 128 --steps 2 --tile 16 --tile-overlap 4 "$@"; }
# The same on another model folder.
runm() { local m=$1; shift; "$D" -m "$m" --min-size 128 --steps 2 "$@"; }

png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{printf "%dx%d", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}'; }

expect_exit 0 "one image, a caption file" -- run "$L" --caption "$C" -o "$T/a.png" --json
[ "$(png_size "$T/a.png")" = "128x128" ] || fail "x4 of 32x32 is 128x128, got $(png_size "$T/a.png")"
grep -q '"work_size":\[128,128\],"output_size":\[128,128\]' "$T/.out" || fail "the record gives the sizes: $(cat "$T/.out")"
expect_exit 0 "same again" -- run "$L" --caption "$C" -o "$T/a2.png" -q
cmp -s "$T/a.png" "$T/a2.png" || fail "one seed gives one output"
expect_exit 0 "another seed" -- run "$L" --caption "$C" -o "$T/a3.png" -q -s 5
same_pixels "$T/a.png" "$T/a3.png" && fail "another seed gives the same output"
expect_exit 0 "the null caption" -- run "$L" --null-caption -o "$T/n.png" -q
same_pixels "$T/a.png" "$T/n.png" && fail "the caption changes nothing"
expect_exit 0 "--cfg 1 --color-fix none" -- run "$L" --caption "$C" --cfg 1 --color-fix none -o "$T/c.png" -q
same_pixels "$T/a.png" "$T/c.png" && fail "guidance and colour fix change nothing"
# 48x32 -> 192x128: latent 24x16, tiles of 16 (or the whole latent with --tile 0).
python3 -c "import sys; sys.stdout.buffer.write(b'P6\\n48 32\\n255\\n' + bytes((i * 37 + (i // 97) * 11) % 256 for i in range(48 * 32 * 3)))" >"$T/wide.ppm"
expect_exit 0 "48x32, tiled" -- run "$T/wide.ppm" --caption "$C" -o "$T/w.png" -q
[ "$(png_size "$T/w.png")" = "192x128" ] || fail "x4 of 48x32 is 192x128, got $(png_size "$T/w.png")"
expect_exit 0 "48x32, --tile 0" -- runm "$M" "$T/wide.ppm" --caption "$C" --tile 0 -o "$T/w0.png" -q
# The default tile (128) and overlap (32) over a 24x16 latent: tiles of 16, whose overlap becomes 4 (it would never advance).
expect_exit 0 "default tiles on a latent shorter than them" -- timeout 120 "$D" -m "$M" --min-size 128 --steps 2 "$T/wide.ppm" --caption "$C" -o "$T/wd.png" -q
same_pixels "$T/w.png" "$T/wd.png" || fail "tiles of 16 with the overlap made 4 equal --tile 16 --tile-overlap 4"
same_pixels "$T/w.png" "$T/w0.png" && fail "tiles and the whole latent give the same output"
# --vae-tile (not the reference's: it has none): 48x32 at --min-size 256 works at
# 384x256 (latent 48x32), past tiles of 64 px + 2 x 32 and 8 latent px + 2 x 11.
big() { "$D" -m "$M" --min-size 256 --steps 2 --tile 16 --tile-overlap 4 "$T/wide.ppm" --caption "$C" "$@"; }
expect_exit 0 "the whole VAE" -- big -o "$T/vw.png" -q
expect_exit 0 "--vae-tile 64,8" -- big -o "$T/vt.png" --vae-tile 64,8 --json
grep -q '"vae_tile":{"encoder":64,"decoder":8}' "$T/.out" || fail "the record names the tiled halves: $(cat "$T/.out")"
same_pixels "$T/vw.png" "$T/vt.png" && fail "--vae-tile 64,8 ran no tiles"
if [ -x "$B/rass-eval-iqa" ]; then
  "$B/rass-eval-iqa" -m psnr "$T/vt.png" "$T/vw.png" --json -q | grep -o '"psnr": [0-9.]*' | tail -1 |
    awk '{ v = $2 } END { exit !(NR == 1 && v >= 40) }' || fail "the tiled VAE strays from the whole one (PSNR under 40 dB)"
fi
expect_exit 0 "--vae-tile 64,8 --vae-offload on" -- big -o "$T/vo.png" --vae-tile 64,8 --vae-offload on -q
same_pixels "$T/vt.png" "$T/vo.png" || fail "--vae-offload on changed the output bits"
expect_exit 0 "--vae-tile larger than the image" -- big -o "$T/vl.png" --vae-tile 1024,224 --json
grep -q '"vae_tile":null' "$T/.out" || fail "tiles that do not apply are recorded as null: $(cat "$T/.out")"
same_pixels "$T/vw.png" "$T/vl.png" || fail "tiles that do not apply changed the output"
for v in 64 63,8 64,7 ,8 64,8,1 +64,8; do
  expect_exit 2 "--vae-tile '$v'" -- big -o "$T/vx.png" --vae-tile "$v"
done
expect_exit 2 "--vae-tile ''" -- big -o "$T/vx.png" --vae-tile '' --vae-offload on
expect_exit 2 "--vae-tile 0,0" -- big -o "$T/vx.png" --vae-tile 0,0
expect_exit 2 "--vae-tile past 2^20" -- big -o "$T/vx.png" --vae-tile 2097152,8
stderr_has "at most 1048576" "the message gives the bound"
expect_exit 0 "--vae-tile with leading zeros" -- big -o "$T/vz.png" --vae-tile 000000000064,0008 -q
same_pixels "$T/vt.png" "$T/vz.png" || fail "000000000064,0008 is 64,8"
expect_exit 2 "--vae-offload without --vae-tile" -- big -o "$T/vx.png" --vae-offload on
expect_exit 2 "--vae-offload sometimes" -- big -o "$T/vx.png" --vae-tile 64,8 --vae-offload sometimes
[ -e "$T/vx.png" ] && fail "a refused run wrote its output"
# --upscale 2 and the default --min-size: worked at 1024 x 1536 would be slow; 64 keeps it small.
expect_exit 0 "--upscale 2 --min-size 64" -- "$D" -m "$M" --steps 1 --upscale 2 --min-size 64 --tile 0 "$T/wide.ppm" --caption "$C" -o "$T/u.png" -q
[ "$(png_size "$T/u.png")" = "96x64" ] || fail "x2 of 48x32 is 96x64, got $(png_size "$T/u.png")"
expect_exit 0 "stdin to stdout" -- bash -c "'$D' -m '$M' --min-size 128 --steps 2 --caption '$C' -q - -o - <'$L' >'$T/pipe.png'"
[ "$(png_size "$T/pipe.png")" = "128x128" ] || fail "stdout holds a 128x128 PNG"
expect_exit 0 "bf16" -- run "$L" --caption "$C" --dtype bf16 -o "$T/bf.png" -q
expect_exit 0 "--lre-start 999" -- run "$L" --caption "$C" --lre-start 999 -o "$T/lre.png" --json -q
grep -q '"lre_start":999' "$T/.out" || fail "--lre-start is recorded: $(cat "$T/.out")"
same_pixels "$T/a.png" "$T/lre.png" && fail "the LRE start changes nothing"
expect_exit 2 "--lre-start past the training steps" -- run "$L" --caption "$C" --lre-start 1000 -o "$T/x.png"

# Batch: captions from a folder (<key>.npz), --resume, --shard, --json lines.
mkdir -p "$T/in" "$T/caps"
cp "$L" "$T/in/one.png"
cp "$T/wide.ppm" "$T/in/two.ppm"
cp "$C" "$T/caps/one.npz"
cp "$C" "$T/caps/two.npz"
expect_exit 0 "batch" -- run "$T/in" --caption "$T/caps" -O "$T/out" --json
[ -s "$T/out/one.png" ] && [ -s "$T/out/two.png" ] || fail "batch writes DIR/<key>.png for both"
[ "$(grep -c '"tool":"rass-dreamclear"' "$T/.out")" = 2 ] || fail "one record per item"
expect_exit 0 "single run of one.png" -- run "$T/in/one.png" --caption "$C" -o "$T/one.png" -q
same_pixels "$T/out/one.png" "$T/one.png" || fail "batch output differs from the single run of the same key"
expect_exit 0 "--resume keeps both" -- run "$T/in" --caption "$T/caps" -O "$T/out" --resume
stderr_has "0 restored, 2 already done" "--resume skips finished outputs"
cp "$FIX/npz_stored.npz" "$T/caps/two.npz"
expect_exit 3 "--resume with a caption that changed" -- run "$T/in" --caption "$T/caps" -O "$T/out" --resume
stderr_has "has no 'caption_feature'" "the message names what the caption file lacks"
[ -s "$T/out/two.png" ] || fail "a refused item keeps its earlier output"
cp "$C" "$T/caps/two.npz"
# one (work 128x128) passes no tile of 64 + 2 x 32 px; two (192x128) passes the encoder's.
expect_exit 0 "--resume with --vae-tile 64,8" -- run "$T/in" --caption "$T/caps" -O "$T/out" --resume --vae-tile 64,8
stderr_has "1 restored, 1 already done" "only the item whose VAE runs tiled is made again"
expect_exit 0 "--shard 1/2" -- run "$T/in" --caption "$T/caps" -O "$T/sh" --shard 1/2 -q
[ "$(ls "$T/sh" | wc -l)" = 1 ] || fail "--shard 1/2 wrote $(ls "$T/sh" | wc -l) outputs, expected 1"
rm "$T/caps/two.npz"
expect_exit 3 "a caption missing from the folder" -- run "$T/in" --caption "$T/caps" -O "$T/out3" -q
stderr_has "two.npz" "the message names the missing caption"
[ -s "$T/out3/one.png" ] || fail "the good items are written beside a bad one"
# A FIFO found in the caption folder is a bad item (the batch blocked at its open).
mkfifo "$T/caps/two.npz"
expect_exit 3 "a FIFO in the caption folder" -- timeout 120 "$D" -m "$M" --min-size 128 --steps 2 --tile 16 --tile-overlap 4 \
  "$T/in" --caption "$T/caps" -O "$T/out4" -q
stderr_has "two.npz: is not a regular file but a FIFO" "names what is there"
[ -s "$T/out4/one.png" ] || fail "the good item is written beside the FIFO's"
rm "$T/caps/two.npz"
# --shard with one image is refused (it was ignored).
expect_exit 2 "--shard with -o FILE" -- run "$L" --caption "$C" -o "$T/x.png" --shard 1/2
stderr_has "--shard splits a batch" "the flag is named"
[ -e "$T/out3/two.png" ] && fail "no output for the item without a caption"

# Refusals, and nothing written.
expect_exit 2 "--resume with -o (one image)" -- run "$L" --caption "$C" -o "$T/x.png" --resume
expect_exit 2 "no caption" -- run "$L" -o "$T/x.png"
stderr_has "--null-caption" "the message says how to go on"
expect_exit 2 "both caption flags" -- run "$L" --caption "$C" --null-caption -o "$T/x.png"
expect_exit 2 "--caption -" -- run "$L" --caption - -o "$T/x.png"
expect_exit 2 "no model" -- "$D" "$L" --caption "$C" -o "$T/x.png"
expect_exit 2 "no output" -- run "$L" --caption "$C"
expect_exit 2 "--tile-overlap at --tile" -- run "$L" --caption "$C" --tile 16 --tile-overlap 16 -o "$T/x.png"
expect_exit 2 "odd --tile" -- run "$L" --caption "$C" --tile 15 -o "$T/x.png"
expect_exit 2 "--steps 0" -- run "$L" --caption "$C" --steps 0 -o "$T/x.png"
expect_exit 2 "fp16 on the CPU" -- run "$L" --caption "$C" --dtype fp16 -o "$T/x.png"
expect_exit 2 "-o over the input" -- run "$T/in/one.png" --caption "$C" -o "$T/in/one.png"
expect_exit 2 "-o inside the model folder" -- run "$L" --caption "$C" -o "$M/x.png"
expect_exit 3 "not a model folder" -- "$D" -m "$N/samsr_tiny" "$L" --caption "$C" -o "$T/x.png"
stderr_has "no dreamclear.json" "the message names what is missing"
# An npz of the right arrays but 4 tokens (the model takes 8): named with both shapes.
python3 "$SRC/tests/cli/write_caption_npz.py" "$T/short.npz" 4 32 0 1 1 0 0
expect_exit 3 "a caption of another size" -- run "$L" --caption "$T/short.npz" -o "$T/x.png"
stderr_has "[1, 4, 32]; the model takes [1, 8, 32]" "the message gives both shapes"
expect_exit 3 "a caption file that is no npz" -- run "$L" --caption "$L" -o "$T/x.png"
expect_exit 3 "/dev/zero as the caption" -- timeout 60 "$D" -m "$M" --min-size 128 --steps 2 "$L" --caption /dev/zero -o "$T/x.png"
stderr_has "is not an .npz" "refused at its first bytes, not read until the memory runs out"
expect_exit 2 "--cfg nan" -- run "$L" --caption "$C" --cfg nan -o "$T/x.png"
# A mask value other than 0 or 1.
python3 "$SRC/tests/cli/write_caption_npz.py" "$T/mask2.npz" 8 32 0 1 1 2 0 0 0 0 0
expect_exit 3 "a mask holding 2" -- run "$L" --caption "$T/mask2.npz" -o "$T/x.png"
stderr_has "0 and 1 only" "the message says what a mask holds"
# A caption of huge values: the sample overflows; exit 1 naming it, not a black image with exit 0.
python3 "$SRC/tests/cli/write_caption_npz.py" "$T/huge.npz" 8 32 3e38 1 1 1 0 0 0 0 0
expect_exit 1 "a caption that overflows the sample" -- run "$L" --caption "$T/huge.npz" -o "$T/x.png"
stderr_has "non-finite" "the message says the sample is not finite"
# Integer features: T5's are floats (they were converted and used).
FEATURE_DESCR="<i4" python3 "$SRC/tests/cli/write_caption_npz.py" "$T/int.npz" 8 32 1 1 1 1 0 0 0 0 0
expect_exit 3 "integer caption features" -- run "$L" --caption "$T/int.npz" -o "$T/x.png"
stderr_has "caption_feature holds <i4 values; T5 features are floating point" "the message names the dtype"
FEATURE_DESCR="<f8" python3 "$SRC/tests/cli/write_caption_npz.py" "$T/f8.npz" 8 32 0 1 1 1 0 0 0 0 0
expect_exit 0 "float64 caption features" -- run "$L" --caption "$T/f8.npz" -o "$T/f8.png"
expect_exit 3 "a missing caption file" -- run "$L" --caption "$T/none.npz" -o "$T/x.png"
stderr_has "none.npz" "the message names the file"
printf 'GIF89a' >"$T/bad.gif"
expect_exit 3 "not an image" -- run "$T/bad.gif" --caption "$C" -o "$T/x.png"
# 16x4096 x4, its shorter side to 1024: 1024 x 262144 is past the 64 Mpx the tool works on.
python3 -c "import sys; sys.stdout.buffer.write(b'P6\\n16 4096\\n255\\n' + bytes(16 * 4096 * 3))" >"$T/long.ppm"
expect_exit 3 "a working size past 64 Mpx" -- "$D" -m "$M" "$T/long.ppm" --caption "$C" -o "$T/x.png"
stderr_has "more than 64 Mpx" "the message says why"
# A config that does not fit its weights, and sizes that would build gigabytes.
mkdir -p "$T/misfit"
for f in dit.safetensors swinir.safetensors vae; do ln -s "$M/$f" "$T/misfit/$f"; done
sed 's/"copy_blocks_num": 3/"copy_blocks_num": 2/' "$M/dreamclear.json" >"$T/misfit/dreamclear.json"
expect_exit 3 "dreamclear.json does not fit the weights" -- runm "$T/misfit" "$L" --caption "$C" -o "$T/x.png"
stderr_has "controlnet_lq.2" "the message names the tensor"
sed 's/"hidden_size": 48/"hidden_size": 6144/; s/"depth": 4/"depth": 200/' "$M/dreamclear.json" >"$T/misfit/dreamclear.json"
expect_exit 3 "hidden_size 6144, depth 200 against the weights" -- runm "$T/misfit" "$L" --caption "$C" -o "$T/x.png"
stderr_has "base_model.x_embedder.proj.weight" "checked against the file before the network is built"
sed 's/"patch_size": 2/"patch_size": 0/' "$M/dreamclear.json" >"$T/misfit/dreamclear.json"
expect_exit 3 "patch_size 0" -- runm "$T/misfit" "$L" --caption "$C" -o "$T/x.png"
stderr_has "dit.patch_size = 0 is outside 1..16" "named, not a division by zero"
printf '{"format": "rass-dreamclear", "dit": {}, "swinir": {"upsampler": "pixelshuffle"}}' >"$T/misfit/dreamclear.json"
expect_exit 3 "another SwinIR" -- runm "$T/misfit" "$L" --caption "$C" -o "$T/x.png"
stderr_has "only DreamClear's SwinIR" "the message says what is built"
# A weight holding NaN: named, not a black image with exit 0.
mkdir -p "$T/nan"
for f in dreamclear.json swinir.safetensors vae; do ln -s "$M/$f" "$T/nan/$f"; done
python3 "$SRC/tests/cli/poison_tensor.py" "$M/dit.safetensors" "$T/nan/dit.safetensors" cross_de.1.proj.bias nan
expect_exit 3 "a weight holding NaN" -- runm "$T/nan" "$L" --caption "$C" -o "$T/x.png"
stderr_has "cross_de.1.proj.bias' holds non-finite values" "the message names the file and the tensor"
[ -e "$T/x.png" ] && fail "a refused run wrote its output"
finish
