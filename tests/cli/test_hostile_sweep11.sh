# The checks of 2026-12-07/08 (twenty-first session), each failing on the
# binaries before its fix:
# 1. rass-train with several processes: each process found its own
#    checkpoint, so processes whose -o folders differ (node-local disks)
#    resumed at different steps and the last one waited in a collective;
#    processes whose start state differed trained on.
# 2. rass-train: a process that failed before the rendezvous (rank 0's
#    output checks) left the others waiting loop.timeout_s.
# 3. rass-train: a step that failed in rank 1 (a damaged sample) ended
#    rank 0 with Gloo's "Connection reset by peer" (exit 1) and no
#    checkpoint of the steps done.
# 4. rass-scenes --resume kept an edited caption file and put its text in
#    the manifest.
# 5. A run of one input (-o FILE) wrote into a folder a batch run held
#    (both exit 0, the batch's --resume then took the file for its own).
# 6. A batch run that failed after making -O new/x/y left new/x.
# 7. rass-dreamclear took --cfg with --null-caption and --tile-overlap with
#    --tile 0 (neither changes anything); its record's caption was "null"
#    for --null-caption, as for a caption file named null.
# 8. -o FILE: a non-finite result did not name the input; -j 1000000 ran
#    the whole batch at once; rass-samsr named a --steps never given and
#    called kappa 1e300 not positive; its --sam took an HQ-SAM folder's HQ
#    token (masks other than SAM's).
# 9. stderr or stdout truncated onto a new file in a model folder
#    (2> model/run.log) was refused, silently (exit 2).
# 10. A FIFO as a tokenizer file the tool finds (T5's spiece.model, a
#    GleSAM folder's vocab.json) hung the run.
# 11. rass-sam: weights that overflow gave an empty mask with exit 0 and a
#    record of nulls.
# 12. Messages and names: samsr.json with "kappa" twice ran the last;
#    rass-t5 -o x.png wrote an .npz under an image's name; rass-sam -m of a
#    missing path said "no sam.json"; "embed_dim": 1e10 was "not a whole
#    number".
# 13. rass-eval-iqa wrote --csv over its weights folder's tokenizer (exit 0);
#    no-reference metrics given two folders scored the second folder too;
#    a network's NaN score (weights that overflow, MANIQA's scale 1e39)
#    was null with exit 0; MANIQA's bad vit_heads and CLIPIQA's text_act
#    were not named in their file. rass-caption-map read --table /dev/zero
#    (and WordNet's data.noun as /dev/zero or a FIFO) until the memory ran
#    out or forever; build-table of an empty vocabulary gave exit 0; a
#    table score " 0.8" was taken.
# 14. rass-train: scr whose run diverged ended with LibTorch's stack trace
#    and no checkpoint; unet read a tags file of /dev/zero until the memory
#    ran out and trained on a binary one; an empty ras.preset or
#    sam-decoder.preset trained on clean images; unet's default text folder
#    (images/../tags) took the run's outputs.
. "$(dirname "$0")/lib.sh"
R=$B/rass-train
N=$FIX/nn
DG=$B/rass-degrade
SR=$B/rass-samsr
LQ=$N/samsr_lq.png

