#!/usr/bin/env bash
# Normalized projection damage along training (docs/projection.md). For every kept checkpoint of the
# long run (Recipes/projection-damage/long.yaml): NLL on held-out Milton (Comus, 286 KB: not in the
# training mix) of the dense model, of its MLP-ablated version, and of every MLP projected data-free
# and data-aware (calibrated on 16k tokens of a Shakespeare training play) to four kinds at about the
# same parameter count (192 -> 768 dense: 147,456 weights): lowrank:48 and monarch:4 (46,080),
# btt:2 (43,008), butterfly:4 (49,152). Results go to Checkpoints/projection-damage/results.jsonl
# (one line per checkpoint, kind and mode); finished lines are skipped, so the script resumes.
#   bash Recipes/projection-damage/damage.sh [RUN_FOLDER]
# KINDS overrides the four kinds (size.sh passes the ranks matched at other widths); STEPS, if set,
# limits it to those checkpoint steps (the log-spaced ones, not the rolling checkpoint); FL the binary.
set -euo pipefail
FL=${FL:-.build/release/factorlab}
KINDS=${KINDS:-lowrank:48 monarch:4 btt:2 butterfly:4}
RUN=${1:-Checkpoints/projection-damage/long}
OUT=Checkpoints/projection-damage
EVAL=Recipes/corpora/milton/comus_gut.txt
CALIB=Recipes/corpora/shakespeare/hamlet_gut.txt
TOK=Checkpoints/tokenizers/shakespeare-4096
RESULTS=$OUT/results.jsonl
mkdir -p "$OUT/projected"
touch "$RESULTS"
nll() { "$FL" eval --model "$1" --data "$EVAL" --tokenizer "$TOK" --json "${@:2}" 2>/dev/null | python3 -c "import json,sys;print(json.load(sys.stdin)['nll_per_token'])"; }
record() { python3 -c "import json,sys;print(json.dumps(dict(run='$RUN', step=int(sys.argv[1]), kind=sys.argv[2], mode=sys.argv[3], nll=float(sys.argv[4]))))" "$@" >> "$RESULTS"; }
have() { grep -q "\"run\": \"$RUN\", \"step\": $1, \"kind\": \"$2\", \"mode\": \"$3\"" "$RESULTS"; }
for ckpt in $(ls "$RUN"/ckpt-*.h5 | sort); do
  step=$((10#$(basename "$ckpt" .h5 | sed 's/ckpt-//')))
  [ -n "${STEPS:-}" ] && [[ " $STEPS " != *" $step "* ]] && continue
  have "$step" dense none || record "$step" dense none "$(nll "$ckpt")"
  have "$step" dense ablated || record "$step" dense ablated "$(nll "$ckpt" --ablate-mlp)"
  for kind in $KINDS; do
    for mode in data-free data-aware; do
      have "$step" "$kind" "$mode" && continue
      out="$OUT/projected/$(basename "$RUN")-$step-${kind/:/}-$mode.h5"
      extra=(); [ "$mode" = data-aware ] && extra=(--calibrate "$CALIB" --calib-tokens 16384)
      "$FL" factorize --model "$ckpt" --kind "$kind" --out "$out" --json "${extra[@]}" > "$out.json" 2>/dev/null
      record "$step" "$kind" "$mode" "$(nll "$out")"
      rm -f "$out"
    done
  done
  echo "step $step done" >&2
done
