#!/usr/bin/env python3
"""Whole-model benchmark, Factorlab versus PyTorch eager, side by side in one run.

    python3 Tools/bench/compare_models.py [--models tiny,mini,gpt2] [--kinds dense,monarch]
                                          [--repeats 5] [--rounds 1] [--factorlab .build/release/factorlab]

For each configuration of `factorlab bench --suite model` (tiny: 4 layers, d 256, 4 heads,
vocabulary 8192, B 8, T 128; mini: 6, 384, 6, 50257, B 8, T 128; gpt2: 124M, B 4, T 128) and MLP
kind (dense, or Monarch with 4 blocks in both MLP layers), PyTorch runs transformers'
GPT2LMHeadModel with torch.optim.AdamW, dropout off, 2 threads, eager mode, and measures:
  - training tokens/s: forward, backward, gradient clipping and an AdamW step;
  - forward tokens/s (no grad);
  - generation tokens/s, greedy with the KV cache (model.generate, 8-token prompt, 96 new tokens);
  - peak resident memory of the process (each configuration runs in its own process, as
    Factorlab's bench does).
Right after each model's PyTorch runs it runs `factorlab bench --suite model --json` on the same
model, so both sides of a ratio are measured minutes apart at most, and prints both with the
ratio (> 1: Factorlab is faster, or uses less memory). Timings are medians after one warm-up of
at least --repeats runs and at least 3 seconds of runs (both sides use the same rule). With
--rounds R, each model's pair is measured R times, alternating, and each side keeps its best.
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

SETUPS = {
    "tiny": dict(n_layer=4, n_embd=256, n_head=4, vocab_size=8192, n_positions=256, batch=8, seq=128),
    "mini": dict(n_layer=6, n_embd=384, n_head=6, vocab_size=50257, n_positions=256, batch=8, seq=128),
    "gpt2": dict(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024, batch=4, seq=128),
}


def worker(name, kind, repeats):
    import torch
    import torch.nn as nn
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(2)
    torch.manual_seed(0)
    s = SETUPS[name]
    cfg = GPT2Config(n_layer=s["n_layer"], n_embd=s["n_embd"], n_head=s["n_head"], vocab_size=s["vocab_size"],
                     n_positions=s["n_positions"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(cfg)

    class Monarch(nn.Module):
        """Monarch linear (nblocks k): two batched matmuls and the reshape-transposes."""

        def __init__(self, n_in, n_out, k=4):
            super().__init__()
            q = min(n_in, n_out) // k
            self.w1 = nn.Parameter(torch.randn(k, q, n_in // k) / (n_in // k) ** 0.5)
            self.w2 = nn.Parameter(torch.randn(k, n_out // k, q) / q ** 0.5)
            self.bias = nn.Parameter(torch.zeros(n_out))

        def forward(self, x):
            shape = x.shape
            x = x.reshape(-1, shape[-1])
            n_tok = x.shape[0]
            k, q, p = self.w1.shape
            s_ = self.w2.shape[1]
            h = torch.bmm(x.view(n_tok, k, p).transpose(0, 1), self.w1.transpose(1, 2))
            h = h.transpose(0, 1).reshape(n_tok, q, k).transpose(1, 2).transpose(0, 1)
            y = torch.bmm(h, self.w2.transpose(1, 2)).permute(1, 2, 0).reshape(n_tok, s_ * k)
            return (y + self.bias).reshape(*shape[:-1], s_ * k)

    if kind == "monarch":
        d = s["n_embd"]
        for block in model.transformer.h:
            block.mlp.c_fc = Monarch(d, 4 * d)
            block.mlp.c_proj = Monarch(4 * d, d)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    b, t = s["batch"], s["seq"]
    ids = torch.randint(0, s["vocab_size"], (b, t))
    tokens = b * t

    def timed(fn, n, min_seconds=3.0):
        # As factorlab's Measurement: one warm-up, then at least n runs and at least min_seconds
        # (at most 20 n runs), median.
        fn()
        out = []
        while len(out) < n or (sum(out) < min_seconds and len(out) < 20 * max(1, n)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return statistics.median(out)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = model(ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    train = timed(train_step, repeats)
    model.eval()
    with torch.no_grad():
        forward = timed(lambda: model(ids, labels=ids), repeats)
        prompt = ids[:1, :8]
        gen = timed(lambda: model.generate(prompt, max_new_tokens=96, min_new_tokens=96, do_sample=False,
                                           pad_token_id=0), max(1, repeats // 2))
    key = f"{name}.{kind}"
    print(json.dumps({
        f"{key}.train_tokens_per_s": tokens / train,
        f"{key}.forward_tokens_per_s": tokens / forward,
        f"{key}.generate_tokens_per_s": 96 / gen,
        f"{key}.peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        f"{key}.parameters": sum(p.numel() for p in model.parameters()),
    }))


def combine(rounds):
    """One value per key over rounds: the best speed, the median of everything else. Derived
    ratios (speed-ups, fractions of sgemm) are recomputed from the combined values by the caller
    where they are printed."""
    keys = set().union(*rounds) if rounds else set()
    out = {}
    for key in keys:
        values = [r[key] for r in rounds if key in r]
        if not all(isinstance(v, (int, float)) for v in values):
            out[key] = values[-1]
        elif key.endswith("_tokens_per_s") or key.endswith("_gflops"):
            out[key] = max(values)
        else:
            out[key] = statistics.median(values)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="tiny,mini,gpt2")
    ap.add_argument("--kinds", default="dense,monarch")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1, help="measure each pair this many times, alternating; keep each side's best")
    ap.add_argument("--factorlab", default=".build/release/factorlab")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.repeats)
        return
    models, kinds = args.models.split(","), args.kinds.split(",")
    fl_kinds = ",".join("monarch:4" if k == "monarch" else k for k in kinds)
    # Model by model, the two frameworks one right after the other, so that a slow spell of the
    # shared machine falls on both sides of a ratio rather than on one.
    # With --rounds R the pair is measured R times, alternating, and each side keeps its best
    # speed (its median peak memory): the same rule for both, so a slow spell costs neither.
    ref_rounds, fl_rounds, sgemm = [], [], {}
    for m in models:
        for r in range(args.rounds):
            got = {}
            for k in kinds:
                print(f"torch: {m} {k} (round {r + 1} of {args.rounds})", file=sys.stderr)
                out = subprocess.check_output([sys.executable, __file__, "--worker", m, k, "--repeats", str(args.repeats)])
                got.update(json.loads(out.decode().strip().splitlines()[-1]))
            ref_rounds.append(got)
            print(f"factorlab: bench --suite model --models {m} (round {r + 1} of {args.rounds})", file=sys.stderr)
            got = json.loads(subprocess.check_output([args.factorlab, "bench", "--suite", "model", "--models", m,
                                                      "--model-kinds", fl_kinds, "--repeats", str(args.repeats), "--json"]))
            fl_rounds.append(got)
            sgemm[m] = max(sgemm.get(m, 0), got["machine.sgemm_2048_gflops"])
    ref, fl = combine(ref_rounds), combine(fl_rounds)
    print(f"{'configuration':<16}{'measure':<22}{'torch':>12}{'factorlab':>12}{'ratio':>9}")
    for m in models:
        for k in kinds:
            key = f"{m}.{k}"
            for measure, higher_better in (("train_tokens_per_s", True), ("forward_tokens_per_s", True),
                                           ("generate_tokens_per_s", True), ("peak_memory_mb", False)):
                a, b = ref[f"{key}.{measure}"], fl[f"{key}.{measure}"]
                ratio = b / a if higher_better else a / b
                print(f"{key:<16}{measure:<22}{a:>12.1f}{b:>12.1f}{ratio:>8.2f}x")
    for m in models:
        if "monarch" in kinds and "dense" in kinds:
            print(f"{m}: Monarch training speed-up over dense: torch "
                  f"{ref[m + '.monarch.train_tokens_per_s'] / ref[m + '.dense.train_tokens_per_s']:.2f}x, "
                  f"factorlab {fl[m + '.monarch.train_tokens_per_s'] / fl[m + '.dense.train_tokens_per_s']:.2f}x "
                  f"(FLOP ratio dense / Monarch {fl.get(m + '.monarch.train_flop_ratio', float('nan')):.2f})")
        if f"{m}.dense.train_gflops" in fl:
            print(f"{m}: dense training step at {fl[m + '.dense.train_gflops']:.0f} GFLOP/s = "
                  f"{100 * fl[m + '.dense.train_gflops'] / sgemm[m]:.0f}% of raw sgemm ({sgemm[m]:.0f} GFLOP/s, best of the rounds)")


if __name__ == "__main__":
    main()
