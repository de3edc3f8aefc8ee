# The checks of 2026-12-07 (twentieth session), each failing on the binaries
# before its fix:
# 1. An out-of-memory error of one input (-o FILE) did not name the input (a
#    batch item's did).
# 2. --device cpu:1 was taken by LibTorch 1.13 (there is one CPU device).
# 3. rass-degrade -o x.pgm wrote a colour (P6) image under a gray name.
# 4. rass-model: an empty positional path ran the embedded model (sample)
#    or looked in / (run); convert --split left the first component's
#    weights after a failure on the next, and the rerun was refused.
# 5. A tensor in two shards loaded from the last; an index naming another
#    shard than the one holding a tensor was not seen.
# 6. A config the user names as a pipe (--unet-config <(...), merge-lora
#    --config <(...)) was refused as "not a regular file".
# 7. A config of huge sizes failed as raw LibTorch text or as the image's
#    out of memory; float flags past float32 failed deep in the work.
# 8. merge-lora list took a rank-0 LoRA that merge refuses; a 0-d lora_A
#    was "only one of lora_A / lora_B".
# 9. Batch keys: "./c" and "c" (or "x//y" and "x/y") wrote one file, exit 0
#    (the later is now a duplicate);
#    a key's folder that is another item's output file, or the run's
#    manifest, failed after the work (exit 1); a FIFO in an input folder
#    was left out without a word.
# 10. rass-degrade: weights summing past the double range drew a zero-weight
#    choice; --variants 1000000 grew gigabytes before the first file.
# 11. rass-scenes: an output folder that cannot be made was exit 1; --resume
#    kept an edited tags file and copied it into tags.tsv.
# 12. rass: a tool found but not runnable was "not a rass tool".
# 13. Empty values of names and lists (--key '', --stages '', -m psnr,) ran
#    the default; stderr on an input (2>> in.png) wrote into it.
# 14. rass-train: --resume-from into another run's folder cut its log and
#    mixed the checkpoints (exit 0); loop.lr 1e39 by --set failed at the
#    first step naming nothing; a negative warmup_factor or poly_power ran;
#    a FIFO as the run's log or id file hung it; -o /dev/stdout trained into
#    ./-; an export name past 255 bytes failed after the last step; pruning
#    after a resume past a damaged checkpoint removed the good one;
#    --set loop.threads=01 was refused; loop.device was named --device.
. "$(dirname "$0")/lib.sh"
N=$FIX/nn

# 1. A 2000x2000 image under a 1.5 GB address-space limit: the model's
# allocation fails, and the message names the image.
if [ -x "$B/rass-restore" ]; then
  python3 -c "import sys; sys.stdout.buffer.write(b'P6\\n2000 2000\\n255\\n' + bytes(range(256)) * 46875)" >"$T/big.ppm"
  # A LibTorch build that cannot even start under the limit (CUDA's
  # libraries map more) has nothing to show here.
  if (ulimit -v 1500000 && "$B/rass-restore" --help >/dev/null 2>&1); then
    expect_exit 1 "restore: out of memory on one image" -- \
      bash -c "ulimit -v 1500000; exec '$B/rass-restore' -m '$N/sd_tiny' --threads 1 --vae-mode '$T/big.ppm' -o '$T/big.png'"
    stderr_has "big.ppm: out of memory" "the message names the input"
    [ -e "$T/big.png" ] && fail "restore: an output after the failure"
  else
    echo "skipped: rass-restore does not start under a 1.5 GB address-space limit"
  fi
fi

# 2. The CPU has no index but 0.
if [ -x "$B/rass-restore" ]; then
  expect_exit 2 "--device cpu:1" -- "$B/rass-restore" -m "$N/sd_tiny" --device cpu:1 "$N/restore_lq.png" -o "$T/d.png"
  stderr_has "--device cpu:1: the CPU is one device" "the message says why"
  expect_exit 0 "--device cpu:0" -- "$B/rass-restore" -m "$N/sd_tiny" --device cpu:0 --process-size 16 --vae-mode \
    --threads 1 "$N/restore_lq.png" -o "$T/d.png"
fi

