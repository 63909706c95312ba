#!/usr/bin/env python3
"""Side-by-side benchmark: Factorlab versus PyTorch eager on the same shapes, in one run.

    python3 Tools/bench/compare_torch.py [--repeats 5] [--factorlab .build/release/factorlab]

Needs torch (CPU). It runs the PyTorch versions first (2 threads), then `factorlab bench --json`
on the same shapes, and prints both with the ratio (speed-up of Factorlab over PyTorch: > 1 means
Factorlab is faster). Measures:
  - square sgemm 2048^3 (torch.mm) vs Factorlab's matmul and raw cblas_sgemm;
  - the GPT-2-small MLP (768 -> 3072 -> 768, GELU tanh, 2048 tokens) forward+backward, dense and
    Monarch (nblocks 4; two batched matmuls plus the reshape-transposes, as in the reference
    implementation), low-rank (rank 192) and butterfly (log2 n factors of 2x2 twiddles);
  - the causal attention core (12 heads, d 768, B*T = 2048) forward+backward at T = 128..1024
    (PyTorch: scaled_dot_product_attention with is_causal=True).
Timings are the median of --repeats runs after one warm-up.
"""
import argparse
import json
import math
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F


def median_time(fn, repeats):
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def monarch(x, w1, w2):
    # x: (N, n); w1: (k, q, p); w2: (k, s, r) with r = q (reference: blockdiag_butterfly_multiply, version 2)
    n_tok, n = x.shape
    k, q, p = w1.shape
    _, s, r = w2.shape
    out1 = torch.bmm(x.view(n_tok, k, p).transpose(0, 1), w1.transpose(1, 2))      # (k, N, q)
    out1 = out1.transpose(0, 1).reshape(n_tok, r, k).transpose(1, 2).transpose(0, 1)  # (k, N, r)
    out2 = torch.bmm(out1, w2.transpose(1, 2))                                      # (k, N, s)
    return out2.permute(1, 2, 0).reshape(n_tok, s * k)


def butterfly(x, tw, n_out):
    # tw: (stack, L, n/2, 2, 2), strides 1, 2, ..., n/2
    n_tok, n_in = x.shape
    stack, L, half = tw.shape[0], tw.shape[1], tw.shape[2]
    n = 2 * half
    h0 = F.pad(x, (0, n - n_in))
    outs = []
    for s in range(stack):
        h = h0
        for t in range(L):
            st = 1 << t
            h = h.view(n_tok, n // (2 * st), 2, st)
            a, b = h[:, :, 0, :], h[:, :, 1, :]
            T = tw[s, t].view(n // (2 * st), st, 2, 2).permute(0, 2, 3, 1)
            y0 = T[:, 0, 0] * a + T[:, 0, 1] * b
            y1 = T[:, 1, 0] * a + T[:, 1, 1] * b
            h = torch.stack([y0, y1], dim=2).reshape(n_tok, n)
        outs.append(h)
    return torch.cat(outs, dim=1)[:, :n_out]


def torch_figures(repeats):
    torch.set_num_threads(2)
    out = {}
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    t = median_time(lambda: torch.mm(a, b), repeats)
    out["gemm.2048.gflops"] = 2 * 2048 ** 3 / t / 1e9
    d, tokens = 768, 2048
    x = torch.randn(tokens, d, requires_grad=True)

    def run_mlp(fc, proj):
        def step():
            y = proj(F.gelu(fc(x), approximate="tanh"))
            y.backward(torch.ones_like(y))
        return step

    lin1, lin2 = torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d)
    out["mlp.dense.ms"] = median_time(run_mlp(lin1, lin2), repeats) * 1e3
    w1a = torch.randn(4, 192, 192, requires_grad=True); w2a = torch.randn(4, 768, 192, requires_grad=True)
    w1b = torch.randn(4, 192, 768, requires_grad=True); w2b = torch.randn(4, 192, 192, requires_grad=True)
    out["mlp.monarch.ms"] = median_time(run_mlp(lambda z: monarch(z, w1a, w2a), lambda z: monarch(z, w1b, w2b)), repeats) * 1e3
    u1, v1 = torch.randn(4 * d, 192, requires_grad=True), torch.randn(192, d, requires_grad=True)
    u2, v2 = torch.randn(d, 192, requires_grad=True), torch.randn(192, 4 * d, requires_grad=True)
    out["mlp.lowrank.ms"] = median_time(run_mlp(lambda z: z @ v1.t() @ u1.t(), lambda z: z @ v2.t() @ u2.t()), repeats) * 1e3
    tw1 = torch.randn(3, 10, 512, 2, 2, requires_grad=True); tw2 = torch.randn(1, 12, 2048, 2, 2, requires_grad=True)
    out["mlp.butterfly.ms"] = median_time(run_mlp(lambda z: butterfly(z, tw1, 3072), lambda z: butterfly(z, tw2, 768)), repeats) * 1e3
    for T in (128, 256, 512, 1024):
        B = max(1, 2048 // T)
        q, k, v = (torch.randn(B, 12, T, 64, requires_grad=True) for _ in range(3))

        def att():
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            y.backward(torch.ones_like(y))
        out[f"attention.T{T}.ms"] = median_time(att, repeats) * 1e3
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--factorlab", default=".build/release/factorlab")
    args = ap.parse_args()
    ref = torch_figures(args.repeats)
    fl = json.loads(subprocess.check_output([args.factorlab, "bench", "--suite", "gemm,mlp,attention", "--repeats", str(args.repeats), "--json"]))
    print(f"{'measure':<28}{'torch':>12}{'factorlab':>12}{'ratio':>9}")
    rows = [("gemm 2048^3 GFLOP/s", ref["gemm.2048.gflops"], fl["gemm.2048.framework_gflops"], True)]
    for kind in ("dense", "monarch", "lowrank", "butterfly"):
        rows.append((f"MLP {kind} ms", ref[f"mlp.{kind}.ms"], fl[f"mlp.{kind}.ms"], False))
    for T in (128, 256, 512, 1024):
        rows.append((f"attention T={T} ms", ref[f"attention.T{T}.ms"], fl[f"attention.T{T}.ms"], False))
    for name, a, b, higher_better in rows:
        ratio = b / a if higher_better else a / b
        print(f"{name:<28}{a:>12.2f}{b:>12.2f}{ratio:>8.2f}x")
    print(f"{'MLP monarch speed-up vs dense':<28}{ref['mlp.dense.ms'] / ref['mlp.monarch.ms']:>12.2f}{fl['mlp.monarch.speedup']:>12.2f}")
    print(f"raw cblas_sgemm 2048^3: {fl['gemm.2048.raw_gflops']:.1f} GFLOP/s; framework MLP overhead over its six raw GEMMs: {fl['mlp.dense.overhead_pct']:.1f}%")


if __name__ == "__main__":
    main()
