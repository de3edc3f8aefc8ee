# scripts/convert_osediff.py and its output in rass-model: the converted
# OSEDiff-structured checkpoint (tests/fixtures/nn/osediff_pkl, made by
# tests/nn/make_osediff_pkl_fixture.py) runs through `rass-model run unet
# --lora` with its alpha read from the file; the converter, where a Python
# with torch is found (RASS_TORCH_PYTHON, /tmp/loravenv/bin/python, python3),
# reproduces the committed files byte for byte and refuses broken checkpoints.
# Numerical equality with diffusers + peft is tests/nn/test_convert_osediff.cpp.
. "$(dirname "$0")/lib.sh"
M=$B/rass-model
O=$FIX/nn/osediff_pkl
ran=0

zeros_npy() {
  local path=$1 n=1 shape=""
  shift
  for d in "$@"; do n=$((n * d)); shape="$shape$d, "; done
  printf "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" "${shape%, }" >"$path"
  while [ $(( $(stat -c %s "$path") % 64 )) -ne 63 ]; do printf ' ' >>"$path"; done
  printf '\n' >>"$path"
  head -c $((n * 4)) /dev/zero >>"$path"
}

if [ -x "$M" ]; then
  ran=1
  mkdir -p "$T/sd"
  cp -r "$FIX/nn/unet_tiny" "$T/sd/unet"
  zeros_npy "$T/z.npy" 1 4 8 8
  zeros_npy "$T/ctx.npy" 1 5 12
  expect_exit 0 "unet without LoRA" -- "$M" run "$T/sd" -c unet --sample "$T/z.npy" --context "$T/ctx.npy" -o "$T/base.npy"
  expect_exit 0 "unet with the converted LoRA" -- "$M" run "$T/sd" -c unet --sample "$T/z.npy" --context "$T/ctx.npy" \
    --lora "$O/osediff_tiny.unet.safetensors" -o "$T/lora.npy"
  for a in "default_encoder on 19 layers" "default_decoder on 38 layers" "default_others on 16 layers"; do
    stderr_has "adapter $a" "all three adapters loaded"
  done
  grep -q "no lora_alpha" "$T/.err" && fail "the converted file carries lora_alpha (no guessing)"
  cmp -s "$T/base.npy" "$T/lora.npy" && fail "the LoRA should change the output"
fi

py=$(torch_python /tmp/loravenv/bin/python)
if [ -n "$py" ]; then
  ran=1
  C=$SRC/scripts/convert_osediff.py
  expect_exit 0 "convert the fixture .pkl" -- "$py" "$C" "$O/osediff_tiny.pkl" --output-dir "$T/conv"
  cmp -s "$T/conv/osediff_tiny.unet.safetensors" "$O/osediff_tiny.unet.safetensors" || fail "unet file reproduced byte for byte"
  cmp -s "$T/conv/osediff_tiny.vae.safetensors" "$O/osediff_tiny.vae.safetensors" || fail "vae file reproduced byte for byte"
  expect_exit 2 "existing output refused" -- "$py" "$C" "$O/osediff_tiny.pkl" --output-dir "$T/conv"
  stderr_has "--force" "existing output message"
  expect_exit 0 "--unet-only" -- "$py" "$C" "$O/osediff_tiny.pkl" --output-dir "$T/u" --unet-only
  [ -e "$T/u/osediff_tiny.vae.safetensors" ] && fail "--unet-only writes no VAE file"
  # Broken checkpoints: a missing entry, a listed target without tensors, an SCR-style UNet-only .pkl.
  expect_exit 0 "make broken checkpoints" -- "$py" - "$O/osediff_tiny.pkl" "$T" <<'EOF'
import sys, torch
sd = torch.load(sys.argv[1], weights_only=True)
d = dict(sd); del d["rank_unet"]; torch.save(d, sys.argv[2] + "/norank.pkl")
d = dict(sd); d["state_dict_unet"] = {k: v for k, v in sd["state_dict_unet"].items() if "up_blocks.1.resnets.0.conv1.lora_B" not in k}
torch.save(d, sys.argv[2] + "/nolayer.pkl")
d = {k: sd[k] for k in ("rank_unet", "unet_lora_encoder_modules", "unet_lora_decoder_modules", "unet_lora_others_modules", "state_dict_unet")}
torch.save(d, sys.argv[2] + "/scr.pkl")
EOF
  expect_exit 3 "missing rank_unet" -- "$py" "$C" "$T/norank.pkl" --output-dir "$T/x"
  stderr_has "rank_unet" "missing entry named"
  expect_exit 3 "a layer with lora_A only" -- "$py" "$C" "$T/nolayer.pkl" --output-dir "$T/x"
  stderr_has "up_blocks.1.resnets.0.conv1" "broken layer named"
  [ -e "$T/x" ] && [ -n "$(ls "$T/x")" ] && fail "nothing written for a refused checkpoint"
  expect_exit 0 "SCR-style .pkl (UNet only)" -- "$py" "$C" "$T/scr.pkl" --output-dir "$T/scr"
  [ -s "$T/scr/scr.unet.safetensors" ] || fail "UNet file from a UNet-only checkpoint"
  [ -e "$T/scr/scr.vae.safetensors" ] && fail "no VAE file from a UNet-only checkpoint"
  printf 'not a pickle' >"$T/junk.pkl"
  expect_exit 3 "not a checkpoint" -- "$py" "$C" "$T/junk.pkl" --output-dir "$T/x"
  stderr_has "junk.pkl" "unreadable file named"
fi

[ "$ran" = 1 ] || { echo "skipped: neither rass-model nor a Python with torch"; exit 77; }
finish