# 3. A .pgm name for a colour LQ image; a gray one still writes it.
if [ -x "$B/rass-degrade" ]; then
  expect_exit 2 "degrade: colour to .pgm" -- "$B/rass-degrade" "$FIX/images/rgb16.png" --accept-16bit --seed 1 -o "$T/c.pgm"
  stderr_has "a .pgm holds a gray image" "the message says why"
  [ -e "$T/c.pgm" ] && fail "degrade: a .pgm was written"
  expect_exit 0 "degrade: gray to .pgm" -- "$B/rass-degrade" "$FIX/images/gray64.png" --seed 1 -o "$T/g.pgm"
  [ "$(head -c 2 "$T/g.pgm")" = P5 ] || fail "degrade: the gray output is not P5"
fi

# 4. Empty positional paths; convert --split all or nothing.
if [ -x "$B/rass-model" ]; then
  M=$B/rass-model
  expect_exit 2 "model sample ''" -- "$M" sample "" --prompt a --steps 2 -o "$T/e.png"
  stderr_has "path: expected a path, got an empty value" "the empty path is named"
  expect_exit 2 "model run ''" -- "$M" run "" -c text-encoder --prompt a -o "$T/e.npy"
  expect_exit 2 "model info ''" -- "$M" info ""
  expect_exit 3 "model info on an image" -- "$M" info "$N/restore_lq.png"
  stderr_has "is not a safetensors file but a PNG image" "the kind of file is said"
  expect_exit 0 "merge a folder" -- "$M" convert "$N/sd_tiny" --merge -o "$T/merged.safetensors" -q
  # A file-size limit that the UNet's file (written first) fits and the
  # VAE's does not stops the split after one file is in place, as a full
  # disk would (SIGXFSZ, 153; or EFBIG, exit 1, where the signal is ignored).
  expect_exit 0 "split" -- "$M" convert "$T/merged.safetensors" --split -o "$T/split0" -q
  unet_kb=$(( ($(stat -c %s "$T/split0/unet/diffusion_pytorch_model.safetensors") + 1023) / 1024 ))
  vae_kb=$(( $(stat -c %s "$T/split0/vae/diffusion_pytorch_model.safetensors") / 1024 ))
  if [ "$vae_kb" -gt "$unet_kb" ]; then
    expect_exit 0 "split past a file-size limit fails" -- bash -c "ulimit -f $unet_kb; '$M' convert '$T/merged.safetensors' \
      --split -o '$T/split' -q 2>/dev/null; rc=\$?; [ \$rc = 153 ] || [ \$rc = 1 ]"
    [ -n "$(find "$T/split" -type f 2>/dev/null)" ] && fail "split: files left after the failure: $(find "$T/split" -type f)"
    expect_exit 0 "split again" -- "$M" convert "$T/merged.safetensors" --split -o "$T/split" -q
    [ "$(find "$T/split" -type f | wc -l)" = 3 ] || fail "split: three weight files expected"
  else
    echo "skipped: the fixture's VAE file is not larger than its UNet's"
  fi
fi

# 5. Shards that disagree with each other or with their index.
if [ -x "$B/rass-restore" ]; then
  for how in "--dup conv_in.weight" "--misplace conv_in.weight"; do
    rm -rf "$T/sh" && cp -r "$N/sd_tiny" "$T/sh"
    python3 "$SRC/tests/cli/shard_weights.py" "$T/sh/unet" $how
    expect_exit 3 "shards: $how" -- "$B/rass-restore" -m "$T/sh" --process-size 16 --threads 1 "$N/restore_lq.png" -o "$T/sh.png"
  done
  stderr_has "weight_map places 'conv_in.weight' in" "the index and the shard are named"
  rm -rf "$T/sh" && cp -r "$N/sd_tiny" "$T/sh" && python3 "$SRC/tests/cli/shard_weights.py" "$T/sh/unet"
  expect_exit 0 "shards that agree" -- "$B/rass-restore" -m "$T/sh" --process-size 16 --threads 1 --vae-mode "$N/restore_lq.png" -o "$T/sh.png"
  expect_exit 0 "the same unsharded" -- "$B/rass-restore" -m "$N/sd_tiny" --process-size 16 --threads 1 --vae-mode "$N/restore_lq.png" -o "$T/whole.png"
  same_pixels "$T/sh.png" "$T/whole.png" || fail "sharded and whole weights give different images"
  rm -rf "$T/sh" && cp -r "$N/sd_tiny" "$T/sh" && python3 "$SRC/tests/cli/shard_weights.py" "$T/sh/unet" --dup conv_in.weight
  expect_exit 3 "shards: a duplicate named" -- "$B/rass-restore" -m "$T/sh" --process-size 16 "$N/restore_lq.png" -o "$T/sh.png"
  stderr_has "tensor 'conv_in.weight' is in two shards" "the duplicate is named"
