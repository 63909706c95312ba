#!/usr/bin/env python3
"""Tables and plots of the projection-damage experiment (docs/projection.md) from
Checkpoints/projection-damage/results.jsonl (damage.sh) and the kept checkpoints of the long run.

    python3 Recipes/projection-damage/analyze.py      # needs numpy, h5py, matplotlib

Writes docs/projection/: damage.md (the tables), damage.svg (normalized damage against training
tokens, data-free and data-aware, per kind), spectrum.svg (stable rank and top-48 energy of each MLP
weight against training tokens), records/ (results.jsonl, every projection's per-layer errors, each
run's run.json, summary.json and metrics.jsonl thinned to its validation rows and every 50th step). Normalized damage of a projection is
(NLL_projected - NLL_dense) / (NLL_ablated - NLL_dense): 0 harmless, 1 as bad as no MLP at all.
"""
import glob
import json
import os
import shutil
import sys

import h5py
import numpy as np

import matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

SRC = "Checkpoints/projection-damage"
RUN = os.path.join(SRC, "long")
DOCS = "docs/projection"
TOKENS_PER_STEP = 16 * 128
KINDS = ["lowrank:48", "monarch:4", "btt:2", "butterfly:4"]  # at width 192; other widths use lowrank:d/4 (size.sh)

rows = [json.loads(line) for line in open(os.path.join(SRC, "results.jsonl")) if line.strip()]
by = {}
for r in rows:
    by[(r["run"], r["step"], r["kind"], r["mode"])] = r["nll"]
runs = sorted({r["run"] for r in rows})
os.makedirs(os.path.join(DOCS, "records", "projections"), exist_ok=True)
shutil.copy(os.path.join(SRC, "results.jsonl"), os.path.join(DOCS, "records", "results.jsonl"))
for f in glob.glob(os.path.join(SRC, "projected", "*.json")):
    shutil.copy(f, os.path.join(DOCS, "records", "projections", os.path.basename(f)))
def copy_record(src, dst):
    """run.json and summary.json as they are; metrics.jsonl thinned to every validation row and
    every 50th step (the full file of a 20,000-step run is 4 MB)."""
    if not src.endswith("metrics.jsonl"):
        shutil.copy(src, dst)
        return
    with open(src) as fin, open(dst, "w") as fout:
        for line in fin:
            r = json.loads(line)
            if r.get("val_loss") is not None or r.get("step", 0) % 50 == 0:
                fout.write(line)


for f in ("run.json", "summary.json", "metrics.jsonl"):
    if os.path.exists(os.path.join(RUN, f)):
        copy_record(os.path.join(RUN, f), os.path.join(DOCS, "records", f))
    for other in runs:
        if other != RUN and os.path.exists(os.path.join(other, f)):
            os.makedirs(os.path.join(DOCS, "records", os.path.basename(other)), exist_ok=True)
            copy_record(os.path.join(other, f), os.path.join(DOCS, "records", os.path.basename(other), f))


def kind_in(run, kind):
    """The run's own spelling of a column's kind: low rank is d/4 at every width."""
    if kind.startswith("lowrank:"):
        return next((r["kind"] for r in rows if r["run"] == run and r["kind"].startswith("lowrank:")), kind)
    return kind


def damage(run, step, kind, mode):
    kind = kind_in(run, kind)
    d, a, p = by.get((run, step, "dense", "none")), by.get((run, step, "dense", "ablated")), by.get((run, step, kind, mode))
    if None in (d, a, p) or a == d:
        return None
    return (p - d) / (a - d)


out = ["| run | step | tokens | NLL dense | NLL MLP-ablated | " + " | ".join(f"{'lowrank:d/4' if k.startswith('lowrank') else k} free / aware" for k in KINDS) + " |",
       "|---|---:|---:|---:|---:|" + "---|" * len(KINDS)]
for run in runs:
    for step in sorted({r["step"] for r in rows if r["run"] == run}):
        cells = []
        for k in KINDS:
            f, a = damage(run, step, k, "data-free"), damage(run, step, k, "data-aware")
            cells.append(" / ".join("-" if x is None else f"{x:.3f}" for x in (f, a)))
        out.append(f"| {os.path.basename(run)} | {step} | {step * TOKENS_PER_STEP / 1e6:.2f}M | {by.get((run, step, 'dense', 'none'), float('nan')):.4f} | "
                   f"{by.get((run, step, 'dense', 'ablated'), float('nan')):.4f} | " + " | ".join(cells) + " |")

# Spectra of the MLP weights of every kept checkpoint of the long run.
spec = []
for path in sorted(glob.glob(os.path.join(RUN, "ckpt-*.h5"))):
    step = int(os.path.basename(path)[5:-3])
    with h5py.File(path, "r") as f:
        for name in sorted(f["params"].keys()):
            if (".mlp.c_fc.weight" in name or ".mlp.c_proj.weight" in name) and f["params"][name].ndim == 2:
                w = np.asarray(f["params"][name], dtype=np.float64)
                s = np.linalg.svd(w, compute_uv=False)
                spec.append({"step": step, "name": name, "stable_rank": float((s ** 2).sum() / s[0] ** 2),
                             "top48_energy": float((s[:48] ** 2).sum() / (s ** 2).sum())})
json.dump(spec, open(os.path.join(DOCS, "records", "spectrum.json"), "w"), indent=1)
out += ["", "| step | tokens | " + " | ".join(sorted({s['name'] for s in spec})) + " |",
        "|---:|---:|" + "---|" * len({s['name'] for s in spec})]
