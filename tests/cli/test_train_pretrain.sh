#!/usr/bin/env bash
# rass-train vae and unet end to end on the mini world: a tiny folder from
# rass-model init --preset tiny, scenes from rass-scenes; a few steps of each
# stage, the unet stage on the vae stage's export, the exports load in
# rass-model; bad settings exit 2 before training, a v-prediction scheduler 3.
source "$(dirname "$0")/lib.sh"
R=$B/rass-train
for t in rass-train rass-model rass-scenes; do
  [ -x "$B/$t" ] || { echo "$t not built (no LibTorch)"; exit 77; }
done

expect_exit 0 "init tiny" -- "$B/rass-model" init --preset tiny -q "$T/tiny"
expect_exit 0 "scenes" -- "$B/rass-scenes" -n 3 --size 64 -s 4 -q -o "$T/scenes"

expect_exit 0 "--help lists vae and unet" -- "$R" --help
grep -q "vae" "$T/.out" && grep -q "unet" "$T/.out" || fail "--help lacks vae or unet"
expect_exit 0 "vae --print-config" -- "$R" vae --print-config
grep -qF '"kl_weight": 1e-06' "$T/.out" || fail "vae --print-config lacks kl_weight 1e-6"
expect_exit 0 "unet --print-config" -- "$R" unet --print-config
grep -qF '"cfg_dropout": 0.1' "$T/.out" || fail "unet --print-config lacks cfg_dropout 0.1"

expect_exit 2 "an unknown vae loss" -- "$R" vae -q -o "$T/bad" --steps 1 --set vae.sd="$T/tiny" \
  --set vae.images="$T/scenes/images" --set vae.loss='"l2"'
stderr_has "loss must be"
[ ! -e "$T/bad/final" ] || fail "a refused run left an export"

expect_exit 0 "vae: 2 steps" -- "$R" vae -q -o "$T/vae" --steps 2 --batch 2 --set vae.sd="$T/tiny" \
  --set vae.images="$T/scenes/images" --set vae.crop_size=64 --log-every 1
# Gradient checkpointing (the encoder's and decoder's units replayed in the
# backward pass): the same losses and gradient norms step by step.
expect_exit 0 "vae: 2 steps with gradient checkpointing" -- "$R" vae -o "$T/vae-gc" --steps 2 --batch 2 \
  --set vae.sd="$T/tiny" --set vae.images="$T/scenes/images" --set vae.crop_size=64 --log-every 1 \
  --set loop.gradient_checkpointing=true
stderr_has "gradient checkpointing: encoder on, decoder on" "the VAE's modules are set to recompute"
python3 - "$T/vae/log.jsonl" "$T/vae-gc/log.jsonl" <<'PY' || fail "vae: checkpointing changed the losses"
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
assert len(a) == len(b) == 2, (len(a), len(b))
for x, y in zip(a, b):
    for k in ("loss", "grad_norm"):
        assert abs(x[k] - y[k]) <= 1e-5 * abs(x[k]), (k, x[k], y[k])
PY
[ -f "$T/vae/final/vae/diffusion_pytorch_model.safetensors" ] || fail "no exported vae"
cmp -s "$T/vae/final/unet/diffusion_pytorch_model.safetensors" "$T/tiny/unet/diffusion_pytorch_model.safetensors" ||
  fail "the export's unet is not the source's"
cmp -s "$T/vae/final/vae/diffusion_pytorch_model.safetensors" "$T/tiny/vae/diffusion_pytorch_model.safetensors" &&
  fail "the export's vae was not trained"

expect_exit 0 "unet: 2 steps on the vae's export, tags" -- "$R" unet -q -o "$T/unet" --steps 2 --batch 2 \
  --set unet.sd="$T/vae/final" --set unet.images="$T/scenes/images" --set unet.text='"tags"' --set unet.crop_size=64
[ -f "$T/unet/final/unet/diffusion_pytorch_model.safetensors" ] || fail "no exported unet"
cmp -s "$T/unet/final/vae/diffusion_pytorch_model.safetensors" "$T/vae/final/vae/diffusion_pytorch_model.safetensors" ||
  fail "the unet export's vae is not the vae stage's"
grep -q '"loss"' "$T/unet/log.jsonl" || fail "no loss in the unet log"
expect_exit 0 "rass-model info loads the export" -- "$B/rass-model" info "$T/unet/final"

cp -r "$T/tiny" "$T/vpred"
sed -i 's/"epsilon"/"v_prediction"/' "$T/vpred/scheduler/scheduler_config.json"
expect_exit 3 "a v-prediction scheduler" -- "$R" unet -q -o "$T/v" --steps 1 --set unet.sd="$T/vpred" \
  --set unet.images="$T/scenes/images" --set unet.crop_size=64
stderr_has "epsilon prediction only"
finish