# 5. A lock held as a batch holds it (flock(1) stands in for the batch).
mkdir -p "$T/lk/out/sub"
if command -v flock >/dev/null; then
  # until_released: what a holder runs (flock(1) waits for it, then unlocks).
  until_released=(sh -c 'while [ ! -e "$1" ]; do sleep 0.05; done' sh "$T/release")
  : >"$T/lk/out/.rass-lock"
  flock -x "$T/lk/out/.rass-lock" "${until_released[@]}" &
  holder=$!
  sleep 0.3
  expect_exit 2 "-o into a folder a batch holds" -- "$DG" "$LQ" -o "$T/lk/out/sub/x.png" -p blur --severity 1 -q
  stderr_has "a batch run is writing the folder" "the refusal says why"
  [ -e "$T/lk/out/sub/x.png" ] && fail "the refused run wrote its output"
  expect_exit 2 "rass-samsr -o into a folder a batch holds" -- "$SR" -m "$N/samsr_tiny" --noise gaussian "$LQ" -o "$T/lk/out/y.png" -q
  touch "$T/release"; wait $holder; rm "$T/release"
  # A shard's lock: the whole-set lock is shared then.
  : >"$T/lk/out/.rass-lock.0-of-2" && : >"$T/lk/out/.rass-lock.counts"  # as shards leave them
  flock -s "$T/lk/out/.rass-lock" flock -x "$T/lk/out/.rass-lock.0-of-2" "${until_released[@]}" &
  holder=$!
  sleep 0.3
  expect_exit 2 "-o into a folder a shard holds" -- "$DG" "$LQ" -o "$T/lk/out/x.png" -p blur --severity 1 -q
  touch "$T/release"; wait $holder; rm "$T/release"
  expect_exit 0 "-o into a folder whose batch has ended" -- "$DG" "$LQ" -o "$T/lk/out/x.png" -p blur --severity 1 -q
  # While a run of one input writes, a batch on the folder is refused (the
  # folder has held a batch: its lock file is there to take).
  # (its input comes late through a pipe: the run holds the folder meanwhile)
  mkdir -p "$T/lk/in" && cp "$LQ" "$T/lk/in/"
  (sleep 2; cat "$LQ") | "$DG" - -o "$T/lk/out/z.png" -p blur --severity 1 -q &
  one=$!
  sleep 0.7
  expect_exit 2 "a batch beside a run of one input" -- "$DG" "$T/lk/in" -o "$T/lk/out/" -p blur --severity 1 -q
  stderr_has "another run is writing this output folder" "the refusal says why"
  wait $one || fail "the run of one input failed"
  [ -s "$T/lk/out/z.png" ] || fail "the run of one input wrote nothing"
fi

# 6. A batch whose model fails to load after its -O folders were made.
mkdir -p "$T/badm" "$T/one" && echo '{"architecture": "resshift"}' >"$T/badm/samsr.json" && cp "$LQ" "$T/one/a.png"
(cd "$T" && "$SR" -m badm one -O nfa/x/y -q 2>/dev/null)
[ -e "$T/nfa" ] && fail "a failed batch left $(find "$T/nfa" | tr '\n' ' ')"
(cd "$T" && "$SR" -m badm one -O nfb/x/y/ -q 2>/dev/null)
[ -e "$T/nfb" ] && fail "a failed batch (-O with a slash) left $(find "$T/nfb" | tr '\n' ' ')"
# An input named by the user and emptied by the shell's > is still refused
# (read empty, it ran with exit 0).
echo "a cat on a mat" >"$T/cap.txt"
expect_exit 2 "--json > the caption it reads" -- bash -c \
  "'$B/rass-t5' -m '$N/t5_tiny' --tokenizer '$FIX/text/t5_tiny_spiece.model' '$T/cap.txt' -o '$T/cap.npz' --json >'$T/cap.txt'"

# 7. rass-dreamclear's flags that change nothing.
DC=$B/rass-dreamclear
expect_exit 2 "--cfg with --null-caption" -- "$DC" -m "$N/dreamclear_tiny" --null-caption --cfg 2 "$N/dreamclear_lq.png" -o "$T/dc.png"
stderr_has "would change nothing" "the refusal says why"
expect_exit 2 "--tile-overlap with --tile 0" -- "$DC" -m "$N/dreamclear_tiny" --null-caption --tile 0 --tile-overlap 8 "$N/dreamclear_lq.png" -o "$T/dc.png"
expect_exit 0 "dreamclear --null-caption --json" -- timeout 300 "$DC" -m "$N/dreamclear_tiny" --min-size 128 --steps 1 --null-caption "$N/dreamclear_lq.png" -o "$T/dc.png" --json -q
grep -qF '"caption":null' "$T/.out" || fail "the record's caption: $(head -c 300 "$T/.out")"

# 8. Names in messages; -j's bound; SAMSR's --sam with an HQ-SAM folder.
mkdir -p "$T/pm" && ln -s "$N/samsr_tiny/samsr.json" "$N/samsr_tiny/autoencoder.safetensors" "$T/pm/"
python3 "$SRC/tests/cli/poison_tensor.py" "$N/samsr_tiny/unet.safetensors" "$T/pm/unet.safetensors" input_blocks.0.0.weight 3e38
expect_exit 1 "-o FILE with weights that overflow" -- "$SR" -m "$T/pm" --noise gaussian "$LQ" -o "$T/pm.png"
grep -qF "rass-samsr: $LQ: the network's prediction holds non-finite" "$T/.err" || fail "the input is not named: $(head -c 300 "$T/.err")"
expect_exit 2 "-j 1000000" -- "$DG" "$N" -O "$T/j" -p blur --severity 1 -j 1000000 -q
mkdir -p "$T/rs" && ln -s "$N/samsr_tiny/unet.safetensors" "$N/samsr_tiny/autoencoder.safetensors" "$T/rs/" &&
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['method']='resshift'; d.setdefault('diffusion',{})['steps']=15; json.dump(d,open(sys.argv[2],'w'))" \
    "$N/samsr_tiny/samsr.json" "$T/rs/samsr.json"
