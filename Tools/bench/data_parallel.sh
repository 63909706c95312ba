#!/usr/bin/env bash
# Data-parallel throughput on this machine: the shakespeare-tiny model (2.6M parameters), 60 steps
# of a global batch of 16 x 128 tokens, as
#   1 process, 1 thread      (batch 16)
#   1 process, all threads   (batch 16)
#   2 ranks under mpirun, 1 thread each (batch 8 each)
# and the median step time, tokens/s and time in allreduce per step (steps 11-60).
# Usage: Tools/bench/data_parallel.sh   (after swift build -c release; needs openmpi-bin)
set -euo pipefail
cd "$(dirname "$0")/../.."
F=$PWD/.build/release/factorlab
R=Recipes/shakespeare-tiny.yaml
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(--set training.max_steps=60 --set eval.interval=1000 --set eval.sample_tokens=0 --set checkpoint.interval=1000)
root=(); [ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
FACTORLAB_THREADS=1 OPENBLAS_NUM_THREADS=1 "$F" pretrain $R "${common[@]}" --set checkpoint.dir="$out/one-thread" --set training.batch_size=16 >/dev/null 2>&1
"$F" pretrain $R "${common[@]}" --set checkpoint.dir="$out/one-process" --set training.batch_size=16 >/dev/null 2>&1
mpirun "${root[@]}" -np 2 "$F" pretrain $R "${common[@]}" --set checkpoint.dir="$out/two-ranks" --set training.batch_size=8 >/dev/null 2>&1
for run in one-thread one-process two-ranks; do
python3 - "$out/$run" <<'PY'
import json, statistics, sys, os
rows = [json.loads(l) for l in open(os.path.join(sys.argv[1], "metrics.jsonl"))]
steps = [r for r in rows if r.get("train_loss") is not None][10:]
dt = statistics.median(b["wall_s"] - a["wall_s"] for a, b in zip(steps, steps[1:]))
line = f"{os.path.basename(sys.argv[1]):12s} median step {dt * 1e3:6.1f} ms  {16 * 128 / dt:7.0f} tokens/s"
if "allreduce_s" in steps[0]:
    line += f"  allreduce {statistics.median(r['allreduce_s'] for r in steps) * 1e3:.2f} ms/step"
    line += f" (blocked {statistics.median(r['allreduce_wait_s'] for r in steps) * 1e3:.2f} ms)"
print(line)
PY
done
