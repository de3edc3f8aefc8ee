# rass-model init: a tiny random-weight diffusers folder that the project's
# own loaders run (every component), deterministic by seed, atomic, and
# refusing to write over a folder or to build mismatched components.
. "$(dirname "$0")/lib.sh"
M=$B/rass-model
[ -x "$M" ] || { echo "skipped: rass-model not built (no LibTorch)"; exit 77; }

expect_exit 0 "init tiny" -- "$M" init "$T/sd" --seed 3 --quiet
for f in model_index.json scheduler/scheduler_config.json unet/config.json unet/diffusion_pytorch_model.safetensors \
  vae/config.json vae/diffusion_pytorch_model.safetensors text_encoder/config.json text_encoder/model.safetensors \
  tokenizer/vocab.json tokenizer/merges.txt tokenizer/tokenizer_config.json tokenizer/special_tokens_map.json; do
  [ -s "$T/sd/$f" ] || fail "init should write $f"
done
grep -q '"clip_sample": false' "$T/sd/scheduler/scheduler_config.json" || fail "scheduler clip_sample false"
grep -q '"DDPMScheduler"' "$T/sd/scheduler/scheduler_config.json" || fail "scheduler class"
ls -a "$T" | grep -q '\.tmp\.' && fail "no temporary folder left behind"

# Every component loads and runs in this project's loaders.
expect_exit 0 "info on the new folder" -- "$M" info "$T/sd"
grep -q "^unet: UNet2DConditionModel" "$T/.out" || fail "info names the UNet"
expect_exit 0 "tokenize with the generated tokenizer" -- "$M" run "$T/sd" -c tokenize --prompt "a cat" -o "$T/ids.npy"
# Byte-level, no merges: one token per character, the last of a word with
# </w> (256 + the symbol's index; bytes_to_unicode puts '!' first, so 'a' is
# 97 - 33 = 64): <|startoftext|> 512, a</w> 320, c 66, a 64, t</w> 339,
# <|endoftext|> 513, then "!" padding (0), as transformers' CLIPTokenizer.
ids=$(tail -c $((77 * 8)) "$T/ids.npy" | od -An -v -t d8 | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')
case "$ids" in
  "512 320 66 64 339 513 0 0 "*) ;;
  *) fail "byte-level token ids of 'a cat': $ids" ;;
esac
expect_exit 0 "text encoder on a prompt" -- "$M" run "$T/sd" -c text-encoder --prompt "a photo of a cat" -o "$T/ctx.npy"
head -c 128 "$T/ctx.npy" | grep -q "'shape': (1, 77, 32)" || fail "text encoder output [1, 77, 32]"
# zeros.npy PATH DIMS...: a float32 .npy of zeros (the header as NumPy pads it).
zeros_npy() {
  local path=$1 n=1 shape=""
  shift
  for d in "$@"; do n=$((n * d)); shape="$shape$d, "; done
  printf "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" "${shape%, }" >"$path"
  while [ $(( $(stat -c %s "$path") % 64 )) -ne 63 ]; do printf ' ' >>"$path"; done
  printf '\n' >>"$path"
  head -c $((n * 4)) /dev/zero >>"$path"
}
zeros_npy "$T/z.npy" 1 4 4 4
zeros_npy "$T/img.npy" 1 3 32 32
expect_exit 0 "unet run" -- "$M" run "$T/sd" -c unet --sample "$T/z.npy" --context "$T/ctx.npy" -o "$T/eps.npy"
head -c 128 "$T/eps.npy" | grep -q "'shape': (1, 4, 4, 4)" || fail "unet output shape"
expect_exit 0 "vae encode" -- "$M" run "$T/sd" -c vae-encode --sample "$T/img.npy" -o "$T/lat.npy"
head -c 128 "$T/lat.npy" | grep -q "'shape': (1, 4, 4, 4)" || fail "the tiny VAE downsamples by 8, as SD's"
expect_exit 0 "vae decode" -- "$M" run "$T/sd" -c vae-decode --sample "$T/lat.npy" -o "$T/dec.npy"
head -c 128 "$T/dec.npy" | grep -q "'shape': (1, 3, 32, 32)" || fail "vae decode shape"

# Deterministic by seed; another seed gives other weights.
expect_exit 0 "init again, same seed" -- "$M" init "$T/sd2" --seed 3 --quiet
expect_exit 0 "init, other seed" -- "$M" init "$T/sd3" --seed 4 --quiet
for f in unet/diffusion_pytorch_model.safetensors vae/diffusion_pytorch_model.safetensors text_encoder/model.safetensors; do
  cmp -s "$T/sd/$f" "$T/sd2/$f" || fail "same seed should give the same $f"
  cmp -s "$T/sd/$f" "$T/sd3/$f" && fail "another seed should change $f"