expect_exit 2 "SAM noise with a resshift model's steps" -- "$SR" -m "$T/rs" --noise sam --sam "$N/samsr_tiny/sam" "$LQ" -o "$T/rs.png"
stderr_has "the model's 15 steps" "the message names the model's steps, not a flag never given"
mkdir -p "$T/kp" && ln -s "$N/samsr_tiny/unet.safetensors" "$N/samsr_tiny/autoencoder.safetensors" "$T/kp/" &&
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d.setdefault('diffusion',{})['kappa']=1e300; json.dump(d,open(sys.argv[2],'w'))" \
    "$N/samsr_tiny/samsr.json" "$T/kp/samsr.json"
expect_exit 3 "kappa 1e300" -- "$SR" -m "$T/kp" --noise gaussian "$LQ" -o "$T/kp.png"
stderr_has "diffusion.kappa must be in (0, 1000)" "the range is given"
# An HQ-SAM folder without its HQ parts is SAM: SAMSR's noise from either is one.
mkdir -p "$T/plain"
python3 - "$N/hq_sam_tiny" "$T/plain" <<'PY' || fail "could not strip the HQ-SAM folder"
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
cfg = json.load(open(src + "/sam.json")); cfg.pop("hq", None)
json.dump(cfg, open(dst + "/sam.json", "w"))
b = open(src + "/sam.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n]); meta = h.pop("__metadata__", None)
hq = ("mask_decoder.compress_vit_feat", "mask_decoder.embedding_maskfeature", "mask_decoder.embedding_encoder",
      "mask_decoder.hf_")
out, data = {}, b""
for k, v in h.items():
    if k.startswith(hq): continue
    t = b[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]]
    out[k] = dict(v, data_offsets=[len(data), len(data) + len(t)]); data += t
if meta is not None: out["__metadata__"] = meta
head = json.dumps(out).encode(); head += b" " * (-len(head) % 8)
open(dst + "/sam.safetensors", "wb").write(struct.pack("<Q", len(head)) + head + data)
PY
SM=$N/samsr_tiny
expect_exit 0 "SAMSR with an HQ-SAM folder" -- "$SR" -m "$SM" --sam "$N/hq_sam_tiny" "$LQ" -o "$T/hq.png" -q
expect_exit 0 "SAMSR with the same SAM without HQ parts" -- "$SR" -m "$SM" --sam "$T/plain" "$LQ" -o "$T/plain.png" -q
same_pixels "$T/hq.png" "$T/plain.png" && ok "an HQ-SAM folder gives SAM's noise" || fail "an HQ-SAM folder's noise is not SAM's"

# 9. A log beside the model's files.
cp -r "$N/t5_tiny" "$T/t5m"
expect_exit 0 "stderr truncated onto a new file in the model folder" -- bash -c \
  "'$B/rass-t5' -m '$T/t5m' --tokenizer '$FIX/text/t5_tiny_spiece.model' --text 'a cat' -o '$T/t5.npz' 2>'$T/t5m/run.log'"
[ -s "$T/t5.npz" ] || fail "no features written"
expect_exit 2 "stderr appended to a model file" -- bash -c \
  "'$B/rass-t5' -m '$T/t5m' --tokenizer '$FIX/text/t5_tiny_spiece.model' --text 'a cat' -o '$T/t5b.npz' 2>>'$T/t5m/config.json'"

# 10. FIFOs where the tools find their tokenizers.
cp -r "$N/t5_tiny" "$T/t5f" && rm -f "$T/t5f/spiece.model" && mkfifo "$T/t5f/spiece.model"
expect_exit 3 "T5's spiece.model a FIFO" -- timeout 20 "$B/rass-t5" -m "$T/t5f" --text "a cat" -o "$T/f.npz"
stderr_has "spiece.model: is not a regular file but a FIFO" "the FIFO is named"
cp -r "$N/sam_tiny_gle" "$T/glef" && rm "$T/glef/tokenizer/merges.txt" && mkfifo "$T/glef/tokenizer/merges.txt"
expect_exit 3 "a GleSAM folder's merges.txt a FIFO" -- timeout 20 "$B/rass-sam" -m "$T/glef" "$N/sam_a.png" --box 5,4,30,25 -o "$T/gf.png"

