#!/usr/bin/env python3
"""Writes FactorlabStudy's fixture runs (synthetic training records) and the values its tests expect.

Run from the repository root (needs numpy; CI does not, the outputs are committed):

    python3 Tools/reference/make_study_fixtures.py

The runs follow a Chinchilla-style law per accelerator family, with f = training FLOPs per token
(from the model shape) and D = tokens seen:

    L(f, D) = A * f^-alpha + B * D^-beta,      compute C = f * D.

Minimising over f at fixed C gives the family's compute-efficient frontier, a pure (Kaplan-style)
power law:

    L*(C) = a * C^-b,   b = alpha*beta / (alpha + beta),
                        a = (1 + alpha/beta) * A * (alpha*A / (beta*B))^(-alpha / (alpha + beta)),

and the model size that is optimal at C, f*(C) = (alpha*A / (beta*B))^(1/(alpha+beta)) * C^(beta/(alpha+beta)).
The compute multiplier of family X against dense at loss L is therefore known in closed form:

    C_dense(L) / C_X(L) = (a_dense / L)^(1/b_dense) / (a_X / L)^(1/b_X).

Each run is trained to 2.5x the compute at which its size is optimal, so the discrete sizes cover the
frontier between their tangent points (where the envelope of the discrete runs sits slightly above
L*: that and the noise are why the Swift tests recover a, b and the multiplier within a tolerance,
not exactly). Noise: a per-run offset (sd 0.008 nats, the "seed") and per-point noise (sd 0.003).

Outputs, in Tests/FactorlabStudyTests/Fixtures/:

  runs/<name>/run.json, metrics.jsonl, summary.json   in the trainer's record format:
      dense      4L-128d, 4L-192d, 4L-256d       x seeds 0, 1
      monarch:4  4L-192d, 4L-256d, 4L-384d       x seeds 0, 1   (inference latency/memory in run.json)
      lowrank:32 4L-192d arms for the local-minimum experiment:
                 "scratch" (seeds 0, 1), "projected+trained" (seeds 0, 1), "projected" (seed 0, evaluated
                 once at 0 FLOPs)
      dense-4L-128d-noval                           a run with no validation points (must be excluded)
  expected.json   the generating laws (a, b per family, alpha, beta, A, B), the budget recommendations
                  computed here independently (seed-mean curves, lowest val loss at <= budget), and a
                  numpy re-implementation of the frontier + fit of FactorlabStudy (StudyFrontier,
                  PowerLawFit) on the same data, which the Swift tests match to 1e-9.
"""
import json
import math
import os
import shutil

import numpy as np

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "FactorlabStudyTests", "Fixtures")
VOCAB = 50257
CTX = 256
TOKENS_PER_STEP = 8 * CTX

# Family laws (f in FLOPs/token, D in tokens). Dense is the baseline; Monarch has a steeper frontier,
# so it loses at small budgets and wins at large ones; low-rank from scratch is stuck higher.
LAWS = {
    "dense":      dict(A=13.8, alpha=0.10, B=18.6, beta=0.14, throughput=2.0e10),
    "monarch:4":  dict(A=21.9, alpha=0.12, B=45.4, beta=0.20, throughput=1.4e10),
    "lowrank:32": dict(A=15.0, alpha=0.10, B=18.6, beta=0.14, throughput=1.6e10),
}
SIZES = {"dense": [128, 192, 256], "monarch:4": [192, 256, 384]}
SEEDS = [0, 1]
N_LAYER = 4


def frontier_law(family):
    p = LAWS[family]
    A, al, B, be = p["A"], p["alpha"], p["B"], p["beta"]
    b = al * be / (al + be)
    a = (1 + al / be) * A * (al * A / (be * B)) ** (-al / (al + be))
    return a, b


def optimal_compute(family, f):
    """C at which size f is compute-optimal: f*(C) = f."""
    p = LAWS[family]
    A, al, B, be = p["A"], p["alpha"], p["B"], p["beta"]
    k = (al * A / (be * B)) ** (1 / (al + be))
    return (f / k) ** ((al + be) / be)


