# rass-caption-map's HDF5 file read back by h5dump (hdf5-tools; skipped without
# it) and by h5py where present: the hand-made 4x2 label map of
# test_caption_map.sh, masks and token positions as worked out there.
. "$(dirname "$0")/lib.sh"
command -v h5dump >/dev/null || { echo "skip: h5dump not installed (hdf5-tools)"; exit 77; }
C=$B/rass-caption-map
printf 'wall\nbuilding, edifice\nsky\nlake\n' > "$T/classes.txt"
printf 'P5\n4 2\n255\n\000\000\001\377\002\001\001\377' > "$T/lm.pgm"
printf 'church\tbuilding\t0.8\nspire\tedifice\t0.45\npond\tlake\t0.7\n' > "$T/table.tsv"
expect_exit 0 "write" -- "$C" --classes "$T/classes.txt" --table "$T/table.tsv" "$T/lm.pgm" --tags - \
  --tokenizer "$FIX/text/tiny-clip" -o "$T/a.h5" <<<"church, spire, pond"
h5() { h5dump "$@" "$T/a.h5" 2>&1; }
# Values only: h5dump -y -w0 prints "(i,j,...): v, v, ..." rows; keep the numbers.
vals() { h5dump -y -w 0 -d "$1" "$T/a.h5" | sed -n '/DATA {/,/}/p' | grep -o '[-0-9.]\+\|"[^"]*"' | tr '\n' ' ' | sed 's/ $//'; }
h5 -a prompt | grep -qF '"building, wall, sky, church, spire, pond"' || fail "prompt attribute: $(h5 -a prompt)"
h5 -a format | grep -qF '"rass-caption-map"' || fail "format attribute"
h5 -H | grep -q 'DATASET "masks"' || fail "masks dataset"
h5 -H -d masks | grep -q 'DATASPACE  SIMPLE { ( 6, 2, 4 ) / ( 6, 2, 4 ) }' || fail "masks shape: $(h5 -H -d masks)"
[ "$(vals masks)" = "0 0 1 0 0 1 1 0 1 1 0 0 0 0 0 0 0 0 0 0 1 0 0 0 0 0 1 0 0 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0" ] \
  || fail "masks: $(vals masks)"
[ "$(vals class_index)" = "1 0 2 1 -1 3" ] || fail "class_index: $(vals class_index)"
[ "$(vals has_mask)" = "1 1 1 1 0 0" ] || fail "has_mask: $(vals has_mask)"
[ "$(vals terms)" = '"building" "wall" "sky" "church" "spire" "pond"' ] || fail "terms: $(vals terms)"
h5 -H -d token_mask | grep -q '( 6, 77 )' || fail "token_mask shape"
ok "h5dump reads the pack"
PY=$(command -v "${RASS_PYTHON:-python3}")  # any python with h5py and numpy
if [ -n "$PY" ] && "$PY" -c 'import h5py' 2>/dev/null; then
  "$PY" - "$T/a.h5" <<'PYEOF' || fail "h5py"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert f.attrs["prompt"] == "building, wall, sky, church, spire, pond", f.attrs["prompt"]
m = f["masks"][()]
assert m.shape == (6, 2, 4) and (m[3] == m[0]).all() and m[4:].sum() == 0
tm = f["token_mask"][()]
ids = f["token_ids"][()]
assert tm.shape == (6, 77) and ids.shape == (77,)
# every term's tokens are contiguous and the terms are in order
last = 0
for t in range(6):
    pos = np.nonzero(tm[t])[0]
    assert len(pos) == f["token_count"][t] and (np.diff(pos) == 1).all() and pos[0] > last, (t, pos)
    last = pos[-1]
print("ok: h5py reads the pack")
PYEOF
else
  echo "note: h5py not installed; h5dump only"
fi
finish
