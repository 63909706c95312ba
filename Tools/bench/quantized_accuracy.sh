#!/usr/bin/env bash
# Held-out perplexity of trained models with float32, bf16 and int8 weights (factorlab quantize):
# one JSON line per run and format on stdout, with the bytes of parameters.
#   Tools/bench/quantized_accuracy.sh RUN_FOLDER... > quantized-accuracy.jsonl
# DATA (default Milton's Comus, not in the Shakespeare training mix), TOK (tokenizer), FL (binary).
set -euo pipefail
FL=${FL:-.build/release/factorlab}
DATA=${DATA:-Recipes/corpora/milton/comus_gut.txt}
TOK=${TOK:-Checkpoints/tokenizers/shakespeare-4096}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for run in "$@"; do
  for w in float32 bf16 int8; do
    model="$run/best.h5"
    if [ "$w" != float32 ]; then
      "$FL" quantize --model "$model" --weights "$w" --out "$tmp/$w.h5" --json > "$tmp/q.json"
      model="$tmp/$w.h5"
    else
      echo '{}' > "$tmp/q.json"
    fi
    "$FL" eval --model "$model" --data "$DATA" --tokenizer "$TOK" --json 2>/dev/null > "$tmp/e.json"
    python3 - "$run" "$w" "$tmp/q.json" "$tmp/e.json" <<'PY'
import json, sys
run, w, q, e = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
print(json.dumps({"run": run, "weights": w, "nll_per_token": e["nll_per_token"], "perplexity": e["perplexity"],
                  "weight_bytes": q.get("weight_bytes"), "float32_bytes": q.get("float32_bytes")}))
PY
  done
done
