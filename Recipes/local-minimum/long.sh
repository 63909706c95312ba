#!/usr/bin/env bash
# The local-minimum experiment again (issue 21), with the fair arms and at the training length
# where projection starts to hurt (docs/projection.md: between 3M and 13M tokens at width 192):
# the embedded default's shape (4 layers, width 192, batches of 16 x 128), every arm at the
# compute of STEPS dense steps (default 6,400: 13.1M tokens), the learning rate of each family tuned by the
# campaign (Recipes/study/campaign.yaml, tuning.json: 4e-3 for dense, low rank and Monarch) and
# Qiu et al.'s per-factor multipliers (optimizer.structured_lr=fan-in) for the structured arms:
#   (a) dense from scratch                          SEEDS (default 1 2)
#   (b) KINDS from scratch                          (default monarch:4 lowrank:d/4)
#   (c) dense at half the budget (step STEPS/2) projected (data-free), no training
#   (d) (c) trained with the rest of the budget
# then `factorlab report`. Resumable: finished arms are skipped, stopped ones resume exactly.
# At the default 6,400 steps and both seeds, about 6 hours on 2 cores (one run at one thread does
# about 3k tokens/s). The committed records (docs/study/local-minimum/, README.md here) are of
# STEPS=4000 SEEDS=1 KINDS=monarch:4: 8.2M tokens, about 95 minutes with 3 runs sharing the 2 cores.
#   bash Recipes/local-minimum/long.sh            # from the repository root
#   STEPS=4000 SEEDS=1 KINDS=monarch:4 bash Recipes/local-minimum/long.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
F=${FACTORLAB:-.build/release/factorlab}
D=Recipes/local-minimum
OUT=${OUT:-Checkpoints/local-minimum-long}
SEEDS=${SEEDS:-"1 2"}
STEPS=${STEPS:-6400}          # dense steps of the whole budget; the projection is taken at half of it
KINDS=${KINDS:-"monarch:4 lowrank:d/4"}
# Each run uses one core (FACTORLAB_THREADS=1): the dense arm and the scratch arms run two at a time,
# which on 2 cores gives more tokens/s in total than one run on both.
export FACTORLAB_THREADS=1 OPENBLAS_NUM_THREADS=1
LR=${LR:-4.0e-3}
COMMON=(--set model.n_embd=192 --set training.batch_size=16 --set eval.interval=200 --set eval.batches=16
        --set optimizer.lr=$LR --set schedule.min_lr=4.0e-4 --set optimizer.structured_lr=fan-in)
mkdir -p "$OUT"
run() { # name recipe [--set ...]
    local name=$1 recipe=$2; shift 2
    if [ -f "$OUT/$name/summary.json" ]; then echo "skip $name (done)" >&2; return; fi
    echo "== $name" >&2
    if ls "$OUT/$name"/ckpt-*.h5 > /dev/null 2>&1; then "$F" resume "$OUT/$name" > "$OUT/$name.log"
    else "$F" pretrain "$recipe" --set checkpoint.dir="$OUT/$name" --set name="$name" "$@" > "$OUT/$name.log"; fi
}
wait_for() { # file pid: waits until the file exists; fails if the process that makes it ended first
    while [ ! -f "$1" ]; do
        kill -0 "$2" 2> /dev/null || [ -f "$1" ] || { echo "error: $1 was not written (see the run's log)" >&2; exit 1; }
        sleep 5
    done
}
for seed in $SEEDS; do
    HALF=$((STEPS / 2))
    run "dense-s$seed" $D/scratch.yaml "${COMMON[@]}" --set seed=$seed --set model.mlp=dense \
        --set training.flop_budget=null --set training.max_steps=$STEPS --set checkpoint.interval=500 --set "checkpoint.keep_steps=[$HALF]" &
    dense=$!
    wait_for "$OUT/dense-s$seed/run.json" $dense
    # The budget: what the dense arm spends in STEPS steps (its FLOPs per token x tokens).
    BUDGET=$(python3 -c "import json,sys;d=json.load(open(sys.argv[1]));print(d['flops_per_token']*16*128*int(sys.argv[2]))" "$OUT/dense-s$seed/run.json" $STEPS)
    for kind in $KINDS; do   # scratch arms, one at a time beside the dense arm
        run "${kind%%:*}-scratch-s$seed" $D/scratch.yaml "${COMMON[@]}" --set seed=$seed --set model.linear=mlp=$kind \
            --set training.flop_budget=$BUDGET --set checkpoint.interval=1000
    done &
    scratch=$!
    # The projection arms start as soon as the dense checkpoint at half the budget exists (a third
    # run beside the other two), not when the dense arm ends.
    ckpt=$(printf "%s/dense-s%s/ckpt-%08d.h5" "$OUT" $seed $HALF)
    wait_for "$ckpt" $dense
    for kind in $KINDS; do
        base=${kind%%:*}
        proj="$OUT/$base-from-dense-s$seed.h5"
        [ "$kind" = lowrank:d/4 ] && pkind=lowrank:48 || pkind=$kind
        [ -f "$proj" ] || "$F" factorize --model "$ckpt" --kind $pkind --out "$proj" > "$OUT/$base-factorize-s$seed.log"
        run "$base-projected-s$seed" $D/projected.yaml "${COMMON[@]}" --set seed=$seed --set model.mlp=$pkind --set model.init_from="$proj"
        run "$base-projtrained-s$seed" $D/projected-trained.yaml "${COMMON[@]}" --set seed=$seed --set model.mlp=$pkind \
            --set model.init_from="$proj" --set training.flop_budget=$BUDGET --set optimizer.lr=1.0e-3 --set checkpoint.interval=1000
    done
    wait $dense
    wait $scratch
done
runs=(); for d in "$OUT"/*/; do [ -f "$d/run.json" ] && runs+=("${d%/}"); done
"$F" report "${runs[@]}" --out "$OUT/report"
echo "report: $OUT/report/report.md" >&2
