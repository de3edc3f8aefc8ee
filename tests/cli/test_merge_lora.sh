# rass-merge-lora on a diffusers folder assembled from the tiny fixtures: the
# subcommands end to end, reports, and bad inputs refused with the DESIGN.md
# exit codes and no partial output. Numerical checks against the reference
# (peft's outputs, hand-made rank-r differences) are in tests/nn/test_merge_lora.cpp.
. "$(dirname "$0")/lib.sh"
M=$B/rass-merge-lora
[ -x "$M" ] || { echo "skipped: rass-merge-lora not built (no LibTorch)"; exit 77; }
N=$FIX/nn
PEFT=$N/lora_peft/adapter_model.safetensors
PROCS=$N/lora_attn_procs.safetensors
mkdir -p "$T/sd"
cp -r "$N/unet_tiny" "$T/sd/unet"
cp -r "$N/vae_tiny" "$T/sd/vae"
no_leftovers() {  # no temporary files or folders after a run
  if ls "$T" "$T/sd" | grep -q '\.tmp\.'; then fail "$1: temporary output left behind"; fi
}

# list: what make_lora_fixture.py wrote (r 4, lora_alpha 6 in adapter_config.json; processors without alpha).
expect_exit 0 "list peft" -- "$M" list "$PEFT"
grep -q "adapter default: 64 layers, rank 4, alpha 6.0 (adapter_config.json)" "$T/.out" || fail "list peft: $(cat "$T/.out")"
expect_exit 0 "list --json" -- "$M" list "$PROCS" --json
grep -q '"alpha_source": "none' "$T/.out" || fail "attention processors carry no alpha"
grep -q '"to_out.0": 8' "$T/.out" || fail "targets grouped by module"
expect_exit 0 "list against the model" -- "$M" list "$PROCS" --model "$T/sd"
grep -q "32 of 32 layer adapter(s) fit" "$T/.out" || fail "all processor targets fit unet_tiny"

# merge: -o and -O; the folder holds the other components as links.
expect_exit 0 "merge" -- "$M" merge --model "$T/sd" --lora "$PEFT:0.5" --lora "$PROCS" -o "$T/unet.safetensors" -O "$T/merged"
stderr_has "merged 64 layer adapter(s) at scale 0.5" "merge reports what it merged"
[ -f "$T/merged/unet/config.json" ] && [ -f "$T/merged/unet/diffusion_pytorch_model.safetensors" ] || fail "merged folder incomplete"
[ "$(stat -c %i "$T/merged/vae/config.json")" = "$(stat -c %i "$T/sd/vae/config.json")" ] || fail "vae should be hard-linked"
no_leftovers merge
# -o inside the new -O folder: it would take the place of one of the
# folder's files (exit 0 and a vae file holding the merged UNet before).
expect_exit 2 "merge -o inside -O" -- "$M" merge --model "$T/sd" --lora "$PEFT" -O "$T/m3" \
  -o "$T/m3/vae/diffusion_pytorch_model.safetensors" -q
stderr_has "is inside -O" "the refusal names -O"
[ -e "$T/m3" ] && fail "a refused merge left its folder"
# A dangling link in the base folder that -O links whole: bad input before
# the merge (exit 1 at the copy, after it, before).
cp -r "$T/sd" "$T/sd-dangling" && ln -s nowhere "$T/sd-dangling/stale"
expect_exit 3 "merge -O from a folder with a dangling link" -- "$M" merge --model "$T/sd-dangling" --lora "$PEFT" \
  -O "$T/m4" -q
stderr_has "sd-dangling/stale" "the link is named"
[ -e "$T/m4" ] && fail "a refused merge left its folder"
# One inside the merged component, which is written anew, not linked: no matter.
cp -r "$T/sd" "$T/sd-dangling2" && ln -s nowhere "$T/sd-dangling2/unet/stale.bin"
expect_exit 0 "merge -O with a dangling link in the merged component" -- "$M" merge --model "$T/sd-dangling2" \
  --lora "$PEFT" -O "$T/m5" -q
