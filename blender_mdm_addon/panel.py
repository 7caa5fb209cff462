"""3D View > Sidebar > MDM: prompt and settings, Generate / progress / Cancel, sample picker, and
Edit Range (the active SMPL rig's animation on the preview range or the selected keys).

``draw_panel(layout, context)`` is the whole drawing code, so tests can call it with a recording
fake layout in every controller state.
"""
from __future__ import annotations

import bpy

from . import controller, editor, importer, preferences, properties, setup_check

_STATE_ICONS = {controller.DONE: 'CHECKMARK', controller.ERROR: 'ERROR', controller.CANCELLED: 'CANCEL'}


def _draw_status(layout, ctl, wants_mesh: bool) -> None:
    blocking = [c for c in setup_check.check_setup(preferences.current_settings())
                if not c.ok and (not c.optional or wants_mesh)]
    for check in blocking:
        layout.label(text=check.message, icon='ERROR')
    if not blocking and not ctl.busy:
        text = "Backend: running" if ctl.backend_alive else "Backend: not running (starts on Generate)"
        layout.label(text=text, icon='LINKED' if ctl.backend_alive else 'UNLINKED')


def _batch_of(context):
    """(samples, current, kind) of the active rig's action batch or vertex-animated mesh batch."""
    obj = context.active_object
    if obj is None:
        return [], None, ""
    if "mdm_batch" in obj:  # vertex animation: one object per sample
        batch = obj["mdm_batch"]
        return [o for o in bpy.data.objects if o.get("mdm_batch") == batch], obj, "object"
    anim = obj.animation_data
    current = anim.action if anim is not None else None
    if current is None or "mdm_batch" not in current:
        return [], None, ""
    batch = current["mdm_batch"]
    return [a for a in bpy.data.actions if a.get("mdm_batch") == batch], current, "action"


def _draw_take_notes(layout, current) -> None:
    """Notes on the active take (the rig's action or the vertex-animated sample), from its stored
    recipe: they stay with the take, not with the last job."""
    note = importer.vocabulary_note(importer.stored_recipe(current))
    if note:
        layout.label(text=note, icon='INFO')


def _draw_samples(layout, samples, current, kind) -> None:
    if len(samples) < 2:
        return
    box = layout.box()
    box.label(text="Samples", icon='ACTION' if kind == "action" else 'MESH_DATA')
    col = box.column(align=True)
    for block in sorted(samples, key=lambda b: b.get("mdm_sample", 0)):
        op = col.operator("mdm.pick_sample", text=block.name, depress=block == current,
                          icon='RADIOBUT_ON' if block == current else 'RADIOBUT_OFF')
        setattr(op, kind, block.name)


def _draw_edit(layout, context, settings, busy: bool) -> None:
    box = layout.box()
    box.label(text="Edit Range", icon='ACTION')
    obj = context.active_object
    if obj is None or obj.type != 'ARMATURE':
        box.label(text="Select an SMPL rig to edit its animation", icon='INFO')
        return
    col = box.column()
    col.enabled = not busy
    col.prop(settings, "edit_mode", text="")
    col.prop(settings, "edit_prompt", text="")
    if not busy:   # continue past the last key (whole body), whatever range is selected
        row = col.row(align=True)
        row.prop(settings, "extend_seconds")
        _edit_button(row, settings, text="Extend", icon='FORWARD', extend_seconds=settings.extend_seconds,
                     mode='IN_BETWEEN')
    found = editor.timeline_range(context)
    if found is None:
        col.label(text="Set a preview range or select keys", icon='INFO')
        return
    start, end, source = found
    col.label(text=f"Frames {start}-{end} ({source})")
    if busy:
        return
    _edit_button(col, settings, text="Edit Range", icon='MOD_TIME', frame_start=start, frame_end=end,
                 mode=settings.edit_mode)


def _edit_button(layout, settings, text: str, icon: str, **props) -> None:
    """An ``mdm.edit_range`` button with the panel's edit prompt and generation settings plus ``props``."""
    op = layout.operator("mdm.edit_range", text=text, icon=icon)
    op.prompt = settings.edit_prompt
    for name in ("seed", "guidance", "steps", "foot_lock"):
        setattr(op, name, getattr(settings, name))
    for name, value in props.items():
        setattr(op, name, value)


def draw_panel(layout, context) -> None:
    ctl = controller.CONTROLLER
    settings = context.scene.mdm
    _draw_status(layout, ctl, wants_mesh=settings.output != 'ARMATURE')

    col = layout.column()
    col.enabled = not ctl.busy
    col.prop(settings, "prompt", text="")
    col.prop(settings, "upper_prompt", icon='MOD_ARMATURE')
    col.prop(settings, "seconds")
    row = col.row(align=True)
    row.prop(settings, "seed")
    row.operator("mdm.randomize_seed", text="", icon='FILE_REFRESH')
    col.prop(settings, "guidance")
    col.prop(settings, "steps")
    col.prop(settings, "num_samples")
    col.prop(settings, "output")
    col.prop(settings, "target")
    col.prop(settings, "start_frame")
    col.prop(settings, "root_motion")
    col.prop(settings, "loop")
    col.prop(settings, "foot_lock")

    if ctl.busy:
        row = layout.row(align=True)
        row.progress(factor=ctl.fraction, type='BAR', text=ctl.label)
        row.operator("mdm.cancel", text="", icon='CANCEL')
        layout.label(text="Esc or the button cancels", icon='INFO')
    else:
        op = layout.operator("mdm.generate", icon='PLAY')
        for name in properties.GENERATION_PROPS:
            setattr(op, name, getattr(settings, name))
        if ctl.state in _STATE_ICONS and ctl.message:  # first line only: details are in the report
            layout.label(text=ctl.message.splitlines()[0], icon=_STATE_ICONS[ctl.state])
    samples, current, kind = _batch_of(context)
    _draw_take_notes(layout, current)
    _draw_samples(layout, samples, current, kind)
    _draw_edit(layout, context, settings, ctl.busy)


class MDM_PT_panel(bpy.types.Panel):
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "MDM"
    bl_label = "Text to Motion"

    def draw(self, context):
        draw_panel(self.layout, context)


def register():
    bpy.utils.register_class(MDM_PT_panel)


def unregister():
    bpy.utils.unregister_class(MDM_PT_panel)
