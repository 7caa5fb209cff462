#!/usr/bin/env bash
# Runs the whole test suite. Sets up .venv (pinned torch/bpy) on a fresh machine first.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not slow" -x
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/ensure_venv.sh"
cd "$repo"
exec "$repo/.venv/bin/python" -m pytest "$@"
