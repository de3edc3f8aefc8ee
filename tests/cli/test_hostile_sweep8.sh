# The hostile pass of 2026-12-05 (fifth session) over rass-model and the
# dispatcher, each case failing on the binaries before its fix:
# 1. a model folder's config.json or vocab.json linked to /dev/zero grew
#    until the machine's memory ran out (now: a NUL byte, refused at once);
# 2. run -c text-encoder took --lora and ran without it (exit 0); inputs a
#    component does not read are refused; a NaN input gave NaN, exit 0;
# 3. UNet config keys that change the network (conv_in_kernel,
#    time_embedding_type, num_class_embeds, mid_block_type null, another
#    _class_name) were ignored: a model the weights did not fit ran;
# 4. info reported an empty component folder as one (exit 0);
# 5. init over a symbolic link to an empty folder replaced the link; init
#    under a file (afile/sub) was exit 1, not the usage error it is;
# 6. a file or folder option given "" was read as not given;
# 7. rass --help / --version to a full disk exited 0; bare `rass` printed
#    its usage on stdout.
. "$(dirname "$0")/lib.sh"
[ -x "$B/rass-model" ] || { echo "skipped: rass-model not built (no LibTorch)"; exit 77; }
M=$B/rass-model
expect_exit 0 "init a tiny folder" -- "$M" init "$T/m" --preset tiny -q

# 1. /dev/zero where JSON or a vocabulary belongs.
cp -r "$T/m" "$T/dz"
ln -sf /dev/zero "$T/dz/tokenizer/vocab.json"
expect_exit 3 "vocab.json -> /dev/zero" -- timeout 60 "$M" run "$T/dz" -c tokenize --prompt x -o "$T/x.npy"
stderr_has "vocab.json: is not a regular file but a device" "the vocabulary is named"
cp -r "$T/m" "$T/dz2"
ln -sf /dev/zero "$T/dz2/unet/config.json"
expect_exit 3 "unet/config.json -> /dev/zero" -- timeout 60 "$M" info "$T/dz2"
stderr_has "unet/config.json: is not a regular file but a device" "the config is named"
expect_exit 3 "init --unet-config /dev/zero" -- timeout 60 "$M" init "$T/never" --unet-config /dev/zero -q
[ -e "$T/never" ] && fail "no folder after the refusal"

# 2. Inputs a component does not read.
expect_exit 2 "text-encoder --lora" -- "$M" run "$T/m" -c text-encoder --prompt cat --lora "$T/none.safetensors" -o "$T/x.npy"
stderr_has "--lora is not read by --component text-encoder" "the unread flag is named"
expect_exit 2 "vae-decode --timestep" -- "$M" run "$T/m" -c vae-decode --sample "$T/x.npy" --timestep 5 -o "$T/y.npy"
stderr_has "--timestep is the UNet's input" "the unread timestep is named"
expect_exit 2 "tokenize --sample" -- "$M" run "$T/m" -c tokenize --prompt cat --sample "$T/x.npy" -o "$T/y.npy"
[ -e "$T/y.npy" ] && fail "no output after the refusal"

# 3. UNet config keys that change the network ('info' only reports them).
expect_exit 0 "a context" -- "$M" run "$T/m" -c text-encoder --prompt "a cat" -o "$T/ctx.npy"
python3 - "$T/z.npy" <<'PY'
import struct, sys
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 8, 8), }"
header += " " * (63 - (10 + len(header)) % 64) + "\n"
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(4 * 256))
PY
expect_exit 0 "the unedited UNet runs" -- "$M" run "$T/m" -c unet --sample "$T/z.npy" --context "$T/ctx.npy" -o "$T/eps.npy"
for edit in '"conv_in_kernel": 2' '"time_embedding_type": "fourier"' '"num_class_embeds": 10' '"mid_block_type": null' \
  '"_class_name": "UNet3DConditionModel"'; do
  rm -rf "$T/k" && cp -r "$T/m" "$T/k"
  key=${edit%%:*}
  grep -v "$key" "$T/m/unet/config.json" | sed "s/^{/{ $edit,/" >"$T/k/unet/config.json"
  expect_exit 3 "unet config $edit" -- "$M" run "$T/k" -c unet --sample "$T/z.npy" --context "$T/ctx.npy" -o "$T/k.npy"
  expect_exit 3 "init --unet-config with $edit" -- "$M" init "$T/k2" --unet-config "$T/k/unet/config.json" -q
  stderr_has "${key//\"/}" "the key is named"
done
[ -e "$T/k2" ] && fail "no folder after the refusals"

# A NaN in an input: refused naming the file (a NaN output, exit 0).
python3 - "$T/z.npy" "$T/nan.npy" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[-4:] = bytes.fromhex("0000c07f")  # the last value NaN
open(sys.argv[2], "wb").write(bytes(data))
PY
expect_exit 3 "a NaN in --sample" -- "$M" run "$T/m" -c unet --sample "$T/nan.npy" --context "$T/ctx.npy" -o "$T/n.npy"
stderr_has "nan.npy: holds NaN or infinite values" "the input is named"

