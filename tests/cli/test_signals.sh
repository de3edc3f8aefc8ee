#!/usr/bin/env bash
# Signals (core/signals.hpp): a tool ended by SIGTERM removes its temporaries
# (a file replacing another, a model folder being written, one deeper than
# the handler's depth limit) and dies by SIGTERM. strace puts the signal
# where a temporary exists; without strace the whole test is skipped (77).
# rass-train's clean stop on a signal: test_train_signals.sh.
source "$(dirname "$0")/lib.sh"
D=$B/rass-degrade
command -v strace >/dev/null && strace -f -o /dev/null -e trace=rename true 2>/dev/null ||
  { echo "skipped: strace is missing or cannot trace here"; exit 77; }
# 1. A batch tool killed while a temporary exists. A file that replaces
#    another goes through a named temporary renamed over it (and every file
#    does on NFS, which has no O_TMPFILE): strace fails the first rename with
#    EINTR and sends SIGTERM with it, so the signal comes while the temporary
#    is there. Before the handlers the temporary stayed.
mkdir -p "$T/hq"
cp "$FIX/metrics/pair_a.png" "$T/hq/"
"$D" "$T/hq" -o "$T/deg" -s 5 -j 1 -q || fail "a first degrade run"
cp "$T/deg/pair_a.png" "$T/first.png"
# In a subshell whose stderr takes the shell's "Terminated" notice.
(strace -f -o /dev/null -e trace=rename -e inject=rename:error=EINTR:signal=SIGTERM:when=1 \
  "$D" "$T/hq" -o "$T/deg" -s 6 -j 1 -q 2>"$T/deg.err"; echo $? >"$T/deg.rc") 2>/dev/null
got=$(cat "$T/deg.rc")
[ $got -eq 143 ] && ok "degrade ended by SIGTERM (status 143)" || fail "degrade: status $got, expected 143; $(head -c 300 "$T/deg.err")"
left=$(ls -A "$T/deg" | grep '\.tmp\.' || true)
[ -z "$left" ] && ok "no temporary left" || fail "temporaries left by SIGTERM: $left"
cmp -s "$T/deg/pair_a.png" "$T/first.png" || fail "the image killed before its rename changed"
# A model folder is written as merged.tmp.PID.N/: SIGTERM at its first
# linked file removes the whole temporary folder (before, it stayed until
# the next writer of merged; a model folder is gigabytes).
if [ -x "$B/rass-merge-lora" ]; then
  mkdir -p "$T/sd"
  cp -r "$FIX/nn/unet_tiny" "$T/sd/unet"
  cp -r "$FIX/nn/vae_tiny" "$T/sd/vae"
  (strace -f -o /dev/null -e trace=linkat -e inject=linkat:error=EINTR:signal=SIGTERM:when=1 \
    "$B/rass-merge-lora" merge --model "$T/sd" --lora "$FIX/nn/lora_peft/adapter_model.safetensors" \
    -O "$T/merged" 2>"$T/merge.err"; echo $? >"$T/merge.rc") 2>/dev/null
  got=$(cat "$T/merge.rc")
  [ "$got" -eq 143 ] && ok "merge-lora ended by SIGTERM" || fail "merge-lora: status $got; $(head -c 300 "$T/merge.err")"
  left=$(ls -d "$T"/merged* 2>/dev/null || true)
  [ -z "$left" ] && ok "no temporary model folder left" || fail "left by SIGTERM: $left"
  # A model with a folder 18 levels deep (past the handler's depth limit):
  # the handler removes what it can and ends; before, it listed the deep
  # folder again and again (64^depth) and never ended.
  mkdir -p "$T/sd/zz/$(printf 'd%d/' $(seq 1 18))" && touch "$T/sd/zz/$(printf 'd%d/' $(seq 1 18))f.txt"
  (timeout -s KILL 60 strace -f -o /dev/null -e trace=linkat -e inject=linkat:error=EINTR:signal=SIGTERM:when=1 \
    "$B/rass-merge-lora" merge --model "$T/sd" --lora "$FIX/nn/lora_peft/adapter_model.safetensors" \
    -O "$T/deep" 2>"$T/merge.err"; echo $? >"$T/merge.rc") 2>/dev/null
  got=$(cat "$T/merge.rc")
  [ "$got" -eq 143 ] && ok "a deep temporary folder: SIGTERM still ends the process" || fail "deep folder: status $got"
fi
finish
