# scripts/convert_sam.py with RobustSAM and HQ-SAM: a checkpoint with the structure of
# the released robustsam_checkpoint_*.pth (DataParallel's "module." prefix,
# BatchNorm's num_batches_tracked counters, fp16 here) is built with torch
# from the committed folder tests/fixtures/nn/robust_sam_tiny; the converter
# must find the robust decoder ("robust": true), give the tensors back and
# segment as the committed folder does (whose equality with RobustSAM's code
# is tests/nn/test_robust_sam.cpp). A plain SAM checkpoint stays plain, and
# RobustSAM with GleSAM's enhancer is refused with nothing left behind; an
# HQ-SAM checkpoint (wrapped in {"model": ...}) converts to the committed
# hq_sam_tiny.
# Needs a Python with torch (RASS_TORCH_PYTHON, python3); skipped (77) without one.
. "$(dirname "$0")/lib.sh"
R=$FIX/nn/robust_sam_tiny
P=$FIX/nn/sam_tiny
C=$SRC/scripts/convert_sam.py
py=$(torch_python)
[ -n "$py" ] || { echo "skipped: no Python with torch for scripts/convert_sam.py"; exit 77; }

cat >"$T/build.py" <<'PY'
import json, struct, sys
import numpy as np
import torch
def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    dt = {"F16": np.float16, "F32": np.float32}
    return {k: torch.from_numpy(np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], dtype=dt[v["dtype"]])
                                .reshape(v["shape"]).copy()) for k, v in h.items() if k != "__metadata__"}
robust, plain, out = sys.argv[1], sys.argv[2], sys.argv[3]
ck = {"module." + k: v for k, v in load(robust + "/sam.safetensors").items()}
for k in list(ck):
    if k.endswith(".running_mean"):
        ck[k[: -len("running_mean")] + "num_batches_tracked"] = torch.tensor(7)
torch.save(ck, out + "/robust.pth")
torch.save(load(plain + "/sam.safetensors"), out + "/plain.pth")
torch.save({"model": load(sys.argv[4] + "/sam.safetensors")}, out + "/hq.pth")
both = load(robust + "/sam.safetensors")
both["mask_decoder.hf_token.weight"] = torch.zeros(1, 64)
torch.save(both, out + "/both.pth")
PY
HQ=$FIX/nn/hq_sam_tiny
expect_exit 0 "build the checkpoints" -- "$py" "$T/build.py" "$R" "$P" "$T" "$HQ"
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
finish
