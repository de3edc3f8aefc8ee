# rass-model on a diffusers folder assembled from the tiny fixtures: info,
# bad checkpoints refused with the tensor named, usage errors. Numerical
# equality of `run` with the reference is in tests/nn/test_model_tool.cpp.
. "$(dirname "$0")/lib.sh"
M=$B/rass-model
[ -x "$M" ] || { echo "skipped: rass-model not built (no LibTorch)"; exit 77; }
N=$FIX/nn
mkdir -p "$T/sd"
cp -r "$N/unet_tiny" "$T/sd/unet"
cp -r "$N/vae_tiny" "$T/sd/vae"
cp -r "$N/clip_tiny_gelu" "$T/sd/text_encoder"

expect_exit 0 "info on a folder" -- "$M" info "$T/sd"
grep -q "^unet: UNet2DConditionModel" "$T/.out" || fail "info should name the UNet class"
grep -q "0.20 M parameters" "$T/.out" || fail "info should count UNet parameters"
expect_exit 0 "info --json" -- "$M" --json info "$T/sd/vae/diffusion_pytorch_model.safetensors"
grep -q '"parameters": 83679' "$T/.out" || fail "VAE parameter count"

# Run: shapes through the whole path; errors named.
expect_exit 2 "run without --component" -- "$M" run "$T/sd" -o "$T/x.npy"
expect_exit 2 "unknown component" -- "$M" run "$T/sd" -c clip -o "$T/x.npy"
expect_exit 2 "unet without inputs" -- "$M" run "$T/sd" -c unet -o "$T/x.npy"
printf 'not a npy' >"$T/bad.npy"
expect_exit 3 "bad npy input" -- "$M" run "$T/sd" -c vae-decode --sample "$T/bad.npy" -o "$T/x.npy"
stderr_has "$T/bad.npy" "bad npy named"
[ -e "$T/x.npy" ] && fail "no output after a failure"

# A truncated checkpoint and a mis-shaped one: refused, named, exit 3.
cp -r "$T/sd" "$T/broken"
head -c 100000 "$N/unet_tiny/diffusion_pytorch_model.safetensors" >"$T/broken/unet/diffusion_pytorch_model.safetensors"
expect_exit 3 "truncated safetensors" -- "$M" info "$T/broken/unet/diffusion_pytorch_model.safetensors"
stderr_has "truncated" "truncated message"
expect_exit 0 "convert to fp16" -- "$M" convert "$T/sd/vae/diffusion_pytorch_model.safetensors" -o "$T/vae16.safetensors" --to-dtype fp16
expect_exit 0 "info fp16" -- "$M" --json info "$T/vae16.safetensors"
grep -q '"F16"' "$T/.out" || fail "converted file should be F16"
sed 's/"latent_channels": 4/"latent_channels": 8/' "$N/vae_tiny/config.json" >"$T/broken/vae/config.json"
printf '\x93NUMPY\x01\x00v\x00{"descr": "<f4", "fortran_order": False, "shape": (1, 8, 2, 2), }' >"$T/z.npy"
while [ $(( $(stat -c %s "$T/z.npy") % 64 )) -ne 63 ]; do printf ' ' >>"$T/z.npy"; done
printf '\n' >>"$T/z.npy"
head -c 128 /dev/zero >>"$T/z.npy"
expect_exit 3 "mis-shaped checkpoint" -- "$M" run "$T/broken" -c vae-decode --sample "$T/z.npy" -o "$T/x.npy"
stderr_has "quant_conv.weight" "mis-shaped tensor named"
if ! command -v nvidia-smi >/dev/null; then
  expect_exit 1 "cuda unavailable" -- "$M" run "$T/sd" -c vae-decode --sample "$T/z.npy" --device cuda -o "$T/x.npy"