expect_exit 0 "merge --dtype bf16 --json" -- "$M" merge --model "$T/sd" --component unet --lora "$PEFT" --dtype bf16 -o "$T/bf16.safetensors" --json
grep -q '"layers_merged": 64' "$T/.out" || fail "merge --json report"
"$B/rass-model" --json info "$T/bf16.safetensors" >"$T/info.json" 2>/dev/null && { grep -q '"BF16"' "$T/info.json" || fail "--dtype bf16 written"; }

# extract: the merge of the peft file back out at rank 4 (the file's rank): energy 1.
expect_exit 0 "extract" -- "$M" extract --base "$T/sd" --tuned "$T/merged" --rank 4 -o "$T/x.safetensors" --json
grep -q '"layers_zero_skipped": 19' "$T/.out" || fail "83 LoRA-capable layers, 64 changed: 19 skipped"
grep -Eq '"energy_kept": (1\.0|0\.9999)' "$T/.out" || fail "rank-4 merges extracted at rank 4 keep all energy"
expect_exit 0 "list extracted" -- "$M" list "$T/x.safetensors"
grep -q "rank 4, alpha 4.0 (metadata lora_alpha)" "$T/.out" || fail "extracted LoRA: alpha = r in the metadata"
expect_exit 3 "extract --targets nothing" -- "$M" extract --base "$T/sd" --tuned "$T/merged" --targets nope -o "$T/y.safetensors"
stderr_has "nope" "unmatched target named"
[ -e "$T/y.safetensors" ] && fail "no output after a failure"
# A tuned weight holding infinity: exit 3 naming the file and tensor (was a
# LAPACK "failed to converge" with exit 1).
cp -r "$T/merged" "$T/tinf"
U=$T/tinf/unet/diffusion_pytorch_model.safetensors
rm "$U" && cp "$T/merged/unet/diffusion_pytorch_model.safetensors" "$U"  # a copy, not a link to merged's file
hl=$(od -An -tu8 -N8 "$U" | tr -d ' ')
off=$(head -c $((8 + hl)) "$U" | tail -c "$hl" | grep -o '"down_blocks.0.attentions.0.proj_in.weight":{[^}]*}' |
  sed 's/.*"data_offsets":\[\([0-9]*\),.*/\1/')
printf '\000\000\200\177' | dd of="$U" bs=1 seek=$((8 + hl + off)) conv=notrunc 2>/dev/null
expect_exit 3 "extract from a weight holding infinity" -- "$M" extract --base "$T/sd" --tuned "$T/tinf" --rank 2 \
  -o "$T/inf-x.safetensors"
stderr_has "down_blocks.0.attentions.0.proj_in.weight" "the tensor is named"
stderr_has "NaN or infinity" "the reason is given"
expect_exit 3 "extract from identical weights" -- "$M" extract --base "$T/sd" --tuned "$T/sd" -o "$T/y.safetensors"
stderr_has "no difference" "identical checkpoints"

