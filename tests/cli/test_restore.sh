# rass-restore on the committed tiny SD folder (tests/fixtures/nn/sd_tiny,
# random weights, diffusers layout; made by tests/nn/make_restore_fixture.py):
# one image, stdin/stdout, batch with --resume, latent/attention outputs,
# bad inputs with their exit codes and no partial output, and the pipeline
# rass-degrade | rass-restore | rass-eval-iqa. Numerical equality with the
# reference is tests/nn/test_restore.cpp.
. "$(dirname "$0")/lib.sh"
R=$B/rass-restore
[ -x "$R" ] || { echo "skipped: rass-restore not built (no LibTorch)"; exit 77; }
N=$FIX/nn
SD=$N/sd_tiny
LORA=$N/sd_tiny_lora.safetensors
LQ=$N/restore_lq.png  # 37x26

# npy_shape FILE: the shape tuple of a .npy header, e.g. "(4, 3, 4)".
npy_shape() { head -c 200 "$1" | tr -d '\0' | grep -ao "'shape': ([0-9, ]*)" | sed "s/'shape': //"; }

expect_exit 0 "one image" -- "$R" -m "$SD" --lora "$LORA" --process-size 16 "$LQ" -o "$T/out.png" --json
grep -q '"timestep":999' "$T/.out" || fail "osediff default: timestep 999 in the record"
grep -q '"output_size":\[32,24\]' "$T/.out" || fail "LANCZOS to a multiple of 8: 32x24"
[ -s "$T/out.png" ] || fail "no output image"
stderr_has "adapter default_encoder" "the LoRA adapters are named on stderr"

expect_exit 0 "stdin to stdout" -- bash -c "'$R' -m '$SD' --lora '$LORA' --process-size 16 --vae-mode -q - -o - <'$LQ' >'$T/pipe.png'"
expect_exit 0 "same with files" -- "$R" -m "$SD" --lora "$LORA" --process-size 16 --vae-mode -q "$LQ" -o "$T/file.png"
same_pixels "$T/pipe.png" "$T/file.png" || fail "stdin/stdout and files give different images"

expect_exit 0 "scr, residual, latent and attention out" -- "$R" -m "$SD" --method scr --formula residual --size-policy pad \
  --tags <(printf 'dog, grass\n') --prompt-style rass "$LQ" -o "$T/scr.png" --latent-out "$T/lat.npy" --attn-out "$T/attn.npy" --json
grep -q '"prompt":"dog grass"' "$T/.out" || fail "rass prompt style removes commas"
grep -q '"timestep":1' "$T/.out" || fail "scr preset: timestep 1"
grep -q '"output_size":\[37,26\]' "$T/.out" || fail "pad policy crops back to 37x26"
[ "$(npy_shape "$T/lat.npy")" = "(4, 4, 5)" ] || fail "latent shape $(npy_shape "$T/lat.npy"), expected (4, 4, 5)"
[ "$(npy_shape "$T/attn.npy")" = "(77, 4, 5)" ] || fail "attention shape $(npy_shape "$T/attn.npy"), expected (77, 4, 5)"
grep -q '"tokens":\["<|startoftext|>"' "$T/.out" || fail "the record lists the 77 token strings"

expect_exit 0 "bf16 on CPU" -- "$R" -m "$SD" --lora "$LORA" --process-size 16 --dtype bf16 --vae-mode "$LQ" -o "$T/bf16.png"
[ -s "$T/bf16.png" ] || fail "bf16 output"
expect_exit 0 "latent tiling + tiled VAE" -- "$R" -m "$SD" --upscale 4 --size-policy pad --tile --tile-size 8 --tile-overlap 4 \
  --vae-tile 64,8 --vae-mode "$LQ" -o "$T/tiled.png" --json
grep -q '"output_size":\[148,104\]' "$T/.out" || fail "tiled output size"
expect_exit 2 "bad --vae-tile" -- "$R" -m "$SD" --tile --vae-tile 1000 "$LQ" -o "$T/x.png"
# A thin latent (2x50 here) shrinks the tile to its short side (2), under
# the overlap (4): OSEDiff's grid loop never ends there (rass-restore hung);
# there the overlap is half the shrunk tile.
{ printf 'P6\n400 16\n255\n'; head -c 19200 /dev/zero | tr '\0' '\200'; } >"$T/thin.ppm"
expect_exit 0 "a thin image, tiles shrunk under the overlap" -- timeout 120 "$R" -m "$SD" --size-policy pad --tile --tile-size 8 \
  --tile-overlap 4 --vae-mode "$T/thin.ppm" -o "$T/thin.png" -q