fi
expect_exit 2 "fp16 on CPU" -- "$M" run "$T/sd" -c vae-decode --sample "$T/z.npy" --dtype fp16 -o "$T/x.npy"
stderr_has "bf16" "fp16 on CPU suggests bf16"
# run's only draw is vae-encode --sample-latent: a seed or the flag elsewhere is refused, not ignored.
expect_exit 2 "run --seed without --sample-latent" -- "$M" run "$T/sd" -c vae-decode --sample "$T/z.npy" --seed 3 -o "$T/x.npy"
stderr_has "without it nothing is drawn" "says why"
expect_exit 2 "--sample-latent with vae-decode" -- "$M" run "$T/sd" -c vae-decode --sample "$T/z.npy" --sample-latent -o "$T/x.npy"
stderr_has "goes with --component vae-encode, not vae-decode" "names both"
# Tokenizer: the folder's tokenizer/ gives 77 ids; a text encoder with a smaller vocabulary refuses them.
cp -r "$FIX/text/tiny-clip" "$T/sd/tokenizer"
expect_exit 0 "tokenize" -- "$M" run "$T/sd" -c tokenize --prompt "a photo of a cat, green grass" -o "$T/ids.npy"
head -c 128 "$T/ids.npy" | grep -q "'shape': (1, 77)" || fail "tokenize should write [1, 77] ids"
head -c 128 "$T/ids.npy" | grep -q "<i8" || fail "tokenize should write int64"
expect_exit 3 "tokenizer and text encoder mismatch" -- "$M" run "$T/sd" -c text-encoder --prompt "a photo of a cat" -o "$T/emb.npy"
stderr_has "more than 16" "mismatch message"

# Tool flags after the command, as the man page writes them.
expect_exit 0 "info FOLDER --json" -- "$M" info "$T/sd" --json
grep -q '"components"' "$T/.out" || fail "info FOLDER --json should print JSON"
expect_exit 0 "run ... --quiet after the command" -- "$M" run "$T/sd" -c tokenize --prompt "" -o "$T/ids0.npy" --quiet
# The unconditional prompt: BOS 1700, EOS 1701, then the "!" padding (id 0), as transformers (tokenizer_golden.json).
od -v -An -tu8 -j128 "$T/ids0.npy" | tr -s ' \n' ' ' | grep -q '^ *1700 1701 0 0 0 ' || fail "empty prompt ids"
expect_exit 0 "tokenize the empty prompt to stdout" -- "$M" run "$T/sd" -c tokenize --prompt "" -o - -q

npy_f4() {  # npy_f4 FILE SHAPE-TUPLE COUNT: a float32 .npy of zeros
  printf '\x93NUMPY\x01\x00v\x00{"descr": "<f4", "fortran_order": False, "shape": %s, }' "$2" >"$1"
  while [ $(( $(stat -c %s "$1") % 64 )) -ne 63 ]; do printf ' ' >>"$1"; done
  printf '\n' >>"$1"
  head -c $(( $3 * 4 )) /dev/zero >>"$1"
}
npy_f4 "$T/z4.npy" "(1, 4, 2, 2)" 16
# LoRA specs: a scale that is not a number is a usage error; a folder or a non-LoRA file is bad input.
expect_exit 2 "lora scale not a number" -- "$M" run "$T/sd" -c vae-decode --sample "$T/z4.npy" --lora "$T/l.safetensors:abc" -o "$T/x.npy"
stderr_has "abc" "bad scale named"
expect_exit 2 "lora scale 1.2.3" -- "$M" run "$T/sd" -c vae-decode --sample "$T/z4.npy" --lora "$T/l.safetensors:1.2.3" -o "$T/x.npy"
expect_exit 3 "lora is a folder" -- "$M" run "$T/sd" -c vae-decode --sample "$T/z4.npy" --lora "$T/sd/unet" -o "$T/x.npy"
stderr_has "$T/sd/unet" "folder named"
printf '\x02\x00\x00\x00\x00\x00\x00\x00{}' >"$T/empty.safetensors"
expect_exit 3 "lora with no tensors" -- "$M" run "$T/sd" -c vae-decode --sample "$T/z4.npy" --lora "$T/empty.safetensors" -o "$T/x.npy"
stderr_has "no tensors" "empty LoRA message"

