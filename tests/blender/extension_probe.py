"""Run in a fresh process by test_addon_extension.py with a private Blender user folder: install the
extension zip through Blender's own installer, generate with the installed copy (its packaged
backend, the embedded demo model) and print what happened."""
import json
import sys

import bpy

zip_path, backend_python = sys.argv[sys.argv.index("--") + 1:]
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
name = "bl_ext.user_default.blender_mdm"
prefs = bpy.context.preferences.addons[name].preferences
prefs.python_exe = backend_python
prefs.device = 'cpu'
bpy.ops.mdm.generate(prompt="a person jumps", seconds=2.0, seed=1, steps=5, num_samples=2, blocking=True)
rig = bpy.context.active_object
package = sys.modules[name]
private = sorted(k for k in sys.modules if k.startswith(name + ".backend"))
action = rig.animation_data.action
print("PROBE " + json.dumps({
    "enabled": name in bpy.context.preferences.addons, "rig": rig.name,
    "actions": sorted(a.name for a in bpy.data.actions), "model_id": action["mdm_model_id"],
    "backend_from": sys.modules[name + ".backend"].__file__, "package_dir": package.__path__[0],
    "private_modules": len(private), "top_level_backend": "backend" in sys.modules,
    "user_dir": bpy.utils.extension_path_user(name, path="cache", create=True)}), flush=True)
bpy.ops.mdm.backend_stop()
