# rass-samsr on the committed tiny model folder (tests/fixtures/nn/samsr_tiny,
# random weights; tests/nn/make_samsr_fixture.py + scripts/convert_samsr.py):
# SAMSR's SAM-noise step, SinSR's Gaussian step and ResShift's chain,
# stdin/stdout, seeds, tiles, padding, bf16, a batch with --resume and
# --shard, and bad inputs with their exit codes and no partial output.
# Numerical equality with the reference code is tests/nn/test_samsr.cpp.
. "$(dirname "$0")/lib.sh"
S=$B/rass-samsr
[ -x "$S" ] || { echo "skipped: rass-samsr not built (no LibTorch)"; exit 77; }
N=$FIX/nn
M=$N/samsr_tiny
L=$N/samsr_lq.png  # 24x16

png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{printf "%dx%d", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}'; }

expect_exit 0 "SAMSR one step" -- "$S" -m "$M" "$L" -o "$T/a.png" --json
[ "$(png_size "$T/a.png")" = "96x64" ] || fail "x4 of 24x16 is 96x64, got $(png_size "$T/a.png")"
grep -q '"method":"samsr","noise":"sam","steps":1' "$T/.out" || fail "the record names the method: $(cat "$T/.out")"
grep -Eq '"sam_masks":[1-9]' "$T/.out" || fail "SAM found masks on the latent: $(cat "$T/.out")"
expect_exit 0 "same again" -- "$S" -m "$M" "$L" -o "$T/a2.png" -q
cmp -s "$T/a.png" "$T/a2.png" || fail "one seed gives one output"
expect_exit 0 "another seed" -- "$S" -m "$M" "$L" -o "$T/a3.png" -q -s 9
same_pixels "$T/a.png" "$T/a3.png" && fail "another seed gives the same output"
expect_exit 0 "stdin to stdout" -- bash -c "'$S' -m '$M' -q - -o - <'$L' >'$T/pipe.png'"
# The key of stdin is "stdin", of the file its stem: another noise draw; the settings chunk differs too.
[ "$(png_size "$T/pipe.png")" = "96x64" ] || fail "stdout holds a 96x64 PNG"
expect_exit 0 "SinSR: Gaussian noise" -- "$S" -m "$M" --noise gaussian "$L" -o "$T/g.png" --json -q
grep -q '"noise":"gaussian"' "$T/.out" || fail "--noise gaussian is recorded"
same_pixels "$T/a.png" "$T/g.png" && fail "SAM noise and Gaussian noise give the same output"
expect_exit 0 "ResShift: the chain respaced to 4 steps" -- "$S" -m "$M" --noise gaussian --steps 4 "$L" -o "$T/r.png" --json -q
grep -q '"steps":4' "$T/.out" || fail "--steps 4 is recorded"
expect_exit 0 "-o JPEG" -- "$S" -m "$M" "$L" -o "$T/a.jpg" -q
[ "$(od -An -tx1 -N2 "$T/a.jpg" | tr -d ' ')" = ffd8 ] || fail "-o .jpg writes JPEG"

# Tiles: 8x8 at stride 7 over 24x16, each restored on its own and averaged.
expect_exit 0 "--chop-size 8" -- "$S" -m "$M" "$L" --chop-size 8 -o "$T/c.png" -q
[ "$(png_size "$T/c.png")" = "96x64" ] || fail "tiled output keeps the size"
same_pixels "$T/a.png" "$T/c.png" && fail "tiles restore each part on its own (other masks and noise)"
expect_exit 2 "--resume with -o (one image)" -- "$S" -m "$M" "$L" -o "$T/x.png" --resume
expect_exit 2 "--chop-size below the network's multiple" -- "$S" -m "$M" "$L" --chop-size 4 -o "$T/x.png"
expect_exit 2 "--chop-stride without tiles" -- "$S" -m "$M" "$L" --chop-size 0 --chop-stride 4 -o "$T/x.png"
expect_exit 2 "--chop-stride above --chop-size" -- "$S" -m "$M" "$L" --chop-size 8 --chop-stride 9 -o "$T/x.png"
# A size that is no multiple of the network's 8: reflect-padded, then cropped.
python3 -c "import sys; sys.stdout.buffer.write(b'P6\\n13 11\\n255\\n' + bytes((i * 37 + (i // 39) * 11) % 256 for i in range(13 * 11 * 3)))" >"$T/odd.ppm"
expect_exit 0 "13x11 input" -- "$S" -m "$M" "$T/odd.ppm" -o "$T/odd.png" -q
[ "$(png_size "$T/odd.png")" = "52x44" ] || fail "x4 of 13x11 is 52x44, got $(png_size "$T/odd.png")"
expect_exit 0 "bf16" -- "$S" -m "$M" "$L" --dtype bf16 -o "$T/bf.png" -q