# init-seg and expand-channels.
expect_exit 0 "init-seg" -- "$M" init-seg --model "$T/sd" --lora "$PEFT" --rank 2 --seed 3 --timestep 1 --formula ddpm --head none -O "$T/ras"
grep -q '"method": "scr"' "$T/ras/rass.json" || fail "rass.json method"
grep -q '"trainable"' "$T/ras/rass.json" || fail "rass.json trainable"
expect_exit 0 "list the Seg LoRA" -- "$M" list "$T/ras/seg_lora.safetensors"
grep -q "adapter default_encoder_s2: 19 layers, rank 2, alpha 8.0" "$T/.out" || fail "Seg LoRA encoder adapter: $(cat "$T/.out")"
grep -q "adapter default_decoder_s2: 37 layers" "$T/.out" || fail "Seg LoRA decoder adapter"
grep -q "adapter default_others_s2: 16 layers" "$T/.out" || fail "Seg LoRA others adapter"
[ -d "$T/ras/unet_plain" ] && [ -f "$T/ras/unet_plain/config.json" ] || fail "init-seg links the base UNet as unet_plain/"
[ -e "$T/ras/segment.json" ] && fail "--head none writes no segment.json"
expect_exit 0 "init-seg --no-scr" -- "$M" init-seg --model "$T/sd" --no-scr --rank 2 --head none -O "$T/ras_plain"
stderr_has "the plain backbone in unet/ (--no-scr)" "--no-scr is not reported as an SCR merge"
grep -q "SCR merged" "$T/.err" && fail "init-seg --no-scr claims an SCR merge"
grep -q '"scr": false' "$T/ras_plain/rass.json" || fail "--no-scr: rass.json records scr false"
# With a head (the default): these fixtures (2-level UNet, 3-block VAE) give
# RAS no taps to build res2..res5 from; refused naming the file, nothing written.
expect_exit 2 "init-seg --rank above the layers' full rank" -- "$M" init-seg --model "$T/sd" --lora "$PEFT" --rank 100000 \
  --head none -O "$T/ras_bigrank"
stderr_has "above the full rank of layer" "the layer is named"
[ -e "$T/ras_bigrank" ] && fail "no folder for a refused rank"
expect_exit 3 "init-seg with a head on an untappable model" -- "$M" init-seg --model "$T/sd" --lora "$PEFT" -O "$T/ras_head"
stderr_has "vae/config.json" "the VAE without 4 blocks is named"
[ -e "$T/ras_head" ] && fail "no partial init-seg folder"
expect_exit 0 "expand-channels" -- "$M" expand-channels 64 --model "$T/sd/unet" -O "$T/x64"
grep -q '"in_channels": 256' "$T/x64/config.json" || fail "in_channels 4 x 64"

# Bad inputs: exit 3 named, exit 2 for usage, nothing written.
python3 - "$T/bad.safetensors" <<'PY' 2>/dev/null || printf 'x' >"$T/bad.safetensors"
import json, struct, sys
hdr = {"down_blocks.0.attentions.0.transformer_blocks.0.attn1.nope.lora_A.weight": {"dtype": "F32", "shape": [4, 16], "data_offsets": [0, 256]},
       "down_blocks.0.attentions.0.transformer_blocks.0.attn1.nope.lora_B.weight": {"dtype": "F32", "shape": [16, 4], "data_offsets": [256, 512]}}
