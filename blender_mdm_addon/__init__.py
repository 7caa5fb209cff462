"""blender-mdm: text-to-motion in Blender's sidebar (MDM diffusion in a warm local backend process).

Runs inside Blender: bpy + numpy + the torch-free parts of ``backend`` (loaded privately by
``backend_link``). Installs as a Blender 4.2+ extension (blender_manifest.toml) or a legacy add-on.
"""
bl_info = {
    "name": "MDM Text to Motion",
    "author": "blender-mdm contributors",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "3D View > Sidebar > MDM",
    "description": "Generate SMPL body motion from a text prompt (Human Motion Diffusion Model)",
    "category": "Animation",
}

from . import operators, panel, preferences, properties, setup_operator  # noqa: E402

_MODULES = (preferences, properties, operators, setup_operator, panel)


def register():
    for module in _MODULES:
        module.register()


def unregister():
    from . import backend_link
    for module in reversed(_MODULES):
        module.unregister()
    backend_link.unload()
