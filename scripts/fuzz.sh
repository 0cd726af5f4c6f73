#!/bin/bash
# Builds the libFuzzer targets (clang, ASan + UBSan; doc/FUZZING.md) in BUILD_DIR and runs them.
#   scripts/fuzz.sh --smoke [BUILD_DIR]             each target for fuzz_seconds (meson test --suite fuzz)
#   scripts/fuzz.sh DURATION [BUILD_DIR] [TARGET...] each target for DURATION (90, 10m, 2h), one after
#                                                   another, then a table: target, execs, seconds, CPU seconds, crashes, slow units
# A crash leaves its input in BUILD_DIR/fuzz/work/TARGET/artifacts/ and makes the exit status 1.
# Default BUILD_DIR: build-fuzz. FUZZ_JOBS=N runs N targets at once in the long mode (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
smoke=false
if [[ ${1-} == --smoke ]]; then
    smoke=true
    shift
else
    duration=${1:?usage: scripts/fuzz.sh --smoke [BUILD_DIR] | DURATION [BUILD_DIR] [TARGET...]}
    shift
fi
dir=${1:-build-fuzz}
[[ $# -gt 0 ]] && shift
command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing (scripts/install-deps.sh installs it)" >&2; exit 69; }
if [[ ! -f $dir/build.ninja ]]; then
    # -O1 with line tables only, as OSS-Fuzz builds: stacks keep file and line, and the build takes
    # 15% less CPU than -O2 -g (403 s against 476 s here) for about the same executions a second.
    CXX=clang++ meson setup "$dir" -Dfuzz=true -Dtests=false -Doptimization=1 -Ddebug=false \
        -Dcpp_args=-gline-tables-only >/dev/null
fi
ninja -C "$dir" -j"$(nproc)" fuzz-all

if $smoke; then
    exec meson test -C "$dir" --no-rebuild --suite fuzz --print-errorlogs --num-processes "$(nproc)"
fi

case $duration in
    *h) secs=$((${duration%h} * 3600)) ;;
    *m) secs=$((${duration%m} * 60)) ;;
    *s) secs=${duration%s} ;;
    *) secs=$duration ;;
esac
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(find fuzz -maxdepth 1 -name 'fuzz_*.cpp' -printf '%f\n' | sed 's/^fuzz_//; s/\.cpp$//' | sort)
fi
declare -A extra=([udp_frames]=-max_len=140000 [tun_cores]=-max_len=8192 [tun_offload]=-max_len=9100 [persist_wire]=-max_len=8192)
# Long runs share the machine: at load 20 a niced target once sat 12 s inside ASan's allocator on an
# input that takes a millisecond alone, and the smoke run's 10 s unit timeout called that a hang.
# A real hang still ends the run, a minute later.
unit_timeout=-timeout=60
logs=$dir/fuzz/logs
mkdir -p "$logs"
# Each target's CPU time goes next to it: on a shared machine the wall-clock duration alone says little
# about how much fuzzing a target got.
run_one() {
    local t=$1 rc=0 TIMEFORMAT='%U %S'
    { time fuzz/run.sh "$dir/fuzz/fuzz_$t" "fuzz/corpus/$t" "$dir/fuzz/work/$t" "$secs" $unit_timeout ${extra[$t]-} \
        >"$logs/$t.log" 2>&1 || rc=$?; } 2>"$logs/$t.cpu"
    return $rc
}
# "user system" in seconds -> whole seconds
cpu_seconds() {
    awk '{ printf "%d", $1 + $2 }' "$1" 2>/dev/null
}
pids=()
status=0
for t in "${targets[@]}"; do
    [[ -x $dir/fuzz/fuzz_$t ]] || { echo "fuzz: no target '$t'" >&2; exit 64; }
    run_one "$t" &
    pids+=($!)
    if ((${#pids[@]} >= ${FUZZ_JOBS:-1})); then
        wait "${pids[0]}" || status=1
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
printf '%-14s %14s %8s %8s %8s %10s\n' target execs seconds cpu_s crashes slow_units
for t in "${targets[@]}"; do
    l=$logs/$t.log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$l" | tail -1)
    took=$(sed -n 's/^stat::.*//; s/.*Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$l" | tail -1)
    # Slow units (libFuzzer keeps inputs over 10 s) are not failures: on a loaded machine they are
    # mostly inputs that waited for a CPU. Crashes, leaks, timeouts and OOMs are.
    crashes=$(find "$dir/fuzz/work/$t/artifacts" -type f ! -name 'slow-unit-*' | wc -l)
    slow=$(find "$dir/fuzz/work/$t/artifacts" -type f -name 'slow-unit-*' | wc -l)
    printf '%-14s %14s %8s %8s %8s %10s\n' "$t" "${execs:-?}" "${took:-$secs}" "$(cpu_seconds "$logs/$t.cpu")" "$crashes" "$slow"
done
exit $status
