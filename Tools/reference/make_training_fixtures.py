#!/usr/bin/env python3
"""Writes the torch reference for Factorlab's optimizer parity test: 10 AdamW steps of a small
GPT-2 on fixed sequential batches.

Run from the repository root (needs torch and transformers; outputs are committed):

    python3 Tools/reference/make_training_fixtures.py

Outputs in Tests/FactorlabOptimTests/Fixtures/:
  adamw-gpt2/                    the random-init GPT2LMHeadModel folder the run starts from
  adamw-reference.safetensors    tokens (the stream, as float), losses [10], lrs [10], grad_norms [10],
                                 and the final parameters under Factorlab names/orientation.

Run settings (mirrored by the Swift test): batch 2, sequence 8, sequential batches as in llm.c
(batch i = tokens[i*16 : i*16 + 17], inputs the first 16, targets shifted by one), dropout off,
torch.optim.AdamW(lr per step from warm-up 3 steps then cosine to 1e-4 over 10 steps, peak 3e-3,
betas (0.9, 0.95), eps 1e-8, weight_decay 0.1 on 2-D weights except embeddings; 0 on biases,
LayerNorm and embeddings), gradient clipping at global norm 1.0 before each step.
"""
import math
import os

import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "FactorlabOptimTests", "Fixtures")
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
B, T, STEPS, PEAK, FLOOR, WARMUP = 2, 8, 10, 3e-3, 1e-4, 3


def lr_at(step):
    if step < WARMUP:
        return PEAK * (step + 1) / WARMUP
    ratio = (step - WARMUP) / (STEPS - WARMUP)
    return FLOOR + 0.5 * (1 + math.cos(math.pi * ratio)) * (PEAK - FLOOR)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(7)
    config = GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=16, vocab_size=61,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(config)
    model.save_pretrained(os.path.join(OUT, "adamw-gpt2"), safe_serialization=True)
    tokens = torch.randint(0, 61, (STEPS * B * T + 1,), generator=torch.Generator().manual_seed(8))

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        short = name.replace("transformer.", "")
        if p.dim() < 2 or short.startswith(("wte", "wpe")) or "ln_" in short:
            no_decay.append(p)
        else:
            decay.append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=PEAK, betas=(0.9, 0.95), eps=1e-8)
    losses, lrs, norms = [], [], []
    for step in range(STEPS):
        chunk = tokens[step * B * T: step * B * T + B * T + 1]
        x, y = chunk[:-1].view(B, T), chunk[1:].view(B, T)
        logits = model(x).logits
        loss = torch.nn.functional.cross_entropy(logits.view(-1, 61), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.step()
        losses.append(loss.item()); lrs.append(lr_at(step)); norms.append(norm.item())
        print(f"step {step}: loss {loss.item():.6f} lr {lr_at(step):.6g} norm {norm.item():.6f}")
    out = {"tokens": tokens.float(), "losses": torch.tensor(losses), "lrs": torch.tensor(lrs), "grad_norms": torch.tensor(norms)}
    for name, p in model.named_parameters():
        t = p.detach().float()
        if name.endswith(CONV1D):
            t = t.t()
        out["final." + name.replace("transformer.", "")] = t.contiguous()
    save_file(out, os.path.join(OUT, "adamw-reference.safetensors"))


if __name__ == "__main__":
    main()