# 4. An empty component folder.
mkdir -p "$T/e1/unet"
expect_exit 3 "info on an empty component" -- "$M" info "$T/e1"
stderr_has "e1/unet: holds none of config.json" "the empty component is named"

# 5. init over a link, under a file.
mkdir "$T/target"
ln -s "$T/target" "$T/link"
expect_exit 2 "init over a link to an empty folder" -- "$M" init "$T/link" -q
stderr_has "is a symbolic link" "the link is refused"
[ -L "$T/link" ] || fail "the link is left as it was"
touch "$T/afile"
expect_exit 2 "init under a file" -- "$M" init "$T/afile/sub" -q
stderr_has "afile is not a folder" "the file in the way is named"
mkdir "$T/emptyd"
expect_exit 0 "init into an empty folder" -- "$M" init "$T/emptyd" -q
[ -f "$T/emptyd/unet/config.json" ] || fail "an empty folder is taken over"

# 6. A file or folder option given "" (an unset variable) was read as not
# given: the record or manifest silently not written.
if [ -x "$B/rass-degrade" ]; then
  expect_exit 2 'degrade --record ""' -- "$B/rass-degrade" "$IMG/chelsea.png" -o "$T/d.png" --record "" -q
  stderr_has "--record: expected a path, got an empty value" "the option is named"
  [ -e "$T/d.png" ] && fail "nothing written after the refusal"
  expect_exit 2 'degrade --manifest-out ""' -- "$B/rass-degrade" "$IMG" -o "$T/dd" --manifest-out "" -q
fi

# 8. (a flag-efficacy sweep) options accepted and not honoured: a beta
# range without 1 (BasicSR draws from [LO,1] or [1,HI]); usm in --stages;
# batch mode's --manifest-out and --resume with one image; --match-stem and
# the suffixes with two files.
if [ -x "$B/rass-degrade" ]; then
  D=$B/rass-degrade
  expect_exit 2 "--betag-range 2,3" -- "$D" "$IMG/chelsea.png" -o "$T/b.png" --betag-range 2,3 -q
  stderr_has "--betag-range must contain 1" "the range is refused"
  expect_exit 2 "--betap-range2 1.5,2" -- "$D" "$IMG/chelsea.png" -o "$T/b.png" --betap-range2 1.5,2 -q
  expect_exit 2 "--stages usm" -- "$D" "$IMG/chelsea.png" -o "$T/b.png" --usm --stages=usm,blur1 -q
  stderr_has "--usm alone switches it" "usm is not a stage"
  expect_exit 0 "--usm --stages=blur1 keeps the sharpening" -- "$D" "$IMG/chelsea.png" -o "$T/u.png" --usm --stages=blur1 -s 3 --json -q
  grep -q '"op": *"usm"' "$T/.out" || fail "--usm with a keep list: no usm op in the record (it was switched off)"
  expect_exit 2 "one image --manifest-out" -- "$D" "$IMG/chelsea.png" -o "$T/s.png" --manifest-out "$T/m.jsonl" -q
  expect_exit 2 "one image --resume" -- "$D" "$IMG/chelsea.png" -o "$T/s.png" --resume -q
  expect_exit 2 "one image --shard" -- "$D" "$IMG/chelsea.png" -o "$T/s.png" --shard 1/2 -q
  expect_exit 0 "one image in a SLURM array task" -- env SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 \
    "$D" "$IMG/chelsea.png" -o "$T/slurm.png" -q
  rm -f "$T/slurm.png"
  [ -e "$T/s.png" ] && fail "nothing written after the refusals"
fi
if [ -x "$B/rass-eval-miou" ]; then
  printf 'P5\n4 4\n255\n' >"$T/l.pgm" && head -c 16 /dev/zero >>"$T/l.pgm"
  expect_exit 2 "eval-miou --pred-suffix with two files" -- "$B/rass-eval-miou" -n 2 "$T/l.pgm" "$T/l.pgm" --pred-suffix _x.png -q
  expect_exit 2 "eval-miou --match-stem with two files" -- "$B/rass-eval-miou" -n 2 "$T/l.pgm" "$T/l.pgm" --match-stem -q
  expect_exit 0 "eval-iqa --seed --batch with classical metrics" -- "$B/rass-eval-iqa" -m psnr --seed 5 --batch 4 \
    "$T/l.pgm" "$T/l.pgm"
  stderr_has "warning: --batch, --seed: options of the deep metrics, and -m psnr asks for none" "the unused flags are named"
  expect_exit 2 "eval-iqa --match-stem with two files" -- "$B/rass-eval-iqa" -m psnr "$T/l.pgm" "$T/l.pgm" --match-stem -q
fi

# 7. The dispatcher.
if [ -x "$B/rass" ] && [ -w /dev/full ]; then
  expect_exit 1 "rass --help to a full disk" -- sh -c "'$B/rass' --help >/dev/full"
  expect_exit 1 "rass --version to a full disk" -- sh -c "'$B/rass' --version >/dev/full"
  expect_exit 2 "bare rass" -- "$B/rass"
  [ -s "$T/.out" ] && fail "bare rass: its usage goes to stderr"
  stderr_has "usage: rass <tool>" "bare rass: the usage on stderr"
fi
finish
