#!/usr/bin/env bash
# The local-minimum experiment, end to end (about 25 minutes on 2 cores), every arm at the same
# training compute (flop_budget in the recipes):
#   (a) dense from scratch                       seeds 1 2
#   (b) monarch:4, lowrank:64, butterfly scratch seeds 1 2
#   (c) dense at half the budget (step 300) projected onto monarch:4 and lowrank:64, no training
#   (d) (c) trained with the rest of the budget
# then `factorlab report` over all runs. Run from the repository root after
# `swift build -c release`. Output: Checkpoints/local-minimum/ (runs) and .../report/.
set -euo pipefail
cd "$(dirname "$0")/../.."
F=${FACTORLAB:-.build/release/factorlab}
D=Recipes/local-minimum
OUT=${OUT:-Checkpoints/local-minimum}
SEEDS=${SEEDS:-"1 2"}
mkdir -p "$OUT"
run() { # name recipe [--set ...]
    local name=$1 recipe=$2; shift 2
    if [ -f "$OUT/$name/summary.json" ]; then echo "skip $name (done)" >&2; return; fi
    echo "== $name" >&2
    if ls "$OUT/$name"/ckpt-*.h5 > /dev/null 2>&1; then  # stopped part way: continue it exactly
        "$F" resume "$OUT/$name" > "$OUT/$name.log"
    else
        "$F" pretrain "$recipe" --set checkpoint.dir="$OUT/$name" --set name="$name" "$@" > "$OUT/$name.log"
    fi
}
for seed in $SEEDS; do
    run "dense-s$seed" $D/scratch.yaml --set seed=$seed --set model.mlp=dense
    for kind in monarch:4 lowrank:64 butterfly; do
        run "${kind%%:*}-scratch-s$seed" $D/scratch.yaml --set seed=$seed --set model.mlp=$kind
    done
    for kind in monarch:4 lowrank:64; do
        base=${kind%%:*}
        proj="$OUT/$base-from-dense-s$seed.h5"
        [ -f "$proj" ] || "$F" factorize --model "$OUT/dense-s$seed/ckpt-00000300.h5" --mlp $kind --out "$proj" > "$OUT/$base-factorize-s$seed.log"
        run "$base-projected-s$seed" $D/projected.yaml --set seed=$seed --set model.mlp=$kind --set model.init_from="$proj"
        run "$base-projtrained-s$seed" $D/projected-trained.yaml --set seed=$seed --set model.mlp=$kind --set model.init_from="$proj"
    done
done
runs=(); for d in "$OUT"/*/; do [ -f "$d/run.json" ] && runs+=("${d%/}"); done
"$F" report "${runs[@]}" --out "$OUT/report"
echo "report: $OUT/report/report.md" >&2