h = json.dumps(hdr).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + bytes(512))
PY
expect_exit 3 "LoRA target matching nothing" -- "$M" merge --model "$T/sd" --lora "$T/bad.safetensors" -o "$T/o1.safetensors"
stderr_has "attn1.nope" "unmatched layer named"
expect_exit 3 "LoRA that does not fit the model" -- "$M" merge --model "$T/sd" --component vae --lora "$PEFT" -o "$T/o1.safetensors"
head -c 5000 "$PEFT" >"$T/trunc.safetensors"
expect_exit 3 "corrupt safetensors" -- "$M" merge --model "$T/sd" --lora "$T/trunc.safetensors" -o "$T/o1.safetensors"
stderr_has "trunc.safetensors" "corrupt file named"
expect_exit 3 "missing component" -- "$M" merge --model "$T/sd" --component text_encoder --lora "$PEFT" -o "$T/o1.safetensors"
stderr_has "text_encoder" "missing component named"
[ -e "$T/o1.safetensors" ] && fail "no output after failures"
cp "$N/unet_tiny/diffusion_pytorch_model.safetensors" "$T/lone.safetensors"
expect_exit 2 "lone file without config" -- "$M" merge --model "$T/lone.safetensors" --lora "$PEFT" -o "$T/o1.safetensors"
stderr_has "--config" "asks for --config"
expect_exit 0 "lone file with --config" -- "$M" merge --model "$T/lone.safetensors" --config "$N/unet_tiny/config.json" --lora "$PEFT" -o "$T/o1.safetensors"
sum_before=$(md5sum <"$T/sd/unet/diffusion_pytorch_model.safetensors")
expect_exit 2 "output over the input" -- "$M" merge --model "$T/sd" --lora "$PEFT" -o "$T/sd/unet/diffusion_pytorch_model.safetensors"
[ "$(md5sum <"$T/sd/unet/diffusion_pytorch_model.safetensors")" = "$sum_before" ] || fail "the input was changed"
expect_exit 2 "output folder inside the input" -- "$M" merge --model "$T/sd" --lora "$PEFT" -O "$T/sd/out"
expect_exit 2 "existing output folder" -- "$M" init-seg --model "$T/sd" --lora "$PEFT" -O "$T/ras"
expect_exit 2 "-O needs a model folder" -- "$M" merge --model "$T/lone.safetensors" --config "$N/unet_tiny/config.json" --lora "$PEFT" -O "$T/o2"
[ -e "$T/o2" ] && fail "no folder after a refusal"
# A failure mid-way (the second LoRA is bad) leaves no folder and no temporary one.
expect_exit 3 "failure after the first LoRA" -- "$M" init-seg --model "$T/sd" --lora "$PEFT" --lora "$T/bad.safetensors" --head none -O "$T/ras2"
[ -e "$T/ras2" ] && fail "no partial init-seg folder"
no_leftovers "failed init-seg"
# --classes with --head none would never be read: refused, not ignored.
: >"$T/empty_classes.txt"
expect_exit 2 "init-seg --head none --classes" -- "$M" init-seg --model "$T/sd" --lora "$PEFT" --head none --classes "$T/empty_classes.txt" -O "$T/ras3"
stderr_has "--classes applies to a head" "the conflict explained"
[ -e "$T/ras3" ] && fail "no folder after a refusal"
# A full disk while the folder's other components are copied (another
# filesystem: no hard links): the system's reason and the folder's own name,
# not EIO and a temporary path; nothing left on the full disk. Needs a tmpfs
# (root); skipped where none can be mounted.
mkdir -p "$T/small"
if mount -t tmpfs -o size=1m tmpfs "$T/small" 2>/dev/null; then
  head -c 3000000 /dev/zero >"$T/sd/vae/big.bin"
  expect_exit 1 "merge -O onto a full disk" -- "$M" merge --model "$T/sd" --lora "$PEFT" -O "$T/small/merged"
  stderr_has "$T/small/merged/vae/big.bin: cannot copy" "the folder's own name"
  stderr_has "No space left on device" "the system's reason"
  [ -z "$(ls -A "$T/small")" ] || fail "a full disk kept a partial folder: $(ls -A "$T/small")"
  rm -f "$T/sd/vae/big.bin"
  umount "$T/small"
else
  echo "skipped: full-disk case (cannot mount a tmpfs here)"
fi
if ! command -v nvidia-smi >/dev/null; then
  expect_exit 1 "cuda unavailable" -- "$M" merge --model "$T/sd" --lora "$PEFT" --device cuda -o "$T/o4.safetensors"
  [ -e "$T/o4.safetensors" ] && fail "no output when the device is missing"
fi
expect_exit 2 "no subcommand" -- "$M"
expect_exit 2 "bad --lora scale" -- "$M" merge --model "$T/sd" --lora "$PEFT:abc" -o "$T/o3.safetensors"
# LoRA values or an alpha that overflow: exit 3 naming the file, nothing
# written (each value 3.4e38 is finite; their products are not).
mkdir -p "$T/huge" "$T/bigalpha"
hlen=$(od -An -tu8 -N8 "$PEFT" | tr -d ' ')
{ head -c $((8 + hlen)) "$PEFT"; head -c $(($(stat -c %s "$PEFT") - 8 - hlen)) /dev/zero | tr '\0' '\177'; } \
  >"$T/huge/adapter_model.safetensors"
cp "$N/lora_peft/adapter_config.json" "$T/huge/"
expect_exit 3 "merge: LoRA values whose product overflows" -- "$M" merge --model "$T/sd" \
  --lora "$T/huge/adapter_model.safetensors" -o "$T/inf.safetensors"
