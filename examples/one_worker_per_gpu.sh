#!/usr/bin/env bash
# One machine with several GPUs: one autoprep worker per GPU, each seeing only its own GPU
# (CUDA_VISIBLE_DEVICES), and a chief that hands out the trials and keeps the results.
#
#   examples/one_worker_per_gpu.sh DATA_DIR MODEL RUN_DIR [other `autoprep tune` options]
#   e.g. examples/one_worker_per_gpu.sh data/ examples/model.py:build_model runs/big --seed 0 \
#          --max-trials 100
#
# Give it a --seed S: a distributed search needs one (the chief and every worker make the same
# splits from it; the script passes the options to each). GPUS (default: the GPUs
# `nvidia-smi --list-gpus` lists) and PORT (default 8000) may be set.
# The chief listens on 127.0.0.1 only. Logs: RUN_DIR.chief.log and RUN_DIR.workerN.log.
# Run the same command again to resume; Ctrl-C stops every process.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '5,7p' "$0" >&2
  exit 2
fi
data=$1 model=$2 out=$3
shift 3
gpus=${GPUS:-$(nvidia-smi --list-gpus | wc -l)}
port=${PORT:-8000}
mkdir -p "$(dirname "$out")"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
# The chief trains nothing while the workers search; then it re-evaluates the best
# configurations and trains the winner for the test score on GPU 0 (memory growth is on, so it
# shares the GPU with the last worker's process until that one exits).
CUDA_VISIBLE_DEVICES=0 autoprep tune "$data" --model "$model" --out "$out" --chief "$port" "$@" \
  > "$out.chief.log" 2>&1 &
chief=$!
workers=()
for ((i = 0; i < gpus; i++)); do
  CUDA_VISIBLE_DEVICES=$i autoprep tune "$data" --model "$model" --out "$out" \
    --worker "$i" --chief "$port" "$@" > "$out.worker$i.log" 2>&1 &
  workers+=($!)
done
echo "chief and $gpus workers started; follow the search with: tail -f $out.chief.log"
# A chief that fails ends the script here (set -e), and the trap stops the workers. A chief
# that finishes has let every worker go: each one is left to say so in its log and exit.
wait "$chief"
wait "${workers[@]}"