# Batch: two images, --resume, --shard, --json lines.
mkdir -p "$T/in"
cp "$L" "$T/in/one.png"
cp "$T/odd.ppm" "$T/in/two.ppm"
expect_exit 0 "batch" -- "$S" -m "$M" "$T/in" -O "$T/out" --json
[ -s "$T/out/one.png" ] && [ -s "$T/out/two.png" ] || fail "batch writes DIR/<key>.png for both"
[ "$(grep -c '"tool":"rass-samsr"' "$T/.out")" = 2 ] || fail "one record per item"
expect_exit 0 "single run of one.png" -- "$S" -m "$M" "$T/in/one.png" -o "$T/one.png" -q
same_pixels "$T/out/one.png" "$T/one.png" || fail "batch output differs from the single run of the same key"
same_pixels "$T/one.png" "$T/a.png" && fail "another key (one, samsr_lq) draws other noise"
expect_exit 0 "--resume keeps both" -- "$S" -m "$M" "$T/in" -O "$T/out" --resume
stderr_has "0 restored, 2 already done" "--resume skips finished outputs"
expect_exit 0 "--resume with another seed redoes both" -- "$S" -m "$M" "$T/in" -O "$T/out" --resume -s 3
stderr_has "2 restored, 0 already done" "another seed makes them again"
expect_exit 0 "--shard 1/2" -- "$S" -m "$M" "$T/in" -O "$T/sh" --shard 1/2 -q
[ "$(ls "$T/sh" | wc -l)" = 1 ] || fail "--shard 1/2 wrote $(ls "$T/sh" | wc -l) outputs, expected 1"
printf 'not an image' >"$T/in/bad.png"
expect_exit 3 "batch with a bad image" -- "$S" -m "$M" "$T/in" -O "$T/out3" -q
[ -s "$T/out3/one.png" ] || fail "the good items are written beside a bad one"
[ -e "$T/out3/bad.png" ] && fail "no output for the bad item"
rm "$T/in/bad.png"

