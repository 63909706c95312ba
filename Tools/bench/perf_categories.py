#!/usr/bin/env python3
"""Where a generation step's time goes, by thread, from a perf profile.

Usage (the batched phase of the tiny model bench, as in Tools/bench/README.md):
    factorlab bench --worker --models tiny --model-kinds dense --weights float32 \
        --repeats 21 --min-seconds 8 > /dev/null 2> bench.err &
    # once bench.err says "batched generation":
    perf record -e cpu-clock -g -p $! -o perf.data -- sleep 5
    perf script -i perf.data -F tid,ip,sym | python3 Tools/bench/perf_categories.py

Each sample goes to the category of the innermost frame of its call chain that matches one
(frames are read from the leaf up); samples matching none are listed by their leaf symbol.
"""
import collections
import re
import sys

CATEGORIES = [
    ("products", r"matVecRows|matVec___|blockMatVec|packedMatMul"),
    ("pool wait", r"SpinningPoolC3run|workerLoop"),
    ("attention", r"cachedAttention|decodeHead|Attention"),
    ("gelu", r"gelu"),
    ("layer norm", r"layerNorm"),
    ("sgemm", r"sgemm|cblas"),
    ("argmax and sampling", r"rowArgmax|SamplingV6sample"),
    ("embedding", r"embeddingForward"),
    ("allocation and reference counting",
     r"malloc|free|swift_retain|swift_release|swift_alloc|dealloc|RefCounts|_int_|memalign|unlink_chunk"),
    ("copies", r"memmove|memcpy|memset"),
    ("generation loop", r"GPT20B5ModelC8generate"),
]
PATTERNS = [(name, re.compile(p)) for name, p in CATEGORIES]


def category(stack):
    for frame in stack:
        for name, pattern in PATTERNS:
            if pattern.search(frame):
                return name
    return "other: " + (stack[0][:70] if stack else "?")


def main():
    counts = collections.defaultdict(collections.Counter)
    tid, stack = None, []

    def flush():
        if tid is not None and stack:
            counts[tid][category(stack)] += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            tid, stack = None, []
        elif not line.startswith("\t"):
            tid, stack = line.split()[0], []
        else:
            fields = line.strip().split(None, 1)
            stack.append(fields[1] if len(fields) > 1 else fields[0])
    flush()
    for t, c in sorted(counts.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(c.values())
        if total < 200:
            continue
        print(f"thread {t}: {total} samples")
        for name, n in c.most_common(12):
            print(f"  {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