stderr_has "non-finite (overflow)" "the overflow is named"
stderr_has "huge/adapter_model.safetensors" "the LoRA is named"
[ -e "$T/inf.safetensors" ] && fail "no merged file with infinite weights"
cp "$PEFT" "$T/bigalpha/"
sed 's/"lora_alpha": [0-9.]*/"lora_alpha": 1e300/' "$N/lora_peft/adapter_config.json" >"$T/bigalpha/adapter_config.json"
expect_exit 3 "merge: lora_alpha beyond float32" -- "$M" merge --model "$T/sd" \
  --lora "$T/bigalpha/adapter_model.safetensors" -o "$T/inf.safetensors"
stderr_has "float32 range" "the reason is given"
# LoRA tensors that are not floating point (the header's F32 made I32: the
# same bytes): exit 3, not merged as integers.
mkdir -p "$T/i32"
cp "$N/lora_peft/adapter_config.json" "$T/i32/"
{ head -c 8 "$PEFT"; head -c $((8 + hlen)) "$PEFT" | tail -c "$hlen" | LC_ALL=C sed 's/"F32"/"I32"/g'; tail -c +$((9 + hlen)) "$PEFT"; } \
  >"$T/i32/adapter_model.safetensors"
expect_exit 3 "merge: integer LoRA tensors" -- "$M" merge --model "$T/sd" --lora "$T/i32/adapter_model.safetensors" \
  -o "$T/int.safetensors"
stderr_has "floating point" "the reason is given"
# Every file read is an input: an output over or inside any of them is refused (exit 2), nothing written.
mkdir -p "$T/lp" && cp "$N/lora_peft/adapter_model.safetensors" "$N/lora_peft/adapter_config.json" "$T/lp/"
cfg_before=$(md5sum <"$T/lp/adapter_config.json")
expect_exit 2 "-o over the LoRA's adapter_config.json" -- "$M" merge --model "$T/sd" --lora "$T/lp/adapter_model.safetensors" -o "$T/lp/adapter_config.json"
[ "$(md5sum <"$T/lp/adapter_config.json")" = "$cfg_before" ] || fail "adapter_config.json was changed"
expect_exit 2 "-o over the LoRA file" -- "$M" merge --model "$T/sd" --lora "$T/lp/adapter_model.safetensors" -o "$T/lp/adapter_model.safetensors"
vae_before=$(md5sum <"$T/sd/vae/diffusion_pytorch_model.safetensors")
expect_exit 2 "-o over another component of the base" -- "$M" merge --model "$T/sd" --lora "$PEFT" -o "$T/sd/vae/diffusion_pytorch_model.safetensors"
stderr_has "inside the input folder" "output inside the model folder named"
[ "$(md5sum <"$T/sd/vae/diffusion_pytorch_model.safetensors")" = "$vae_before" ] || fail "the base's VAE was changed"
expect_exit 2 "-o a new file inside the base folder" -- "$M" merge --model "$T/sd" --lora "$PEFT" -o "$T/sd/merged.safetensors"
[ -e "$T/sd/merged.safetensors" ] && fail "nothing written into the base folder"
expect_exit 2 "-o inside the base given as a component folder" -- "$M" merge --model "$T/sd/unet" --lora "$PEFT" -o "$T/sd/unet/x.safetensors"
expect_exit 2 "extract -o inside --tuned" -- "$M" extract --base "$T/sd" --tuned "$T/merged" -o "$T/merged/unet/x.safetensors"
expect_exit 2 "extract -o inside --base" -- "$M" extract --base "$T/sd" --tuned "$T/merged" -o "$T/sd/x.safetensors"
if [ -e "$T/merged/unet/x.safetensors" ] || [ -e "$T/sd/x.safetensors" ] || [ -e "$T/sd/unet/x.safetensors" ]; then
  fail "wrote into an input folder"
