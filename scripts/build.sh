#!/bin/bash
# Configures (once) and builds tn in BUILD_DIR (default ./build) with warnings as errors. Further
# arguments are meson options for that build dir (scripts/test.sh --sanitize passes the sanitizers).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
[[ $# -gt 0 ]] && shift
if [[ -f $dir/build.ninja ]]; then
    meson setup --reconfigure "$dir" -Dwerror=true "$@" >/dev/null
else
    meson setup "$dir" -Dwerror=true "$@" >/dev/null
fi
ninja -C "$dir" -j"$(nproc)"
