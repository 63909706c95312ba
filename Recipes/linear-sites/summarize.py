#!/usr/bin/env python3
"""Summarizes Recipes/linear-sites/run.sh: copies each run's small records (run.json, summary.json,
metrics.jsonl; no checkpoints) to docs/linear-sites/runs/ and prints the Markdown table of
docs/linear-sites.md (final validation loss per seed, mean and half-range over seeds).

    python3 Recipes/linear-sites/summarize.py [Checkpoints/linear-sites]
"""
import json
import os
import shutil
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "Checkpoints/linear-sites"
DST = "docs/linear-sites/runs"
ARMS = ["dense", "monarch-mlp", "monarch-all", "btt-all", "btt-norm-all"]

rows = {}
for name in sorted(os.listdir(SRC)):
    folder = os.path.join(SRC, name)
    if not os.path.isfile(os.path.join(folder, "summary.json")):
        continue
    os.makedirs(os.path.join(DST, name), exist_ok=True)
    for f in ("run.json", "summary.json", "metrics.jsonl"):
        shutil.copy(os.path.join(folder, f), os.path.join(DST, name, f))
    run = json.load(open(os.path.join(folder, "run.json")))
    summary = json.load(open(os.path.join(folder, "summary.json")))
    rows.setdefault(run["arm"], []).append((run, summary))

# Wall time and the inference record are not tabulated: the runs shared the cores with other work.
print("| arm | spec | parameters | steps | training PFLOP | final val loss (seeds) | mean ± half-range |")
print("|---|---|---:|---:|---:|---|---|")
for arm in ARMS:
    if arm not in rows:
        continue
    runs = rows[arm]
    losses = [s["final_val_loss"] for _, s in runs]
    mean = sum(losses) / len(losses)
    half = (max(losses) - min(losses)) / 2
    run, summary = runs[0]
    print(f"| {arm} | `{run['family']}` | {run['parameters']:,} | {summary['steps']} | {summary['flops'] / 1e15:.4f} | "
          f"{', '.join(f'{x:.4f}' for x in losses)} | {mean:.4f} ± {half:.4f} |")
