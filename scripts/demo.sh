#!/usr/bin/env bash
# The main job, headless: generate a motion from a prompt with the embedded demo model, key it onto
# an SMPL armature in real Blender (the bpy module) and write out/demo.blend + out/demo.png (a
# contact sheet of the posed rig). Sets up .venv on a fresh machine first.
#   scripts/demo.sh ["prompt"] [extra headless.py options, e.g. --seconds 6 --seed 3 --num-samples 2]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo/scripts/ensure_venv.sh"
prompt="${1:-a person walks forward then turns around}"
shift || true
out="${MDM_DEMO_OUT:-$repo/out}"
mkdir -p "$out"
cd "$repo"
"$repo/.venv/bin/python" blender_mdm_addon/headless.py -- --prompt "$prompt" --seconds 6 --seed 0 \
    --python "$repo/.venv/bin/python" --save "$out/demo.blend" --preview "$out/demo.png" "$@"
echo "wrote $out/demo.blend and $out/demo.png"
