#!/usr/bin/env python3
"""Peak resident memory and time of one GPT-2 (124M) training step at long context, Factorlab
against PyTorch with scaled-dot-product attention, each in its own process (peak RSS from
/usr/bin/time -v, so each figure is that process's own).

    python3 Tools/bench/long_context_memory.py [--batch 4] [--seq 1024] [--factorlab BIN ...]

Factorlab runs `factorlab profile --model gpt2 --batch B --seq T --train --repeats 1 --json` (a
forward profile, then a warm-up and one timed training step: forward, backward, AdamW). PyTorch
runs transformers' GPT2LMHeadModel (attn_implementation="sdpa") with torch.optim.AdamW: one
warm-up step and one timed step. Several --factorlab binaries can be given (before/after a change).
Needs torch and transformers; nothing else may run on the cores meanwhile.
"""
import argparse
import json
import re
import subprocess
import sys
import time

TORCH_STEP = r'''
import sys, time, torch
from transformers import GPT2Config, GPT2LMHeadModel
torch.set_num_threads(int(sys.argv[3]))
b, t = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
config = GPT2Config(n_positions=max(1024, t), resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
config._attn_implementation = "sdpa"
model = GPT2LMHeadModel(config)
assert model.config._attn_implementation == "sdpa", model.config._attn_implementation
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
ids = torch.randint(0, 50257, (b, t))
times = []
for _ in range(2):
    start = time.perf_counter()
    loss = model(ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    times.append(time.perf_counter() - start)
print(times[-1])
'''


def peak_kb(stderr):
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    return int(m.group(1)) if m else None


def run(cmd):
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return p.stdout, peak_kb(p.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--factorlab", nargs="*", default=[".build/release/factorlab"])
    a = ap.parse_args()
    rows = []
    for binary in a.factorlab:
        out, kb = run([binary, "profile", "--model", "gpt2", "--batch", str(a.batch), "--seq", str(a.seq), "--train",
                       "--repeats", "1", "--json"])
        r = json.loads(out)["runs"][0]
        rows.append({"system": binary, "peak_rss_mb": kb / 1024, "step_s": r["train_step_ms"] / 1e3,
                     "attention_core_forward_ms": r["attention_core_ms"]})
    out, kb = run([sys.executable, "-c", TORCH_STEP, str(a.batch), str(a.seq), str(a.threads)])
    rows.append({"system": "pytorch-sdpa", "peak_rss_mb": kb / 1024, "step_s": float(out.strip().splitlines()[-1])})
    print(json.dumps({"batch": a.batch, "seq": a.seq, "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