# 12.
mkdir -p "$T/dup" && ln -s "$N/samsr_tiny/unet.safetensors" "$N/samsr_tiny/autoencoder.safetensors" "$T/dup/" &&
  sed 's/"kappa": 2.0/"kappa": 9.0, "kappa": 2.0/' "$N/samsr_tiny/samsr.json" >"$T/dup/samsr.json"
grep -q '"kappa": 9.0, "kappa": 2.0' "$T/dup/samsr.json" || fail "the duplicate was not written"
expect_exit 3 "samsr.json with a key twice" -- "$SR" -m "$T/dup" --noise gaussian "$LQ" -o "$T/dup.png"
stderr_has "the key \"kappa\" appears twice" "the key is named"
expect_exit 2 "rass-t5 -o x.png" -- "$B/rass-t5" -m "$N/t5_tiny" --tokenizer "$FIX/text/t5_tiny_spiece.model" --text "a cat" -o "$T/x.png"
stderr_has "name it .npz" "the refusal says why"
expect_exit 3 "rass-sam -m a missing folder" -- "$B/rass-sam" -m "$T/nowhere" "$N/sam_a.png" --point 1,1 -o "$T/nw.png"
stderr_has "cannot open the model folder: No such file or directory" "the reason is the real one"
ln -s loop1 "$T/loop2" && ln -s loop2 "$T/loop1"
expect_exit 3 "rass-sam -m a link loop" -- "$B/rass-sam" -m "$T/loop1" "$N/sam_a.png" --point 1,1 -o "$T/nw.png"
stderr_has "Too many levels of symbolic links" "the loop is said"
cp -r "$N/sam_tiny" "$T/e10" && sed -i 's/"embed_dim": [0-9]*/"embed_dim": 1e10/' "$T/e10/sam.json"
expect_exit 3 "embed_dim 1e10" -- "$B/rass-sam" -m "$T/e10" "$N/sam_a.png" --point 1,1 -o "$T/e10.png"
stderr_has "is not a whole number written as one" "the message says why 1e10 is refused"

# 13. rass-eval-iqa and rass-caption-map.
EQ=$B/rass-eval-iqa
cp -r "$N/clipiqa" "$T/ciq"
cp "$T/ciq/clipiqa_rn50_tokenizer/vocab.json" "$T/vocab.orig"
expect_exit 2 "--csv onto the CLIPIQA tokenizer" -- "$EQ" -m clipiqa --weights "$T/ciq" "$T/ciq/img_b0.png" --csv "$T/ciq/clipiqa_rn50_tokenizer/vocab.json"
expect_exit 2 "stdout appended to the tokenizer's merges" -- bash -c \
  "'$EQ' -m clipiqa --weights '$T/ciq' '$T/ciq/img_b0.png' >>'$T/ciq/clipiqa_rn50_tokenizer/merges.txt'"
