#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG NUM_PROCS [train.py options]; multi-node via NNODES/NODE_RANK/MASTER_ADDR.
CONFIG=$1
NPROCS=$2
torchrun --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --master_port="${PORT:-29500}" --nproc_per_node="$NPROCS" \
  "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "${@:3}"
