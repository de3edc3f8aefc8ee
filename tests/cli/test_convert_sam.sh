# scripts/convert_sam.py with RobustSAM and HQ-SAM: a checkpoint with the structure of
# the released robustsam_checkpoint_*.pth (DataParallel's "module." prefix,
# BatchNorm's num_batches_tracked counters, fp16 here) is built with torch
# from the committed folder tests/fixtures/nn/robust_sam_tiny; the converter
# must find the robust decoder ("robust": true), give the tensors back and
# segment as the committed folder does (whose equality with RobustSAM's code
# is tests/nn/test_robust_sam.cpp). A plain SAM checkpoint stays plain, and
# RobustSAM with GleSAM's enhancer is refused with nothing left behind; an
# HQ-SAM checkpoint (wrapped in {"model": ...}) converts to the committed
# hq_sam_tiny. A SAM 2 checkpoint (its {"model": ...} with the video-memory
# tensors) converts to the committed sam2_tiny with those tensors dropped;
# SAM v1 fields in --config, --decoder, a missing no_mem_embed, an incomplete
# or impossible --config and non-string keys are refused.
# Needs a Python with torch (RASS_TORCH_PYTHON, python3); skipped (77) without one.
. "$(dirname "$0")/lib.sh"
R=$FIX/nn/robust_sam_tiny
P=$FIX/nn/sam_tiny
C=$SRC/scripts/convert_sam.py
py=$(torch_python)
[ -n "$py" ] || { echo "skipped: no Python with torch for scripts/convert_sam.py"; exit 77; }

cat >"$T/build.py" <<'PY'
import sys
import torch
from st_read import torch_tensors as load
robust, plain, out = sys.argv[1], sys.argv[2], sys.argv[3]
ck = {"module." + k: v for k, v in load(robust + "/sam.safetensors").items()}
for k in list(ck):
    if k.endswith(".running_mean"):
        ck[k[: -len("running_mean")] + "num_batches_tracked"] = torch.tensor(7)
torch.save(ck, out + "/robust.pth")
torch.save(load(plain + "/sam.safetensors"), out + "/plain.pth")
torch.save({"model": load(sys.argv[4] + "/sam.safetensors")}, out + "/hq.pth")
s2 = load(sys.argv[5] + "/sam.safetensors")
s2.update({"memory_attention.layers.0.linear1.weight": torch.zeros(8, 32), "maskmem_tpos_enc": torch.zeros(7, 1, 1, 16),
           "obj_ptr_proj.layers.0.weight": torch.zeros(32, 32), "memory_encoder.out_proj.weight": torch.zeros(16, 32, 1, 1)})
torch.save({"model": s2}, out + "/sam2.pt")
del s2["no_mem_embed"]
torch.save({"model": s2}, out + "/sam2_broken.pt")
torch.save({1: torch.zeros(1)}, out + "/intkeys.pt")
both = load(robust + "/sam.safetensors")
both["mask_decoder.hf_token.weight"] = torch.zeros(1, 64)
torch.save(both, out + "/both.pth")
PY
HQ=$FIX/nn/hq_sam_tiny
S2=$FIX/nn/sam2_tiny
expect_exit 0 "build the checkpoints" -- env PYTHONPATH="$SRC/tests/cli" "$py" "$T/build.py" "$R" "$P" "$T" "$HQ" "$S2"
cfg() { "$py" -c "import json,sys; c=json.load(open(sys.argv[1])); [c.pop(k, None) for k in ('architecture', 'robust', 'hq')]; print(json.dumps(c))" "$1"; }
expect_exit 0 "convert RobustSAM" -- "$py" "$C" "$T/robust.pth" --config "$(cfg "$R/sam.json")" -o "$T/conv"
cmp -s "$T/conv/sam.json" "$R/sam.json" || fail "sam.json differs from the committed one: $(cat "$T/conv/sam.json")"
grep -q '"robust": true' "$T/conv/sam.json" || fail "the robust decoder is found by its keys"
"$py" "$SRC/tests/cli/same_tensors.py" "$T/conv/sam.safetensors" "$R/sam.safetensors" ||
  fail "sam.safetensors: the converter changed the tensors (or kept num_batches_tracked)"
A=$FIX/nn/sam_b.png
expect_exit 0 "the converted folder segments" -- "$B/rass-sam" -m "$T/conv" --box 20,10,110,80 "$A" -o "$T/c.png" -q
expect_exit 0 "the committed folder segments" -- "$B/rass-sam" -m "$R" --box 20,10,110,80 "$A" -o "$T/m.png" -q
same_pixels "$T/c.png" "$T/m.png" || fail "the converted folder segments differently"