[ -s "$T/thin.png" ] || fail "a thin image: no output"
# --prompt-file: a prompt from a file (BOM and line end dropped); an endless
# stream stops at 1 MiB (`yes |` grew without bound).
printf '\357\273\277a red barn\r\n' >"$T/prompt.txt"
expect_exit 0 "--prompt-file" -- "$R" -m "$SD" --process-size 16 --vae-mode --prompt-file "$T/prompt.txt" "$LQ" -o "$T/pf.png" --json -q
grep -q '"prompt":"a red barn' "$T/.out" || fail "--prompt-file: $(cat "$T/.out")"
yes 2>/dev/null | expect_exit 3 "an endless --prompt-file" -- "$R" -m "$SD" --process-size 16 --prompt-file /dev/stdin "$LQ" -o "$T/pf2.png"
stderr_has "larger than 1048576 bytes" "the bound is named"
# --max-pixels bounds the processed size too (--upscale 4: 37x26 -> 148x104,
# padded to multiples of 8: 152x104).
expect_exit 3 "--max-pixels under the processed size" -- "$R" -m "$SD" --upscale 4 --size-policy pad --max-pixels 5000 "$LQ" -o "$T/big.png"
stderr_has "its processed size: image too large (152x104 = 15808 pixels" "the processed size is named"
[ ! -e "$T/big.png" ] || fail "an output over the pixel limit"
# --vae-offload: the waiting tiles' activations in host memory give the same
# bits; on the CPU they wait outside LibTorch's allocator, so the decoder's
# tensor peak (--timings, GiB) drops. 448x320 px: the encoder and the decoder tiled.
declare -A peak_of
for o in on off; do
  expect_exit 0 "tiled VAE, --vae-offload $o" -- "$R" -m "$SD" --upscale 4 --process-size 320 --tile --tile-size 8 \
    --tile-overlap 4 --vae-tile 64,8 --vae-offload $o --vae-mode --timings -q "$LQ" -o "$T/tiled-$o.png"
  peak_of["$o"]=$(awk '$1 == "vae" && $2 == "decoder" {print $NF}' "$T/.err")
done
cmp -s "$T/tiled-on.png" "$T/tiled-off.png" && ok "--vae-offload on and off: the same bytes" || fail "--vae-offload on changed the output"
awk -v a="${peak_of[on]:-0}" -v b="${peak_of[off]:-0}" 'BEGIN {exit !(a > 0 && 2 * a < b)}' &&
  ok "--vae-offload: decoder tensor peak ${peak_of[off]} -> ${peak_of[on]} GiB" ||
  fail "--vae-offload on: decoder tensor peak ${peak_of[on]:-?} GiB, not under half of off's ${peak_of[off]:-?}"
expect_exit 2 "bad --vae-offload" -- "$R" -m "$SD" --tile --vae-offload sometimes "$LQ" -o "$T/x.png"

# The model's recorded form is the default; a flag that overrides it is named.
cp -r "$SD" "$T/sdr"
printf '{"method": "scr", "formula": "residual"}\n' >"$T/sdr/rass.json"
expect_exit 0 "rass.json form" -- "$R" -m "$T/sdr" --process-size 16 "$LQ" -o "$T/r.png" --json
grep -q '"formula":"residual"' "$T/.out" || fail "rass.json formula is the default"
expect_exit 0 "flag over rass.json" -- "$R" -m "$T/sdr" --process-size 16 --formula ddpm "$LQ" -o "$T/r.png"
stderr_has "overrides the model's recorded residual" "override note"
# rass.json's process_size (rass-train scr records its crop) replaces the 512 default.
expect_exit 0 "process size by flag" -- "$R" -m "$SD" --process-size 16 "$LQ" -o "$T/r16.png" --json
want=$(grep -o '"processed_size":\[[0-9]*,[0-9]*\]' "$T/.out")
printf '{"method": "scr", "formula": "residual", "process_size": 16}\n' >"$T/sdr/rass.json"
expect_exit 0 "process size from rass.json" -- "$R" -m "$T/sdr" "$LQ" -o "$T/r.png" --json
[ -n "$want" ] && grep -qF "$want" "$T/.out" || fail "rass.json process_size 16 processes at the --process-size 16 size ($want)"
expect_exit 0 "flag over rass.json process_size" -- "$R" -m "$T/sdr" --process-size 0 "$LQ" -o "$T/r.png"
stderr_has "overrides the model's recorded 16" "process size override note"
printf '{"process_size": -3}\n' >"$T/sdr/rass.json"
expect_exit 3 "bad rass.json process_size" -- "$R" -m "$T/sdr" "$LQ" -o "$T/r.png"
stderr_has "process_size" "the field is named"

