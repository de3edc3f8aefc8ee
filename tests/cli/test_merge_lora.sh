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
expect_exit 3 "extract from identical weights" -- "$M" extract --base "$T/sd" --tuned "$T/sd" -o "$T/y.safetensors"
stderr_has "no difference" "identical checkpoints"

# init-seg and expand-channels.
expect_exit 0 "init-seg" -- "$M" init-seg --model "$T/sd" --lora "$PEFT" --rank 2 --seed 3 --timestep 1 --formula ddpm -O "$T/ras"
grep -q '"method": "scr"' "$T/ras/rass.json" || fail "rass.json method"
grep -q '"trainable"' "$T/ras/rass.json" || fail "rass.json trainable"
expect_exit 0 "list the Seg LoRA" -- "$M" list "$T/ras/seg_lora.safetensors"
grep -q "adapter default_encoder_s2: 19 layers, rank 2, alpha 8.0" "$T/.out" || fail "Seg LoRA encoder adapter: $(cat "$T/.out")"
grep -q "adapter default_decoder_s2: 37 layers" "$T/.out" || fail "Seg LoRA decoder adapter"
grep -q "adapter default_others_s2: 16 layers" "$T/.out" || fail "Seg LoRA others adapter"
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
expect_exit 3 "failure after the first LoRA" -- "$M" init-seg --model "$T/sd" --lora "$PEFT" --lora "$T/bad.safetensors" -O "$T/ras2"
[ -e "$T/ras2" ] && fail "no partial init-seg folder"
no_leftovers "failed init-seg"
if ! command -v nvidia-smi >/dev/null; then
  expect_exit 1 "cuda unavailable" -- "$M" merge --model "$T/sd" --lora "$PEFT" --device cuda -o "$T/o4.safetensors"
  [ -e "$T/o4.safetensors" ] && fail "no output when the device is missing"
fi
expect_exit 2 "no subcommand" -- "$M"
expect_exit 2 "bad --lora scale" -- "$M" merge --model "$T/sd" --lora "$PEFT:abc" -o "$T/o3.safetensors"
finish
