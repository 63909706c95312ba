#!/usr/bin/env python3
"""Writes the reference fixture for Factorlab's weight-only quantization (factorlab quantize).

Run from the repository root after make_gpt2_fixtures.py (needs torch, transformers, numpy,
safetensors; the output is committed):

    python3 Tools/reference/make_quantization_fixtures.py

The rule, applied here independently of Factorlab in numpy (README, "Low-precision weights"):
  int8: each row of a weight ([out, in], so along the input dimension) is cut into groups of 32, the
        last one shorter; d = max|w| / 127 in float32; q = clamp(round(w / d), -127, 127) with ties
        away from zero (q = 0 where d = 0); the weight becomes float32(q) * d.
  bf16: round to nearest, ties to even (torch's .to(torch.bfloat16)), back to float32.
Packed: the token embedding (the tied head) and every Conv1D weight (transposed to [out, in] first);
not the position embedding, biases or LayerNorms.

Output, Tests/FactorlabGPT2Tests/Fixtures/tiny-gpt2-quantized-reference.safetensors:
  kernel.w [5, 70], kernel.x [3, 70]: a matrix whose rows end in a short group (32 + 32 + 6), with
      one all-zero row and exact half-way cases; kernel.int8.q (as float), kernel.int8.scales [5, 3],
      kernel.int8.w (dequantized), kernel.int8.y = x w'^T in float64, kernel.bf16.w, kernel.bf16.y.
  int8.logits, int8.loss, bf16.logits, bf16.loss: the tiny-gpt2 fixture model with its weights
      quantized, on tiny-gpt2-reference's ids (float64 forward from the quantized float32 weights).
"""
import os

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2LMHeadModel

FIX = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "FactorlabGPT2Tests", "Fixtures")
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
GROUP = 32


def round_half_away(v):
    t = np.trunc(v)
    half = np.abs(v - t) == np.float32(0.5)
    return np.where(half, t + np.sign(v), np.round(v)).astype(np.float32)


def int8_rows(w):
    """(q, scales, dequantized) of a float32 [rows, n] array under the int8 rule."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    rows, n = w.shape
    groups = (n + GROUP - 1) // GROUP
    q = np.zeros_like(w)
    s = np.zeros((rows, groups), dtype=np.float32)
    out = np.zeros_like(w)
    for k in range(groups):
        g = w[:, k * GROUP:(k + 1) * GROUP]
        d = (np.abs(g).max(axis=1) / np.float32(127)).astype(np.float32)
        s[:, k] = d
        safe = np.where(d > 0, d, np.float32(1))[:, None]
        qq = np.clip(round_half_away((g / safe).astype(np.float32)), -127, 127)
        qq = np.where(d[:, None] > 0, qq, 0).astype(np.float32)
        q[:, k * GROUP:(k + 1) * GROUP] = qq
        out[:, k * GROUP:(k + 1) * GROUP] = (qq * d[:, None]).astype(np.float32)
    return q, s, out


def bf16(w):
    return torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)).to(torch.bfloat16).to(torch.float32).numpy()


def kernel_case(tensors):
    rng = np.random.default_rng(7)
    w = rng.standard_normal((5, 70)).astype(np.float32)
    w[2] = 0  # d = 0: all zeros
    # Half-way cases: with max 127 * 0.01 in a group, w = 2.5 * 0.01 lands exactly between 2 and 3 only
    # if the division is exact; a power-of-two scale makes it so: max 127 * 2^-6, w = 2.5 * 2^-6.
    w[3, :32] = 0
    w[3, 0] = np.float32(127 * 2.0 ** -6)
    w[3, 1] = np.float32(2.5 * 2.0 ** -6)
    w[3, 2] = np.float32(-2.5 * 2.0 ** -6)
    w[3, 3] = np.float32(0.5 * 2.0 ** -6)
    x = rng.standard_normal((3, 70)).astype(np.float32)
    q, s, wq = int8_rows(w)
    wb = bf16(w)
    tensors.update({
        "kernel.w": torch.from_numpy(w), "kernel.x": torch.from_numpy(x),
        "kernel.int8.q": torch.from_numpy(q), "kernel.int8.scales": torch.from_numpy(s), "kernel.int8.w": torch.from_numpy(wq),
        "kernel.int8.y": torch.from_numpy((x.astype(np.float64) @ wq.astype(np.float64).T).astype(np.float32)),
        "kernel.bf16.w": torch.from_numpy(wb),
        "kernel.bf16.y": torch.from_numpy((x.astype(np.float64) @ wb.astype(np.float64).T).astype(np.float32)),
    })


def quantized_model(fmt):
    model = GPT2LMHeadModel.from_pretrained(os.path.join(FIX, "tiny-gpt2"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("wpe.weight") or p.dim() < 2:
                continue
            w = p.detach().numpy()
            conv = name.endswith(CONV1D)
            rows = w.T if conv else w  # [out, in]
            wq = int8_rows(rows)[2] if fmt == "int8" else bf16(rows)
            p.copy_(torch.from_numpy(np.ascontiguousarray(wq.T if conv else wq)))
    return model


def main():
    tensors = {}
    kernel_case(tensors)
    ids = load_file(os.path.join(FIX, "tiny-gpt2-reference.safetensors"))["ids"].long()
    for fmt in ("int8", "bf16"):
        m64 = quantized_model(fmt).double()
        with torch.no_grad():
            logits = m64(ids).logits
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 97), ids[:, 1:].reshape(-1))
        tensors[f"{fmt}.logits"] = logits.float().contiguous()
        tensors[f"{fmt}.loss"] = loss.float().reshape(1)
    save_file(tensors, os.path.join(FIX, "tiny-gpt2-quantized-reference.safetensors"))


if __name__ == "__main__":
    main()
