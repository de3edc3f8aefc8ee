# scripts/convert_rass.py: a checkpoint with the structure of the released
# rass.pth (a detectron2 {"model": ...} dict; REFERENCE.md section 4) is built
# here with torch from the committed converted folder tests/fixtures/nn/ras_tiny
# (PEFT base_layer/lora names under sd.unet, vae, text_encoder, projections,
# head) plus random RAM/DAPE tensors with their own loralib LoRA keys, DiffJPEG
# tables and the criterion's weight; the converter must give the folder back
# byte for byte (only segment.json's "source" differs) and the result must
# segment exactly as the committed folder, whose equality with the reference
# is tests/nn/test_segment.cpp. Other architectures and broken files are
# refused. Needs a Python with torch (RASS_TORCH_PYTHON, /tmp/loravenv/bin/python,
# python3); skipped (77) without one.
. "$(dirname "$0")/lib.sh"
M=$FIX/nn/ras_tiny
C=$SRC/scripts/convert_rass.py
py=$(torch_python /tmp/loravenv/bin/python)
[ -n "$py" ] || { echo "skipped: no Python with torch for scripts/convert_rass.py"; exit 77; }

mkdir -p "$T/sd"
for c in unet vae text_encoder tokenizer scheduler; do cp -r "$M/$c" "$T/sd/$c"; done
cat >"$T/build.py" <<'PY'
import sys
import torch
from st_read import torch_tensors as load
src, out = sys.argv[1], sys.argv[2]
fe = "backbone.feature_extractor."
lora = load(f"{src}/seg_lora.safetensors")
layers = {k.split(".lora_")[0] for k in lora}
model = {}
for k, v in load(f"{src}/unet/diffusion_pytorch_model.safetensors").items():
    layer, leaf = k.rsplit(".", 1)
    model[fe + "sd.unet." + (f"{layer}.base_layer.{leaf}" if layer in layers else k)] = v
for k, v in lora.items():
    model[fe + "sd.unet." + k] = v
for comp, f in (("vae", "diffusion_pytorch_model"), ("text_encoder", "model")):
    for k, v in load(f"{src}/{comp}/{f}.safetensors").items():
        model[fe + f"sd.{comp}." + k] = v
for k, v in load(f"{src}/seg_head.safetensors").items():
    model[(fe + k) if k.startswith("feature_projections.") else k] = v
g = torch.Generator().manual_seed(3)
for t in ("ram", "dape"):
    q = fe + t + ".visual_encoder.layers.0.blocks.0.attn.qkv"
    model[q + ".weight"] = torch.randn(12, 4, generator=g).half()
    model[q + ".lora_A"] = torch.randn(2, 4, generator=g).half()
    model[q + ".lora_B"] = torch.randn(12, 2, generator=g).half()
model["backbone.jpeger.y_quantize.y_table"] = torch.rand(8, 8, generator=g)
model["criterion.empty_weight"] = torch.ones(151)
torch.save({"model": model, "iteration": 1, "optimizer": {}}, out)
# Another architecture: a Mask2Former R50 checkpoint's layout.
torch.save({"model": {"backbone.res2.0.conv1.weight": torch.zeros(64, 64, 1, 1),
                      "sem_seg_head.predictor.query_feat.weight": torch.zeros(100, 256)}}, out + ".r50")
torch.save([1, 2, 3], out + ".list")
PY
expect_exit 0 "build a rass.pth-structured checkpoint" -- env PYTHONPATH="$SRC/tests/cli" "$py" "$T/build.py" "$M" "$T/rass.pth"
expect_exit 0 "convert" -- "$py" "$C" "$T/rass.pth" --sd "$T/sd" -o "$T/conv" \
  --head-config '{"nheads": 4, "enc_nheads": 4}'
stderr_has "dropped backbone.feature_extractor.dape, backbone.feature_extractor.ram, backbone.jpeger.y_quantize, criterion.empty_weight" \
  "the taggers, DiffJPEG and the criterion are dropped"
for f in unet/diffusion_pytorch_model.safetensors seg_lora.safetensors seg_head.safetensors vae/diffusion_pytorch_model.safetensors \
         text_encoder/model.safetensors rass.json tokenizer/vocab.json unet/config.json; do
  cmp -s "$T/conv/$f" "$M/$f" || fail "$f differs from the committed conversion"
done
[ -e "$T/conv/unet_plain/diffusion_pytorch_model.safetensors" ] || fail "unet_plain/ linked from --sd"
"$py" - "$T/conv/segment.json" "$M/segment.json" <<'PY' || fail "segment.json differs beyond its source"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
a.pop("source"); b.pop("source")
sys.exit(a != b)
PY
if [ -x "$B/rass-segment" ]; then
  expect_exit 0 "segment with the conversion" -- "$B/rass-segment" -m "$T/conv" --vae-mode --no-resize -q "$FIX/nn/ras_lq.png" -o "$T/a.png" --logits-out "$T/a.npy"
  expect_exit 0 "segment with the committed folder" -- "$B/rass-segment" -m "$M" --vae-mode --no-resize -q "$FIX/nn/ras_lq.png" -o "$T/b.png" --logits-out "$T/b.npy"
  # The PNGs' "rass" text chunks name each folder's files: the pixels and logits must agree.
  cmp -s "$T/a.npy" "$T/b.npy" && same_pixels "$T/a.png" "$T/b.png" || fail "the conversion segments differently"
fi
expect_exit 2 "existing output refused" -- "$py" "$C" "$T/rass.pth" --sd "$T/sd" -o "$T/conv"
expect_exit 3 "another architecture" -- "$py" "$C" "$T/rass.pth.r50" --sd "$T/sd" -o "$T/r50"
stderr_has "not a RASS stage-2 checkpoint" "the refusal says what it is not"
stderr_has "backbone.res2.0" "and what the keys look like"
expect_exit 3 "not a detectron2 checkpoint" -- "$py" "$C" "$T/rass.pth.list" --sd "$T/sd" -o "$T/l"
printf 'garbage' >"$T/bad.pth"
expect_exit 3 "not a torch file" -- "$py" "$C" "$T/bad.pth" --sd "$T/sd" -o "$T/g"
# A .pth is a pickle: one naming os.system must not run it (weights_only),
# and is refused with exit 3; --trust-checkpoint is the opt-in.
cat >"$T/evil.py" <<'PY'
import os, sys
import torch
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[3],))
ck = torch.load(sys.argv[1], weights_only=True)
ck["extra"] = Evil()
torch.save(ck, sys.argv[2])
PY
expect_exit 0 "build a checkpoint with a code-running pickle" -- "$py" "$T/evil.py" "$T/rass.pth" "$T/evil.pth" "$T/ran"
expect_exit 3 "a pickle that would run code" -- "$py" "$C" "$T/evil.pth" --sd "$T/sd" -o "$T/e"
stderr_has "--trust-checkpoint" "names the opt-in"
[ ! -e "$T/ran" ] || fail "converting evil.pth ran its code"
[ ! -e "$T/e" ] || fail "e left behind"
rm -rf "$T/sd/tokenizer"
expect_exit 3 "an SD folder without its tokenizer" -- "$py" "$C" "$T/rass.pth" --sd "$T/sd" -o "$T/t"
stderr_has "tokenizer" "names the tokenizer"
for d in r50 l g t; do [ ! -e "$T/$d" ] || fail "$d left behind"; done
finish
