# rass-model sample on the tiny SD folder: the files it writes and their
# sizes, determinism by (seed, image index), the grid, stdout, and the exit
# codes of bad flags (2) and a missing or broken folder (3). The numbers
# themselves are checked against diffusers in tests/nn/test_sample.cpp.
. "$(dirname "$0")/lib.sh"
M=$B/rass-model
[ -x "$M" ] || { echo "skipped: rass-model not built (no LibTorch)"; exit 77; }
SD=$FIX/nn/sd_tiny

# png_size FILE: "WxH" from the IHDR chunk (bytes 16..23, big-endian).
png_size() {
  local v
  v=$(od -An -v -t u1 -j 16 -N 8 "$1" | tr -s ' \n' ' ')
  set -- $v
  echo "$(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 ))x$(( ($5 << 24) | ($6 << 16) | ($7 << 8) | $8 ))"
}

expect_exit 0 "three samples and a grid into a folder" -- \
  "$M" sample "$SD" --prompt "a red car on a road" -n 3 --steps 4 --seed 5 -O "$T/a" --grid 2 --threads 1 --quiet
for f in sample-0000.png sample-0001.png sample-0002.png grid.png; do [ -s "$T/a/$f" ] || fail "-O writes $f"; done
[ "$(png_size "$T/a/sample-0000.png")" = 64x64 ] || fail "default size is the UNet's sample_size 8 x 8 = 64: $(png_size "$T/a/sample-0000.png")"
[ "$(png_size "$T/a/grid.png")" = 128x128 ] || fail "grid of 3 in rows of 2 is 128x128: $(png_size "$T/a/grid.png")"
ls -a "$T/a" | grep -q '\.tmp' && fail "no temporary files left behind"

# Image i depends on (seed, i) only: the same with -n 2, with other thread counts.
expect_exit 0 "two samples, same seed" -- "$M" sample "$SD" --prompt "a red car on a road" -n 2 --steps 4 --seed 5 -O "$T/b" --threads 1 --quiet
cmp -s "$T/a/sample-0001.png" "$T/b/sample-0001.png" || fail "sample 1 is the same whatever -n"
# Another thread count splits float sums otherwise: equal within rounding
# (byte-equal on AMD EPYC; a pixel a level apart on Intel Xeon, LibTorch 2.11).
expect_exit 0 "two samples, two threads" -- "$M" sample "$SD" --prompt "a red car on a road" -n 2 --steps 4 --seed 5 -O "$T/b2" --threads 2 --quiet
close_pixels "$T/a/sample-0001.png" "$T/b2/sample-0001.png" || fail "sample 1 is the same within rounding whatever --threads"
cmp -s "$T/a/sample-0000.png" "$T/a/sample-0001.png" && fail "samples 0 and 1 differ"
expect_exit 0 "another seed" -- "$M" sample "$SD" --prompt "a red car on a road" --steps 4 --seed 6 -o "$T/c.png" --quiet
cmp -s "$T/a/sample-0000.png" "$T/c.png" && fail "seed 6 differs from seed 5"
expect_exit 0 "seed 5 again into -o" -- "$M" sample "$SD" --prompt "a red car on a road" --steps 4 --seed 5 -o "$T/d.png" --quiet
cmp -s "$T/a/sample-0000.png" "$T/d.png" || fail "-o writes the same image 0 as -O"

expect_exit 0 "non-square size, eta, negative prompt, no guidance" -- \
  "$M" sample "$SD" --prompt grass --negative-prompt "a wall" --width 48 --height 32 --eta 1 --guidance 1 --steps 3 -o "$T/e.png" --quiet
[ "$(png_size "$T/e.png")" = 48x32 ] || fail "--width 48 --height 32: $(png_size "$T/e.png")"
expect_exit 0 "stdout" -- "$M" sample "$SD" --prompt x --size 16 --steps 2 -o - --quiet
[ "$(head -c 4 "$T/.out" | od -An -t x1 | tr -d ' \n')" = 89504e47 ] || fail "-o - writes a PNG on stdout"
expect_exit 0 "--json record" -- "$M" sample "$SD" --prompt x --size 16 --steps 2 -o "$T/f.png" --json --quiet
grep -q '"timesteps"' "$T/.out" || fail "--json prints the timesteps"

expect_exit 2 "no output" -- "$M" sample "$SD" --prompt x
expect_exit 2 "both -o and -O" -- "$M" sample "$SD" --prompt x -o "$T/x.png" -O "$T/x"
expect_exit 2 "-n 2 into one file without --grid" -- "$M" sample "$SD" --prompt x -n 2 -o "$T/x.png"
stderr_has "--grid" "the message names --grid"
expect_exit 2 "--steps 0" -- "$M" sample "$SD" --prompt x --steps 0 -o "$T/x.png"
expect_exit 2 "--steps beyond the schedule" -- "$M" sample "$SD" --prompt x --steps 1001 -o "$T/x.png"
expect_exit 2 "size not a multiple of 8" -- "$M" sample "$SD" --prompt x --size 20 -o "$T/x.png"
expect_exit 2 "--width without --height" -- "$M" sample "$SD" --prompt x --width 16 -o "$T/x.png"
expect_exit 2 "--size with --width" -- "$M" sample "$SD" --prompt x --size 16 --width 16 --height 16 -o "$T/x.png"
expect_exit 2 "missing --prompt" -- "$M" sample "$SD" -o "$T/x.png"
expect_exit 2 "negative eta" -- "$M" sample "$SD" --prompt x --eta -1 -o "$T/x.png"
[ -e "$T/x.png" ] && fail "no output after a usage error"

expect_exit 3 "missing folder" -- "$M" sample "$T/nope" --prompt x -o "$T/x.png"
stderr_has "$T/nope" "the message names the folder"
mkdir -p "$T/broken" && cp -r "$SD"/. "$T/broken/"
echo '{"thresholding": true}' >"$T/broken/scheduler/scheduler_config.json"
expect_exit 3 "thresholding refused" -- "$M" sample "$T/broken" --prompt x -o "$T/x.png"
stderr_has "scheduler_config.json" "the message names the scheduler config"
rm "$T/broken/unet/diffusion_pytorch_model.safetensors"
cp "$SD/scheduler/scheduler_config.json" "$T/broken/scheduler/"
expect_exit 3 "missing UNet weights" -- "$M" sample "$T/broken" --prompt x -o "$T/x.png"
[ -e "$T/x.png" ] && fail "no output after bad input"
finish