def mlp_params(family, d):
    """MLP weights per layer: two matrices d x 4d and 4d x d (biases ignored)."""
    if family == "dense":
        return 8 * d * d
    if family.startswith("monarch:"):  # each matrix: two block-diagonal factors, 2 * (4d^2) / nblocks
        return 2 * 2 * 4 * d * d // int(family.split(":")[1])
    if family.startswith("lowrank:"):  # each matrix: rank r factors, r * (d + 4d)
        return 2 * int(family.split(":")[1]) * (d + 4 * d)
    raise ValueError(family)


def model_numbers(family, d):
    mlp = mlp_params(family, d)
    per_layer = 4 * d * d + mlp + 4 * d
    non_embedding = N_LAYER * per_layer + 2 * d
    parameters = non_embedding + VOCAB * d + CTX * d
    flops_per_token = 6 * (non_embedding + VOCAB * d) + 6 * N_LAYER * CTX * d
    return parameters, non_embedding, float(flops_per_token)


def size_label(d):
    return f"{N_LAYER}L-{d}d"


def write_run(name, family, d, seed, arm, steps, eval_every, log_every, loss_at, rng, inference=None, summary=True,
              with_val=True, start_step=None):
    parameters, non_embedding, fpt = model_numbers(family, d)
    throughput = LAWS[family]["throughput"] * (1 + 0.01 * seed)
    tokens_per_s = throughput / fpt
    run = {
        "name": name, "family": family,
        "model": {"n_layer": N_LAYER, "n_embd": d, "n_head": d // 64, "n_positions": CTX, "vocab_size": VOCAB,
                  "mlp": "dense" if family == "dense" else family},
        "parameters": parameters, "non_embedding_parameters": non_embedding, "flops_per_token": fpt, "seed": seed,
    }
    if arm is not None:
        run["arm"] = arm
    if inference is not None:
        run["inference"] = inference
    folder = os.path.join(ROOT, "runs", name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "run.json"), "w") as fh:
        json.dump(run, fh, indent=2)
        fh.write("\n")
    lines = []
    points = []
    offset = rng.normal(0, 0.008)
    first = log_every if start_step is None else start_step
    for step in range(first, steps + 1, log_every) if steps > 0 else [0]:
        tokens = step * TOKENS_PER_STEP
        flops = fpt * tokens
        wall = tokens / tokens_per_s * (1 + 0.002 * math.sin(step))
        clean = loss_at(tokens)
        train = clean + offset + rng.normal(0, 0.01) - 0.01
        progress = step / steps if steps > 0 else 0
        line = {"step": step, "tokens": tokens, "train_loss": round(train, 6)}
        if with_val and (steps == 0 or step % eval_every == 0):
            val = clean + offset + rng.normal(0, 0.003)
            line["val_loss"] = val
            points.append((step, flops, wall, val))
        line.update({"lr": 6e-4 * 0.5 * (1 + math.cos(math.pi * progress)), "grad_norm": round(0.4 + 2.0 / (1 + step / 200), 6),
                     "tokens_per_s": tokens_per_s, "wall_s": wall, "flops": flops})
        lines.append(json.dumps(line))
    with open(os.path.join(folder, "metrics.jsonl"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    if summary and points:
        vals = [p[3] for p in points]
        s = {"final_val_loss": vals[-1], "best_val_loss": min(vals), "steps": steps, "tokens": steps * TOKENS_PER_STEP,
             "wall_s": points[-1][2], "flops": points[-1][1], "peak_memory_bytes": int(3.0e8 + 40 * parameters)}
        with open(os.path.join(folder, "summary.json"), "w") as fh:
            json.dump(s, fh, indent=2)
            fh.write("\n")
    return {"name": name, "family": family, "size": size_label(d), "seed": seed, "arm": arm, "points": points}


def law_loss(family, fpt):
    p = LAWS[family]
    return lambda D: p["A"] * fpt ** -p["alpha"] + p["B"] * max(D, 1.0) ** -p["beta"]


# ----- the analysis, re-implemented in numpy (must match Sources/FactorlabStudy exactly) -----

GRID_PER_DECADE = 16


def mean_curves(runs):
    """Seed-mean curve per (family, size) group; seeds share their step schedule."""
    groups = {}
    for r in runs:
        groups.setdefault((r["family"], r["size"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        steps = [p[0] for p in rs[0]["points"]]
        assert all([p[0] for p in r["points"]] == steps for r in rs)
        xs = np.mean([[p[1] for p in r["points"]] for r in rs], axis=0)
        ls = np.mean([[p[3] for p in r["points"]] for r in rs], axis=0)
        out[key] = (xs, ls)
    return out


def frontier(curves):
    """Lower envelope of the group curves on a log grid (16 points per decade), then a running minimum."""
    xmin = min(c[0][0] for c in curves)
    xmax = max(c[0][-1] for c in curves)
    n = max(2, math.ceil(GRID_PER_DECADE * math.log10(xmax / xmin)) + 1)
    grid = [math.exp(math.log(xmin) + (math.log(xmax) - math.log(xmin)) * i / (n - 1)) for i in range(n)]
    grid[0], grid[-1] = xmin, xmax
    fx, fl = [], []
    for x in grid:
        vals = []
        for xs, ls in curves:
            if xs[0] <= x <= xs[-1]:
                vals.append(float(np.interp(math.log(x), np.log(xs), ls)))
        if vals:
            fx.append(x)
            fl.append(min(vals))
    fl = list(np.minimum.accumulate(fl))
    return fx, fl


def fit(curves):
    fx, fl = frontier(curves)
    start = min(c[0][-1] for c in curves)
    pts = [(x, l) for x, l in zip(fx, fl) if x >= start]
    if len(pts) < 4:
        pts = list(zip(fx, fl))
    lx = np.log([p[0] for p in pts])
    ll = np.log([p[1] for p in pts])
    slope, intercept = np.polyfit(lx, ll, 1)
    a, b = math.exp(intercept), -slope
    pred = a * np.exp(lx) ** -b
    rms = float(np.sqrt(np.mean((np.exp(ll) - pred) ** 2)))
    return {"a": a, "b": b, "points": len(pts), "rms": rms, "start": pts[0][0], "end": pts[-1][0],
            "frontier_x": fx, "frontier_loss": fl}


def best_within(curve, budget):
    xs, ls = curve
    vals = [l for x, l in zip(xs, ls) if x <= budget]
    return min(vals) if vals else None


def main():
    if os.path.isdir(os.path.join(ROOT, "runs")):
        shutil.rmtree(os.path.join(ROOT, "runs"))
    rng = np.random.default_rng(20240601)
    records = []
    for family, sizes in SIZES.items():
        for d in sizes:
            fpt = model_numbers(family, d)[2]
            c_opt = optimal_compute(family, fpt)
            tokens = 2.5 * c_opt / fpt
            steps = int(round(tokens / TOKENS_PER_STEP / 400)) * 400
            for seed in SEEDS:
                inference = None
                if seed == 0:
                    params = model_numbers(family, d)[0]
                    speed = 1.0 if family == "dense" else 0.8
                    inference = {"latency_ms_per_token": round(speed * (0.9 + fpt / 3.0e7 / 2), 4),
                                 "peak_memory_bytes": int(5.0e7 + 4 * params)}
                records.append(write_run(f"{family.replace(':', '')}-{size_label(d)}-s{seed}", family, d, seed, None,
                                         steps, steps // 20, steps // 40, law_loss(family, fpt), rng, inference))

    # Local-minimum experiment at 4L-192d: low-rank from scratch vs projected from the dense 4L-192d.
    d = 192
    dense_fpt = model_numbers("dense", d)[2]
    dense_steps = [r for r in records if r["family"] == "dense" and r["size"] == size_label(d)]
    lr_fpt = model_numbers("lowrank:32", d)[2]
    dense_tokens_final = max(p[1] for p in dense_steps[0]["points"]) / dense_fpt
    steps = int(round(dense_tokens_final * dense_fpt / lr_fpt / TOKENS_PER_STEP / 400)) * 400
    arm_records = []
    for seed in SEEDS:
        arm_records.append(write_run(f"lowrank32-{size_label(d)}-scratch-s{seed}", "lowrank:32", d, seed, "scratch",
                                     steps, steps // 20, steps // 40, law_loss("lowrank:32", lr_fpt), rng))
        dense_law = law_loss("dense", dense_fpt)
        projected = lambda D, dl=dense_law: dl(dense_tokens_final + D) + 0.015 + 0.5 * math.exp(-D / 4.0e6)
        arm_records.append(write_run(f"lowrank32-{size_label(d)}-projtrained-s{seed}", "lowrank:32", d, seed,
                                     "projected+trained", steps, steps // 20, steps // 40, projected, rng))
    arm_records.append(write_run(f"lowrank32-{size_label(d)}-projected-s0", "lowrank:32", d, 0, "projected", 0, 1, 1,
                                 lambda D: law_loss("dense", dense_fpt)(dense_tokens_final) + 0.55, rng, summary=False))
    # A run whose metrics carry no validation loss: reported and excluded.
    fpt = model_numbers("dense", 128)[2]
    write_run("dense-4L-128d-noval", "dense", 128, 2, None, 800, 400, 100, law_loss("dense", fpt), rng, with_val=False)

    # Expected values.
    curves = mean_curves(records + [r for r in arm_records if r["arm"] == "scratch"])
    families = sorted({k[0] for k in curves})
    fits = {}
    for fam in families:
        fam_curves = [curves[k] for k in sorted(curves) if k[0] == fam]
        if len(fam_curves) >= 3:
            fits[fam] = fit(fam_curves)
    budgets = [2.0e15, 4.0e15, 1.0e16, 3.0e16]
    recs = []
    for budget in budgets:
        best = []
        for key in sorted(curves):
            v = best_within(curves[key], budget)
            if v is not None:
                best.append((v, key))
        best.sort()
        dense = [b for b in best if b[1][0] == "dense"]
        accel = [b for b in best if b[1][0] != "dense"]
        recs.append({"budget": budget, "winner": {"family": best[0][1][0], "size": best[0][1][1], "loss": best[0][0]},
                     "runner_up": {"family": best[1][1][0], "size": best[1][1][1], "loss": best[1][0]},
                     "best_dense": {"family": "dense", "size": dense[0][1][1], "loss": dense[0][0]},
                     "best_accelerated": ({"family": accel[0][1][0], "size": accel[0][1][1], "loss": accel[0][0]}
                                          if accel else None),
                     "accelerator_wins": bool(accel and accel[0][0] < dense[0][0])})
    # Local-minimum arms at equal compute: the smallest final FLOPs among trained arms and the dense
    # reference (dense 4L-192d); each seed's lowest val loss at <= that compute, mean over seeds.
    arm_groups = {}
    for r in arm_records:
        arm_groups.setdefault(r["arm"], []).append(r)
    arm_groups["dense"] = dense_steps
    finals = [min(r["points"][-1][1] for r in rs) for rs in arm_groups.values()]
    equal_compute = min(f for f in finals if f > 0)
    arms = {}
    for arm, rs in arm_groups.items():
        # Points up to 0.5% above the common compute count as at it (budgets are spent in whole steps).
        losses = [min(p[3] for p in r["points"] if p[1] <= equal_compute * 1.005) for r in rs]
        arms[arm] = {"loss": float(np.mean(losses)), "spread": float(np.std(losses, ddof=1)) if len(losses) > 1 else None,
                     "runs": [r["name"] for r in rs]}

    laws = {}
    for fam in LAWS:
        a, b = frontier_law(fam)
        laws[fam] = dict(LAWS[fam], a=a, b=b)
    expected = {
        "laws": laws,
        "fits": {fam: {k: v for k, v in f.items()} for fam, f in fits.items()},
        "budgets": recs,
        "local_minimum": {"compute": equal_compute, "arms": arms},
        "run_count": len(records) + len(arm_records) + 1,
    }
    with open(os.path.join(ROOT, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=1)
        fh.write("\n")
    for fam, f in fits.items():
        print(f"{fam}: fit a={f['a']:.4f} b={f['b']:.5f} (law a={laws[fam]['a']:.4f} b={laws[fam]['b']:.5f}) "
              f"rms={f['rms']:.4f} range {f['start']:.3e}..{f['end']:.3e}")
    ad, bd = laws["dense"]["a"], laws["dense"]["b"]
    am, bm = laws["monarch:4"]["a"], laws["monarch:4"]["b"]
    for L in np.linspace(3.5, 3.9, 5):
        print(f"L={L:.2f}: analytic multiplier {(ad / L) ** (1 / bd) / (am / L) ** (1 / bm):.3f}, "
              f"fit {(fits['dense']['a'] / L) ** (1 / fits['dense']['b']) / (fits['monarch:4']['a'] / L) ** (1 / fits['monarch:4']['b']):.3f}")
    for r in recs:
        print(r["budget"], r["winner"], r["best_dense"]["size"], r["accelerator_wins"])


if __name__ == "__main__":
    main()
