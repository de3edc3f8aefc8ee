# rass-eval-iqa NIQE against BasicSR's own values (tests/metrics/make_niqe_golden.py).
# Needs the pristine parameters, which this repository may not ship: skipped
# (exit 77) without them. RASS_NIQE_PARAMS points at them, else ../shared/data.
. "$(dirname "$0")/lib.sh"
E=$B/rass-eval-iqa
P=${RASS_NIQE_PARAMS:-$SRC/../shared/data/niqe_pris_params.npz}
[ -f "$P" ] || { echo "skipped: no NIQE parameters at $P"; exit 77; }

expect_exit 0 "niqe on two photos" -- "$E" -m niqe --niqe-params "$P" "$IMG/chelsea.png" "$IMG/coffee.png" --json
for pair in "chelsea 2.6255269347870063" "coffee 4.115241987619188"; do
  set -- $pair
  got=$(grep -A3 "\"name\": \"$1\"" "$T/.out" | grep '"niqe"' | sed 's/.*: //; s/,//')
  awk -v a="$got" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-3) }' \
    && ok "$1 niqe $got vs BasicSR $2" || fail "$1 niqe $got vs BasicSR $2"
done
# Flat image: NaN with a reason, exit 0, left out of the mean.
printf 'P5\n200 200\n255\n' >"$T/flat.pgm"
head -c 40000 /dev/zero | tr '\0' '\200' >>"$T/flat.pgm"
expect_exit 0 "flat image" -- "$E" -m niqe --niqe-params "$P" "$T/flat.pgm" "$IMG/chelsea.png" --json
grep -q '"niqe": null' "$T/.out" || fail "flat image should give NaN, written as null"
grep -q '"niqe": "NaN: ' "$T/.out" || fail "the reason for the null NIQE"
grep -q 'flat' "$T/.out" || fail "flat image should carry a reason"
grep -A2 '"mean"' "$T/.out" | grep -q '2.6255' || fail "the mean should leave the NaN out"
# Smaller than a block: bad input, named.
expect_exit 3 "small image" -- "$E" -m niqe --niqe-params "$P" "$FIX/images/gray64.png"
stderr_has "gray64.png" "small image named"
stderr_has "96x96" "small image message"
# A damaged parameter file (NaN, infinity, a zero window) is refused naming
# the array; a NaN had made every score NaN, blamed on flat regions (exit 0).
damage() {  # damage OUT ARRAY BYTES: ARRAY's first value replaced by BYTES (hex), or all zero
  python3 - "$P" "$@" <<'PY'
import sys, zipfile
src, out, name, value = sys.argv[1:5]
with zipfile.ZipFile(src) as z, zipfile.ZipFile(out, "w") as w:
    for i in z.infolist():
        data = z.read(i.filename)
        if i.filename == name + ".npy":
            start = 10 + int.from_bytes(data[8:10], "little")
            body = bytes(len(data) - start) if value == "zero" else bytes.fromhex(value) + data[start + 8:]
            data = data[:start] + body
        w.writestr(i.filename, data)
PY
}
damage "$T/nan.npz" mu_pris_param 000000000000f87f
expect_exit 3 "NaN in mu_pris_param" -- "$E" -m niqe --niqe-params "$T/nan.npz" "$IMG/chelsea.png"
stderr_has "nan.npz: mu_pris_param[0] is NaN" "the array and the value are named"
damage "$T/inf.npz" cov_pris_param 000000000000f07f
expect_exit 3 "infinity in cov_pris_param" -- "$E" -m niqe --niqe-params "$T/inf.npz" "$IMG/chelsea.png"
stderr_has "cov_pris_param[0] is infinite" "the infinite value is named"
damage "$T/zero.npz" gaussian_window zero
expect_exit 3 "an all-zero window" -- "$E" -m niqe --niqe-params "$T/zero.npz" "$IMG/chelsea.png"
stderr_has "gaussian_window is all zeros" "the zero window is named"
finish
