#!/usr/bin/env python3
"""Writes the transformers reference fixtures for Factorlab's GPT-2 tests.

Run from the repository root (needs torch, transformers, safetensors; outputs are committed):

    python3 Tools/reference/make_gpt2_fixtures.py

No pretrained weights can be downloaded here, so the models are random-init transformers models:

  tiny-gpt2/                 a GPT2LMHeadModel folder (config.json + model.safetensors) as
                             save_pretrained writes it: 2 layers, d 32, 4 heads, context 32, vocab 97.
  tiny-gpt2-reference.safetensors
                             ids [2, 16] (as float), logits [2, 16, 97], loss (next-token cross-entropy
                             over the first 15 positions of each row), and the gradient of that loss for
                             every parameter, under Factorlab's names and orientation ([out, in]; the
                             Conv1D weights are transposed here).
  tiny-gpt2-cls/             a GPT2ForSequenceClassification folder (3 labels, pad_token_id 0).
  tiny-gpt2-cls-reference.safetensors
                             padded ids [3, 10], logits [3, 3], loss for labels [2, 0, 1], and grads.

  tiny-gpt2-factorized/      the LM model with structured layers in every block
                             (factorlab_linear "mlp=monarch:4,attn.c_attn=btt:2,attn.c_proj=lowrank:8"):
                             transformers' GPT2LMHeadModel whose c_attn, attn.c_proj, c_fc and mlp.c_proj
                             modules are replaced by the einsum reference modules below (the Monarch and
                             BTT products of make_layer_fixtures.py), saved with save_pretrained under
                             Factorlab's parameter names.
  tiny-gpt2-factorized-reference.safetensors
                             the same ids, logits, loss and gradients as tiny-gpt2-reference.

The reference numbers are computed in float64 from the float32 weights.
"""
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

sys.path.insert(0, os.path.dirname(__file__))
from make_layer_fixtures import btt_reference, monarch_reference, split2  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "FactorlabGPT2Tests", "Fixtures")
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def factorlab_name(name):
    return name[len("transformer."):] if name.startswith("transformer.") else name


def grads_of(model):
    out = {}
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        g = p.grad.detach().float()
        if name.endswith(CONV1D):
            g = g.t()
        out["grad." + factorlab_name(name)] = g.contiguous()
    return out


def small_config(**kw):
    return GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=32, vocab_size=97,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **kw)


def save_lm(model, name):
    """The model folder `name`, and its reference: ids [2, 16], logits, next-token loss over the
    first 15 positions of each row, and every gradient, in float64 from the float32 weights."""
    model.save_pretrained(os.path.join(OUT, name), safe_serialization=True)
    ids = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(1))
    m64 = model.double()
    logits = m64(ids).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 97), ids[:, 1:].reshape(-1))
    loss.backward()
    tensors = {"ids": ids.float(), "logits": logits.detach().float().contiguous(), "loss": loss.detach().float().reshape(1)}
    tensors.update(grads_of(m64))
    save_file(tensors, os.path.join(OUT, f"{name}-reference.safetensors"))


def lm_fixture():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(small_config())
    # Non-trivial LayerNorm parameters and biases, so their gradients and uses are tested too.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln_" in name or name.endswith("bias"):
                p.add_(0.05 * torch.randn_like(p))
    save_lm(model, "tiny-gpt2")


class MonarchRef(torch.nn.Module):
    """Factorlab's MonarchLinear layout: blkdiag1 [k, q, p], blkdiag2 [k, s, q]."""
    def __init__(self, n, m, k):
        super().__init__()
        p, s = n // k, m // k
        shapes = ((k, p, p), (k, s, p)) if n <= m else ((k, s, p), (k, s, s))
        self.monarch = torch.nn.Module()
        self.monarch.blkdiag1 = torch.nn.Parameter(torch.randn(*shapes[0]) * 0.3)
        self.monarch.blkdiag2 = torch.nn.Parameter(torch.randn(*shapes[1]) * 0.3)
        self.bias = torch.nn.Parameter(0.05 * torch.randn(m))

    def forward(self, x):
        y = monarch_reference(x.reshape(-1, x.shape[-1]), self.monarch.blkdiag1, self.monarch.blkdiag2)
        return (y + self.bias).reshape(*x.shape[:-1], -1)


