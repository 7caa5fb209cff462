"""Add-on preferences: backend Python, model / text-encoder / SMPL folders, device, and a status
line per item saying exactly what is missing."""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from . import setup_check, setup_operator

DEVICES = [('auto', "Auto", "CUDA when available, else CPU"), ('cuda', "CUDA", "NVIDIA GPU"),
           ('cpu', "CPU", "Slow but works everywhere")]


class MDM_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    python_exe: StringProperty(name="Backend Python", subtype='FILE_PATH',
                               description="python executable of the backend environment (torch installed); "
                                           "empty = the set-up runtime or the repository's .venv")
    model_dir: StringProperty(name="Model Folder", subtype='DIR_PATH',
                              description="MDM checkpoint folder (args.json + model*.pt); empty = embedded demo model")
    text_encoder_dir: StringProperty(name="Text Encoder Folder", subtype='DIR_PATH',
                                     description="local text-encoder weights; empty = the model's default")
    smpl_dir: StringProperty(name="SMPL Folder", subtype='DIR_PATH',
                             description="folder with SMPL_NEUTRAL.pkl/.npz; empty = smpl_assets/ of the add-on")
    device: EnumProperty(name="Device", items=DEVICES, default='auto')
    setup_use_existing: BoolProperty(name="Install into an existing Python",
                                     description="install the backend packages into the Python below instead of "
                                                 "creating a new environment")
    setup_base_python: StringProperty(name="Existing Python", subtype='FILE_PATH',
                                      description="a Python 3.10+ interpreter to install the backend packages into")

    def draw(self, context):
        layout = self.layout
        for name in ("python_exe", "model_dir", "text_encoder_dir", "smpl_dir", "device"):
            layout.prop(self, name)
        setup_operator.draw_setup(layout, self)
        box = layout.box()
        for check in setup_check.check_setup(settings_of(self)):
            icon = 'CHECKMARK' if check.ok else ('INFO' if check.optional else 'ERROR')
            box.label(text=check.message, icon=icon)
        row = layout.row()
        row.operator("mdm.backend_start", icon='PLAY')
        row.operator("mdm.backend_stop", icon='PAUSE')


def settings_of(prefs) -> setup_check.Settings:
    if prefs is None:
        return setup_check.Settings()
    return setup_check.Settings(bpy.path.abspath(prefs.python_exe) if prefs.python_exe else "",
                                bpy.path.abspath(prefs.model_dir) if prefs.model_dir else "",
                                bpy.path.abspath(prefs.text_encoder_dir) if prefs.text_encoder_dir else "",
                                bpy.path.abspath(prefs.smpl_dir) if prefs.smpl_dir else "", prefs.device)


def current_settings(context=None) -> setup_check.Settings:
    """The preferences (defaults when the add-on was registered without the add-on manager)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return settings_of(addon.preferences if addon is not None else None)


def register():
    bpy.utils.register_class(MDM_AddonPreferences)


def unregister():
    bpy.utils.unregister_class(MDM_AddonPreferences)
