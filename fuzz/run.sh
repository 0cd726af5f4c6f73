#!/bin/bash
# Runs one libFuzzer target for SECONDS: first every seed in SEED_DIR (the golden bytes and the
# regression inputs of past crashes), then new inputs, kept in WORK_DIR/corpus. A crash leaves its
# input in WORK_DIR/artifacts/ and fails the run. Used by `meson test --suite fuzz` and scripts/fuzz.sh.
#   fuzz/run.sh EXE SEED_DIR WORK_DIR SECONDS [libFuzzer flags...]
set -euo pipefail
exe=$1 seeds=$2 work=$3 secs=$4
shift 4
mkdir -p "$work/corpus" "$work/artifacts"
# Leaks count as failures too; UBSan findings abort with a stack (the build already makes them fatal).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# stdin is /dev/null so no input (a config naming /dev/stdin, say) can wait on a terminal.
exec "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "$seeds" </dev/null
