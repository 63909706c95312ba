#!/usr/bin/env python3
"""Writes PyTorch reference fixtures for Factorlab's structured linear layers.

Run from the repository root (needs torch; the outputs are committed, CI never runs this):

    python3 Tools/reference/make_layer_fixtures.py

monarch_*.json: the Monarch product as the reference implementation computes it
(HazyResearch fly, `blockdiag_butterfly_multiply_reference`, version 2, written with einsum and
reshapes), for a square (16->16, 4 blocks), an expanding (8->32, 4 blocks) and a shrinking
(32->8, 2 blocks) layer, with bias.
butterfly_*.json: a butterfly product written as an explicit sequence of sparse 2x2 mixing
factors (torch index arithmetic, independent of Factorlab's kernel), for a padded and stacked
layer (12->20, nblocks 2) and a square one (16->16).

btt_*.json: a block tensor-train layer (two cores) as Qiu et al.'s `FasterBTT` lays it out
(cores W0 [m1, m0, r n0] and W1 [n0, r m1, n1], the sizes split most evenly, smaller first),
computed here with einsum; the fixture stores the cores in Factorlab's [out, in] orientation
(last two axes swapped) and their gradients likewise. One case per rank (1, 2) and one with the
`btt_norm` cap active on the first core (gamma 1.3, 0.8).

Each file holds the inputs, the factors, the output and the gradients of L = sum(out * R) with
respect to x, every factor and the bias, computed in float64 and stored as float32.
"""
import json
import math
import os

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "FactorlabLayersTests", "Fixtures")


def dump(path, tensors):
    obj = {}
    for name, t in tensors.items():
        t = t.detach().to(torch.float32).contiguous()
        obj[name] = {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}
    with open(path, "w") as f:
        json.dump(obj, f)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def monarch_reference(x, w1, w2):
    """x: (batch, n); w1: (k, q, p) with k*p = n; w2: (l, s, r) with l*r = k*q. Output (batch, l*s)."""
    batch, n = x.shape
    k, q, p = w1.shape
    l, s, r = w2.shape
    xr = x.reshape(batch, k, p)
    out1 = torch.einsum("kqp,bkp->bkq", w1, xr)
    out1 = out1.reshape(batch, k * q).reshape(batch, r, l).transpose(1, 2)   # 'b (r l) -> b l r'
    out2 = torch.einsum("lsr,blr->bsl", w2, out1)
    return out2.reshape(batch, s * l)                                          # 'b s l -> b (s l)'


def monarch_case(gen, n, m, k):
    p = n // k
    s = m // k
    if n <= m:
        s1, s2 = (k, p, p), (k, s, p)
    else:
        s1, s2 = (k, s, p), (k, s, s)
    x = torch.randn(5, n, generator=gen)
    w1 = torch.randn(*s1, generator=gen) * 0.4
    w2 = torch.randn(*s2, generator=gen) * 0.4
    b = torch.randn(m, generator=gen) * 0.1
    r = torch.randn(5, m, generator=gen)
    leaves = [t.double().requires_grad_(True) for t in (x, w1, w2, b)]
    out = monarch_reference(leaves[0], leaves[1], leaves[2]) + leaves[3]
    (out * r.double()).sum().backward()
    return {"x": x, "blkdiag1": w1, "blkdiag2": w2, "bias": b, "R": r, "out": out,
            "grad.x": leaves[0].grad, "grad.blkdiag1": leaves[1].grad, "grad.blkdiag2": leaves[2].grad,
            "grad.bias": leaves[3].grad, "in_out": torch.tensor([n, m], dtype=torch.float32)}