# clip_sample true (DDPMScheduler's default when the key is absent): honoured, with a note.
cp -r "$SD" "$T/sdc"
sed 's/"clip_sample": false/"clip_sample": true/' "$SD/scheduler/scheduler_config.json" >"$T/sdc/scheduler/scheduler_config.json"
expect_exit 0 "clip_sample true" -- "$R" -m "$T/sdc" --process-size 16 "$LQ" -o "$T/c.png"
stderr_has "clamps x0 to [-1, 1]" "clip_sample note"
expect_exit 2 "two readers of stdin" -- "$R" -m "$SD" --tags - - -o "$T/x.png"

# Batch: a directory, tags by key, --resume, -j 2.
mkdir -p "$T/in/sub"
cp "$LQ" "$T/in/a.png"
cp "$LQ" "$T/in/sub/b.png"
printf 'a\tdog\nsub/b\tgrass, sky\n' >"$T/tags.tsv"
expect_exit 0 "batch" -- "$R" -m "$SD" --process-size 16 "$T/in" -O "$T/out" --tags "$T/tags.tsv" -j 2 --latent-out "$T/lat" --json
[ -s "$T/out/a.png" ] && [ -s "$T/out/sub/b.png" ] && [ -s "$T/lat/sub/b.npy" ] || fail "batch outputs missing"
grep -q '"prompt":"grass, sky, ,"' "$T/.out" || fail "keyed tags: osediff prompt of sub/b"
cmp -s "$T/out/a.png" "$T/out/sub/b.png" && fail "items keyed differently should draw different latents"
expect_exit 0 "batch --resume" -- "$R" -m "$SD" --process-size 16 "$T/in" -O "$T/out" --tags "$T/tags.tsv" --latent-out "$T/lat" --resume
stderr_has "0 restored, 2 already done" "resume skips finished items"
expect_exit 0 "seeded single equals its batch item" -- "$R" -m "$SD" --process-size 16 --tags <(printf 'dog\n') "$T/in/a.png" -o "$T/a1.png"
# "--prompt=" is an empty prompt, as "--prompt ''": not the option alone
# taking the next argument (which lost a.png, restored as the prompt of b).
expect_exit 0 "--prompt= (empty) before the inputs" -- "$R" -m "$SD" --process-size 16 --prompt= "$T/in/a.png" "$T/in/sub/b.png" -O "$T/out-e" --json -q
[ -s "$T/out-e/a.png" ] && [ -s "$T/out-e/b.png" ] || fail "--prompt=: both inputs restored: $(ls "$T/out-e")"
grep -q '"prompt":"[^"]*a\.png' "$T/.out" && fail "--prompt= took the next argument as the prompt"
expect_exit 2 "--seed= (empty number)" -- "$R" -m "$SD" --process-size 16 --seed= "$T/in/a.png" -o "$T/x.png"
stderr_has "--seed" "names the option"
# Tag lines ending in a lone CR (classic Mac) are lines; a key is matched as
# written (" sp" has its space), else without its outer spaces ("a " is a).
expect_exit 0 "--tags with CR line ends" -- "$R" -m "$SD" --process-size 16 "$T/in" -O "$T/out-cr" --tags <(printf 'dog\rgrass\r') --json -q
grep -q '"prompt":"grass, ,"' "$T/.out" || fail "CR line ends: the second item's prompt is grass: $(cat "$T/.out")"
mkdir -p "$T/insp" && cp "$LQ" "$T/insp/ sp.png" && cp "$LQ" "$T/insp/a.png"
expect_exit 0 "keyed --tags with spaces around keys" -- "$R" -m "$SD" --process-size 16 "$T/insp" -O "$T/out-sp" --tags <(printf ' sp\tcat\na \tdog\n') --json -q
grep -q '"prompt":"cat, ,"' "$T/.out" && grep -q '"prompt":"dog, ,"' "$T/.out" || fail "keys ' sp' and 'a ': $(cat "$T/.out")"
# A tag file that lacks an item: keyed, that item alone fails (the others
# are written); positional and short of a line for an input, refused before
# any work (a lost line shifts every later prompt). As rass-segment.
expect_exit 3 "keyed --tags without sub/b" -- "$R" -m "$SD" --process-size 16 "$T/in" -O "$T/out-k" --tags <(printf 'a\tdog\n') -q
stderr_has "no tags for item 'sub/b'" "the missing key is named"
[ -s "$T/out-k/a.png" ] && [ ! -e "$T/out-k/sub/b.png" ] || fail "keyed --tags without sub/b: outputs $(find "$T/out-k" -type f)"
expect_exit 3 "positional --tags one line short" -- "$R" -m "$SD" --process-size 16 "$T/in" -O "$T/out-p" --tags <(printf 'dog\n') -q
stderr_has "has 1 line(s); item 2 ('sub/b') has no tag line" "the short file and the item are named"
[ -z "$(find "$T/out-p" -type f 2>/dev/null)" ] || fail "positional --tags one line short: outputs before the refusal: $(find "$T/out-p" -type f)"
# A manifest key whose output name passes 255 bytes (252 + ".png") is a bad
# item before the model runs (it failed at the write, exit 1); the other item is written.
k252=$(printf 'k%.0s' $(seq 252))
printf '{"key":"%s","lq":"%s"}\n{"key":"ok","lq":"%s"}\n' "$k252" "$T/in/a.png" "$T/in/a.png" >"$T/long.jsonl"
expect_exit 3 "a 252-byte manifest key" -- "$R" -m "$SD" --process-size 16 --manifest "$T/long.jsonl" -O "$T/out-long" -q
stderr_has "256 bytes, longer than a file name can be (255 bytes)" "the reason is given"
[ -s "$T/out-long/ok.png" ] && [ "$(find "$T/out-long" -name 'kkk*' | wc -l)" = 0 ] || fail "a 252-byte key: outputs $(find "$T/out-long" -type f | cut -c1-80)"
same_pixels "$T/a1.png" "$T/out/a.png" || fail "same (seed, key): same image in single and batch mode"
# --resume keeps an output only when its "rass" chunk records this run's
# settings for it: another seed, a changed input, or a PNG from elsewhere are
# made again (before, --resume kept them all as done).
grep -qa '"tool":"rass-restore"' "$T/out/a.png" && grep -qa '"seed":0' "$T/out/a.png" || fail "no settings in the output PNG"
cp "$T/out/a.png" "$T/a_seed0.png"
expect_exit 0 "--resume with another seed" -- "$R" -m "$SD" --process-size 16 -s 5 "$T/in" -O "$T/out" --tags "$T/tags.tsv" --latent-out "$T/lat" --resume
stderr_has "2 restored, 0 already done" "outputs of another seed are made again"
stderr_has "made with other settings not kept but made again" "the redo is said"
stderr_has "other seed" "what differs is named"
same_pixels "$T/out/a.png" "$T/a_seed0.png" && fail "the seed-5 output equals the seed-0 one"
expect_exit 0 "--resume again" -- "$R" -m "$SD" --process-size 16 -s 5 "$T/in" -O "$T/out" --tags "$T/tags.tsv" --latent-out "$T/lat" --resume
stderr_has "0 restored, 2 already done" "the same settings resume"
# A cut side output (a .npy shorter than its header says) is made again;
# only its item is.
head -c 100 "$T/lat/a.npy" >"$T/lat-a.cut" && cp "$T/lat-a.cut" "$T/lat/a.npy"
expect_exit 0 "--resume over a cut latent" -- "$R" -m "$SD" --process-size 16 -s 5 "$T/in" -O "$T/out" --tags "$T/tags.tsv" --latent-out "$T/lat" --resume
stderr_has "1 restored, 1 already done" "the item with the cut latent is made again"
[ "$(stat -c %s "$T/lat/a.npy")" -gt 100 ] || fail "the cut latent was not made again"
cp "$IMG/chelsea.png" "$T/in/sub/b.png"  # new bytes under the same key
strip_rass_text "$T/a_seed0.png" >"$T/out/a.png"  # its pixels without settings, as another program writes it
expect_exit 0 "--resume over a changed input and a PNG without settings" -- "$R" -m "$SD" --process-size 16 -s 5 "$T/in" -O "$T/out" --tags "$T/tags.tsv" --latent-out "$T/lat" --resume
stderr_has "2 restored, 0 already done" "both are made again"
# A side output the kept images were not written with: made again, or the
# image would sit beside another run's maps (seed 5's attention maps beside
# seed 6's images here).
expect_exit 0 "--resume asking for a new side output" -- "$R" -m "$SD" --process-size 16 -s 5 "$T/in" -O "$T/out" --tags "$T/tags.tsv" --latent-out "$T/lat" --attn-out "$T/att" --resume
stderr_has "2 restored, 0 already done" "images without their attention maps are made again"
expect_exit 0 "seed 6 without attention maps" -- "$R" -m "$SD" --process-size 16 -s 6 "$T/in" -O "$T/out" --tags "$T/tags.tsv" --latent-out "$T/lat" -q
expect_exit 0 "--resume with seed 5's maps beside" -- "$R" -m "$SD" --process-size 16 -s 6 "$T/in" -O "$T/out" --tags "$T/tags.tsv" --latent-out "$T/lat" --attn-out "$T/att" --resume
stderr_has "2 restored, 0 already done" "images written without the maps are made again"
stderr_has "other outputs" "the reason named"
expect_exit 0 "--resume without a side output" -- "$R" -m "$SD" --process-size 16 -s 6 "$T/in" -O "$T/out" --tags "$T/tags.tsv" --resume
stderr_has "0 restored, 2 already done" "fewer side outputs: kept"
# Another LoRA of the same size and time (its weights changed in place):
# the model's fingerprint is the files' bytes, not their sizes and times.
cp "$LORA" "$T/l1.safetensors" && cp "$LORA" "$T/l2.safetensors"
printf '\x11\x22\x33\x44' | dd of="$T/l2.safetensors" bs=1 seek=$(( $(stat -c %s "$LORA") - 8 )) conv=notrunc 2>/dev/null
touch -d '2026-01-01 00:00:00' "$T/l1.safetensors" "$T/l2.safetensors"
expect_exit 0 "a LoRA run" -- "$R" -m "$SD" --lora "$T/l1.safetensors" --process-size 16 "$T/in" -O "$T/lo" -q
expect_exit 0 "--resume with a LoRA of the same size and time" -- "$R" -m "$SD" --lora "$T/l2.safetensors" --process-size 16 "$T/in" -O "$T/lo" --resume
stderr_has "other model_files" "another LoRA is another model"
cp -r "$SD" "$T/sdcopy"  # a copy with new times: the same model
expect_exit 0 "--resume with a copy of the model" -- "$R" -m "$T/sdcopy" --lora "$T/l2.safetensors" --process-size 16 "$T/in" -O "$T/lo" --resume
stderr_has "0 restored, 2 already done" "a copy of the model is the same model"
# Settings that cannot move pixels are not compared: --no-merge without a
# LoRA, and --process-size under --size-policy pad (it is not read there).
expect_exit 0 "--resume with --no-merge and no LoRA" -- "$R" -m "$SD" --process-size 16 -s 6 "$T/in" -O "$T/out" --tags "$T/tags.tsv" --no-merge --resume
stderr_has "0 restored, 2 already done" "--no-merge without a LoRA: kept"
expect_exit 0 "a pad run" -- "$R" -m "$SD" --size-policy pad --process-size 16 "$T/in" -O "$T/pad" -q
expect_exit 0 "--resume under pad with another --process-size" -- "$R" -m "$SD" --size-policy pad --process-size 32 "$T/in" -O "$T/pad" --resume
stderr_has "0 restored, 2 already done" "--process-size under pad: kept"
expect_exit 0 "--resume with --no-merge and a LoRA" -- "$R" -m "$SD" --lora "$T/l2.safetensors" --process-size 16 "$T/in" -O "$T/lo" --no-merge --resume
stderr_has "2 restored, 0 already done" "--no-merge with a LoRA is made again"

