#!/usr/bin/env bash
# The one-thread microbenchmarks behind the batched-generation section of Tools/bench/README.md
# (2026-12-03). Not part of the package: each is one file, built here into a temporary folder.
# Usage: Tools/bench/micro/run.sh   (nothing else should be running; figures vary with the machine)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
flags=(-Ounchecked -target-cpu haswell)   # as Package.swift builds on an AVX2 + FMA host
swiftc "${flags[@]}" -o "$out/rows" "$here/batched_rows.swift"
swiftc "${flags[@]}" -import-objc-header "$here/prefetch.h" -o "$out/prefetch" "$here/batched_prefetch.swift"
swiftc "${flags[@]}" -o "$out/int8" "$here/int8_convert.swift"
cc -O2 -o "$out/sgemm" "$here/sgemm_rows.c" $(pkg-config --cflags --libs openblas)
cc -O2 -o "$out/attention" "$here/attention_gemms.c" $(pkg-config --cflags --libs openblas)
echo "== kernels for 8 input rows, in cache (rows cols)"
for s in "1024 768" "768 256" "256 1024"; do echo "-- $s"; "$out/rows" $s; done
if grep -q avx512vl /proc/cpuinfo; then
    # The same kernels built for an AVX-512 CPU (32 vector registers; 3x4w16 and 3x8 need them).
    swiftc -Ounchecked -target-cpu sapphirerapids -o "$out/rows512" "$here/batched_rows.swift"
    echo "== the same, -target-cpu sapphirerapids"
    for s in "1024 768" "768 256" "256 1024" "3072 768"; do echo "-- $s"; "$out/rows512" $s; done
fi
echo "== prefetch, weights from memory"
"$out/prefetch" 81920 256
"$out/prefetch" 20480 256   # tiny-sized: from L3 on a large-L3 CPU; also the interleaved-pieces case
"$out/prefetch" 20480 1024
echo "== OpenBLAS sgemm at M = 8 (rows cols threads), and at 12-32 rows on two threads"
echo "   (set OPENBLAS_CORETYPE as factorlab does where OpenBLAS falls back to old kernels)"
for t in 1 2; do "$out/sgemm" 1024 768 $t; done
for m in 12 16 32; do "$out/sgemm" 768 256 2 $m; done
echo "== the attention core's GEMM calls alone at T = 1024, one thread, half the bench's pairs (row blocks 64, 128, 256)"
for b in 64 128 256; do OPENBLAS_NUM_THREADS=1 "$out/attention" 1024 $b 12; done
echo "== int8 conversion variants, one thread, in cache"
"$out/int8" 1024
rm -rf "$out"
