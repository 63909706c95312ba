#!/usr/bin/env python3
"""The attention core against PyTorch, and the bound its GEMM calls set, in alternating rounds.

    python3 Tools/bench/attention_bound.py [--seq 1024] [--rounds 6] [--repeats 5] \
        [--row-blocks 64,128,256] [--factorlab .build/release/factorlab] [--json FILE]

On a shared VM the speed of the same binary moves by half between minutes, so one PyTorch run
followed by one Factorlab run (compare_torch.py) can say little about a ratio. Each round here
times PyTorch's scaled_dot_product_attention (is_causal=True) forward+backward on the shape of
`factorlab bench --suite attention` (12 heads, d 768, B x T = 2048, 2 threads), then runs that
bench at the same T, which reports the core (`attention.T<t>.ms`, the library's row block) and
the same GEMM calls without any elementwise work at each row block asked for
(`attention.T<t>.block<n>.gemm_floor_ms`). Per round it prints:
  - speed-up: PyTorch / Factorlab's core (> 1: Factorlab is faster);
  - ceiling: PyTorch / the lowest GEMM floor over the row blocks, the speed-up the core would
    have if everything but its GEMM calls took no time. A target above the ceiling cannot be
    reached by any row block of this design with this BLAS.
Needs torch (CPU). Nothing else should run meanwhile.
"""
import argparse
import json
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F

from compare_torch import median_time  # this folder's side-by-side bench: one warm-up, then the median


def torch_attention_ms(t, repeats):
    torch.set_num_threads(2)
    b = max(1, 2048 // t)
    q, k, v = (torch.randn(b, 12, t, 64, requires_grad=True) for _ in range(3))

    def step():
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y.backward(torch.ones_like(y))
    return median_time(step, repeats) * 1e3


def factorlab_figures(binary, t, repeats, blocks):
    cmd = [binary, "bench", "--suite", "attention", "--attention-seq-lens", str(t), "--repeats", str(repeats),
           "--attention-row-blocks", ",".join(map(str, blocks)), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--row-blocks", default="64,128,256")
    ap.add_argument("--factorlab", default=".build/release/factorlab")
    ap.add_argument("--json", help="also write every round's figures to this file")
    args = ap.parse_args()
    blocks = [int(b) for b in args.row_blocks.split(",")]
    t = args.seq
    rounds = []
    print(f"T = {t}, {args.rounds} rounds; ms (median of {args.repeats} runs)")
    print(f"{'round':>5} {'torch':>8} {'core':>8} {'floor':>8} {'block':>6} {'speed-up':>9} {'ceiling':>8}")
    for r in range(1, args.rounds + 1):
        torch_ms = torch_attention_ms(t, args.repeats)
        fig = factorlab_figures(args.factorlab, t, args.repeats, blocks)
        core = fig[f"attention.T{t}.ms"]
        floors = {b: fig[f"attention.T{t}.block{b}.gemm_floor_ms"] for b in blocks}
        best = min(floors, key=floors.get)
        row = {"round": r, "torch_ms": torch_ms, "core_ms": core, "floor_ms": floors, "best_block": best,
               "speedup": torch_ms / core, "ceiling": torch_ms / floors[best],
               "blocks_ms": {b: fig[f"attention.T{t}.block{b}.ms"] for b in blocks}}
        rounds.append(row)
        print(f"{r:>5} {torch_ms:8.1f} {core:8.1f} {floors[best]:8.1f} {best:>6} {row['speedup']:8.2f}x {row['ceiling']:7.2f}x",
              flush=True)
    med = lambda key: statistics.median(x[key] for x in rounds)
    print(f"median speed-up {med('speedup'):.2f}x (range {min(x['speedup'] for x in rounds):.2f}-"
          f"{max(x['speedup'] for x in rounds):.2f}), median ceiling {med('ceiling'):.2f}x (range "
          f"{min(x['ceiling'] for x in rounds):.2f}-{max(x['ceiling'] for x in rounds):.2f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seq": t, "repeats": args.repeats, "row_blocks": blocks, "torch": torch.__version__,
                       "rounds": rounds}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
