#!/usr/bin/env bash
# The size axis of the projection-damage experiment (docs/projection.md): the long run's recipe
# (Recipes/projection-damage/long.yaml: 4 layers, 20,000 steps, 41M tokens) at narrower widths, then
# damage.sh on each final checkpoint with the four kinds at the same fractions of the dense MLP as at
# width 192 (low rank d/4; Monarch 4 blocks; BTT rank 2; butterfly 4). Resumable: a finished width is
# skipped, a stopped one continued exactly, and damage.sh skips what results.jsonl already has.
#   bash Recipes/projection-damage/size.sh            (WIDTHS="64 32" by default; FL the binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
FL=${FL:-.build/release/factorlab}
WIDTHS=${WIDTHS:-64 32}
for w in $WIDTHS; do
  run=Checkpoints/projection-damage/long-w$w
  if [ ! -f "$run/ckpt-00020000.h5" ]; then
    if ls "$run"/ckpt-*.h5 > /dev/null 2>&1; then
      "$FL" resume "$run" > "$run.log"
    else
      "$FL" pretrain Recipes/projection-damage/long.yaml --set model.n_embd=$w --set name=damage-long-w$w \
        --set checkpoint.dir="$run" --set 'checkpoint.keep_steps=[20000]' > "$run.log"
    fi
  fi
  FL="$FL" KINDS="lowrank:$((w / 4)) monarch:4 btt:2 butterfly:4" bash Recipes/projection-damage/damage.sh "$run"
done