fi

# 6. Configs through pipes.
if [ -x "$B/rass-model" ]; then
  expect_exit 0 "init with configs from pipes" -- bash -c "'$B/rass-model' init '$T/mi' --preset tiny -q \
    --unet-config <(cat '$N/sd_tiny/unet/config.json') --vae-config <(cat '$N/sd_tiny/vae/config.json') \
    --text-encoder-config <(cat '$N/sd_tiny/text_encoder/config.json')"
  cmp -s "$T/mi/unet/config.json" "$N/sd_tiny/unet/config.json" || fail "init: the piped UNet config is not copied verbatim"
  expect_exit 3 "init with a piped config that is no JSON" -- bash -c "'$B/rass-model' init '$T/mi2' --preset tiny -q --unet-config <(echo '{bad')"
  stderr_has "/dev/fd/" "the pipe is named"
  expect_exit 0 "merge-lora list --config from a pipe" -- bash -c "'$B/rass-merge-lora' list '$N/sd_tiny_lora.safetensors' \
    --model '$N/sd_tiny/unet/diffusion_pytorch_model.safetensors' --config <(cat '$N/sd_tiny/unet/config.json')"
  # merge resolves its base twice (its outputs guarded, then loaded): read once.
  expect_exit 0 "merge-lora merge --config from a pipe" -- bash -c "'$B/rass-merge-lora' merge \
    --model '$N/sd_tiny/unet/diffusion_pytorch_model.safetensors' --config <(cat '$N/sd_tiny/unet/config.json') \
    --lora '$N/sd_tiny_lora.safetensors' -o '$T/merged_unet.safetensors' -q"
fi

# 7. Huge configs and float flags past float32.
if [ -x "$B/rass-restore" ] && (ulimit -v 4000000 && "$B/rass-restore" --help >/dev/null 2>&1); then
  rm -rf "$T/big" && cp -r "$N/sd_tiny" "$T/big"
  python3 - "$T/big/unet/config.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["block_out_channels"] = [65536, 65536]
j["norm_num_groups"] = 32
json.dump(j, open(sys.argv[1], "w"))
PY
  expect_exit 1 "a UNet config of huge widths" -- \
    bash -c "ulimit -v 4000000; exec '$B/rass-restore' -m '$T/big' --process-size 16 --threads 1 '$N/restore_lq.png' -o '$T/big.png'"
  stderr_has "big/unet/config.json: the network it describes does not fit in memory" "the config is named"
fi
if [ -x "$B/rass-model" ]; then
  expect_exit 2 "--timestep 1e39" -- "$B/rass-model" run "$N/sd_tiny" -c unet --timestep 1e39 -o "$T/e.npy"
  stderr_has "past the float32 range" "the flag and the range are said"
  expect_exit 2 "init-seg --alpha 1e39" -- "$B/rass-merge-lora" init-seg --model "$N/sd_tiny" --no-scr --head tiny -O "$T/is" --alpha 1e39
  stderr_has "--alpha: out of range: '1e39' is past the float32 range" "the flag is named"
fi
if [ -x "$B/rass-segment" ]; then
  rm -rf "$T/ras" && cp -r "$N/ras_tiny" "$T/ras"
  python3 - "$T/ras/segment.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j.setdefault("input", {})["size_divisibility"] = 1000000