expect_exit 0 "convert HQ-SAM" -- "$py" "$C" "$T/hq.pth" --config "$(cfg "$HQ/sam.json")" -o "$T/hq"
cmp -s "$T/hq/sam.json" "$HQ/sam.json" || fail "HQ-SAM's sam.json differs from the committed one: $(cat "$T/hq/sam.json")"
"$py" "$SRC/tests/cli/same_tensors.py" "$T/hq/sam.safetensors" "$HQ/sam.safetensors" || fail "HQ-SAM: the converter changed the tensors"
expect_exit 3 "RobustSAM's and HQ-SAM's decoders in one file" -- "$py" "$C" "$T/both.pth" --config "$(cfg "$R/sam.json")" \
  -o "$T/x2"
[ -e "$T/x2" ] && fail "a refused conversion left its folder"
expect_exit 0 "convert plain SAM" -- "$py" "$C" "$T/plain.pth" --config "$(cfg "$P/sam.json")" -o "$T/plain"
grep -q robust "$T/plain/sam.json" && fail "a plain SAM checkpoint is not RobustSAM"
expect_exit 3 "RobustSAM with GleSAM's enhancer" -- "$py" "$C" "$T/robust.pth" --config "$(cfg "$R/sam.json")" \
  --enhancer-unet "$FIX/nn/sam_tiny_gle/unet" --sd "$FIX/nn/sam_tiny_gle" -o "$T/x1"
stderr_has "does not combine" "the refusal says why"
[ -e "$T/x1" ] && fail "a refused conversion left its folder"

expect_exit 0 "convert SAM 2" -- "$py" "$C" "$T/sam2.pt" --config "$(cfg "$S2/sam.json")" -o "$T/s2"
cmp -s "$T/s2/sam.json" "$S2/sam.json" || fail "SAM 2's sam.json differs from the committed one: $(cat "$T/s2/sam.json")"
"$py" "$SRC/tests/cli/same_tensors.py" "$T/s2/sam.safetensors" "$S2/sam.safetensors" ||
  fail "SAM 2: the converter kept the memory tensors or changed the others"
expect_exit 0 "the converted SAM 2 folder segments" -- "$B/rass-sam" -m "$T/s2" --box 20,10,110,80 "$A" -o "$T/s2c.png" -q
expect_exit 0 "the committed SAM 2 folder segments" -- "$B/rass-sam" -m "$S2" --box 20,10,110,80 "$A" -o "$T/s2m.png" -q
same_pixels "$T/s2c.png" "$T/s2m.png" || fail "the converted SAM 2 folder segments differently"
expect_exit 2 "SAM v1 size fields for a SAM 2 checkpoint" -- "$py" "$C" "$T/sam2.pt" --config '{"depth": 3}' -o "$T/x3"
stderr_has "not a size field" "the refusal names the field"
[ -e "$T/x3" ] && fail "a refused conversion left its folder"
expect_exit 2 "GleSAM's decoder for a SAM 2 checkpoint" -- "$py" "$C" "$T/sam2.pt" --decoder "$T/plain.pth" -o "$T/x4"
[ -e "$T/x4" ] && fail "a refused conversion left its folder"
expect_exit 3 "a SAM 2 checkpoint without no_mem_embed" -- "$py" "$C" "$T/sam2_broken.pt" -o "$T/x5"
stderr_has "no_mem_embed" "the refusal names what is missing"
[ -e "$T/x5" ] && fail "a refused conversion left its folder"
expect_exit 2 "a --config that is no JSON object" -- "$py" "$C" "$T/sam2.pt" --config '[1]' -o "$T/x6"
expect_exit 2 "a SAM 2 --config without every size" -- "$py" "$C" "$T/sam2.pt" --config '{"image_size": 256}' -o "$T/x7"
stderr_has "every size field" "the refusal says what is missing"
[ -e "$T/x7" ] && fail "a refused conversion left its folder"
bad=$("$py" -c "import json,sys; c=json.load(open(sys.argv[1])); c.pop('architecture'); c['global_att_blocks']=[99]; print(json.dumps(c))" "$S2/sam.json")
expect_exit 2 "a SAM 2 --config naming a block the trunk lacks" -- "$py" "$C" "$T/sam2.pt" --config "$bad" -o "$T/x8"
stderr_has "block 99" "the refusal names the block"
[ -e "$T/x8" ] && fail "a refused conversion left its folder"
expect_exit 3 "a dict whose keys are no tensor names" -- "$py" "$C" "$T/intkeys.pt" -o "$T/x9"
stderr_has "not a state dict" "the refusal says why"
finish
