# The deep-IQA weight converters on hostile input (issue 11's hostile pass):
# a missing, garbage or wrong-structure checkpoint is bad input (exit 3, the
# file named, no traceback); an existing output is refused without --force
# (exit 2, left as it was), and the input is never the output, even with
# --force. The valid MUSIQ checkpoint is the committed tiny fixture saved back
# as the .pth users have. Needs a Python with torch; skipped (77) without one.
. "$(dirname "$0")/lib.sh"
py=$(torch_python /tmp/loravenv/bin/python)
[ -n "$py" ] || { echo "skipped: no Python with torch for scripts/convert_iqa_*.py"; exit 77; }
S=$SRC/scripts

head -c 1000 /dev/zero | tr '\0' 'x' >"$T/garbage.pth"
PYTHONPATH="$SRC/tests/cli" "$py" - "$FIX/nn/musiq_tiny.safetensors" "$T" <<'PY'
import sys
import torch
from st_read import torch_tensors
src, out = sys.argv[1], sys.argv[2]
sd = torch_tensors(src)
torch.save({"params": sd}, f"{out}/musiq.pth")
torch.save({"a": torch.zeros(3)}, f"{out}/wrong.pth")
PY

M=$S/convert_iqa_musiq.py
expect_exit 3 "musiq: missing checkpoint" -- "$py" "$M" "$T/none.pth" "$T/o.safetensors"
stderr_has "$T/none.pth: no such file" "missing checkpoint named"
expect_exit 3 "musiq: garbage checkpoint" -- "$py" "$M" "$T/garbage.pth" "$T/o.safetensors"
stderr_has "$T/garbage.pth: not a readable torch checkpoint" "garbage named"
grep -q Traceback "$T/.err" && fail "musiq: a traceback instead of a message"
expect_exit 3 "musiq: a state dict of something else" -- "$py" "$M" "$T/wrong.pth" "$T/o.safetensors"
stderr_has "not a MUSIQ state dict" "wrong structure named"
[ -e "$T/o.safetensors" ] && fail "musiq: output written for bad input"
expect_exit 0 "musiq: converts" -- "$py" "$M" --num-heads 2 "$T/musiq.pth" "$T/o.safetensors"
sum=$(cksum <"$T/o.safetensors")
expect_exit 2 "musiq: existing output" -- "$py" "$M" --num-heads 2 "$T/musiq.pth" "$T/o.safetensors"
stderr_has "use --force" "existing output message"
expect_exit 0 "musiq: --force replaces" -- "$py" "$M" --num-heads 2 --force "$T/musiq.pth" "$T/o.safetensors"
[ "$(cksum <"$T/o.safetensors")" = "$sum" ] || fail "musiq: --force should write the same file"
in_sum=$(cksum <"$T/musiq.pth")
expect_exit 2 "musiq: output is the input" -- "$py" "$M" --force "$T/musiq.pth" "$T/musiq.pth"
[ "$(cksum <"$T/musiq.pth")" = "$in_sum" ] || fail "musiq: the input was overwritten"
ls "$T" | grep -q '\.tmp' && fail "musiq: a temporary file was left behind"

# A BPE file of the right shape (its content does not matter before the checkpoint is read).
{ echo "#version: 0.2"; yes "a b" | head -n 48894; } | gzip >"$T/bpe.gz"
expect_exit 3 "clipiqa: missing checkpoint" -- "$py" "$S/convert_iqa_clipiqa.py" "$T/none.pt" --output-dir "$T/c" --bpe "$T/bpe.gz"
stderr_has "$T/none.pt: no such file" "clipiqa: missing file named"
grep -q Traceback "$T/.err" && fail "clipiqa: a traceback instead of a message"
finish
