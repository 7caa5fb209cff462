#!/usr/bin/env bash
# Runs the whole test suite. Sets up .venv (pinned torch/bpy 5.0.1) on a fresh machine first.
# With no arguments it also runs the Blender tests on Blender 4.2 LTS (scripts/test_blender42.sh) and
# the opt-in onnx_venv target (a fresh venv without torch generating from an ONNX export, ~1 min).
# Extra arguments go to pytest and select a part of the main suite, e.g. scripts/test.sh -m "not slow" -x
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/ensure_venv.sh"
cd "$repo"
if [ "$#" -gt 0 ]; then
  exec "$repo/.venv/bin/python" -m pytest "$@"
fi
status=0
"$repo/scripts/test_blender42.sh" -q || status=$?
"$repo/.venv/bin/python" -m pytest -q -m onnx_venv tests/test_onnx_venv.py || status=$?
"$repo/.venv/bin/python" -m pytest || status=$?
exit "$status"
