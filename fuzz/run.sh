#!/usr/bin/env bash
# Builds the fuzz targets and runs each for FUZZ_TIME seconds (default 600) on its seeds
# (fuzz/seeds/<target>, read-only) plus a growing corpus (fuzz/corpus/<target>, gitignored).
# Stops at the first target that crashes; the input is saved under fuzz/artifacts/<target>/.
# Installs the pinned cargo-fuzz and a nightly toolchain when missing.
#   FUZZ_TIME=20 fuzz/run.sh                  every target, 20 s each (the CI smoke)
#   FUZZ_TIME=120 fuzz/run.sh envelope config  some targets
#   FUZZ_RUNS=100000000 FUZZ_TIME=0 fuzz/run.sh   10^8 executions per target, however long
#   FUZZ_UNIT_TIMEOUT=600 ...                  per-input limit in s (default 30); raise it when the
#                                             run may be paused (SIGSTOP) for a benchmark
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
FUZZ_TIME=${FUZZ_TIME:-600}
FUZZ_RUNS=${FUZZ_RUNS:--1}
# No sanitizer: the code under test is safe Rust, so panics are the findings and ASan would
# only halve the speed. Debug assertions turn arithmetic overflow into a finding too.
BUILD_FLAGS=(--sanitizer none --debug-assertions)
targets=("$@")
((${#targets[@]})) || targets=(classify config contents discovery envelope federation listen passing path relay result_cache session_query session_token sse_endpoint stdio_frame traceparent)

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

start=$(date +%s)
cargo +nightly fuzz build "${BUILD_FLAGS[@]}"
echo "fuzz: built in $(($(date +%s) - start)) s"

for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  log="fuzz/corpus/$t.log"
  echo "fuzz: $t for ${FUZZ_TIME} s (0: no limit), ${FUZZ_RUNS} runs (-1: no limit)"
  status=0
  cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$FUZZ_TIME" -runs="$FUZZ_RUNS" -timeout="${FUZZ_UNIT_TIMEOUT:-30}" -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  echo "fuzz: $t: ${runs:-?} executions, ${speed:-?}/s, corpus $(ls "fuzz/corpus/$t" | wc -l) files"
  if ((status)); then
    grep -E 'panicked|SUMMARY|Test unit written|ERROR' "$log" | head -20 >&2
    echo "fuzz: $t FAILED (full log: $log); reproduce with: cargo +nightly fuzz run ${BUILD_FLAGS[*]} $t <artifact>" >&2
    exit 1
  fi
done
