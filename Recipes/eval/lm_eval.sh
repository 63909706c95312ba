#!/usr/bin/env bash
# lm-evaluation-harness against `factorlab serve`, and the same task through `factorlab eval`:
#   bash Recipes/eval/lm_eval.sh MODEL [LM_EVAL]     (LM_EVAL default: .build/lm-eval/bin/lm_eval)
# Serves MODEL on a free port, runs the harness's local-completions model on
# Recipes/eval/lm-eval/milton_lambada.yaml (no hub access), prints its results, then compares its
# per-example log-likelihoods with `factorlab eval --task lambada --json` on the same file.
# max_length is the context + 1: the harness scores the last max_length - 1 tokens of context and
# continuation and asks for 1 generated token, which needs no position of its own, so it sees the
# same window of n_positions tokens as factorlab eval. MODEL is a run folder (its run.json gives the context).
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=$1
LM_EVAL=${2:-.build/lm-eval/bin/lm_eval}
FL=${FL:-.build/release/factorlab}
OUT=${OUT:-Checkpoints/eval/lm-eval}
mkdir -p "$OUT"
CONTEXT=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['model']['n_positions'])" "$MODEL/run.json")
"$FL" serve --model "$MODEL" --port 0 --name model 2> "$OUT/serve.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
until PORT=$(grep -o 'http://127.0.0.1:[0-9]*' "$OUT/serve.log" | head -1 | cut -d: -f3) && [ -n "$PORT" ] \
      && curl -sf "http://127.0.0.1:$PORT/health" > /dev/null; do sleep 0.2; done
HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 HF_HOME="$OUT/hf" "$LM_EVAL" --model local-completions \
  --model_args "model=model,base_url=http://127.0.0.1:$PORT/v1/completions,tokenized_requests=True,max_length=$((CONTEXT + 1))" \
  --tasks milton_lambada --include_path Recipes/eval/lm-eval --batch_size 4 --output_path "$OUT" --log_samples
"$FL" eval --model "$MODEL" --task lambada --data Recipes/eval/data/milton-lambada.jsonl --json > "$OUT/factorlab.json"
python3 - "$OUT" <<'PY'
import glob, json, math, sys
out = sys.argv[1]
own = json.load(open(f"{out}/factorlab.json"))["per_example"]
samples = sorted(glob.glob(f"{out}/**/samples_milton_lambada_*.jsonl", recursive=True))[-1]
h = {}
for line in open(samples):
    o = json.loads(line)
    ll, greedy = o["resps"][0][0]
    h[o["doc_id"]] = (float(ll), greedy == "True")
d = max(abs(h[i][0] - e["log_likelihood"]) for i, e in enumerate(own))
agree = sum(h[i][1] == e["greedy"] for i, e in enumerate(own))
fl = json.load(open(f"{out}/factorlab.json"))
res = json.load(open(sorted(glob.glob(f"{out}/**/results_*.json", recursive=True))[-1]))["results"]["milton_lambada"]
print(f"harness: acc {res['acc,none']:.4f}, perplexity {res['perplexity,none']:.6g}; "
      f"factorlab eval: accuracy {fl['accuracy']:.4f}, harness_perplexity {fl['harness_perplexity']:.6g} (target_perplexity per token {fl['target_perplexity']:.6g})")
print(f"{len(own)} examples: largest |log-likelihood difference| harness vs factorlab eval = {d:.2e}; greedy flags agree on {agree}/{len(own)}")
PY
