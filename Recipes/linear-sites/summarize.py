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

print("| arm | spec | parameters | steps | training PFLOP | final val loss (seeds) | mean ± half-range | wall s (mean) | ms/token (batch 1) |")
print("|---|---|---:|---:|---:|---|---|---:|---:|")
for arm in ARMS:
    if arm not in rows:
        continue
    runs = rows[arm]
    losses = [s["final_val_loss"] for _, s in runs]
    mean = sum(losses) / len(losses)
    half = (max(losses) - min(losses)) / 2
    run, summary = runs[0]
    latency = [r.get("inference", {}).get("latency_ms_per_token") for r, _ in runs]
    latency = [x for x in latency if x is not None]
    lat = f"{sum(latency) / len(latency):.2f}" if latency else "-"
    wall = sum(s["wall_s"] for _, s in runs) / len(runs)
    print(f"| {arm} | `{run['family']}` | {run['parameters']:,} | {summary['steps']} | {summary['flops'] / 1e15:.3f} | "
          f"{', '.join(f'{x:.4f}' for x in losses)} | {mean:.4f} ± {half:.4f} | {wall:.0f} | {lat} |")