for step in sorted({s["step"] for s in spec}):
    cells = [f"{s['stable_rank']:.1f} / {s['top48_energy']:.2f}" for s in sorted((s for s in spec if s["step"] == step), key=lambda s: s["name"])]
    out.append(f"| {step} | {step * TOKENS_PER_STEP / 1e6:.2f}M | " + " | ".join(cells) + " |")
open(os.path.join(DOCS, "damage.md"), "w").write("\n".join(out) + "\n")
print("\n".join(out))

fig, ax = plt.subplots(figsize=(7, 4))
for k, color in zip(KINDS, ["C0", "C1", "C2", "C3"]):
    for mode, style in (("data-free", "-"), ("data-aware", "--")):
        pts = [(s * TOKENS_PER_STEP, damage(RUN, s, k, mode)) for s in sorted({r["step"] for r in rows if r["run"] == RUN})]
        pts = [(t, d) for t, d in pts if d is not None]
        if pts:
            ax.plot([t for t, _ in pts], [d for _, d in pts], style, color=color, marker="o", ms=3, label=f"{k} {mode}")
ax.set_xscale("log"); ax.set_xlabel("training tokens"); ax.set_ylabel("normalized damage"); ax.axhline(0, color="gray", lw=0.5)
ax.legend(fontsize=7); ax.set_title("Projecting every MLP of a trained model (held-out Milton, Comus)")
fig.tight_layout(); fig.savefig(os.path.join(DOCS, "damage.svg"))

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for name in sorted({s["name"] for s in spec}):
    pts = sorted((s["step"] * TOKENS_PER_STEP, s) for s in spec if s["name"] == name)
    axes[0].plot([t for t, _ in pts], [s["stable_rank"] for _, s in pts], marker="o", ms=2, label=name)
    axes[1].plot([t for t, _ in pts], [s["top48_energy"] for _, s in pts], marker="o", ms=2, label=name)
for a, label in zip(axes, ["stable rank ||W||_F^2 / ||W||_2^2", "energy in the top 48 singular values"]):
    a.set_xscale("log"); a.set_xlabel("training tokens"); a.set_ylabel(label)
axes[0].legend(fontsize=6)
fig.tight_layout(); fig.savefig(os.path.join(DOCS, "spectrum.svg"))

# Recovery (recovery.sh): validation loss along finetuning of each projected checkpoint, against the
# dense checkpoint's own validation loss on the same batches; steps until within 1% of it.
rec_md = []
for rec in sorted(glob.glob(os.path.join(SRC, "recovery-*"))):
    step = int(rec.rsplit("-", 1)[1])
    def curve(arm):
        p = os.path.join(rec, arm, "metrics.jsonl")
        if not os.path.exists(p):
            return []
        return [(r["step"], r["val_loss"]) for r in map(json.loads, filter(str.strip, open(p))) if r.get("val_loss") is not None]
    dense = curve("dense")
    if not dense:
        continue
    ref = dense[0][1]
    arms = sorted(d for d in os.listdir(rec) if os.path.isdir(os.path.join(rec, d)) and d not in ("dense", "tokenizer"))
    dst = os.path.join(DOCS, "records", os.path.basename(rec))
    for arm in ["dense"] + arms:
        os.makedirs(os.path.join(dst, arm), exist_ok=True)
        for f in ("run.json", "summary.json", "metrics.jsonl"):
            if os.path.exists(os.path.join(rec, arm, f)):
                copy_record(os.path.join(rec, arm, f), os.path.join(dst, arm, f))
        if os.path.exists(os.path.join(rec, arm + ".h5.json")):
            shutil.copy(os.path.join(rec, arm + ".h5.json"), os.path.join(dst, arm + ".projection.json"))
    rec_md += [f"Recovery from step {step}: dense validation loss {ref:.4f}; the 1% line is {ref * 1.01:.4f}.", "",
               "| arm | val loss at 0 | at 50 | at 100 | at 200 | at 400 | steps to within 1% of dense |",
               "|---|---:|---:|---:|---:|---:|---|"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, arm in enumerate(arms):
        c = dict(curve(arm))
        within = next((s for s, v in sorted(c.items()) if v <= ref * 1.01), None)
        last = max(c) if c else 0
        cells = [f"{c[s]:.4f}" if s in c else "-" for s in (0, 50, 100, 200, 400)]
        rec_md.append(f"| {arm} | " + " | ".join(cells) + f" | {within if within is not None else f'not within {last} steps ({(c[last] / ref - 1) * 100:.1f}% above)'} |")
        ax.plot(sorted(c), [c[s] for s in sorted(c)], "--" if "aware" in arm else "-", color=f"C{i // 2}", label=arm)
    ax.axhline(ref, color="k", lw=0.8, label="dense checkpoint")
    ax.axhline(ref * 1.01, color="gray", lw=0.5, ls=":", label="dense + 1%")
    ax.set_yscale("log"); ax.set_xlabel("finetuning steps (2,048 tokens each)"); ax.set_ylabel("validation loss (nats/token)")
    ax.legend(fontsize=7); ax.set_title(f"Recovery of projected checkpoints (step {step})")
    fig.tight_layout(); fig.savefig(os.path.join(DOCS, f"recovery-{step}.svg"))
if rec_md:
    open(os.path.join(DOCS, "recovery.md"), "w").write("\n".join(rec_md) + "\n")
    print("\n".join(rec_md))
