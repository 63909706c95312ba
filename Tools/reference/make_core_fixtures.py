#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures for Factorlab's core parity tests.

Run from the repository root (needs torch; CI does not, the outputs are committed):

    python3 Tools/reference/make_core_fixtures.py

Each fixture is a JSON object {name: {"shape": [...], "data": [...]}} holding the inputs, the
parameters, the output and the gradient of L = sum(output * R) with respect to every input and
parameter, for a composed computation:

  core_mlp.json        x -> x + c_proj(gelu_tanh(c_fc(layer_norm(x))))     (a GPT-2 MLP block)
  core_attention.json  x -> c_proj(causal_attention(c_attn(x)))            (a GPT-2 attention block)
  core_ln_ce.json      cross_entropy(linear(layer_norm(x)), targets, ignore_index=-100)

References are computed in float64 from float32 inputs and stored as float32, so the Swift
float32 kernels are compared with the exact answer, not with another float32 rounding.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "FactorlabCoreTests", "Fixtures")


def t32(*shape, scale=1.0, gen=None):
    return (torch.randn(*shape, generator=gen) * scale).float()


def dump(path, tensors):
    obj = {}
    for name, t in tensors.items():
        t = t.detach().to(torch.float32).contiguous()
        obj[name] = {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}
    with open(path, "w") as f:
        json.dump(obj, f)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def leaf(t):
    return t.double().requires_grad_(True)


def mlp_block(gen):
    B, T, C, H = 2, 5, 16, 64
    x, lnw, lnb = t32(B, T, C, gen=gen), 1 + t32(C, scale=0.1, gen=gen), t32(C, scale=0.1, gen=gen)
    wfc, bfc = t32(H, C, scale=0.2, gen=gen), t32(H, scale=0.1, gen=gen)
    wpr, bpr = t32(C, H, scale=0.2, gen=gen), t32(C, scale=0.1, gen=gen)
    r = t32(B, T, C, gen=gen)
    ins = {"x": x, "ln.weight": lnw, "ln.bias": lnb, "c_fc.weight": wfc, "c_fc.bias": bfc,
           "c_proj.weight": wpr, "c_proj.bias": bpr}
    L = {k: leaf(v) for k, v in ins.items()}
    h = F.layer_norm(L["x"], (C,), L["ln.weight"], L["ln.bias"], eps=1e-5)
    h = F.gelu(F.linear(h, L["c_fc.weight"], L["c_fc.bias"]), approximate="tanh")
    out = L["x"] + F.linear(h, L["c_proj.weight"], L["c_proj.bias"])
    (out * r.double()).sum().backward()
    res = dict(ins)
    res["R"] = r
    res["out"] = out
    res.update({"grad." + k: v.grad for k, v in L.items()})
    return res


def attention_block(gen):
    B, T, C, NH = 2, 7, 16, 4
    x = t32(B, T, C, gen=gen)
    wa, ba = t32(3 * C, C, scale=0.3, gen=gen), t32(3 * C, scale=0.1, gen=gen)
    wp, bp = t32(C, C, scale=0.3, gen=gen), t32(C, scale=0.1, gen=gen)
    r = t32(B, T, C, gen=gen)
    ins = {"x": x, "c_attn.weight": wa, "c_attn.bias": ba, "c_proj.weight": wp, "c_proj.bias": bp}
    L = {k: leaf(v) for k, v in ins.items()}
    qkv = F.linear(L["x"], L["c_attn.weight"], L["c_attn.bias"])
    q, k, v = qkv.split(C, dim=2)
    q, k, v = (z.view(B, T, NH, C // NH).transpose(1, 2) for z in (q, k, v))
    att = (q @ k.transpose(-2, -1)) / math.sqrt(C // NH)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    y = (att @ v).transpose(1, 2).reshape(B, T, C)
    out = F.linear(y, L["c_proj.weight"], L["c_proj.bias"])
    (out * r.double()).sum().backward()
    res = dict(ins)
    res["R"] = r
    res["out"] = out
    res["heads"] = torch.tensor([NH], dtype=torch.float32)
    res.update({"grad." + k: v.grad for k, v in L.items()})
    return res


def ln_ce(gen):
    N, C, V = 9, 12, 11
    x = t32(N, C, gen=gen)
    lnw, lnb = 1 + t32(C, scale=0.1, gen=gen), t32(C, scale=0.1, gen=gen)
    w, b = t32(V, C, scale=0.5, gen=gen), t32(V, scale=0.1, gen=gen)
    targets = torch.randint(0, V, (N,), generator=gen)
    targets[2] = -100
    targets[6] = -100
    ins = {"x": x, "ln.weight": lnw, "ln.bias": lnb, "head.weight": w, "head.bias": b}
    L = {k: leaf(v) for k, v in ins.items()}
    h = F.layer_norm(L["x"], (C,), L["ln.weight"], L["ln.bias"], eps=1e-5)
    loss = F.cross_entropy(F.linear(h, L["head.weight"], L["head.bias"]), targets, ignore_index=-100)
    loss.backward()
    res = dict(ins)
    res["targets"] = targets.float()
    res["loss"] = loss.reshape(1)
    res.update({"grad." + k: v.grad for k, v in L.items()})
    return res


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    dump(os.path.join(OUT, "core_mlp.json"), mlp_block(gen))
    dump(os.path.join(OUT, "core_attention.json"), attention_block(gen))
    dump(os.path.join(OUT, "core_ln_ce.json"), ln_ce(gen))
