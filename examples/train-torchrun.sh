#!/usr/bin/env bash
# N data-parallel rass-train processes on this machine, started the way
# `torchrun --nproc_per_node=N` starts Python workers (torchrun itself cannot
# start a C++ program's ranks with its rendezvous, so the variables are set
# here): RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
#
#   examples/train-torchrun.sh 2 selftest -o runs/selftest --steps 200
#   examples/train-torchrun.sh 4 scr --config scr.json --device cuda   # one GPU per process
#
# Gloo on the CPU (threads per process: the cores / N unless --threads),
# NCCL with --device cuda (process r uses GPU r). The global --batch is split
# over the processes and must be divisible by N. Stop all with Ctrl-C.
set -euo pipefail
n=${1:?usage: $0 NPROC STAGE [rass-train flags...]}
shift
port=${MASTER_PORT:-29500}
bin=${RASS_TRAIN:-rass-train}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' INT TERM
for ((r = 0; r < n; r++)); do
  RANK=$r WORLD_SIZE=$n LOCAL_RANK=$r LOCAL_WORLD_SIZE=$n MASTER_ADDR=${MASTER_ADDR:-127.0.0.1} MASTER_PORT=$port \
    "$bin" "$@" &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
exit $status