json.dump(j, open(sys.argv[1], "w"))
PY
  expect_exit 3 "segment.json size_divisibility 1000000" -- "$B/rass-segment" -m "$T/ras" "$N/ras_lq.png" -o "$T/s.png"
  stderr_has "size_divisibility must be at most 1024" "the bound is said"
fi

# 8. LoRA files merge refuses are refused by list too.
if [ -x "$B/rass-merge-lora" ]; then
  python3 - "$N/sd_tiny_lora.safetensors" "$T" <<'PY'
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
    data = f.read()
def write(path, edit):
    meta = h.get("__metadata__")
    tensors = {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items() if k != "__metadata__"}
    edit(tensors)
    hdr, blob = ({"__metadata__": meta} if meta else {}), b""
    for k, (dt, sh, raw) in tensors.items():
        hdr[k] = {"dtype": dt, "shape": sh, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    text = json.dumps(hdr).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + blob)
a = sorted(k for k in h if ".lora_A." in k)[0]
b = a.replace(".lora_A.", ".lora_B.")
def rank0(t):
    t[a] = ("F32", [0] + t[a][1][1:], b"")
    t[b] = ("F32", [t[b][1][0], 0] + t[b][1][2:], b"")
def zero_d(t):
    t[a] = ("F32", [], b"\0\0\0\0")
write(out + "/rank0.safetensors", rank0)
write(out + "/zerod.safetensors", zero_d)
PY
  expect_exit 3 "list a rank-0 LoRA" -- "$B/rass-merge-lora" list "$T/rank0.safetensors" --model "$N/sd_tiny"
  stderr_has "has rank 0" "the rank is said"
  expect_exit 3 "list a 0-d lora_A" -- "$B/rass-merge-lora" list "$T/zerod.safetensors"
  stderr_has "is a 0-d tensor" "list says 0-d"
  expect_exit 3 "restore with a 0-d lora_A" -- "$B/rass-restore" -m "$N/sd_tiny" --lora "$T/zerod.safetensors" --process-size 16 "$N/restore_lq.png" -o "$T/z.png"
  stderr_has "is a 0-d tensor" "restore says 0-d"
fi

