"""Run in a fresh process by test_addon_extension.py with a private Blender user folder: install the
extension zip through Blender's own installer, key a result with it, print what happened."""
import json
import sys

import bpy

zip_path, result_path = sys.argv[sys.argv.index("--") + 1:]
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
name = "bl_ext.user_default.blender_mdm"
bpy.ops.mdm.import_result(filepath=result_path)
rig = bpy.context.active_object
package = sys.modules[name]
private = sorted(k for k in sys.modules if k.startswith(name + ".backend"))
print("PROBE " + json.dumps({
    "enabled": name in bpy.context.preferences.addons, "rig": rig.name, "actions": len(bpy.data.actions),
    "backend_from": sys.modules[name + ".backend"].__file__, "package_dir": package.__path__[0],
    "private_modules": len(private), "top_level_backend": "backend" in sys.modules,
    "user_dir": bpy.utils.extension_path_user(name, path="cache", create=True)}), flush=True)