expect_exit 2 "--csv inside the weights folder" -- "$EQ" -m clipiqa --weights "$T/ciq" "$T/ciq/img_b0.png" --csv "$T/ciq/out.csv"
cmp -s "$T/ciq/clipiqa_rn50_tokenizer/vocab.json" "$T/vocab.orig" || fail "the tokenizer was written over"
mkdir -p "$T/nr/pred" "$T/nr/gt" "$T/nr/w"
cp "$FIX/iqa/musiq_2.png" "$T/nr/pred/a.png" && cp "$FIX/iqa/musiq_2.png" "$T/nr/gt/a.png" && cp "$FIX/iqa/musiq_6.png" "$T/nr/gt/b.png"
cp "$N/musiq_tiny.safetensors" "$T/nr/w/musiq_koniq.safetensors"
expect_exit 3 "musiq over two folders (b has no prediction)" -- "$EQ" -m musiq --weights "$T/nr/w" "$T/nr/pred" "$T/nr/gt" --json
grep -qF '"count": 1' "$T/.out" || fail "more than the prediction was scored: $(head -c 400 "$T/.out")"
"$EQ" -m musiq --weights "$T/nr/w" "$T/nr/pred/a.png" --json >"$T/one.json" 2>/dev/null
m1=$(sed -n 's/.*"musiq": *\([0-9.e+-]*\).*/\1/p' "$T/one.json" | head -1)
grep -qF "$m1" "$T/.out" || fail "the pair's score is not the prediction's ($m1): $(head -c 400 "$T/.out")"
# A prediction without a ground truth is still scored by a no-reference metric.
cp "$FIX/iqa/musiq_6.png" "$T/nr/pred/c.png"
expect_exit 3 "musiq over two folders, c without a partner" -- "$EQ" -m musiq --weights "$T/nr/w" "$T/nr/pred" "$T/nr/gt" --json
grep -qF '"count": 2' "$T/.out" || fail "c was not scored: $(head -c 600 "$T/.out")"
mkdir -p "$T/mq"
python3 - "$N/maniqa/maniqa_koniq.safetensors" "$T/mq/maniqa_koniq.safetensors" 1e39 <<'PY'
import json, struct, sys
d = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", d[:8])[0]; h = json.loads(d[8:8 + n])
h["__metadata__"]["scale"] = sys.argv[3]; b = json.dumps(h).encode(); b += b" " * (-len(b) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(b)) + b + d[8 + n:])
PY
expect_exit 3 "MANIQA scale 1e39" -- "$EQ" -m maniqa --weights "$T/mq" "$N/maniqa/img_a0.png"
stderr_has "maniqa_koniq.safetensors: metadata scale = '1e39'" "the file and value are named"
mkdir -p "$T/mq3"
python3 - "$N/maniqa/maniqa_koniq.safetensors" "$T/mq3/maniqa_koniq.safetensors" <<'PY'
import json, struct, sys
d = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", d[:8])[0]; h = json.loads(d[8:8 + n])
h["__metadata__"]["vit_heads"] = "3"; b = json.dumps(h).encode(); b += b" " * (-len(b) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(b)) + b + d[8 + n:])
PY
expect_exit 3 "MANIQA vit_heads 3" -- "$EQ" -m maniqa --weights "$T/mq3" "$N/maniqa/img_a0.png"
stderr_has "maniqa_koniq.safetensors: metadata vit_heads = 3" "the file is named"
mkdir -p "$T/mqn"
python3 "$SRC/tests/cli/poison_tensor.py" "$N/maniqa/maniqa_koniq.safetensors" "$T/mqn/maniqa_koniq.safetensors" conv1.weight 3e38
expect_exit 1 "MANIQA with weights that overflow" -- "$EQ" -m maniqa --weights "$T/mqn" "$N/maniqa/img_a0.png" --json
stderr_has "non-finite score" "the failure says why"
CM=$B/rass-caption-map
printf 'wall\nbuilding\n' >"$T/c.txt"; printf 'P5\n2 1\n255\n\000\001' >"$T/lm.pgm"
expect_exit 3 "--table /dev/zero" -- bash -c "ulimit -v 4000000; timeout 60 '$CM' --classes '$T/c.txt' --table /dev/zero '$T/lm.pgm'"
stderr_has "/dev/zero" "the table is named"
mkdir -p "$T/wnf" && mkfifo "$T/wnf/data.noun" && : >"$T/wnf/index.noun" && : >"$T/wnf/noun.exc"
printf 'wall, pond\n' >"$T/tags.txt"
expect_exit 3 "WordNet's data.noun a FIFO" -- timeout 60 "$CM" --classes "$T/c.txt" --wordnet "$T/wnf" "$T/lm.pgm" --tags "$T/tags.txt"
: >"$T/empty-vocab.txt"
expect_exit 3 "build-table of an empty vocabulary" -- "$CM" build-table "$T/empty-vocab.txt" --classes "$T/c.txt" --similarity wordnet -o "$T/t.tsv"
[ -e "$T/t.tsv" ] && fail "a table of nothing was written"
printf 'church\tbuilding\t 0.8\n' >"$T/blank.tsv"
expect_exit 3 "a table score with a leading blank" -- "$CM" --classes "$T/c.txt" --table "$T/blank.tsv" "$T/lm.pgm" --tags "$T/tags.txt"