# Bad inputs.
mkdir -p "$T/noclip" && cp -r "$SD"/* "$T/noclip/" && rm "$T/noclip/text_encoder/model.safetensors"
expect_exit 3 "missing weights" -- "$R" -m "$T/noclip" "$LQ" -o "$T/x.png"
stderr_has "text_encoder" "the missing component is named"

expect_exit 3 "LoRA that fits nothing" -- "$R" -m "$SD" --lora "$N/vae_tiny/diffusion_pytorch_model.safetensors" "$LQ" -o "$T/x.png"
stderr_has "fit no UNet layer" "the LoRA file is refused with its reason"
long=$(printf 'dog, %.0s' $(seq 1 60))
expect_exit 0 "prompt past 77 tokens" -- "$R" -m "$SD" --process-size 16 --prompt "$long" "$LQ" -o "$T/long.png"
stderr_has "tokens; the text encoder takes 75" "truncation warning"
printf 'not an image' >"$T/bad.png"
expect_exit 3 "corrupt image" -- "$R" -m "$SD" "$T/bad.png" -o "$T/x.png"
{ printf 'P6\n5 4\n255\n'; head -c 60 /dev/zero; } >"$T/small.ppm"
expect_exit 3 "image too small" -- "$R" -m "$SD" --process-size 0 "$T/small.ppm" -o "$T/x.png"
stderr_has "too small" "too small named"
[ -e "$T/x.png" ] && fail "no output after failures"
expect_exit 2 "output over input" -- "$R" -m "$SD" "$T/in/a.png" -o "$T/in/a.png"
expect_exit 2 "fp16 on CPU" -- "$R" -m "$SD" --dtype fp16 "$LQ" -o "$T/x.png"
expect_exit 2 "attn with tile" -- "$R" -m "$SD" --tile --attn-out "$T/a.npy" "$LQ" -o "$T/x.png"
cp "$T/bad.png" "$T/in/c.png"
expect_exit 3 "a bad item in a batch" -- "$R" -m "$SD" --process-size 16 "$T/in" -O "$T/out2"
[ -s "$T/out2/a.png" ] && [ ! -e "$T/out2/c.png" ] || fail "good items kept, no output for the bad one"
# --batch: same-size items share the network calls; each keeps its own draw,
# so the images are those of one at a time (batched kernels round in the
# last float bits: compared by PSNR, not bytes). The bad item fails alone.
expect_exit 3 "--batch 3 with a bad item" -- "$R" -m "$SD" --process-size 16 --batch 3 "$T/in" -O "$T/out3"
[ -s "$T/out3/a.png" ] && [ -s "$T/out3/sub/b.png" ] && [ ! -e "$T/out3/c.png" ] || fail "--batch: good items kept, no output for the bad one"
stderr_has "c.png" "--batch: the bad item is named"
if [ -x "$B/rass-eval-iqa" ]; then
  for k in a sub/b; do
    expect_exit 0 "--batch 3 vs one at a time: $k" -- "$B/rass-eval-iqa" -m psnr "$T/out3/$k.png" "$T/out2/$k.png" --json -q
    # identical images: 80 dB (pyiqa's 1e-8 floor); one level off in one value: about 83 - 10 log10(count)
    grep -o '"psnr": [0-9.]*' "$T/.out" | tail -1 | awk '{ v = $2 } END { exit !(NR == 1 && v >= 60) }' || fail "--batch 3 changed $k: $(cat "$T/.out")"
  done
fi
expect_exit 2 "--batch 0" -- "$R" -m "$SD" --batch 0 "$T/in" -O "$T/zero"

# --timings: the stages on stderr, and the same images as without it.
mkdir -p "$T/tin" && cp "$LQ" "$T/tin/a.png" && cp "$LQ" "$T/tin/b.png"
expect_exit 0 "--timings, batch" -- "$R" -m "$SD" --process-size 16 --vae-mode --batch 2 -q --timings "$T/tin" -O "$T/timed"
for s in "read" "text encoder" "vae encoder" "unet" "vae decoder" "download" "write" "(all stages)" "2 images"; do
  stderr_has "$s" "--timings names '$s'"
done
grep -E '^  unet +[0-9.]+ +[0-9.]+% +[0-9.]+ +1 +[0-9.]+ +[0-9.]+$' "$T/.err" >/dev/null || fail "--timings: one UNet call for the batch of 2, its tensor peak last: $(cat "$T/.err")"
# Its peak memory (CPU): the tensors' peak after loading and the process's
# resident set (getrusage's kilobytes as GiB). The tensors hold at least the
# fp32 weights (the safetensors files less their small headers) and less than
# the resident set; that is more than LibTorch's libraries alone (10 MiB) and
# less than the machine has.
line=$(grep '^  peak memory: ' "$T/.err")
tensors=$(printf '%s\n' "$line" | sed -n 's/^  peak memory: \([0-9.]*\) MiB in CPU tensors after loading, .*/\1/p')
rss=$(printf '%s\n' "$line" | sed -n 's/.*, the process.s resident set \([0-9.]*\) GiB$/\1/p')
ram=$(awk '/^MemTotal:/ {print $2 / 1048576}' /proc/meminfo)
weights=$(cat "$SD"/*/*.safetensors | wc -c)
awk -v r="${rss:-0}" -v m="$ram" 'BEGIN {exit !(r > 0.01 && r < m)}' && ok "--timings: peak resident set $rss GiB" ||
  fail "--timings: peak memory line '$line' (resident set between 0.01 and $ram GiB expected)"
awk -v t="${tensors:-0}" -v w="$weights" -v r="${rss:-0}" 'BEGIN {exit !(t * 1048576 > 0.95 * w && t < r * 1024)}' &&
  ok "--timings: CPU tensors' peak $tensors MiB (weights $weights bytes)" ||
  fail "--timings: peak memory line '$line' (CPU tensors between 0.95 x $weights bytes and the resident set expected)"
expect_exit 0 "without --timings" -- "$R" -m "$SD" --process-size 16 --vae-mode --batch 2 -q "$T/tin" -O "$T/untimed"
[ ! -s "$T/.err" ] || fail "-q without --timings prints nothing: $(cat "$T/.err")"
for k in a b; do cmp -s "$T/timed/$k.png" "$T/untimed/$k.png" || fail "--timings changed $k.png"; done
expect_exit 0 "--timings, one image" -- "$R" -m "$SD" --process-size 16 --vae-mode -q --timings "$LQ" -o "$T/timed1.png"
stderr_has "1 image," "--timings in single-image mode"
expect_exit 2 "RASS_TIMINGS=maybe" -- env RASS_TIMINGS=maybe "$R" -m "$SD" "$LQ" -o "$T/never.png"
# RASS_UPSAMPLE_PHASES (0, 1 or force): another value is refused before the model loads, naming it.
expect_exit 2 "RASS_UPSAMPLE_PHASES=off" -- env RASS_UPSAMPLE_PHASES=off "$R" -m "$SD" "$LQ" -o "$T/never.png"
stderr_has "RASS_UPSAMPLE_PHASES=off: expected 0" "the bad switch value is named"
[ -e "$T/never.png" ] && fail "RASS_UPSAMPLE_PHASES=off: an output was written"
expect_exit 2 "RASS_FUSED_NORM=on" -- env RASS_FUSED_NORM=on "$R" -m "$SD" "$LQ" -o "$T/never.png"
stderr_has "RASS_FUSED_NORM=on: expected 0" "the bad switch value is named"
[ -e "$T/never.png" ] && fail "RASS_FUSED_NORM=on: an output was written"

# Pipeline: degrade | restore | eval-iqa (PSNR against the HQ image).
HQ=$IMG/coffee.png
if [ -x "$B/rass-degrade" ] && [ -x "$B/rass-eval-iqa" ]; then
  expect_exit 0 "degrade | restore | eval-iqa" -- bash -c "set -o pipefail; '$B/rass-degrade' -p rass -s 1 '$HQ' -o - | \
    '$R' -m '$SD' --lora '$LORA' --size-policy pad -q - -o - | '$B/rass-eval-iqa' -m psnr - '$HQ' --json"
  grep -q '"psnr"' "$T/.out" || fail "pipeline: eval-iqa reports PSNR"
fi
# A weight holding NaN (a damaged file of the right size): named, not black images with exit 0.
mkdir -p "$T/nanw"
for d in "$SD"/*; do ln -s "$d" "$T/nanw/$(basename "$d")"; done
rm "$T/nanw/vae" && mkdir "$T/nanw/vae" && cp "$SD/vae/config.json" "$T/nanw/vae/"
python3 "$SRC/tests/cli/poison_tensor.py" "$SD/vae/diffusion_pytorch_model.safetensors" "$T/nanw/vae/diffusion_pytorch_model.safetensors" decoder.conv_out.bias nan
expect_exit 3 "a VAE weight holding NaN" -- "$R" -m "$T/nanw" --process-size 16 "$LQ" -o "$T/nan.png"
stderr_has "vae: tensor 'decoder.conv_out.bias' holds non-finite values" "the message names the folder and the tensor"
[ -e "$T/nan.png" ] && fail "a refused run wrote its output"
finish
