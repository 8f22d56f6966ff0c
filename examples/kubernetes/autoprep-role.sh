#!/bin/sh
# The command of every pod of autoprep-job.yaml: pod 0 is the chief, pod i > 0 is worker i - 1.
# Every pod reads the same data path (the same volume at /data). Settings from the environment:
# DATA, MODEL, RUNS, PORT, and OPTIONS (more `autoprep tune` options, e.g. --max-trials 100
# --seed 0: a distributed search needs --seed, the same on every pod).
set -eu
index=${JOB_COMPLETION_INDEX:?set by Kubernetes in an indexed Job}
data=${DATA:-/data/images}
model=${MODEL:-/recipe/model.py:build_model}
runs=${RUNS:-/runs}
port=${PORT:-8000}
if [ "$index" = 0 ]; then
  # The oracle listens on the pod's addresses: the NetworkPolicy of autoprep-job.yaml lets only
  # this Job's pods reach its port (it has no authentication).
  exec autoprep tune "$data" --model "$model" --out "$runs/search" --chief "0.0.0.0:$port" \
    ${OPTIONS:-}
fi
worker=$((index - 1))
# autoprep-0.autoprep: pod 0's name under the headless Service `autoprep` (the pods' subdomain).
exec autoprep tune "$data" --model "$model" --out "$runs/worker$worker" --worker "$worker" \
  --chief "autoprep-0.autoprep:$port" ${OPTIONS:-}
