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
import re
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
    relabel_width_rank(src, dst)
    for f in ("summary.json", "sweep-status.json"):
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    if os.path.exists(os.path.join(src, "metrics.jsonl")):
        thin(os.path.join(src, "metrics.jsonl"), os.path.join(dst, "metrics.jsonl"))


def relabel_width_rank(src, dst):
    """run.json as it is, except: a run whose sweep value sized its rank by the width
    (model.linear=mlp=lowrank:d/4, point names ..._linear-mlp-lowrankd4_...) recorded, before the
    2026-12-02 fix, the resolved rank as its family (lowrank:16 at width 64); the copy records the
    written value, so the sizes form one family, as runs recorded after the fix do."""
    run = json.load(open(os.path.join(src, "run.json")))
    m = re.search(r"_linear-mlp-lowrankd(\d+)(_|$)", os.path.basename(src))
    if m and run.get("family", "").startswith("lowrank:"):
        run["family"] = f"mlp=lowrank:d/{m.group(1)}"
    with open(os.path.join(dst, "run.json"), "w") as f:
        json.dump(run, f, indent=2, sort_keys=True)


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
