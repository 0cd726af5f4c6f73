#!/bin/bash
# Installs what is missing, builds, and runs the demo of tn's main job on loopback only.
# Usage: scripts/demo.sh [--keep]   (see examples/demo.sh: up until Enter on a terminal, until a signal with --keep)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build >/dev/null
if [[ -f examples/demo.sh ]]; then
    exec bash examples/demo.sh build "$@"
fi
exec /usr/bin/python3 scripts/demo_keysetup.py build