def butterfly_reference(x, tw, in_features, out_features):
    """tw: (stack, nblocks, L, n/2, 2, 2). Block b applies strides 1..n/2 (b even) or n/2..1 (b odd)."""
    stack, nblocks, L, half, _, _ = tw.shape
    n = 2 * half
    xp = torch.cat([x, x.new_zeros(x.shape[0], n - in_features)], dim=1)
    outs = []
    for s in range(stack):
        h = xp
        for b in range(nblocks):
            for t in range(L):
                st = 1 << t if b % 2 == 0 else 1 << (L - 1 - t)
                j = torch.arange(half)
                i0 = (j // st) * 2 * st + j % st
                i1 = i0 + st
                T = tw[s, b, t]
                y0 = T[:, 0, 0] * h[:, i0] + T[:, 0, 1] * h[:, i1]
                y1 = T[:, 1, 0] * h[:, i0] + T[:, 1, 1] * h[:, i1]
                h = h.index_copy(1, i0, y0).index_copy(1, i1, y1)
        outs.append(h)
    return torch.cat(outs, dim=1)[:, :out_features]


def butterfly_case(gen, n_in, n_out, nblocks):
    n = 1 << math.ceil(math.log2(n_in))
    L = int(math.log2(n))
    stack = -(-n_out // n)
    x = torch.randn(4, n_in, generator=gen)
    tw = torch.randn(stack, nblocks, L, n // 2, 2, 2, generator=gen) * 0.7
    b = torch.randn(n_out, generator=gen) * 0.1
    r = torch.randn(4, n_out, generator=gen)
    leaves = [t.double().requires_grad_(True) for t in (x, tw, b)]
    out = butterfly_reference(leaves[0], leaves[1], n_in, n_out) + leaves[2]
    (out * r.double()).sum().backward()
    return {"x": x, "twiddle": tw, "bias": b, "R": r, "out": out, "grad.x": leaves[0].grad,
            "grad.twiddle": leaves[1].grad, "grad.bias": leaves[2].grad,
            "in_out": torch.tensor([n_in, n_out], dtype=torch.float32),
            "nblocks": torch.tensor([nblocks], dtype=torch.float32)}


def split2(x):
    """The most even split of x into two factors, smaller first: each prime factor (smallest
    first) goes to the factor with the smaller product (the rule of the authors' `factorize`)."""
    f = [1, 1]
    p, rest = 2, x
    while rest > 1:
        while rest % p == 0:
            i = 0 if f[0] <= f[1] else 1
            f[i] *= p
            rest //= p
        p += 1
    return sorted(f)


def btt_reference(x, w0, w1, m, n, r):
    """x [B, m0 m1] (index i1 m0 + i0); w0 [m1, m0, n0 r]; w1 [n0, m1 r, n1]. Out [B, n0 n1]."""
    (m0, m1), (n0, n1) = m, n
    xr = x.reshape(x.shape[0], m1, m0)
    y = torch.einsum("bip,ipk->bik", xr, w0).reshape(x.shape[0], m1, n0, r)
    out = torch.einsum("bijt,jitq->bjq", y, w1.reshape(n0, m1, r, n1))
    return out.reshape(x.shape[0], n0 * n1)


def btt_capped(w, gamma, d_in, d_out):
    """btt_norm: gamma * w / max(1, rms(w) / max_rms), max_rms = sqrt(min(d_in, d_out) * d_out / (d_out d_in^2))."""
    rms = torch.sqrt(torch.mean(w ** 2) + 1e-8)
    max_rms = (min(d_in, d_out) * d_out / (d_out * d_in * d_in)) ** 0.5
    return gamma * w / torch.clamp(rms / max_rms, min=1.0)


def btt_case(gen, d_in, d_out, r, normalized=False):
    m, n = split2(d_in), split2(d_out)
    (m0, m1), (n0, n1) = m, n
    x = torch.randn(5, d_in, generator=gen)
    w0 = torch.randn(m1, m0, n0 * r, generator=gen) * (3.0 if normalized else 0.4)
    w1 = torch.randn(n0, m1 * r, n1, generator=gen) * 0.4
    b = torch.randn(d_out, generator=gen) * 0.1
    g = torch.tensor([1.3, 0.8])
    rr = torch.randn(5, d_out, generator=gen)
    leaves = [t.double().requires_grad_(True) for t in (x, w0, w1, b, g)]
    c0, c1 = leaves[1], leaves[2]
    if normalized:
        c0 = btt_capped(c0, leaves[4][0], m0, n0 * r)
        c1 = btt_capped(c1, leaves[4][1], m1 * r, n1)
    out = btt_reference(leaves[0], c0, c1, m, n, r) + leaves[3]
    (out * rr.double()).sum().backward()
    obj = {"x": x, "core1": w0.transpose(1, 2), "core2": w1.transpose(1, 2), "bias": b, "R": rr, "out": out,
           "grad.x": leaves[0].grad, "grad.core1": leaves[1].grad.transpose(1, 2), "grad.core2": leaves[2].grad.transpose(1, 2),
           "grad.bias": leaves[3].grad, "in_out_rank": torch.tensor([d_in, d_out, r], dtype=torch.float32)}
    if normalized:
        obj["gammas"] = g
        obj["grad.gammas"] = leaves[4].grad
    return obj


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(2024)
    dump(os.path.join(OUT, "monarch_square.json"), monarch_case(gen, 16, 16, 4))
    dump(os.path.join(OUT, "monarch_expand.json"), monarch_case(gen, 8, 32, 4))
    dump(os.path.join(OUT, "monarch_shrink.json"), monarch_case(gen, 32, 8, 2))
    dump(os.path.join(OUT, "butterfly_padded_stacked.json"), butterfly_case(gen, 12, 20, 2))
    dump(os.path.join(OUT, "butterfly_square.json"), butterfly_case(gen, 16, 16, 1))
    gen = torch.Generator().manual_seed(2026)
    dump(os.path.join(OUT, "btt_rank1.json"), btt_case(gen, 12, 20, 1))
    dump(os.path.join(OUT, "btt_rank2.json"), btt_case(gen, 36, 16, 2))
    dump(os.path.join(OUT, "btt_norm.json"), btt_case(gen, 16, 36, 2, normalized=True))
