#!/usr/bin/env python3
"""Copies a sweep's small records into the repository, so its report re-renders from them:
each point's run.json (with its inference record), summary.json, sweep-status.json and
metrics.jsonl thinned to its validation rows and every 25th step (the budget curves read the
validation rows), the tuning runs under tune/, and tuning.json. Never checkpoints.

    python3 Recipes/study/collect.py Checkpoints/sweeps/campaign docs/study/runs
    .build/release/factorlab report docs/study/runs --out docs/study/report
"""
import json
import os
import shutil
import sys


def thin(src, dst):
    with open(src) as fin, open(dst, "w") as fout:
        for line in fin:
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("val_loss") is not None or r.get("step", 0) % 25 == 0:
                fout.write(line)


def copy_run(src, dst):
    os.makedirs(dst, exist_ok=True)
    for f in ("run.json", "summary.json", "sweep-status.json"):
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    if os.path.exists(os.path.join(src, "metrics.jsonl")):
        thin(os.path.join(src, "metrics.jsonl"), os.path.join(dst, "metrics.jsonl"))


def main(sweep, out):
    n = 0
    for root in (sweep, os.path.join(sweep, "tune")):
        if not os.path.isdir(root):
            continue
        for name in sorted(os.listdir(root)):
            src = os.path.join(root, name)
            if os.path.exists(os.path.join(src, "run.json")):
                copy_run(src, os.path.join(out, os.path.relpath(src, sweep)))
                n += 1
    if os.path.exists(os.path.join(sweep, "tuning.json")):
        shutil.copy(os.path.join(sweep, "tuning.json"), os.path.join(out, "tuning.json"))
    print(f"copied the records of {n} runs from {sweep} to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
