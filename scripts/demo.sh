#!/usr/bin/env bash
# make demo: hoist's main job end to end.
set -euo pipefail
hoist=${1:-build/src/cli/hoist}
"$hoist" --version
