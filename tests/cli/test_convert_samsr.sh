# scripts/convert_samsr.py: checkpoints with the structure of the released
# SamSR_v1.pth (a state dict, here wrapped in {"state_dict": ...} with DDP's
# "module." prefix and the Swin blocks' derived buffers) and
# autoencoder_vq_f4.pth (with a training checkpoint's loss.* tensors) are
# built here with torch from the committed folder tests/fixtures/nn/samsr_tiny;
# the converter must give its weights back tensor for tensor, and the result
# must restore exactly as the committed folder, whose equality with the
# reference is tests/nn/test_samsr.cpp. Broken files and bad options are
# refused with nothing left behind. Needs a Python with torch
# (RASS_TORCH_PYTHON, python3); skipped (77) without one.
. "$(dirname "$0")/lib.sh"
M=$FIX/nn/samsr_tiny
C=$SRC/scripts/convert_samsr.py
py=$(torch_python)
[ -n "$py" ] || { echo "skipped: no Python with torch for scripts/convert_samsr.py"; exit 77; }

cat >"$T/build.py" <<'PY'
import sys
import torch
from st_read import torch_tensors as load
src, out = sys.argv[1], sys.argv[2]
unet = load(src + "/unet.safetensors")
ck = {"module." + k: v for k, v in unet.items()}
ck["module.input_blocks.1.1.blocks.1.attn_mask"] = torch.zeros(16, 16, 16)
ck["module.input_blocks.1.1.blocks.0.attn.relative_position_index"] = torch.zeros(16, 16, dtype=torch.long)
torch.save({"state_dict": ck}, out + "/unet.pth")
ae = load(src + "/autoencoder.safetensors")
ae["loss.discriminator.main.0.weight"] = torch.zeros(4, 3, 3, 3)
torch.save(ae, out + "/ae.pth")
# A low-resolution feature extractor (lq_size unlike the latent's), which the tool does not run.
v3 = dict(unet)
v3["feature_extractor.0.weight"] = torch.zeros(16, 3, 3, 3)
torch.save(v3, out + "/v3.pth")
torch.save({"not": "weights"}, out + "/junk.pth")
PY
expect_exit 0 "build the checkpoints" -- env PYTHONPATH="$SRC/tests/cli" "$py" "$T/build.py" "$M" "$T"
cfg=$("$py" -c "import json,sys; c=json.load(open(sys.argv[1])); c.pop('architecture'); c.pop('method'); print(json.dumps(c))" "$M/samsr.json")
expect_exit 0 "convert" -- "$py" "$C" "$T/unet.pth" --autoencoder "$T/ae.pth" --sam "$FIX/nn/sam_tiny" --config "$cfg" -o "$T/conv"
for f in unet autoencoder; do
  "$py" "$SRC/tests/cli/same_tensors.py" "$T/conv/$f.safetensors" "$M/$f.safetensors" || fail "$f.safetensors: the converter changed its tensors"
done
cmp -s "$T/conv/samsr.json" "$M/samsr.json" || fail "samsr.json differs from the committed one"
expect_exit 0 "the converted folder restores" -- "$B/rass-samsr" -m "$T/conv" "$FIX/nn/samsr_lq.png" -o "$T/c.png" -q
expect_exit 0 "the committed folder restores" -- "$B/rass-samsr" -m "$M" "$FIX/nn/samsr_lq.png" -o "$T/m.png" -q
same_pixels "$T/c.png" "$T/m.png" || fail "the converted folder restores differently"

# No network checkpoint: the autoencoder and samsr.json alone (the start of
# rass-train resshift with resshift.init random); rass-samsr names what is missing.
expect_exit 0 "convert without a network" -- "$py" "$C" --autoencoder "$T/ae.pth" --method resshift --config "$cfg" -o "$T/start"
[ -e "$T/start/unet.safetensors" ] && fail "a folder converted without a network has unet.safetensors"
"$py" "$SRC/tests/cli/same_tensors.py" "$T/start/autoencoder.safetensors" "$M/autoencoder.safetensors" || fail "autoencoder.safetensors changed"
expect_exit 3 "rass-samsr on a folder without a network" -- "$B/rass-samsr" -m "$T/start" "$FIX/nn/samsr_lq.png" -o "$T/s.png" -q
stderr_has "resshift.init=random" "the message says what such a folder is for"

expect_exit 2 "an existing -o" -- "$py" "$C" "$T/unet.pth" --autoencoder "$T/ae.pth" -o "$T/conv"
expect_exit 3 "not a checkpoint" -- "$py" "$C" "$T/junk.pth" --autoencoder "$T/ae.pth" -o "$T/x1"
expect_exit 3 "the UNet given as the autoencoder" -- "$py" "$C" "$T/unet.pth" --autoencoder "$T/unet.pth" -o "$T/x2"
expect_exit 3 "a low-resolution feature extractor" -- "$py" "$C" "$T/v3.pth" --autoencoder "$T/ae.pth" -o "$T/x3"
stderr_has "feature extractor" "the message names what is not supported"
expect_exit 3 "--sam without sam.json" -- "$py" "$C" "$T/unet.pth" --autoencoder "$T/ae.pth" --sam "$T" -o "$T/x4"
expect_exit 2 "--config not JSON" -- "$py" "$C" "$T/unet.pth" --autoencoder "$T/ae.pth" --config '{' -o "$T/x5"
expect_exit 2 "--config with an unknown section" -- "$py" "$C" "$T/unet.pth" --autoencoder "$T/ae.pth" --config '{"vae": {}}' -o "$T/x6"
expect_exit 3 "an image given as a checkpoint" -- "$py" "$C" "$FIX/nn/samsr_lq.png" --autoencoder "$T/ae.pth" -o "$T/x8"
stderr_has "not a torch checkpoint" "the message says what the file is not (and does not suggest trusting it)"
expect_exit 2 "-o ''" -- "$py" "$C" "$T/unet.pth" --autoencoder "$T/ae.pth" -o ''
expect_exit 1 "-o in a missing folder" -- "$py" "$C" "$T/unet.pth" --autoencoder "$T/ae.pth" -o "$T/no/such/x"
stderr_has "$T/no/such" "one line naming the path"
expect_exit 3 "a missing checkpoint" -- "$py" "$C" "$T/none.pth" --autoencoder "$T/ae.pth" -o "$T/x7"
for x in x1 x2 x3 x4 x5 x6 x7 x8; do [ -e "$T/$x" ] && fail "a refused conversion left $x"; done
ls -d "$T"/*.tmp-convert-* 2>/dev/null && fail "a temporary folder was left behind"
finish