class BTTRef(torch.nn.Module):
    """Factorlab's BTTLinear layout: core1 [m1, n0 r, m0], core2 [n0, n1, m1 r] (the authors'
    W0, W1 with the last two axes swapped)."""
    def __init__(self, n, m, r):
        super().__init__()
        self.ms, self.ns, self.r = split2(n), split2(m), r
        (m0, m1), (n0, n1) = self.ms, self.ns
        self.btt = torch.nn.Module()
        self.btt.core1 = torch.nn.Parameter(torch.randn(m1, n0 * r, m0) * 0.4)
        self.btt.core2 = torch.nn.Parameter(torch.randn(n0, n1, m1 * r) * 0.4)
        self.bias = torch.nn.Parameter(0.05 * torch.randn(m))

    def forward(self, x):
        y = btt_reference(x.reshape(-1, x.shape[-1]), self.btt.core1.transpose(1, 2), self.btt.core2.transpose(1, 2),
                          self.ms, self.ns, self.r)
        return (y + self.bias).reshape(*x.shape[:-1], -1)


class LowRankRef(torch.nn.Module):
    """Factorlab's LowRankLinear layout: W = U V, u [out, r], v [r, in]."""
    def __init__(self, n, m, r):
        super().__init__()
        self.lowrank = torch.nn.Module()
        self.lowrank.u = torch.nn.Parameter(torch.randn(m, r) * 0.3)
        self.lowrank.v = torch.nn.Parameter(torch.randn(r, n) * 0.3)
        self.bias = torch.nn.Parameter(0.05 * torch.randn(m))

    def forward(self, x):
        return x @ self.lowrank.v.t() @ self.lowrank.u.t() + self.bias


def factorized_fixture():
    torch.manual_seed(4)
    config = small_config()
    config.factorlab_linear = "mlp=monarch:4,attn.c_attn=btt:2,attn.c_proj=lowrank:8"
    model = GPT2LMHeadModel(config)
    d = config.n_embd
    for block in model.transformer.h:
        block.attn.c_attn = BTTRef(d, 3 * d, 2)
        block.attn.c_proj = LowRankRef(d, d, 8)
        block.mlp.c_fc = MonarchRef(d, 4 * d, 4)
        block.mlp.c_proj = MonarchRef(4 * d, d, 4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln_" in name:
                p.add_(0.05 * torch.randn_like(p))
    save_lm(model, "tiny-gpt2-factorized")


def cls_fixture():
    torch.manual_seed(2)
    model = GPT2ForSequenceClassification(small_config(num_labels=3, pad_token_id=0))
    model.save_pretrained(os.path.join(OUT, "tiny-gpt2-cls"), safe_serialization=True)
    ids = torch.randint(1, 97, (3, 10), generator=torch.Generator().manual_seed(3))
    ids[0, 7:] = 0   # right padding
    ids[2, 4:] = 0
    labels = torch.tensor([2, 0, 1])
    m64 = model.double()
    out = m64(ids, labels=labels)
    out.loss.backward()
    tensors = {"ids": ids.float(), "logits": out.logits.detach().float().contiguous(),
               "labels": labels.float(), "loss": out.loss.detach().float().reshape(1)}
    tensors.update(grads_of(m64))
    save_file(tensors, os.path.join(OUT, "tiny-gpt2-cls-reference.safetensors"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    lm_fixture()
    cls_fixture()
    factorized_fixture()
    for root, _, files in os.walk(OUT):
        for f in files:
            path = os.path.join(root, f)
            print(f"{os.path.relpath(path, OUT)}: {os.path.getsize(path)} bytes")
