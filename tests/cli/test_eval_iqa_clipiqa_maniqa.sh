# rass-eval-iqa's CLIPIQA and MANIQA metrics: values equal to pyiqa's (and
# to the paper-pair score) on the tiny random fixtures of
# tests/nn/make_iqa_clipiqa_fixture.py / make_iqa_maniqa_fixture.py
# (expected values printed by those scripts), maniqa@official's keyed crops,
# missing weights and small images. A build without LibTorch refuses the names.
. "$(dirname "$0")/lib.sh"
E=$B/rass-eval-iqa
C=$FIX/nn/clipiqa
M=$FIX/nn/maniqa

"$E" -m clipiqa --weights "$C" "$C/img_b0.png" >"$T/.out" 2>"$T/.err"
if grep -q "network layer" "$T/.err"; then
  expect_exit 2 "no network layer: clipiqa refused" -- "$E" -m clipiqa --weights "$C" "$C/img_b0.png"
  stderr_has "built without LibTorch" "no-torch message"
  finish
fi

check() {  # check FILE NAME METRIC VALUE
  local got
  got=$(grep -A8 "\"name\": \"$2\"" "$1" | grep "\"$3\":" | head -1 | sed 's/.*: //; s/,//')
  awk -v a="$got" -v b="$4" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d < 1e-5) }' ||
    fail "$2 $3 = '$got', reference $4"
}

# CLIPIQA: two sizes in one run (75x83 twice, 224x160 once), batched.
mkdir -p "$T/c"
cp "$C/img_b0.png" "$C/img_b1.png" "$C/img_c0.png" "$T/c/"
expect_exit 0 "clipiqa and clipiqa@paper" -- "$E" -m clipiqa,clipiqa@paper --weights "$C" "$T/c" --json --batch 2
check "$T/.out" img_b0 clipiqa 0.20708441734313965
check "$T/.out" img_b1 clipiqa 0.2071295529603958
check "$T/.out" img_c0 clipiqa 0.21901412308216095
check "$T/.out" img_b0 clipiqa@paper 0.3762519955635071
check "$T/.out" img_b1 clipiqa@paper 0.37583306431770325
check "$T/.out" img_c0 clipiqa@paper 0.35125455260276794

# MANIQA (pyiqa's protocol): a larger image, one resized up, one exactly the crop height.
mkdir -p "$T/m"
cp "$M/img_a0.png" "$M/img_a1.png" "$M/img_b0.png" "$M/img_c0.png" "$T/m/"
expect_exit 0 "maniqa" -- "$E" -m maniqa --weights "$M" "$T/m" --json
check "$T/.out" img_a0 maniqa 0.2984982132911682
check "$T/.out" img_a1 maniqa 0.29756098985671997
check "$T/.out" img_b0 maniqa 0.29717352986335754
check "$T/.out" img_c0 maniqa 0.296678364276886

# maniqa@official: random crops keyed by (item, --seed): repeatable, seed-dependent.
expect_exit 0 "maniqa@official seed 0" -- "$E" -m maniqa@official --weights "$M" "$M/img_a0.png" --csv "$T/s0.csv" --no-table
expect_exit 0 "maniqa@official seed 0 again" -- "$E" -m maniqa@official --weights "$M" "$M/img_a0.png" --csv "$T/s0b.csv" --no-table
expect_exit 0 "maniqa@official seed 1" -- "$E" -m maniqa@official --seed 1 --weights "$M" "$M/img_a0.png" --csv "$T/s1.csv" --no-table
cmp -s "$T/s0.csv" "$T/s0b.csv" || fail "maniqa@official should repeat with the same seed"
cmp -s "$T/s0.csv" "$T/s1.csv" && fail "maniqa@official should draw other crops with another seed"
expect_exit 3 "maniqa@official refuses an image smaller than its crops" -- \
  "$E" -m maniqa@official --weights "$M" "$M/img_b0.png"
stderr_has "too small for maniqa@official" "small image message"

# Missing files are named with their converter.
mkdir -p "$T/w"
expect_exit 3 "clipiqa without its file" -- "$E" -m clipiqa --weights "$T/w" "$C/img_b0.png"
stderr_has "clipiqa_rn50.safetensors: missing" "missing clipiqa file named"
stderr_has "convert_iqa_clipiqa.py" "clipiqa converter named"
expect_exit 3 "maniqa-pipal without its file" -- "$E" -m maniqa-pipal --weights "$M" "$M/img_a0.png"
stderr_has "maniqa_pipal.safetensors: missing" "missing maniqa file named"
stderr_has "convert_iqa_maniqa.py" "maniqa converter named"
finish
