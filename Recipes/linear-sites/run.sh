#!/usr/bin/env bash
# Pretraining at equal FLOPs on the bundled Shakespeare corpus: dense vs Monarch on the MLPs only
# vs Monarch on every block site vs block tensor-train on every block site (plain and with the
# authors' normalized cores), two seeds each. The model is the embedded default
# (Recipes/shakespeare-tiny.yaml: 4 layers, width 192, 4,096-token vocabulary); the dense arm trains
# its 400 steps and sets the budget, every other arm trains until it has spent the same FLOPs.
#
#   bash Recipes/linear-sites/run.sh            # from the repository root; resumable: finished runs are skipped
#   python3 Recipes/linear-sites/summarize.py   # the table in docs/linear-sites.md
set -euo pipefail
FL=.build/release/factorlab
OUT=Checkpoints/linear-sites
mkdir -p "$OUT"
run() {  # name seed spec [extra --set ...]
  local name=$1 seed=$2 spec=$3; shift 3
  local dir="$OUT/$name-s$seed"
  if [ -f "$dir/summary.json" ]; then echo "done: $dir" >&2; return; fi
  if ls "$dir"/ckpt-*.h5 >/dev/null 2>&1; then "$FL" resume "$dir"; return; fi
  "$FL" pretrain Recipes/shakespeare-tiny.yaml --set name="$name-s$seed" --set seed="$seed" \
    --set checkpoint.dir="$dir" --set model.linear="$spec" --set arm="$name" "$@" --json > /dev/null
}
for seed in 1 2; do
  run dense "$seed" dense
done
# The budget: the dense run's training FLOPs (the same for both seeds).
BUDGET=$(python3 -c "import json;print(json.load(open('$OUT/dense-s1/summary.json'))['flops'])")
echo "FLOP budget $BUDGET" >&2
for seed in 1 2; do
  run monarch-mlp "$seed" "mlp=monarch:4" --set training.max_steps=null --set training.flop_budget="$BUDGET"
  run monarch-all "$seed" "mlp=monarch:4,attn=monarch:4" --set training.max_steps=null --set training.flop_budget="$BUDGET"
  run btt-all "$seed" "mlp=btt:2,attn=btt:2" --set training.max_steps=null --set training.flop_budget="$BUDGET"
  run btt-norm-all "$seed" "mlp=btt-norm:2,attn=btt-norm:2" --set training.max_steps=null --set training.flop_budget="$BUDGET"
done