# 14. rass-train's data stages.
mkdir -p "$T/tr" && (
  cd "$T/tr" &&
  "$B/rass-scenes" -n 4 --size 64 -s 3 -o scenes -q &&
  "$B/rass-model" init --preset tiny4 --seed 2 -q sd &&
  "$B/rass-model" init --preset tiny -q tiny &&
  "$B/rass-caption-map" --tags scenes/tags.tsv --tokenizer sd -O packs -q scenes/labels >/dev/null
) || fail "the training data could not be made"
SCR=(--set scr.sd="$T/tr/sd" --set scr.pack_dir="$T/tr/packs" --set scr.hq_dir="$T/tr/scenes/images" --set scr.crop_size=64 --threads 1 --batch 2 -q)
expect_exit 1 "scr diverging" -- "$R" scr -o "$T/tr/s1" --steps 6 "${SCR[@]}" --lr 1
stderr_has "non-finite" "the failure says why"
grep -q "frame #" "$T/.err" && fail "a stack trace: $(head -c 300 "$T/.err")"
if command -v h5dump >/dev/null; then  # a token id past the vocabulary, written into a pack
  mkdir -p "$T/tr/p1" && cp "$T/tr/packs/"*.h5 "$T/tr/p1/"
  off=$(h5dump -p -d token_ids "$T/tr/p1/scene_000001.h5" | awk '/OFFSET/{print $2}')
  printf '\xa0\x86\x01\x00' | dd of="$T/tr/p1/scene_000001.h5" bs=1 seek=$((off + 4)) conv=notrunc 2>/dev/null
  expect_exit 3 "scr with a token id past the vocabulary" -- "$R" scr -o "$T/tr/op1" --steps 4 "${SCR[@]}" --set scr.pack_dir="$T/tr/p1"
  stderr_has "scene_000001.h5: token id 100000 is outside the text encoder's vocabulary" "the pack is named"
fi
U=(--set unet.sd="$T/tr/tiny" --set unet.text=tags --set unet.crop_size=64 --steps 1 --batch 2 --threads 1 -q)
mkdir -p "$T/tr/u4/images" "$T/tr/u4/tags" && cp "$T/tr/scenes/images/"*.png "$T/tr/u4/images/" && cp "$T/tr/scenes/tags/"*.txt "$T/tr/u4/tags/"
head -c 200 "$R" >"$T/tr/u4/tags/scene_000001.txt"
expect_exit 3 "unet with a binary tags file" -- "$R" unet -o "$T/tr/o4" --set unet.images="$T/tr/u4/images" "${U[@]}"
stderr_has "scene_000001.txt" "the file is named"
ln -sf /dev/zero "$T/tr/u4/tags/scene_000001.txt"
expect_exit 3 "unet with a tags file of /dev/zero" -- bash -c "ulimit -v 4000000; '$R' unet -o '$T/tr/o5' --set unet.images='$T/tr/u4/images' ${U[*]}"
expect_exit 2 "unet's -o inside its default tags folder" -- "$R" unet -o "$T/tr/scenes/tags/run" --set unet.images="$T/tr/scenes/images" "${U[@]}"
stderr_has "input folder" "the refusal says why"
[ -e "$T/tr/scenes/tags/run" ] && fail "the run wrote into the tags folder"
expect_exit 2 "an empty ras.preset" -- "$R" ras -o "$T/tr/r0" --steps 1 --set=ras.preset= --set ras.model="$T/tr/nowhere" -q
stderr_has "ras.preset is empty" "the setting is named"
expect_exit 2 "an empty sam-decoder.preset" -- "$R" sam-decoder -o "$T/tr/d0" --steps 1 --set=sam-decoder.preset= \
  --set sam-decoder.model="$N/sam_tiny" -q
stderr_has "sam-decoder.preset is empty" "the setting is named"

# 11. rass-sam with an enhancer whose feat_weight overflows.
cp -r "$N/sam_tiny_gle" "$T/gle1"
python3 -c "import json,sys; p=sys.argv[1]; d=json.load(open(p)); d['enhancer']['feat_weight']=1e-30; json.dump(d,open(p,'w'))" "$T/gle1/sam.json"
expect_exit 1 "rass-sam with overflowing weights" -- "$B/rass-sam" -m "$T/gle1" "$N/sam_a.png" --box 5,4,30,25 -o "$T/g1.png" --json
stderr_has "non-finite values" "the failure says why"
[ -e "$T/g1.png" ] && fail "an empty mask was written"

