#!/usr/bin/env bash
# Creates or repairs the development virtual environment at <repo>/.venv.
# Idempotent: re-installs only when requirements changed (stamp = hash of the requirement files).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
py="${PYTHON:-python3}"
stamp_src=$(cat "$repo/requirements/dev.txt" "$repo/backend/requirements.txt" | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$venv/.requirements-stamp" ] \
   && [ "$(cat "$venv/.requirements-stamp")" = "$stamp_src" ]; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv" >&2
  "$py" -m venv "$venv"
fi
echo "[setup] installing pinned requirements into $venv (a few minutes on a fresh machine)" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/requirements/dev.txt" >&2
echo "$stamp_src" > "$venv/.requirements-stamp"