# Refusals, and nothing written.
expect_exit 2 "no model" -- "$S" "$L" -o "$T/x.png"
expect_exit 2 "no output" -- "$S" -m "$M" "$L"
expect_exit 2 "--steps 4 with SAM noise" -- "$S" -m "$M" --steps 4 "$L" -o "$T/x.png"
expect_exit 2 "--steps past the chain" -- "$S" -m "$M" --noise gaussian --steps 16 "$L" -o "$T/x.png"
expect_exit 2 "--noise other" -- "$S" -m "$M" --noise other "$L" -o "$T/x.png"
expect_exit 2 "fp16 on the CPU" -- "$S" -m "$M" --dtype fp16 "$L" -o "$T/x.png"
expect_exit 2 "-o over the input" -- "$S" -m "$M" "$T/in/one.png" -o "$T/in/one.png"
expect_exit 2 "-o inside the model folder" -- "$S" -m "$M" "$L" -o "$M/x.png"
expect_exit 2 "-o without a known extension" -- "$S" -m "$M" "$L" -o "$T/x.tiff2"
expect_exit 3 "not a model folder" -- "$S" -m "$N/sam_tiny" "$L" -o "$T/x.png"
stderr_has "no samsr.json" "the message names what is missing"
printf 'GIF89a' >"$T/bad.gif"
expect_exit 3 "not an image" -- "$S" -m "$M" "$T/bad.gif" -o "$T/x.png"
# A folder whose SAM is missing (SAMSR) runs with --noise gaussian only.
mkdir -p "$T/nosam"
for f in samsr.json unet.safetensors autoencoder.safetensors; do ln -s "$M/$f" "$T/nosam/$f"; done
expect_exit 3 "SAM noise without a SAM folder" -- "$S" -m "$T/nosam" "$L" -o "$T/x.png"
stderr_has "--noise gaussian runs without SAM" "the message says how to go on"
expect_exit 0 "--noise gaussian without SAM" -- "$S" -m "$T/nosam" --noise gaussian "$L" -o "$T/ng.png" -q
expect_exit 0 "--sam DIR" -- "$S" -m "$T/nosam" --sam "$N/sam_tiny" "$L" -o "$T/ns.png" -q
same_pixels "$T/ns.png" "$T/a.png" || fail "--sam with the same SAM equals the folder's sam/"
# A config that does not fit its weights.
mkdir -p "$T/misfit"
for f in unet.safetensors autoencoder.safetensors; do ln -s "$M/$f" "$T/misfit/$f"; done
sed 's/"model_channels": 32/"model_channels": 64/' "$M/samsr.json" >"$T/misfit/samsr.json"
expect_exit 3 "samsr.json does not fit the weights" -- "$S" -m "$T/misfit" --noise gaussian "$L" -o "$T/x.png"
stderr_has "does not fit" "the message names the misfit"
# Sizes that would build a network of gigabytes are checked against the file first.
sed 's/"swin_embed_dim": 32/"swin_embed_dim": 8192/' "$M/samsr.json" >"$T/misfit/samsr.json"
expect_exit 3 "swin_embed_dim 8192 against its weights" -- "$S" -m "$T/misfit" --noise gaussian "$L" -o "$T/x.png"
stderr_has "patch_embed.proj.weight" "the message names the tensor that does not fit"
sed 's/"ch": 32/"ch": 2048/' "$M/samsr.json" >"$T/misfit/samsr.json"
expect_exit 3 "autoencoder ch 2048 against its weights" -- "$S" -m "$T/misfit" --noise gaussian "$L" -o "$T/x.png"
stderr_has "encoder.conv_in.weight" "the message names the autoencoder's tensor"
# A weight holding infinity: named, not a black image with exit 0.
mkdir -p "$T/inf"
for f in samsr.json unet.safetensors; do ln -s "$M/$f" "$T/inf/$f"; done
python3 "$SRC/tests/cli/poison_tensor.py" "$M/autoencoder.safetensors" "$T/inf/autoencoder.safetensors" decoder.conv_out.bias inf
expect_exit 3 "a weight holding infinity" -- "$S" -m "$T/inf" --noise gaussian "$L" -o "$T/x.png"
stderr_has "decoder.conv_out.bias' holds non-finite values" "the message names the file and the tensor"
printf '{"architecture": "resshift", "method": "other"}' >"$T/misfit/samsr.json"
expect_exit 3 "unknown method" -- "$S" -m "$T/misfit" "$L" -o "$T/x.png"
# Found by a hostile pass (2026-12-07, nineteenth session):
# --shard with one image is refused (it was ignored), as rass-degrade does.
expect_exit 2 "--shard with -o FILE" -- "$S" -m "$M" --noise gaussian "$L" -o "$T/x.png" --shard 1/2
stderr_has "--shard splits a batch" "the flag is named"
# Slurm's array variables are not the flag: a job script's one-image command runs.
expect_exit 0 "SLURM_ARRAY_* with -o FILE" -- env SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 "$S" -m "$M" --noise gaussian "$L" -o "$T/slurm.png" -q
# /dev/fd/N has no extension: PNG, as -o - (it was refused).
expect_exit 0 "-o /dev/fd/3" -- bash -c "'$S' -m '$M' --noise gaussian -q '$L' -o /dev/fd/3 3>'$T/fd3.png'"
same_pixels "$T/fd3.png" "$T/g.png" || fail "/dev/fd/3 holds the image -o FILE writes"
# A .pgm is gray: colour bytes under that name were written (P6 in a .pgm).
expect_exit 2 "-o x.pgm" -- "$S" -m "$M" --noise gaussian "$L" -o "$T/x.pgm"
stderr_has "a .pgm holds a gray image" "says why"
# --sam is read only for SAM noise (it was accepted and unused).
expect_exit 2 "--sam with --noise gaussian" -- "$S" -m "$M" --noise gaussian --sam "$N/sam_tiny" "$L" -o "$T/x.png"
stderr_has "reads no SAM folder" "says the folder would not be read"
# Nothing is written into the --sam folder, as into the model folder.
cp -r "$N/sam_tiny" "$T/samcopy"
expect_exit 2 "-o inside the --sam folder" -- "$S" -m "$T/nosam" --sam "$T/samcopy" "$L" -o "$T/samcopy/x.png"
stderr_has "inside the input folder" "names the folder"
# stdout redirected to the output: --json's record would be lost under the image.
: >"$T/same.png"
expect_exit 2 "stdout is the -o file" -- bash -c "'$S' -m '$M' --noise gaussian '$L' -o '$T/same.png' --json >'$T/same.png'"
stderr_has "is the file stdout is redirected to" "says what is wrong"
# A name the system cannot take: refused before the work, no folders made.
long=$(printf 'd%.0s' $(seq 1 300))
expect_exit 2 "a 300-byte file name" -- "$S" -m "$M" --noise gaussian "$L" -o "$T/$long.png"
stderr_has "longer than a file name may be" "says the limit"
deep=$(for i in $(seq 1 22); do printf '%s/' "$(printf 'e%.0s' $(seq 1 200))"; done)
expect_exit 2 "a path past PATH_MAX" -- "$S" -m "$M" --noise gaussian "$L" -o "$T/$deep/x.png"
stderr_has "the system's limit 4095" "says the limit"
ls -d "$T"/eee* >/dev/null 2>&1 && fail "folders were made for a path that cannot be written"
# A FIFO in a config's place: refused, not a hang.
mkdir -p "$T/fifocfg"
for f in unet.safetensors autoencoder.safetensors; do ln -s "$M/$f" "$T/fifocfg/$f"; done
mkfifo "$T/fifocfg/samsr.json"
expect_exit 3 "a FIFO as samsr.json" -- timeout 60 "$S" -m "$T/fifocfg" --noise gaussian "$L" -o "$T/x.png"
stderr_has "samsr.json: is not a regular file but a FIFO" "names what is there"
[ -e "$T/x.png" ] && fail "a refused run wrote its output"
finish
