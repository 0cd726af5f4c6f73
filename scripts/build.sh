#!/bin/bash
# Configures (once) and builds tn in BUILD_DIR (default ./build) with warnings as errors. Further
# arguments are meson options for that build dir (scripts/test.sh --sanitize passes the sanitizers);
# a -Dwerror=... among them replaces the default -Dwerror=true.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
[[ $# -gt 0 ]] && shift
opts=(-Dwerror=true)
for a in "$@"; do [[ $a == -Dwerror=* ]] && opts=(); done
if [[ -f $dir/build.ninja ]]; then
    meson setup --reconfigure "$dir" "${opts[@]}" "$@" >/dev/null
else
    meson setup "$dir" "${opts[@]}" "$@" >/dev/null
fi
ninja -C "$dir" -j"$(nproc)"
