# rass-restore against hostile invocations (found by a hostile tester on the
# first release): outputs over inputs (images in the -O folder, model and LoRA
# files), two outputs naming one file, bad model data with its exit code and
# file named, and the advice given for a non-finite float32 result. Each check
# also verifies that the input it protects is unchanged and nothing was written.
. "$(dirname "$0")/lib.sh"
R=$B/rass-restore
[ -x "$R" ] || { echo "skipped: rass-restore not built (no LibTorch)"; exit 77; }
N=$FIX/nn
SD=$N/sd_tiny
LORA=$N/sd_tiny_lora.safetensors
PEFT=$N/lora_peft/adapter_model.safetensors
LQ=$N/restore_lq.png

# unchanged FILE COPY WHAT: FILE still has COPY's bytes.
unchanged() { cmp -s "$1" "$2" || fail "$3: $1 was overwritten"; }

# 1. Batch -O onto the inputs' own folder (files, manifest, a ./in/. spelling).
mkdir -p "$T/in"
cp "$LQ" "$T/in/img0.png"
cp "$LQ" "$T/in/img1.png"
cp "$LQ" "$T/orig.png"
expect_exit 2 "--resume with -o (one image)" -- "$R" -m "$SD" --process-size 16 "$T/in/img0.png" -o "$T/one.png" --resume
stderr_has "one image (-o FILE) is always made" "--resume with -o: says why"
expect_exit 2 "batch -O = the inputs' folder" -- "$R" -m "$SD" --process-size 16 "$T/in/img0.png" "$T/in/img1.png" -O "$T/in"
stderr_has "one of the inputs" "the refusal names the reason"
printf '%s\n' "$T/in/img1.png" >"$T/m.txt"
expect_exit 2 "manifest item written over itself" -- "$R" -m "$SD" --process-size 16 --manifest "$T/m.txt" -O "$T/in"
expect_exit 2 "-O ./in/. spelling" -- bash -c "cd '$T' && '$R' -m '$SD' --process-size 16 in/img0.png in/img1.png -O ./in/."
expect_exit 2 "-O over the inputs is refused before --latent-out is made" -- "$R" -m "$SD" --process-size 16 \
  "$T/in/img0.png" "$T/in/img1.png" -O "$T/in" --latent-out "$T/lat"
unchanged "$T/in/img0.png" "$T/orig.png" "batch -O"
unchanged "$T/in/img1.png" "$T/orig.png" "batch -O"
[ -e "$T/lat" ] && fail "nothing is written before the refusal"

# 1b. A directory where one item's output goes: that item is bad before any
# work (exit 3, named), the others are made.
mkdir -p "$T/od/img0.png" "$T/lod/img1.npy"
expect_exit 3 "an existing directory in an item's output place" -- "$R" -m "$SD" --process-size 16 \
  "$T/in/img0.png" "$T/in/img1.png" -O "$T/od" --latent-out "$T/lod"
stderr_has "img0.png: -O $T/od/img0.png is an existing directory" "the bad item and its output are named"
stderr_has "img1.png: --latent-out $T/lod/img1.npy is an existing directory" "a --latent-out in the way is named too"
[ -d "$T/od/img0.png" ] || fail "the directory in the way is left alone"
[ -e "$T/od/img1.png" ] && fail "img1's --latent-out is in the way: nothing of img1 is written"
expect_exit 3 "the other items are made" -- "$R" -m "$SD" --process-size 16 "$T/in/img0.png" "$T/in/img1.png" -O "$T/od"
[ -f "$T/od/img1.png" ] || fail "img1 was not made beside the bad item"
# A FIFO in an item's output place blocked the whole run at the write; a
# link to /dev/null took the output, counted as made.
mkdir -p "$T/of"
mkfifo "$T/of/img0.png"
ln -s /dev/null "$T/of/img1.png"
expect_exit 3 "a FIFO and a device in items' output places" -- timeout 300 "$R" -m "$SD" --process-size 16 \
  "$T/in/img0.png" "$T/in/img1.png" -O "$T/of"
stderr_has "img0.png: -O $T/of/img0.png is an existing FIFO" "the FIFO is named"
stderr_has "img1.png: -O $T/of/img1.png is an existing device" "the device is named"

# 2. Outputs over the model folder, LoRA files and the PEFT config.
cp -r "$SD" "$T/sdc"
cp "$T/sdc/unet/diffusion_pytorch_model.safetensors" "$T/unet.orig"
cp "$T/sdc/tokenizer/vocab.json" "$T/vocab.orig"
expect_exit 2 "--latent-out over the model's UNet" -- "$R" -m "$T/sdc" --process-size 16 "$LQ" -o "$T/o.png" \
  --latent-out "$T/sdc/unet/diffusion_pytorch_model.safetensors"
