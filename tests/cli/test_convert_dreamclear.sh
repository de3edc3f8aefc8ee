# scripts/convert_dreamclear.py: checkpoints with the structure of the
# released DreamClear-1024.pth ({"state_dict": ...} holding base_model.pos_embed),
# DiffBIR's general_swinir_v1.ckpt ({"state_dict": ...} with DDP's "module."
# prefix and the derived relative_position_index / attn_mask buffers) and
# sd-vae-ft-ema (a diffusers folder whose weights are a .bin) are built here
# with torch from the committed folder tests/fixtures/nn/dreamclear_tiny; the
# converter must give its weights back tensor for tensor and read the sizes
# from the shapes, and the result must restore exactly as the committed
# folder, whose equality with the reference is tests/nn/test_dreamclear.cpp.
# Broken files and bad options are refused with nothing left behind. Needs a
# Python with torch (RASS_TORCH_PYTHON, python3); skipped (77) without one.
. "$(dirname "$0")/lib.sh"
M=$FIX/nn/dreamclear_tiny
C=$SRC/scripts/convert_dreamclear.py
py=$(torch_python)
[ -n "$py" ] || { echo "skipped: no Python with torch for scripts/convert_dreamclear.py"; exit 77; }

cat >"$T/build.py" <<'PY'
import os, shutil, sys
import torch
from st_read import torch_tensors as load
src, out = sys.argv[1], sys.argv[2]
dit = load(src + "/dit.safetensors")
dit["base_model.pos_embed"] = torch.zeros(1, 64, 48)
torch.save({"state_dict": dit}, out + "/dreamclear.pth")
sw = {"module." + k: v for k, v in load(src + "/swinir.safetensors").items()}
sw["module.layers.0.residual_group.blocks.1.attn_mask"] = torch.zeros(4, 16, 16)
sw["module.layers.0.residual_group.blocks.0.attn.relative_position_index"] = torch.zeros(16, 16, dtype=torch.long)
torch.save({"state_dict": sw}, out + "/swinir.ckpt")
os.makedirs(out + "/vae")
shutil.copy(src + "/vae/config.json", out + "/vae/config.json")
torch.save(load(src + "/vae/diffusion_pytorch_model.safetensors"), out + "/vae/diffusion_pytorch_model.bin")
torch.save({"not": "weights"}, out + "/junk.pth")
PY
expect_exit 0 "build the checkpoints" -- env PYTHONPATH="$SRC/tests/cli" "$py" "$T/build.py" "$M" "$T"
# What the shapes cannot tell: the tiny fixture's heads and image size (base_size follows it: 128 / 8 / 2 = 8).
cfg='{"image_size": 128, "dit": {"num_heads": 4}}'
expect_exit 0 "convert" -- "$py" "$C" "$T/dreamclear.pth" --swinir "$T/swinir.ckpt" --vae "$T/vae" --config "$cfg" -o "$T/conv"
for f in dit.safetensors swinir.safetensors vae/diffusion_pytorch_model.safetensors; do
  "$py" "$SRC/tests/cli/same_tensors.py" "$T/conv/$f" "$M/$f" || fail "$f: the converter changed its tensors"
done
"$py" - "$T/conv/dreamclear.json" "$M/dreamclear.json" <<'PY' || fail "dreamclear.json differs from the committed one"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
sys.exit(0 if a == b else print(a, b, sep="\n") or 1)
PY
expect_exit 0 "the converted folder restores" -- "$B/rass-dreamclear" -m "$T/conv" --min-size 128 --steps 2 --caption "$FIX/nn/dreamclear_caption.npz" "$FIX/nn/dreamclear_lq.png" -o "$T/c.png" -q
expect_exit 0 "the committed folder restores" -- "$B/rass-dreamclear" -m "$M" --min-size 128 --steps 2 --caption "$FIX/nn/dreamclear_caption.npz" "$FIX/nn/dreamclear_lq.png" -o "$T/m.png" -q
same_pixels "$T/c.png" "$T/m.png" || fail "the converted folder restores differently"

expect_exit 2 "an existing -o" -- "$py" "$C" "$T/dreamclear.pth" --swinir "$T/swinir.ckpt" --vae "$T/vae" -o "$T/conv"
expect_exit 3 "not a checkpoint" -- "$py" "$C" "$T/junk.pth" --swinir "$T/swinir.ckpt" --vae "$T/vae" -o "$T/x1"
expect_exit 3 "SwinIR given as the DiT" -- "$py" "$C" "$T/swinir.ckpt" --swinir "$T/swinir.ckpt" --vae "$T/vae" -o "$T/x2"
stderr_has "ControlPixArtMSHalfSR2Branch" "the message names what the file is not"
expect_exit 3 "the DiT given as SwinIR" -- "$py" "$C" "$T/dreamclear.pth" --swinir "$T/dreamclear.pth" --vae "$T/vae" -o "$T/x3"
expect_exit 3 "--vae without config.json" -- "$py" "$C" "$T/dreamclear.pth" --swinir "$T/swinir.ckpt" --vae "$T" -o "$T/x4"
expect_exit 2 "--config not JSON" -- "$py" "$C" "$T/dreamclear.pth" --swinir "$T/swinir.ckpt" --vae "$T/vae" --config '{' -o "$T/x5"
expect_exit 2 "--config with an unknown field" -- "$py" "$C" "$T/dreamclear.pth" --swinir "$T/swinir.ckpt" --vae "$T/vae" --config '{"dit": {"heads": 4}}' -o "$T/x6"
expect_exit 3 "a missing checkpoint" -- "$py" "$C" "$T/none.pth" --swinir "$T/swinir.ckpt" --vae "$T/vae" -o "$T/x7"
expect_exit 3 "an image given as a checkpoint" -- "$py" "$C" "$FIX/nn/dreamclear_lq.png" --swinir "$T/swinir.ckpt" --vae "$T/vae" -o "$T/x8"
for x in x1 x2 x3 x4 x5 x6 x7 x8; do [ -e "$T/$x" ] && fail "a refused conversion left $x"; done
ls -d "$T"/*.tmp-convert-* 2>/dev/null && fail "a temporary folder was left behind"
finish