# 4. (first: the 2-process checks may skip the rest)
"$B/rass-scenes" -n 3 -o "$T/sc" -s 0 --size 64 -q || fail "scenes: the first run"
cp "$T/sc/captions/scene_000001.txt" "$T/cap1" && echo "a photo of junk" >"$T/sc/captions/scene_000001.txt"
expect_exit 0 "scenes --resume after a caption file was edited" -- "$B/rass-scenes" -n 3 -o "$T/sc" -s 0 --size 64 -q --resume
cmp -s "$T/sc/captions/scene_000001.txt" "$T/cap1" || fail "scenes: the edited caption file is kept"
grep -q junk "$T/sc/manifest.jsonl" && fail "scenes: the edited caption went into the manifest"
for k in mixed street landscape room; do
  "$B/rass-scenes" -n 6 -o "$T/k-$k" -s 3 --size 64 --kind $k -q &&
    "$B/rass-scenes" -n 6 -o "$T/k-$k" -s 3 --size 64 --kind $k --resume --json -q >"$T/k.json" &&
    grep -qF '"written":0' "$T/k.json" || fail "scenes --kind $k: unedited scenes were made again: $(cat "$T/k.json")"
done

# two_ranks DIR0 DIR1 ARGS...: rank 0 runs in DIR0, rank 1 in DIR1 (the same
# relative -o names two folders, as node-local disks do); sets c0, c1.
two_ranks() {
  local d0=$1 d1=$2 port=$((20000 + RANDOM % 20000))
  shift 2
  (cd "$d0" && exec env RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$R" "$@" 2>"$T/r0.err" >"$T/r0.out") &
  local p0=$!
  (cd "$d1" && exec env RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$R" "$@" 2>"$T/r1.err" >"$T/r1.out")
  c1=$?
  wait $p0
  c0=$?
}

# 1a. A start 10 steps apart: both processes stop before step 0 (exit 2).
mkdir -p "$T/base"
(cd "$T/base" && "$R" selftest -o run --steps 10 --checkpoint-every 5 --threads 1 -q) || fail "the first run"
cp -r "$T/base" "$T/a"
cp -r "$T/base" "$T/b"
rm "$T/b/run/checkpoints/step_10.safetensors"
start=$(date +%s)
two_ranks "$T/a" "$T/b" selftest -o run --resume --steps 20 --threads 1 --set loop.timeout_s=60 -q
if grep -q "needs Gloo" "$T/r0.err" "$T/r1.err"; then
  echo "this build has no Gloo: the 2-process checks are skipped"
  exit 77
fi
[ "$c0" -eq 2 ] && [ "$c1" -eq 2 ] && ok "resume steps 10 and 5: both processes exit 2" ||
  fail "resume steps 10 and 5: exits $c0 and $c1; $(head -c 300 "$T/r0.err") / $(head -c 300 "$T/r1.err")"
grep -qF "resumes from (here 5)" "$T/r1.err" || fail "rank 1's message: $(head -c 300 "$T/r1.err")"
grep -qF "the same checkpoint" "$T/r0.err" || fail "rank 0's message: $(head -c 300 "$T/r0.err")"
[ $(( $(date +%s) - start )) -le 40 ] || fail "the processes took $(( $(date +%s) - start )) s to stop"
[ "$(wc -l < "$T/a/run/log.jsonl")" -eq 10 ] || fail "rank 0's log was cut or grown: $(wc -l < "$T/a/run/log.jsonl") lines"

# 1b. One step, but rank 1's checkpoint holds other weights (a float of
#     its first tensor changed): rank 0's state is everyone's, so the run
#     equals one whose processes both hold rank 0's checkpoint.
rm -rf "$T/a" "$T/b"
for d in a b c d; do cp -r "$T/base" "$T/$d"; done
python3 - "$T/b/run/checkpoints/step_10.safetensors" <<'PY' || fail "could not change the checkpoint"
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
name, t = next((k, v) for k, v in sorted(h.items()) if k != "__metadata__" and v["dtype"] == "F32")
off = 8 + n + t["data_offsets"][0]
old = struct.unpack("<f", b[off:off + 4])[0]
b[off:off + 4] = struct.pack("<f", old + 0.25)
open(p, "wb").write(bytes(b))
PY
two_ranks "$T/a" "$T/b" selftest -o run --resume --steps 14 --threads 1 --set loop.timeout_s=60 -q
[ "$c0" -eq 0 ] && [ "$c1" -eq 0 ] || fail "changed rank 1 state: exits $c0 and $c1; $(head -c 300 "$T/r0.err") / $(head -c 300 "$T/r1.err")"
two_ranks "$T/c" "$T/d" selftest -o run --resume --steps 14 --threads 1 --set loop.timeout_s=60 -q
[ "$c0" -eq 0 ] && [ "$c1" -eq 0 ] || fail "same state: exits $c0 and $c1; $(head -c 300 "$T/r0.err")"
cmp -s "$T/a/run/final/selftest.safetensors" "$T/c/run/final/selftest.safetensors" &&
  ok "rank 1's changed weights were replaced by rank 0's" ||
  fail "a run whose rank 1 held other weights trained another model"

# 2. Rank 0's output folder is a file there: rank 1 stops at once, not
#    after loop.timeout_s (60 s here).
mkdir -p "$T/e" "$T/f"
: >"$T/e/out"
start=$(date +%s)
two_ranks "$T/e" "$T/f" selftest -o out --steps 3 --threads 1 --set loop.timeout_s=60 -q
[ "$c0" -eq 2 ] && [ "$c1" -eq 1 ] && ok "rank 0's refused -o: exits 2 and 1" ||
  fail "rank 0's refused -o: exits $c0 and $c1; $(head -c 300 "$T/r0.err") / $(head -c 300 "$T/r1.err")"
grep -qF "not a directory" "$T/r0.err" || fail "rank 0's message: $(head -c 300 "$T/r0.err")"
grep -qF "another process stopped" "$T/r1.err" || fail "rank 1's message: $(head -c 300 "$T/r1.err")"
[ $(( $(date +%s) - start )) -le 40 ] || fail "rank 1 took $(( $(date +%s) - start )) s to stop"
[ -e "$T/f/out" ] && fail "rank 1 made its own -o folder"

# 3. Item 3 fails in rank 1 at step 5 (selftest.bad_item): both stop with
#    its message and exit 3, rank 0 keeps steps 0..4; once "mended", the
#    --resume ends where an unbroken run does.
mkdir -p "$T/h"
two_ranks "$T/h" "$T/h" selftest -o run --steps 12 --threads 1 --set selftest.bad_item=3 --set loop.timeout_s=60 -q
[ "$c0" -eq 3 ] && [ "$c1" -eq 3 ] && ok "a damaged sample in rank 1: both exit 3" ||
  fail "a damaged sample in rank 1: exits $c0 and $c1; $(head -c 300 "$T/r0.err") / $(head -c 300 "$T/r1.err")"
grep -qF "another process failed at step 5: rank 1: selftest item 3" "$T/r0.err" || fail "rank 0's message: $(head -c 300 "$T/r0.err")"
grep -qF "steps 0..4 are kept in run/checkpoints/step_5.safetensors" "$T/r0.err" || fail "rank 0 names no checkpoint"
[ -s "$T/h/run/checkpoints/step_5.safetensors" ] || fail "no checkpoint of the steps done: $(ls "$T/h/run/checkpoints")"
two_ranks "$T/h" "$T/h" selftest -o run --steps 12 --threads 1 --resume --set loop.timeout_s=60 -q
[ "$c0" -eq 0 ] && [ "$c1" -eq 0 ] || fail "the --resume: exits $c0 and $c1; $(head -c 300 "$T/r0.err")"
# Resumed at step 2, then item 3 fails in rank 1 at step 5: rank 1's
# message named step_2 as "the last checkpoint" (only rank 0 writes them).
mkdir -p "$T/g"
two_ranks "$T/g" "$T/g" selftest -o run --steps 12 --threads 1 --set loop.stop_after=2 --set loop.timeout_s=60 -q
two_ranks "$T/g" "$T/g" selftest -o run --steps 12 --threads 1 --resume --set selftest.bad_item=3 --set loop.timeout_s=60 -q
[ "$c0" -eq 3 ] && [ "$c1" -eq 3 ] || fail "resumed, then a damaged sample: exits $c0 and $c1"
grep -q "step_2" "$T/r1.err" "$T/r0.err" && fail "a message names the stale checkpoint: $(cat "$T/r0.err" "$T/r1.err")"
grep -qF "kept in run/checkpoints/step_5.safetensors" "$T/r0.err" || fail "rank 0's message: $(head -c 300 "$T/r0.err")"
mkdir -p "$T/i"
two_ranks "$T/i" "$T/i" selftest -o run --steps 12 --threads 1 --set loop.timeout_s=60 -q
cmp -s "$T/h/run/final/selftest.safetensors" "$T/i/run/final/selftest.safetensors" &&
  ok "the resumed run equals an unbroken one" || fail "the resumed run differs from an unbroken one"
finish