fi
# A sharded lone base: the index beside the shards is read, so it is an input.
mkdir -p "$T/sh"
python3 - "$N/unet_tiny/diffusion_pytorch_model.safetensors" "$T/sh" <<'PY' || fail "could not build the sharded base"
import json, struct, sys, shutil
shutil.copy(sys.argv[1], sys.argv[2] + "/diffusion_pytorch_model-00001-of-00001.safetensors")
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
names = [k for k in json.loads(raw[8:8 + n]) if k != "__metadata__"]
json.dump({"metadata": {}, "weight_map": {k: "diffusion_pytorch_model-00001-of-00001.safetensors" for k in names}},
          open(sys.argv[2] + "/diffusion_pytorch_model.safetensors.index.json", "w"))
PY
cp "$N/unet_tiny/config.json" "$T/sh/"
idx_before=$(md5sum <"$T/sh/diffusion_pytorch_model.safetensors.index.json")
expect_exit 2 "-o over a sharded base's index" -- "$M" merge --model "$T/sh" --lora "$PEFT" -o "$T/sh/diffusion_pytorch_model.safetensors.index.json"
[ "$(md5sum <"$T/sh/diffusion_pytorch_model.safetensors.index.json")" = "$idx_before" ] || fail "the index was changed"
expect_exit 2 "-o over a lone base's config" -- "$M" merge --model "$T/lone.safetensors" --config "$T/sh/config.json" --lora "$PEFT" -o "$T/sh/config.json"
expect_exit 0 "-o beside (not inside) the inputs" -- "$M" merge --model "$T/lone.safetensors" --config "$N/unet_tiny/config.json" --lora "$T/lp/adapter_model.safetensors" -o "$T/beside.safetensors"

# Only one thing can go to stdout; with -o - the human report goes to stderr.
expect_exit 2 "merge -o - --json" -- "$M" merge --model "$T/sd" --lora "$PEFT" -o - --json
stderr_has "stdout" "the stdout conflict named"
expect_exit 2 "extract -o - --json" -- "$M" extract --base "$T/sd" --tuned "$T/merged" -o - --json
expect_exit 0 "extract -o -" -- "$M" extract --base "$T/sd" --tuned "$T/merged" --rank 4 -o -
cp "$T/.out" "$T/stdout.safetensors"
stderr_has "extracted 64 layer(s) at rank 4" "the table goes to stderr"
grep -q "energy kept" "$T/stdout.safetensors" && fail "the report is mixed into the safetensors stream"
expect_exit 0 "the stdout stream is a clean LoRA file" -- "$M" list "$T/stdout.safetensors"
grep -q "rank 4, alpha 4.0" "$T/.out" || fail "list of the streamed LoRA: $(cat "$T/.out")"

# extract --rank above a layer's full rank min(out, in*k*k), by hand from
# unet_tiny's config: conv_out is [4, 16, 3, 3] (full rank min(4, 144) = 4, the
# smallest); attn2.to_k maps cross_attention_dim 12 to 16 or 32 (full rank 12).
expect_exit 2 "extract --rank 100000" -- "$M" extract --base "$T/sd" --tuned "$T/merged" --rank 100000 -o "$T/big.safetensors"
stderr_has "above the full rank of layer" "the layer and its full rank named"
[ -e "$T/big.safetensors" ] && fail "no output for a refused rank"
expect_exit 2 "extract --rank 5: above conv_out's 4" -- "$M" extract --base "$T/sd" --tuned "$T/merged" --rank 5 -o "$T/big.safetensors"
stderr_has "layer conv_out (4 = min(out 4, in*k*k 144))" "conv_out's full rank"
expect_exit 0 "extract --targets to_k --rank 12" -- "$M" extract --base "$T/sd" --tuned "$T/merged" --targets attn2.to_k --rank 12 -o "$T/k12.safetensors" -q
expect_exit 2 "extract --targets to_k --rank 13" -- "$M" extract --base "$T/sd" --tuned "$T/merged" --targets attn2.to_k --rank 13 -o "$T/k13.safetensors"
stderr_has "(12 = min(out 16, in*k*k 12))" "to_k's full rank"

