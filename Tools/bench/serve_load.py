#!/usr/bin/env python3
"""Load benchmark of `factorlab serve` (not a test): N concurrent clients send completion requests
for a fixed time to a server on loopback; prints requests/s, generated tokens/s, p50/p99 latency,
errors (must be 0) and the server's peak resident memory. Standard library only.

    python3 Tools/bench/serve_load.py --model Checkpoints/pretrain/shakespeare-tiny [--clients 1 4 16]
        [--seconds 20] [--max-tokens 32] [--factorlab .build/release/factorlab] [--json]

The server is started by the script (port chosen by the OS, printed on its stderr) and stopped at
the end; its peak RSS is read from /proc/PID/status (VmHWM). Each client sends greedy requests
with a prompt drawn from a fixed list, in a loop, and checks that every answer has one choice with
the requested number of tokens or a stop. Nothing else may run on the cores meanwhile.
"""
import argparse
import http.client
import json
import re
import subprocess
import sys
import threading
import time

PROMPTS = ["ROMEO:\n", "Enter HAMLET.\n", "KING. What news?\n", "O, ", "To be, or not", "The quality of mercy",
           "First Citizen:\nBefore we proceed", "Now is the winter"]


def start_server(binary, model, max_batch):
    p = subprocess.Popen([binary, "serve", "--model", model, "--port", "0", "--max-batch", str(max_batch),
                          "--max-concurrent", "256"], stderr=subprocess.PIPE, text=True)
    port = None
    for line in p.stderr:
        m = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        raise SystemExit("the server did not start: " + (p.stderr.read() if p.stderr else ""))
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    while True:  # wait for the model to load
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return p, port
        except OSError:
            pass
        time.sleep(0.05)


def peak_rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def client(port, seconds, max_tokens, k, out):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    end = time.time() + seconds
    i = k
    while time.time() < end:
        body = json.dumps({"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": max_tokens, "temperature": 0})
        t0 = time.time()
        try:
            c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            data = json.loads(r.read())
            ok = r.status == 200 and len(data["choices"]) == 1 and \
                (data["usage"]["completion_tokens"] == max_tokens or data["choices"][0]["finish_reason"] == "stop")
            out.append((time.time() - t0, data["usage"]["completion_tokens"] if ok else 0, ok))
        except Exception:
            out.append((time.time() - t0, 0, False))
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        i += 1


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))] if xs else float("nan")


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--model", required=True)
    a.add_argument("--factorlab", default=".build/release/factorlab")
    a.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    a.add_argument("--seconds", type=float, default=20)
    a.add_argument("--max-tokens", type=int, default=32)
    a.add_argument("--max-batch", type=int, default=8)
    a.add_argument("--json", action="store_true")
    args = a.parse_args()
    server, port = start_server(args.factorlab, args.model, args.max_batch)
    rows = []
    try:
        for n in args.clients:
            results = []
            threads = [threading.Thread(target=client, args=(port, args.seconds, args.max_tokens, k, results)) for k in range(n)]
            t0 = time.time()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.time() - t0
            lat = [r[0] for r in results if r[2]]
            rows.append({"clients": n, "requests": len(results), "errors": sum(1 for r in results if not r[2]),
                         "requests_per_s": len(lat) / wall, "tokens_per_s": sum(r[1] for r in results) / wall,
                         "p50_ms": 1000 * percentile(lat, 0.5), "p99_ms": 1000 * percentile(lat, 0.99)})
        peak = peak_rss(server.pid)
    finally:
        server.terminate()
        server.wait()
    if args.json:
        print(json.dumps({"model": args.model, "max_tokens": args.max_tokens, "max_batch": args.max_batch,
                          "seconds": args.seconds, "peak_rss_bytes": peak, "rows": rows}, indent=1))
        return
    print(f"factorlab serve --model {args.model}: {args.max_tokens} tokens per request, greedy, --max-batch {args.max_batch}, "
          f"{args.seconds:g} s per row")
    print("| clients | requests | errors | requests/s | tokens/s | p50 ms | p99 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['clients']} | {r['requests']} | {r['errors']} | {r['requests_per_s']:.2f} | {r['tokens_per_s']:.1f} | "
              f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} |")
    print(f"server peak resident memory: {peak / 2**20:.0f} MiB")
    if any(r["errors"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
