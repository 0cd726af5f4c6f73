#!/bin/bash
# Installs what is missing, builds from scratch with -Werror, runs every test, and ends with the summary.
#   scripts/test.sh [BUILD_DIR]               the normal build (g++) and the whole suite (default ./build)
#   scripts/test.sh --sanitize [BUILD_DIR]    the same with ASan + UBSan and leak checks (default
#                                             ./build-asan): any leak, bad access or undefined behaviour
#                                             fails the test that caused it
#   scripts/test.sh --summary TESTLOG.json... one closing line over several runs (CI's last line)
#   --build-only (after --sanitize, if any)   installs and builds, runs nothing: .ci/run builds one
#                                             stage's tree while the stage before it runs its tests
set -euo pipefail
cd "$(dirname "$0")/.."

# One plain closing line that any CI can read: "N passed, N failed, N skipped".
summary() {
    python3 - "$@" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0, "TIMEOUT": 0, "ERROR": 0, "EXPECTEDFAIL": 0, "UNEXPECTEDPASS": 0}
for path in sys.argv[1:]:
    try:
        lines = open(path).readlines()
    except OSError:
        counts["ERROR"] += 1  # a stage that never got to run its tests counts as a failure
        continue
    for line in lines:
        r = json.loads(line)
        counts[r["result"]] = counts.get(r["result"], 0) + 1
failed = counts["FAIL"] + counts["TIMEOUT"] + counts["ERROR"] + counts["UNEXPECTEDPASS"]
print(f"{counts['OK'] + counts['EXPECTEDFAIL']} passed, {failed} failed, {counts['SKIP']} skipped")
PY
}

if [[ ${1-} == --summary ]]; then
    shift
    summary "$@"
    exit 0
fi
sanitize=false
if [[ ${1-} == --sanitize ]]; then
    sanitize=true
    shift
fi
build_only=false
if [[ ${1-} == --build-only ]]; then
    build_only=true
    shift
fi
dir=${1:-$($sanitize && echo build-asan || echo build)}
bash scripts/install-deps.sh
tests=()
opts=()
if $sanitize; then
    # Not -Werror here: g++ 12 gives false -Wrestrict/-Wstringop-overflow warnings on ASan-instrumented
    # code (GCC PR 105329); the normal build holds every warning as an error for the same sources.
    # Unoptimized (-O0): at -O2 an instrumented object took about 6 times as long to compile (lib/'s
    # first 56-62 objects: 662 s against 101 s of CPU), and this stage was about 45 of the CI's 80
    # minutes; the suite, which mostly waits on peers, barely feels the slower code. The optimizer
    # also cannot remove an access before the checks see it.
    bash scripts/build.sh "$dir" -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=false -Doptimization=0
    # Leaks fail a test as surely as a bad access; UBSan stops at its first finding with a stack.
    # Every report also goes to a file in $reports: many tools run under a test are stopped by a signal
    # or run as a daemon whose exit status no test reads, and a report on their stderr alone would be
    # lost. The folder is world-writable and sticky because some tests run the tools as another user.
    reports=$PWD/$dir/sanitizer-reports
    rm -rf "$reports"
    mkdir -p "$reports"
    chmod 1733 "$reports"
    common=log_path=$reports/report:log_exe_name=1
    # Not strict_string_checks: it makes ASan's strndup read up to a NUL, past the end of the unterminated
    # buffers that libssh legally strndup()s (a false heap-buffer-overflow in every key export).
    export ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:$common
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:$common
    # Instrumented code runs 2-5 times slower: each test's own timeout (tests/meson.build) stretches
    # by 3 here, so no test needs a longer timeout of its own for this stage.
    opts=(--timeout-multiplier 3)
    # Tests the sanitizer stage leaves out, each for a finding not fixed on main yet (doc/FUZZING.md
    # lists them and why). Empty when the whole suite is clean under the sanitizers.
    skip=()
    if ((${#skip[@]})); then
        mapfile -t tests < <(meson test -C "$dir" --no-rebuild --list 2>/dev/null | sed 's/^[^ ]* \/ //' |
                             grep -vxF -f <(printf '%s\n' "${skip[@]}"))
        echo "sanitizers: leaving out ${skip[*]} (doc/FUZZING.md)" >&2
    fi
else
    bash scripts/build.sh "$dir"
fi
$build_only && exit 0
set +e
# One test more than there are cores: the integration tests spend most of their time waiting on peers
# (tests/meson.build), so a third keeps the cores busy while two wait.
meson test -C "$dir" --print-errorlogs --num-processes "$(($(nproc) + 1))" "${opts[@]}" "${tests[@]}"
rc=$?
set -e
if $sanitize && [[ -n $(find "$reports" -type f -size +0c -print -quit) ]]; then
    # A report from any process fails the stage, and counts as one failed test in the summary.
    for f in "$reports"/*; do
        echo "sanitizers: report in $f:" >&2
        cat "$f" >&2
    done
    echo '{"name": "sanitizer reports", "result": "FAIL"}' >>"$dir/meson-logs/testlog.json"
    rc=1
fi
summary "$dir/meson-logs/testlog.json"
exit $rc
