#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer and AddressSanitizer, then fuzzes each for SECONDS
# (default 6) starting from the seed corpus in Tools/fuzz/corpus/<target>/.
#   Tools/fuzz/run.sh [SECONDS] [TARGET...]
# New inputs the fuzzer finds go to a scratch copy of the corpus (the repository is not written);
# a crash, leak-free hang or out-of-memory is written to Tools/fuzz/findings/ and fails the run.
# Debug build on purpose: release builds of the numeric modules use -Ounchecked, which would
# remove the very traps a fuzzer looks for.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-6}"; shift || true
all=(safetensors hf-config model-config checkpoint tokenizer recipe glue-tsv coqa jsonl bin)
targets=("${@:-${all[@]}}")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
# The linker's notes about sanitizer symbols are noise: the build log is shown only if it fails.
if ! swift build -c debug --product factorlab-fuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address > .build-fuzz.log 2>&1; then
  cat .build-fuzz.log >&2; exit 1
fi
bin=".build-fuzz/debug/factorlab-fuzz"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir -p findings
export SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1
failed=0
printf '%-14s %12s %8s %s\n' target executions corpus result
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"; cp corpus/"$t"/* "$work/$t/" 2>/dev/null || true
  log="$work/$t.log"
  set +e
  FACTORLAB_FUZZ_TARGET="$t" "$bin" "$work/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=3072 -max_len=65536 \
      -artifact_prefix="findings/$t-" -print_final_stats=1 > "$log" 2>&1
  status=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  size=$(ls "$work/$t" | wc -l)
  if [ $status -eq 0 ]; then result=ok; else result="FINDING (exit $status; see findings/$t-*)"; failed=1; tail -20 "$log" >&2; fi
  printf '%-14s %12s %8s %s\n' "$t" "$execs" "$size" "$result"
done
exit $failed
