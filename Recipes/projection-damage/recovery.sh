#!/usr/bin/env bash
# Recovery (docs/projection.md): from one checkpoint of the long run, project every MLP data-free and
# data-aware (damage.sh's calibration), finetune each projected model for 400 steps
# (recovery.yaml, validation every 10 steps), and measure the dense checkpoint's own validation loss
# on the same batches (max_steps 0). analyze.py reads the curves and counts the steps to within 1% of
# the dense NLL. Resumable: finished arms are skipped.
#   bash Recipes/projection-damage/recovery.sh [STEP]        (default 20000; KINDS, FL as in damage.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
FL=${FL:-.build/release/factorlab}
STEP=${1:-20000}
KINDS=${KINDS:-lowrank:48 monarch:4}
CKPT=Checkpoints/projection-damage/long/ckpt-$(printf %08d "$STEP").h5
CALIB=Recipes/corpora/shakespeare/hamlet_gut.txt
OUT=Checkpoints/projection-damage/recovery-$STEP
mkdir -p "$OUT"
arm() { # name init linear
  [ -f "$OUT/$1/summary.json" ] && return
  rm -rf "${OUT:?}/$1"
  "$FL" pretrain Recipes/projection-damage/recovery.yaml --init-from "$2" --set model.linear="$3" \
    --set name="recovery-$1" --set checkpoint.dir="$OUT/$1" "${@:4}" > "$OUT/$1.log"
}
arm dense "$CKPT" dense --set training.max_steps=0
for kind in $KINDS; do
  for mode in data-free data-aware; do
    proj="$OUT/${kind/:/}-$mode.h5"
    extra=(); [ "$mode" = data-aware ] && extra=(--calibrate "$CALIB" --calib-tokens 16384)
    [ -f "$proj" ] || "$FL" factorize --model "$CKPT" --kind "$kind" --out "$proj" --json "${extra[@]}" > "$proj.json"
    arm "${kind/:/}-$mode" "$proj" "$kind"
  done
done
