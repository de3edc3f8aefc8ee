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
# Tokenizer: the folder's tokenizer/ gives 77 ids; a text encoder with a smaller vocabulary refuses them.
cp -r "$FIX/text/tiny-clip" "$T/sd/tokenizer"
expect_exit 0 "tokenize" -- "$M" run "$T/sd" -c tokenize --prompt "a photo of a cat, green grass" -o "$T/ids.npy"
head -c 128 "$T/ids.npy" | grep -q "'shape': (1, 77)" || fail "tokenize should write [1, 77] ids"
head -c 128 "$T/ids.npy" | grep -q "<i8" || fail "tokenize should write int64"
expect_exit 3 "tokenizer and text encoder mismatch" -- "$M" run "$T/sd" -c text-encoder --prompt "a photo of a cat" -o "$T/emb.npy"
stderr_has "more than 16" "mismatch message"
finish