done
# Each component has its own generator: a replaced VAE config leaves the UNet as it was.
sed 's/"layers_per_block": 1/"layers_per_block": 2/' "$T/sd/vae/config.json" >"$T/vae2.json"
expect_exit 0 "init with a given vae config" -- "$M" init "$T/sd4" --seed 3 --vae-config "$T/vae2.json" --quiet
cmp -s "$T/sd/unet/diffusion_pytorch_model.safetensors" "$T/sd4/unet/diffusion_pytorch_model.safetensors" ||
  fail "a replaced VAE config should not change the UNet weights"
cmp -s "$T/vae2.json" "$T/sd4/vae/config.json" || fail "a given config is copied as it is"

# dtype of the written weights.
expect_exit 0 "init bf16" -- "$M" init "$T/sdbf" --dtype bf16 --quiet
expect_exit 0 "info bf16" -- "$M" --json info "$T/sdbf/unet/diffusion_pytorch_model.safetensors"
grep -q '"BF16"' "$T/.out" || fail "bf16 weights"

# A real tokenizer copied in: the text encoder's vocabulary follows it.
expect_exit 0 "init with --tokenizer" -- "$M" init "$T/sdtok" --tokenizer "$FIX/text/tiny-clip" --quiet
cmp -s "$FIX/text/tiny-clip/merges.txt" "$T/sdtok/tokenizer/merges.txt" || fail "tokenizer copied"
grep -q '"vocab_size": 1702' "$T/sdtok/text_encoder/config.json" || fail "vocab_size follows the tokenizer (1702 ids)"
expect_exit 0 "text encoder with the copied tokenizer" -- "$M" run "$T/sdtok" -c text-encoder --prompt "a photo of a cat" -o "$T/ctx2.npy"

# Refusals: an existing non-empty folder, mismatched components, bad options; nothing written.
expect_exit 2 "non-empty target" -- "$M" init "$T/sd"
stderr_has "not empty" "non-empty target message"
mkdir "$T/empty"
expect_exit 0 "an existing empty folder is fine" -- "$M" init "$T/empty" --quiet
[ -f "$T/empty/model_index.json" ] || fail "init into an empty folder"
sed 's/"cross_attention_dim": 32/"cross_attention_dim": 24/' "$T/sd/unet/config.json" >"$T/unet24.json"
expect_exit 3 "cross_attention_dim mismatch" -- "$M" init "$T/bad" --unet-config "$T/unet24.json"
stderr_has "cross_attention_dim" "mismatch named"
[ -e "$T/bad" ] && fail "no folder after a failure"
ls -a "$T" | grep -q '\.tmp\.' && fail "no temporary folder left after a failure"
# A size far past any model (a typo) is refused naming the field; it built
# until the memory ran out.
sed 's/"layers_per_block": [0-9]*/"layers_per_block": 100000000/' "$T/sd/unet/config.json" >"$T/unet-deep.json"
expect_exit 3 "layers_per_block 100000000" -- "$M" init "$T/bad" --unet-config "$T/unet-deep.json"
stderr_has "layers_per_block = 100000000 (at most 256" "the field and the bound are named"
[ -e "$T/bad" ] && fail "no folder after a refused config"
# A fraction or a string where a whole number belongs is refused naming the
# key (the fraction was truncated to 1 without a word).
sed 's/"layers_per_block": [0-9]*/"layers_per_block": 1.5/' "$T/sd/unet/config.json" >"$T/unet-half.json"
expect_exit 3 "layers_per_block 1.5" -- "$M" init "$T/bad" --unet-config "$T/unet-half.json"
stderr_has "layers_per_block = 1.5 is not a whole number" "the fraction is named"
sed 's/"norm_num_groups": \([0-9]*\)/"norm_num_groups": "\1"/' "$T/sd/vae/config.json" >"$T/vae-text.json"
expect_exit 3 "norm_num_groups as a string" -- "$M" init "$T/bad" --vae-config "$T/vae-text.json"
stderr_has 'vae-text.json: norm_num_groups = "' "the string's key is named"
[ -e "$T/bad" ] && fail "no folder after a refused config"
expect_exit 3 "missing config" -- "$M" init "$T/bad" --vae-config "$T/nope.json"
stderr_has "nope.json" "missing config named"
expect_exit 3 "tokenizer folder without vocab" -- "$M" init "$T/bad" --tokenizer "$T"
stderr_has "vocab.json" "missing vocab named"
expect_exit 2 "unknown preset" -- "$M" init "$T/bad" --preset sd15
[ -e "$T/bad" ] && fail "no folder after a usage error"

finish