stderr_has "one of the inputs" "a model file is an input"
expect_exit 2 "--attn-out over the tokenizer" -- "$R" -m "$T/sdc" --process-size 16 "$LQ" -o "$T/o.png" \
  --attn-out "$T/sdc/tokenizer/vocab.json"
expect_exit 2 "-o as a new file inside the model folder" -- "$R" -m "$T/sdc" --process-size 16 "$LQ" -o "$T/sdc/x.png"
stderr_has "inside the model folder" "the model folder is named"
expect_exit 2 "batch --latent-out inside the model folder" -- "$R" -m "$T/sdc" --process-size 16 "$T/in" -O "$T/bo" \
  --latent-out "$T/sdc/unet"
unchanged "$T/sdc/unet/diffusion_pytorch_model.safetensors" "$T/unet.orig" "model UNet"
unchanged "$T/sdc/tokenizer/vocab.json" "$T/vocab.orig" "model tokenizer"
[ -e "$T/sdc/x.png" ] || [ -e "$T/sdc/unet/img0.npy" ] || [ -e "$T/o.png" ] || [ -e "$T/bo" ] &&
  fail "no output after the refusals"
# One folder for two kinds of output, however spelt (a trailing slash on a
# folder not yet made passed as another folder).
expect_exit 2 "-O and --latent-out with a trailing slash" -- "$R" -m "$SD" --process-size 16 "$T/in" -O "$T/same" \
  --latent-out "$T/same/"