# 9-11. Batch keys and folders (rass-degrade, rass-scenes).
if [ -x "$B/rass-degrade" ] && [ -x "$B/rass-scenes" ]; then
  D=$B/rass-degrade
  "$B/rass-scenes" -n 4 -o "$T/sc" -s 0 --size 64 -q
  mkdir -p "$T/mf" && cp "$T"/sc/images/*.png "$T/mf/"
  printf '{"hq":"scene_000000.png","key":"c"}\n{"hq":"scene_000001.png","key":"./c"}\n{"hq":"scene_000002.png","key":"x/y"}\n{"hq":"scene_000003.png","key":"x//y"}\n' >"$T/mf/m.jsonl"
  expect_exit 3 "keys ./c and x//y" -- "$D" --manifest "$T/mf/m.jsonl" -o "$T/mfo" -p blur --severity 1 -q
  stderr_has "has the same key './c' as" "./c is a duplicate of c"
  stderr_has "('x/y': the same file)" "x//y is a duplicate of x/y"
  [ -f "$T/mfo/c.png" ] && [ -f "$T/mfo/x/y.png" ] || fail "the plain keys' outputs are made"
  mkdir -p "$T/d1" "$T/d2/x.png" && cp "$T/sc/images/scene_000000.png" "$T/d1/x.png" && cp "$T/sc/images/scene_000001.png" "$T/d2/x.png/y.png"
  expect_exit 3 "a key's folder is another item's output" -- "$D" "$T/d1" "$T/d2" -o "$T/dd" -p blur --severity 1 -j 2 -q
  stderr_has "puts its outputs in a folder x.png, the name of an output file of" "the collision is named"
  [ -f "$T/dd/x.png" ] || fail "the first item is made"
  mkdir -p "$T/d3/manifest.jsonl" && cp "$T/sc/images/scene_000000.png" "$T/d3/manifest.jsonl/a.png" && cp "$T/sc/images/scene_000001.png" "$T/d3/b.png"
  expect_exit 3 "a key under the run's manifest name" -- "$D" "$T/d3" -o "$T/d3o" -p blur --severity 1 -q
  [ -f "$T/d3o/manifest.jsonl" ] || fail "the run's manifest is written"
  mkdir -p "$T/lp" && cp "$T/sc/images/scene_000000.png" "$T/lp/a.png" && mkfifo "$T/lp/f.png"
  expect_exit 3 "a FIFO in an input folder" -- timeout 60 "$D" "$T/lp" -o "$T/lpo" -p blur --severity 1 -q
  stderr_has "f.png: is not a regular file but a FIFO" "the FIFO is named"
  expect_exit 2 "weights summing to infinity" -- "$D" "$T/sc/images" -o "$T/rp" -p realesrgan-x4 --resize-prob 1e308,1e308,0 -q
  stderr_has "--resize-prob weights sum past the double range" "the flag is named"
  expect_exit 2 "--variants 1000000" -- "$D" "$T/sc/images" -o "$T/v" -p noise --severity 1 --variants 1000000 -q
  expect_exit 2 "scenes into a folder under a file" -- "$B/rass-scenes" -n 2 -o "$T/sc/images/scene_000000.png/x"
  # --resume: a tags file that does not say what its label map shows is made again.
  cp "$T/sc/tags/scene_000003.txt" "$T/tags3" && echo junk >"$T/sc/tags/scene_000003.txt"
  expect_exit 0 "scenes --resume after a tags file was edited" -- "$B/rass-scenes" -n 4 -o "$T/sc" -s 0 --size 64 -q --resume
  cmp -s "$T/sc/tags/scene_000003.txt" "$T/tags3" || fail "scenes: the edited tags file is kept"
  grep -q junk "$T/sc/tags.tsv" && fail "scenes: the edited tags went into tags.tsv"
fi

# 12. The front tool.
if [ -x "$B/rass" ]; then
  mkdir -p "$T/pbin" && printf '#!/nonexistent/interpreter\n' >"$T/pbin/rass-broken" && chmod +x "$T/pbin/rass-broken"
  printf '#!/bin/sh\n' >"$T/pbin/rass-noexec"
  expect_exit 126 "rass: a bad interpreter" -- env PATH="$T/pbin:$PATH" "$B/rass" broken
  stderr_has "rass-broken: cannot run it" "the file is named"
  expect_exit 126 "rass: not executable" -- env PATH="$T/pbin:$PATH" "$B/rass" noexec
  expect_exit 2 "rass: no such tool" -- env PATH="$T/pbin:$PATH" "$B/rass" nosuchtool
  expect_exit 2 "rass: a name with a slash" -- "$B/rass" ../x
  expect_exit 2 "rass --version extra" -- "$B/rass" --version extra
fi

# 13. Empty names and lists; stderr on an input.
if [ -x "$B/rass-degrade" ] && [ -x "$B/rass-eval-iqa" ]; then
  I=$T/sc/images/scene_000000.png
  expect_exit 2 "--key ''" -- "$B/rass-degrade" "$I" -o "$T/k.png" --key ""
  expect_exit 2 "--stages ''" -- "$B/rass-degrade" "$I" -o "$T/k.png" --stages ""
  expect_exit 2 "-m psnr," -- "$B/rass-eval-iqa" -m psnr, "$I" "$I"
  stderr_has "an empty item in the list" "the stray comma is said"
  expect_exit 2 "-m psnr,,ssim" -- "$B/rass-eval-iqa" -m psnr,,ssim "$I" "$I"
  expect_exit 2 "--device ''" -- "$B/rass-eval-iqa" --device "" -m psnr "$I" "$I"
  cp "$I" "$T/in.png" && before=$(cksum <"$T/in.png")
  expect_exit 2 "stderr appending to the input" -- bash -c "'$B/rass-degrade' '$T/in.png' -o '$T/o.png' -p blur --severity 1 2>>'$T/in.png'"
  [ "$(cksum <"$T/in.png")" = "$before" ] || fail "the input changed"
  expect_exit 2 "stdout and stderr appending to the input" -- \
    bash -c "'$B/rass-degrade' '$T/in.png' -o '$T/o.png' -p blur --severity 1 >>'$T/in.png' 2>&1"
  [ "$(cksum <"$T/in.png")" = "$before" ] || fail "the input changed (>> in 2>&1)"
fi

# 14. rass-train.
if [ -x "$B/rass-train" ]; then
  R=$B/rass-train
  expect_exit 0 "train run A" -- "$R" selftest --steps 8 -o "$T/runA" --lr 0.01 -q --threads 1
  expect_exit 0 "train run B" -- "$R" selftest --steps 3 -o "$T/runB" --lr 0.2 -q --threads 1
  expect_exit 2 "--resume-from B into A's folder" -- "$R" selftest --steps 5 -o "$T/runA" --lr 0.2 -q --threads 1 \
    --resume-from "$T/runB/checkpoints/step_3.safetensors"
  [ "$(wc -l <"$T/runA/log.jsonl")" = 8 ] || fail "run A's log was cut"
  expect_exit 2 "--resume-from B into A's folder with loop.resume set" -- "$R" selftest --steps 5 -o "$T/runA" --lr 0.2 -q \
    --threads 1 --set loop.resume=true --resume-from "$T/runB/checkpoints/step_3.safetensors"
  [ "$(wc -l <"$T/runA/log.jsonl")" = 8 ] || fail "run A's log was cut (loop.resume set)"
  expect_exit 0 "--resume-from A's own checkpoint" -- "$R" selftest --steps 8 -o "$T/runA" --lr 0.01 -q --threads 1 \
    --resume-from "$T/runA/checkpoints/step_8.safetensors"
  expect_exit 2 "--set loop.lr=1e39" -- "$R" selftest --steps 3 --set loop.lr=1e39 -o "$T/r1" -q
  stderr_has "'loop.lr' = 1e+39 is past the float32 range" "the setting is named"
  [ -e "$T/r1" ] && fail "a run folder was left"
  expect_exit 2 "warmup_factor -1" -- "$R" selftest --steps 4 -o "$T/r2" --set loop.warmup_steps=3 --set loop.warmup_factor=-1 -q
  expect_exit 2 "poly_power -1" -- "$R" selftest --steps 3 -o "$T/r3" --set loop.schedule=poly --set loop.poly_power=-1 -q
  mkdir -p "$T/f1" "$T/f2" && mkfifo "$T/f1/log.jsonl" "$T/f2/.rass-run-id"
  expect_exit 3 "a FIFO as the run's log" -- timeout 60 "$R" selftest --steps 2 -o "$T/f1" -q
  expect_exit 3 "a FIFO as the run's id file" -- timeout 60 "$R" selftest --steps 2 -o "$T/f2" -q
  expect_exit 2 "-o /dev/stdout" -- bash -c "cd '$T' && '$R' selftest --steps 2 -o /dev/stdout -q"
  [ -e "$T/-" ] && fail "a run folder named - was made"
  expect_exit 2 "an export name of 300 bytes" -- "$R" selftest --steps 2 -o "$T/r4" -q \
    --set "loop.export_dir=$T/$(printf 'a%.0s' $(seq 300))"
  expect_exit 0 "train with checkpoints" -- "$R" selftest --steps 6 --checkpoint-every 3 -o "$T/d1" -q
  truncate -s 100 "$T/d1/checkpoints/step_6.safetensors"
  expect_exit 0 "resume past a damaged checkpoint" -- "$R" selftest --steps 8 -o "$T/d1" --resume -q
  [ -f "$T/d1/checkpoints/step_3.safetensors" ] || fail "the good checkpoint resumed from was pruned"
  [ -f "$T/d1/checkpoints/step_6.safetensors.damaged" ] || fail "the damaged checkpoint is not set aside"
  expect_exit 0 "--set loop.threads=01" -- "$R" selftest --steps 2 -o "$T/r5" --set loop.threads=01 -q
  expect_exit 2 "--set loop.device=CPU" -- "$R" selftest --steps 2 -o "$T/r6" --set loop.device=CPU -q
  stderr_has "loop.device CPU" "the setting is named, not a flag never given"
fi

finish
