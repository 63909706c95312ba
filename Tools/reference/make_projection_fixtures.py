#!/usr/bin/env python3
"""Writes the numpy reference for Factorlab's data-aware (whitened) low-rank projection.

Run from the repository root (needs numpy; the output is committed, CI never runs this):

    python3 Tools/reference/make_projection_fixtures.py

whitened_lowrank.json: W [12, 10], calibration inputs X [40, 10] of rank 6 (so X^T X is singular
and the damping matters), rank 3. The SVD-LLM closed form with Factorlab's stated damping:
G = X^T X + lambda I, lambda = 1e-4 * mean(diag(X^T X)); G = L L^T; W L = U S V^T;
W' = U_r S_r V_r^T L^{-1}. Stored: W, X, W' and the relative output error
||(W - W') L||_F / ||W L||_F, which is the minimum over rank-3 matrices (Eckart-Young on W L).
Computed in float64, stored as float32 (the error as float64 through its own entry).
"""
import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "FactorlabLayersTests", "Fixtures")


def dump(path, tensors):
    obj = {name: {"shape": list(t.shape), "data": [float(v) for v in np.asarray(t, dtype=np.float64).reshape(-1)]}
           for name, t in tensors.items()}
    with open(path, "w") as f:
        json.dump(obj, f)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    rng = np.random.default_rng(2026)
    w = rng.standard_normal((12, 10)).astype(np.float32)
    x = (rng.standard_normal((40, 6)) @ rng.standard_normal((6, 10))).astype(np.float32)
    w64, x64 = w.astype(np.float64), x.astype(np.float64)
    g = x64.T @ x64
    lam = 1e-4 * np.mean(np.diag(g))
    l = np.linalg.cholesky(g + lam * np.eye(10))
    u, s, vt = np.linalg.svd(w64 @ l)
    r = 3
    wl_r = (u[:, :r] * s[:r]) @ vt[:r]
    w_proj = wl_r @ np.linalg.inv(l)
    err = np.linalg.norm((w64 - w_proj) @ l) / np.linalg.norm(w64 @ l)
    dump(os.path.join(OUT, "whitened_lowrank.json"),
         {"w": w, "x": x, "w_projected": w_proj, "output_error": np.array([err]), "rank": np.array([r])})