stderr_has "name the same folder" "the reason given"
[ -e "$T/same" ] && fail "no folder after the refusal"
# A model folder whose files are links elsewhere (a Hugging Face cache snapshot).
mkdir -p "$T/blobs" "$T/snap"
cp -r "$SD"/* "$T/snap/"
mv "$T/snap/unet/diffusion_pytorch_model.safetensors" "$T/blobs/unet-blob"
ln -s "$T/blobs/unet-blob" "$T/snap/unet/diffusion_pytorch_model.safetensors"
expect_exit 2 "--latent-out over the blob a snapshot links to" -- "$R" -m "$T/snap" --process-size 16 "$LQ" -o "$T/o.png" \
  --latent-out "$T/blobs/unet-blob"
unchanged "$T/blobs/unet-blob" "$T/unet.orig" "linked UNet blob"
cp "$LORA" "$T/l.safetensors"
expect_exit 2 "--latent-out over the --lora file" -- "$R" -m "$SD" --lora "$T/l.safetensors" --process-size 16 "$LQ" \
  -o "$T/o.png" --latent-out "$T/l.safetensors"
unchanged "$T/l.safetensors" "$LORA" "LoRA file"
if [ -f "$PEFT" ]; then
  mkdir -p "$T/peft"
  cp "$PEFT" "$(dirname "$PEFT")/adapter_config.json" "$T/peft/"
  cp "$T/peft/adapter_config.json" "$T/peft.cfg"
  expect_exit 2 "--attn-out over the PEFT adapter_config.json" -- "$R" -m "$SD" --lora "$T/peft/adapter_model.safetensors" \
    --process-size 16 "$LQ" -o "$T/o.png" --attn-out "$T/peft/adapter_config.json"
  unchanged "$T/peft/adapter_config.json" "$T/peft.cfg" "PEFT config"
fi

# 4. Two outputs of one run naming the same file or folder.
expect_exit 2 "-o = --latent-out" -- "$R" -m "$SD" --process-size 16 "$LQ" -o "$T/same.png" --latent-out "$T/same.png"
stderr_has "name the same file" "the clash is named"
expect_exit 2 "-o = --attn-out (another spelling)" -- "$R" -m "$SD" --process-size 16 "$LQ" -o "$T/same.png" \
  --attn-out "$T/in/../same.png"
expect_exit 2 "--latent-out = --attn-out" -- "$R" -m "$SD" --process-size 16 "$LQ" -o "$T/o.png" --latent-out "$T/lat.npy" \
  --attn-out "$T/lat.npy"
expect_exit 2 "batch --latent-out = --attn-out folder" -- "$R" -m "$SD" --process-size 16 "$T/in" -O "$T/co" \
  --latent-out "$T/co2" --attn-out "$T/co2"
stderr_has "name the same folder" "the folder clash is named"
# Nested folders whose item files coincide: item x/k's latent = item k's attention map.
mkdir -p "$T/nest/x"
cp "$LQ" "$T/nest/k.png"
cp "$LQ" "$T/nest/x/k.png"
expect_exit 2 "batch outputs of two items coincide" -- "$R" -m "$SD" --process-size 16 "$T/nest" -O "$T/no" \
  --latent-out "$T/nl" --attn-out "$T/nl/x"
[ -e "$T/same.png" ] || [ -e "$T/lat.npy" ] || [ -e "$T/co" ] || [ -e "$T/no" ] && fail "no output after the clashes"

# 8. Bad model data: exit 3 naming the file, not a usage error for a flag never given.
bad_model() {  # bad_model NAME: a fresh copy of the tiny model in $T/NAME
  rm -rf "${T:?}/$1"
  cp -r "$SD" "$T/$1"
}
json_set() {  # json_set FILE KEY JSON-VALUE
  python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); j[sys.argv[2]] = json.loads(sys.argv[3]); json.dump(j, open(sys.argv[1], "w"))' \
    "$@" || fail "fixture: cannot set $2 in $1"
}
bad_model s0
json_set "$T/s0/scheduler/scheduler_config.json" num_train_timesteps 0
expect_exit 3 "num_train_timesteps 0" -- "$R" -m "$T/s0" --process-size 16 "$LQ" -o "$T/x.png"
stderr_has "scheduler_config.json" "the scheduler config is named"
json_set "$T/s0/scheduler/scheduler_config.json" num_train_timesteps 500
expect_exit 3 "osediff preset 999 past num_train_timesteps 500" -- "$R" -m "$T/s0" --process-size 16 "$LQ" -o "$T/x.png"
stderr_has "scheduler_config.json" "the scheduler config is named"
expect_exit 2 "--timestep past num_train_timesteps is the flag's fault" -- "$R" -m "$T/s0" --process-size 16 --timestep 700 \
  "$LQ" -o "$T/x.png"
stderr_has "--timestep 700" "the flag is named"
bad_model r0
printf '{"timestep": 5000}\n' >"$T/r0/rass.json"
expect_exit 3 "rass.json timestep out of range" -- "$R" -m "$T/r0" --process-size 16 "$LQ" -o "$T/x.png"
stderr_has "rass.json" "rass.json is named"
bad_model u0
json_set "$T/u0/unet/config.json" norm_num_groups 3
expect_exit 3 "UNet norm_num_groups not dividing the channels" -- "$R" -m "$T/u0" --process-size 16 "$LQ" -o "$T/x.png"
stderr_has "unet/config.json" "the UNet config is named"
bad_model v0
json_set "$T/v0/vae/config.json" block_out_channels '[]'
expect_exit 3 "VAE with no blocks" -- "$R" -m "$T/v0" --process-size 16 "$LQ" -o "$T/x.png"
stderr_has "vae/config.json" "the VAE config is named"
bad_model t0
python3 -c 'import json, sys; v = json.load(open(sys.argv[1])); [v.pop(t) for t in ("<|startoftext|>", "<|endoftext|>")]; json.dump(v, open(sys.argv[1], "w"))' \
  "$T/t0/tokenizer/vocab.json" || fail "fixture: cannot strip the special tokens"
expect_exit 3 "tokenizer without special tokens (empty prompt)" -- "$R" -m "$T/t0" --process-size 16 "$LQ" -o "$T/x.png"
stderr_has "tokenizer/vocab.json" "the vocabulary is named"
expect_exit 3 "tokenizer without special tokens (a prompt)" -- "$R" -m "$T/t0" --process-size 16 --prompt "a dog" "$LQ" \
  -o "$T/x.png"
[ -e "$T/x.png" ] && fail "no output from a bad model"

# 9. A LoRA scale far from 1 is refused before any work; LoRA weights that
# overflow are refused at the merge (exit 3); unmerged, a float32 run that
# overflows (a LoRA whose every weight is 3.4e38: the fixture's header, its data
# bytes all 0x7f) gets advice about the LoRA, not --dtype fp32.
expect_exit 2 "LoRA scale 1e39" -- "$R" -m "$SD" --lora "$LORA:1e39" --process-size 16 "$LQ" -o "$T/x.png"
stderr_has "outside [-1000, 1000]" "the scale's range is said"
hlen=$(od -An -tu8 -N8 "$LORA" | tr -d ' ')
{ head -c $((8 + hlen)) "$LORA"; head -c $(($(stat -c %s "$LORA") - 8 - hlen)) /dev/zero | tr '\0' '\177'; } > "$T/huge.safetensors"
expect_exit 3 "LoRA weights that overflow when merged" -- "$R" -m "$SD" --lora "$T/huge.safetensors" --process-size 16 \
  "$LQ" -o "$T/x.png"
stderr_has "huge.safetensors" "the LoRA is named"
stderr_has "non-finite (overflow)" "the overflow is found at the merge, before any work"
expect_exit 1 "LoRA weights that overflow, unmerged" -- "$R" -m "$SD" --lora "$T/huge.safetensors" --no-merge \
  --process-size 16 "$LQ" -o "$T/x.png"
stderr_has "non-finite" "what is non-finite is said"
stderr_has "LoRA scale" "the LoRA scale is suggested"
grep -q -- "--dtype fp32" "$T/.err" && fail "no --dtype fp32 advice for a float32 run"
[ -e "$T/x.png" ] && fail "no output after a non-finite result"
finish
