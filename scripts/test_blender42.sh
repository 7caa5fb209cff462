#!/usr/bin/env bash
# The add-on tests on Blender 4.2 LTS (bpy 4.2.x wheel, pre-layered-action API) in .venv-bpy42.
# Creates the venv on first use (~35 s, ~1.1 GB); extra arguments go to pytest.
# The end-to-end backend tests still use <repo>/.venv (torch) for the server process.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv-bpy42"
reqs="bpy==4.2.23 numpy==1.26.4 pytest==9.2.0 hypothesis==6.170.15"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements-stamp" 2>/dev/null)" != "$reqs" ]; then
  echo "[setup] creating $venv with $reqs" >&2
  "${PYTHON:-python3.11}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $reqs >&2
  echo "$reqs" > "$venv/.requirements-stamp"
fi
cd "$repo"
exec "$venv/bin/python" -m pytest tests/blender tests/test_addon_manifest.py "$@"
