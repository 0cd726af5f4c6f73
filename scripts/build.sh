#!/bin/bash
# Configures (once) and builds tn in BUILD_DIR (default ./build) with warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
if [[ -f $dir/build.ninja ]]; then
    meson setup --reconfigure "$dir" -Dwerror=true >/dev/null
else
    meson setup "$dir" -Dwerror=true >/dev/null
fi
ninja -C "$dir" -j"$(nproc)"
