# rass-eval-iqa's deep metrics against damaged weight files and odd flags
# (issue 11's hostile pass). The weight files are the committed random
# fixtures with one thing broken (perl rewrites the safetensors header or one
# value): a NaN, an integer tensor, missing or bad metadata must be bad input
# naming the file (exit 3), never a crash or NaN scores with exit 0; out-of-range
# --seed/--threads are usage errors; -q keeps LibTorch's warnings off stderr.
. "$(dirname "$0")/lib.sh"
E=$B/rass-eval-iqa
Q=$FIX/iqa
C=$FIX/nn/clipiqa
M=$FIX/nn/maniqa

"$E" -m lpips --weights "$Q" "$Q/lpips_a0.png" "$Q/lpips_b0.png" >"$T/.out" 2>"$T/.err"
if grep -q "network layer" "$T/.err"; then echo "skipped: built without LibTorch"; exit 77; fi
command -v perl >/dev/null || { echo "skipped: no perl to damage the weight files"; exit 77; }

# edit IN OUT PERL: runs PERL with $h = the JSON header and $r = the data, writes the file back.
edit() {
  perl -e 'local $/; open(F, "<:raw", $ARGV[0]) or die; my $d = <F>; my $n = unpack("Q<", substr($d, 0, 8));
    our $h = substr($d, 8, $n); our $r = substr($d, 8 + $n); eval $ARGV[2]; die $@ if $@;
    $h =~ s/ +$//; $h .= " " x ((8 - length($h) % 8) % 8);
    open(O, ">:raw", $ARGV[1]) or die; print O pack("Q<", length $h) . $h . $r' "$1" "$2" "$3"
}
mkdir -p "$T/nan" "$T/int" "$T/clip" "$T/musiq"

# A NaN as the first value of the data area (whichever tensor is first).
edit "$Q/lpips_alex.safetensors" "$T/nan/lpips_alex.safetensors" 'substr($r, 0, 4) = pack("V", 0x7fc00000)'
expect_exit 3 "lpips: NaN in the weights" -- "$E" -m lpips --weights "$T/nan" "$Q/lpips_a0.png" "$Q/lpips_b0.png"
stderr_has "$T/nan/lpips_alex.safetensors: tensor '" "NaN weights: file and tensor named"
stderr_has "NaN or infinity" "NaN weights message"
edit "$M/maniqa_koniq.safetensors" "$T/nan/maniqa_koniq.safetensors" 'substr($r, 0, 4) = pack("V", 0x7f800000)'
expect_exit 3 "maniqa: infinity in the weights" -- "$E" -m maniqa --weights "$T/nan" "$M/img_a0.png"
stderr_has "$T/nan/maniqa_koniq.safetensors: tensor '" "inf weights: file named"

# An integer tensor (same bytes, the header says I32): refused, not cast.
edit "$Q/dists.safetensors" "$T/int/dists.safetensors" '$h =~ s/"F32"/"I32"/'
expect_exit 3 "dists: an I32 tensor" -- "$E" -m dists --weights "$T/int" "$Q/lpips_a0.png" "$Q/lpips_b0.png"
stderr_has "$T/int/dists.safetensors: tensor '" "I32 tensor named"
stderr_has "is I32" "I32 dtype named"

# CLIPIQA: the fixture's text width is under 64, so without text_heads the
# default head count is 0 (this crashed with SIGFPE); 3 vision heads do not
# divide the pool width. Both name the file.
cp -r "$C/clipiqa_rn50_tokenizer" "$T/clip/"
edit "$C/clipiqa_rn50.safetensors" "$T/clip/clipiqa_rn50.safetensors" '$h =~ s/"text_heads":"\d+",?//; $h =~ s/,}/}/'
expect_exit 3 "clipiqa: no text_heads metadata" -- "$E" -m clipiqa --weights "$T/clip" "$C/img_b0.png"
stderr_has "$T/clip/clipiqa_rn50.safetensors: metadata text_heads = 0" "text_heads named"
edit "$C/clipiqa_rn50.safetensors" "$T/clip/clipiqa_rn50.safetensors" '$h =~ s/"vision_heads":"\d+"/"vision_heads":"3"/'
expect_exit 3 "clipiqa: vision_heads not dividing the width" -- "$E" -m clipiqa --weights "$T/clip" "$C/img_b0.png"
stderr_has "$T/clip/clipiqa_rn50.safetensors: metadata vision_heads = 3" "vision_heads named"

# MUSIQ: num_heads "2x" was read as 2.
edit "$FIX/nn/musiq_tiny.safetensors" "$T/musiq/musiq_koniq.safetensors" '$h =~ s/"num_heads":"2"/"num_heads":"2x"/ or die "no num_heads"'
expect_exit 3 "musiq: num_heads '2x'" -- "$E" -m musiq --weights "$T/musiq" "$Q/musiq_2.png"
stderr_has "num_heads" "num_heads named"
edit "$FIX/nn/musiq_tiny.safetensors" "$T/musiq/musiq_koniq.safetensors" '1'
expect_exit 0 "musiq: the header rewrite alone changes nothing" -- "$E" -m musiq --weights "$T/musiq" "$Q/musiq_2.png"

# Flags: seeds outside 0..2^64-1 were saturated or wrapped (all the same
# crops); a huge --threads started that many threads and hung.
for s in -1 18446744073709551616 abc 1e3; do
  expect_exit 2 "--seed $s" -- "$E" -m maniqa@official --seed "$s" --weights "$M" "$M/img_a0.png"
  stderr_has "expected an integer 0..18446744073709551615" "--seed $s message"
done
expect_exit 0 "--seed 2^64-1" -- "$E" -m maniqa@official --seed 18446744073709551615 --weights "$M" "$M/img_a0.png"
expect_exit 2 "--threads 100000" -- timeout 60 "$E" -m lpips --threads 100000 --weights "$Q" "$Q/lpips_a0.png" "$Q/lpips_b0.png"

# -q: MANIQA's upscaling of a small image printed LibTorch's interpolate warning.
expect_exit 0 "maniqa -q on an image to upscale" -- "$E" -q -m maniqa --weights "$M" "$M/img_b0.png"
[ -s "$T/.err" ] && fail "-q: stderr should be empty: $(head -c 300 "$T/.err")"
finish