# Inputs that do not fit the UNet's config: named, exit 3, no LibTorch message.
npy_f4 "$T/s1.npy" "(1, 4, 8, 8)" 256
npy_f4 "$T/c2.npy" "(2, 5, 12)" 120
expect_exit 3 "sample B=1, context B=2" -- "$M" run "$T/sd" -c unet --sample "$T/s1.npy" --context "$T/c2.npy" -o "$T/x.npy"
stderr_has "$T/c2.npy" "context named"
grep -q "Exception raised\|c10::" "$T/.err" && fail "raw LibTorch message"
npy_f4 "$T/c16.npy" "(1, 5, 16)" 80
expect_exit 3 "context width" -- "$M" run "$T/sd" -c unet --sample "$T/s1.npy" --context "$T/c16.npy" -o "$T/x.npy"
stderr_has "[B, L, 12]" "cross_attention_dim expected"
[ -e "$T/x.npy" ] && fail "no output after a failure"

# A truncated checkpoint at run time, and a directory where a file belongs.
npy_f4 "$T/c1.npy" "(1, 5, 12)" 60
expect_exit 3 "run on a truncated UNet" -- "$M" run "$T/broken" -c unet --sample "$T/s1.npy" --context "$T/c1.npy" -o "$T/x.npy"
stderr_has "diffusion_pytorch_model.safetensors" "truncated file named"
expect_exit 3 "info on a non-diffusers folder" -- "$M" info "$T"
expect_exit 3 "convert a folder without --merge" -- "$M" convert "$T/sd" -o "$T/y.safetensors"
expect_exit 3 "sample is a folder" -- "$M" run "$T/sd" -c vae-decode --sample "$T/sd" -o "$T/x.npy"

# Output errors: a full device on stdout is a runtime error (exit 1) with a message.
expect_exit 1 "stdout on /dev/full" -- sh -c "\"$M\" run \"$T/sd\" -c tokenize --prompt cat -o - >/dev/full"
stderr_has "write" "write error named"

# convert: fp16 overflow refused unless allowed; --allow-overflow alone is a usage error.
expect_exit 2 "--allow-overflow without fp16" -- "$M" convert "$T/sd/vae/diffusion_pytorch_model.safetensors" -o "$T/v.safetensors" --allow-overflow
# merge: the canonical file, not the fp16 variant next to it.
cp "$T/vae16.safetensors" "$T/sd/vae/diffusion_pytorch_model.fp16.safetensors"
expect_exit 0 "merge with a variant present" -- "$M" convert "$T/sd" --merge -o "$T/m.safetensors"
expect_exit 0 "info merged" -- "$M" info "$T/m.safetensors" --json
grep -q '"F16"' "$T/.out" && fail "merge took the fp16 variant as well"
expect_exit 3 "merge a variant some components lack" -- "$M" convert "$T/sd" --merge --variant fp16 -o "$T/m16.safetensors"
stderr_has "variant 'fp16'" "missing variant named"
# --json where no JSON report is written: refused (it did nothing).
expect_exit 2 "convert --json" -- "$M" convert "$T/m.safetensors" -o "$T/mj.safetensors" --json
stderr_has "convert writes no JSON report" "the subcommand is named"
[ ! -e "$T/mj.safetensors" ] || fail "convert --json wrote its output"
# --split into a model folder that holds weights: refused (it replaced them,
# configs of another model beside); into a folder holding only configs: written.
cp "$T/sd/unet/diffusion_pytorch_model.safetensors" "$T/unet-before.safetensors"
expect_exit 2 "--split over a model folder's weights" -- "$M" convert "$T/m.safetensors" --split -o "$T/sd"
stderr_has "already holds unet/diffusion_pytorch_model.safetensors" "the weights are named"
cmp -s "$T/sd/unet/diffusion_pytorch_model.safetensors" "$T/unet-before.safetensors" || fail "the weights were replaced"
mkdir -p "$T/sp/unet" && cp "$T/sd/unet/config.json" "$T/sp/unet/"
expect_exit 0 "--split into a folder with configs only" -- "$M" convert "$T/m.safetensors" --split -o "$T/sp" -q
[ -s "$T/sp/unet/diffusion_pytorch_model.safetensors" ] && [ -s "$T/sp/unet/config.json" ] || fail "split outputs: $(find "$T/sp" -type f)"
finish