# init-seg --timestep: an integer in [0, num_train_timesteps) of the scheduler
# (1000 here), written as an integer.
mkdir -p "$T/sd/scheduler" && printf '{"num_train_timesteps": 1000}\n' >"$T/sd/scheduler/scheduler_config.json"
expect_exit 2 "init-seg --timestep 5000" -- "$M" init-seg --model "$T/sd" --lora "$PEFT" --timestep 5000 --head none -O "$T/is3"
stderr_has "0..999" "the valid range named"
expect_exit 2 "init-seg --timestep -1" -- "$M" init-seg --model "$T/sd" --lora "$PEFT" --timestep -1 --head none -O "$T/is3"
expect_exit 2 "init-seg --timestep 1.5" -- "$M" init-seg --model "$T/sd" --lora "$PEFT" --timestep 1.5 --head none -O "$T/is3"
[ -e "$T/is3" ] && fail "no folder for a bad timestep"
expect_exit 0 "init-seg --timestep 999" -- "$M" init-seg --model "$T/sd" --lora "$PEFT" --timestep 999 --head none -O "$T/is4"
grep -q '"timestep": 999,' "$T/is4/rass.json" || fail "timestep written as an integer: $(grep timestep "$T/is4/rass.json")"
printf '{"num_train_timesteps": 0}\n' >"$T/sd/scheduler/scheduler_config.json"
expect_exit 3 "init-seg with a bad scheduler config" -- "$M" init-seg --model "$T/sd" --lora "$PEFT" --timestep 1 --head none -O "$T/is5"
stderr_has "scheduler_config.json" "the scheduler config named"
rm -r "$T/sd/scheduler"

# Non-finite LoRA values are refused, naming the file and the tensor.
python3 - "$PEFT" "$T/nan.safetensors" <<'PY' || fail "could not write the NaN LoRA"
import json, struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
name = sorted(k for k in hdr if k.endswith("lora_B.weight"))[0]
off = 8 + n + hdr[name]["data_offsets"][0]
raw[off:off + 4] = struct.pack("<f", float("nan"))
open(sys.argv[2], "wb").write(raw)
print(name, file=open(sys.argv[2] + ".name", "w"))
PY
expect_exit 3 "NaN in lora_B" -- "$M" merge --model "$T/sd" --lora "$T/nan.safetensors" -o "$T/nan_out.safetensors"
stderr_has "nan.safetensors" "the file named"
stderr_has "$(cat "$T/nan.safetensors.name")" "the tensor named"
stderr_has "non-finite" "what is wrong said"
[ -e "$T/nan_out.safetensors" ] && fail "no output from a NaN LoRA"

# Readable messages for bad integers; unknown component and absurd factors are usage errors.
expect_exit 2 "--threads -1" -- "$M" merge --model "$T/sd" --lora "$PEFT" -o "$T/o5.safetensors" --threads -1
stderr_has "--threads: expected a non-negative integer, got '-1'" "readable --threads message"
grep -q "1797693" "$T/.err" && fail "CLI11's raw range message"
expect_exit 2 "--rank abc" -- "$M" extract --base "$T/sd" --tuned "$T/merged" --rank abc -o "$T/o5.safetensors"
stderr_has "--rank: expected a positive integer, got 'abc'" "readable --rank message"
expect_exit 2 "expand-channels -1" -- "$M" expand-channels -1 --model "$T/sd/unet" -O "$T/x5"
stderr_has "expected a positive integer" "readable factor message"
expect_exit 2 "merge --component foo" -- "$M" merge --model "$T/sd" --component foo --lora "$PEFT" -o "$T/o5.safetensors"
expect_exit 2 "expand-channels 100000000" -- "$M" expand-channels 100000000 --model "$T/sd/unet" -O "$T/x6"
stderr_has "channels" "the bound explained"
[ -e "$T/x6" ] && fail "no folder for an absurd factor"
finish
