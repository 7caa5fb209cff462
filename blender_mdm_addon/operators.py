"""Operators. Thin: the job state machine is ``controller``, the scene writing ``importer``.

``mdm.generate`` and ``mdm.edit_range`` are modal with a timer in the GUI (the UI stays live; Esc or
``mdm.cancel`` stop the job) and synchronous under ``bpy.app.background`` or with ``blocking=True``:
same arguments. The edit's reading and writing of the rig is ``editor``.
"""
from __future__ import annotations

import random

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import backend_link, controller, editor, importer, keying, preferences, properties, rig, setup_check
from .result_file import load_result

TIMER_INTERVAL_S = 0.1
# Tests set this to drive the modal path with fake timer events inside the background bpy module.
MODAL_IN_BACKGROUND = False
# The running modal generate / edit_range operator, if any (tests feed it events; there is one job at a time).
ACTIVE_MODAL = None


def _errors():
    return backend_link.load("errors")


def _redraw_panels(context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in ('VIEW_3D', 'PREFERENCES'):
                area.tag_redraw()


def report_done(operator, message: str, recipe: dict) -> None:
    """The finished job's message in the panel and the report; the report adds the prompt's words the
    model was not trained on, reworded or hidden (the panel shows them for whichever take is active,
    see panel.py)."""
    controller.CONTROLLER.message = message
    note = importer.vocabulary_note(recipe)
    if recipe.get("unseen_words"):
        note += "; it followed the sentence's overall meaning"
    seam = importer.loop_note(recipe)
    note = "; ".join(n for n in (note, seam) if n)
    operator.report({'WARNING'} if seam else {'INFO'}, message + (f" ({note})" if note else ""))


def key_result(operator, context, path: str, options: importer.ImportOptions) -> set:
    """Load + key a result file, reporting any failure on ``operator`` (the scene stays unchanged)."""
    try:
        result = load_result(path)
        imported = importer.import_result(context, result, options)
    except _errors().BackendError as exc:
        operator.report({'ERROR'}, exc.message)
        controller.CONTROLLER.state, controller.CONTROLLER.message = controller.ERROR, exc.message
        return {'CANCELLED'}
    what = imported.rig.name if imported.rig else ", ".join(m.name for m in imported.meshes)
    report_done(operator, f"Keyed {max(len(imported.actions), len(imported.meshes))} sample(s) on {what}",
                result.recipe)
    return {'FINISHED'}


class _BackendJob:
    """One backend job, run synchronously (background mode or ``blocking=True``) or modal with a
    timer (the UI stays live; Esc or ``mdm.cancel`` stop it). Subclasses give ``_prepare(context,
    settings) -> (op, params)`` (raise BackendError to refuse: nothing changes) and ``_write(context,
    result_path) -> set`` (the result into the scene, one undo step), and may clean up in ``_end``."""

    def _synchronous(self) -> bool:
        return self.blocking or (bpy.app.background and not MODAL_IN_BACKGROUND)

    def _end(self) -> None:
        pass

    def execute(self, context):
        global ACTIVE_MODAL
        self._settings = settings = preferences.current_settings(context)
        try:
            op, params = self._prepare(context, settings)
            if self._synchronous():
                controller.CONTROLLER.run_blocking(op, params, settings, progress=_print_progress)
            else:
                controller.CONTROLLER.start(op, params, settings)
        except _errors().BackendError as exc:
            self._end()
            self.report({'ERROR'}, exc.message)
            return {'CANCELLED'}
        if self._synchronous():
            try:
                return self._write(context, controller.CONTROLLER.result_path)
            finally:
                self._end()
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_INTERVAL_S, window=context.window)
        wm.modal_handler_add(self)
        ACTIVE_MODAL = self
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        global ACTIVE_MODAL
        ctl = controller.CONTROLLER
        if event.type == 'ESC' and event.value == 'PRESS':
            ctl.cancel()
            return {'RUNNING_MODAL'}
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}  # the rest of Blender stays usable while the job runs
        state = ctl.tick()
        _redraw_panels(context)
        if state in controller.BUSY_STATES:
            return {'RUNNING_MODAL'}
        context.window_manager.event_timer_remove(self._timer)
        ACTIVE_MODAL = None
        try:
            if state == controller.DONE:
                return self._write(context, ctl.result_path)
            self.report({'WARNING'} if state == controller.CANCELLED else {'ERROR'}, ctl.message)
            return {'CANCELLED'}
        finally:
            self._end()


def _model_params(settings) -> dict:
    return {"model_dir": settings.model_dir or None, "text_encoder_dir": settings.text_encoder_dir or None,
            "device": settings.device}


@properties.annotate
class MDM_OT_generate(_BackendJob, bpy.types.Operator):
    """Generate motion from the prompt and key it onto an SMPL rig"""
    bl_idname = "mdm.generate"
    bl_label = "Generate"
    bl_options = {'REGISTER', 'UNDO'}

    blocking: BoolProperty(name="Blocking", default=False, options={'SKIP_SAVE'},
                           description="wait for the result (always the case in background mode)")

    def _options(self, settings) -> importer.ImportOptions:
        return importer.ImportOptions(output=self.output, target=self.target, start_frame=self.start_frame,
                                      smpl_dir=settings.smpl_dir, target_name=self._target_name,
                                      root_motion=self.root_motion, loop=self.loop,
                                      recipe={"prompt": self.prompt, "seed": self.seed, "guidance": self.guidance,
                                              "steps": self.steps or None})

    def _prepare(self, context, settings):
        self._target_name = ""
        if not self.prompt.strip():
            raise _errors().InputError("the prompt is empty: describe the motion, e.g. 'a person jumps'")
        if self.target == 'SELECTED' and self.output != 'VERTEX':
            rig.find_smpl_bones(context.active_object)
            self._target_name = context.active_object.name
        smpl = setup_check.resolve_smpl_file(settings)
        return "generate", {**_model_params(settings), "prompt": self.prompt, "seconds": self.seconds,
                            "seed": self.seed, "num_samples": self.num_samples, "guidance": self.guidance,
                            "steps": self.steps or None, "fit": True, "smpl_path": str(smpl) if smpl else None,
                            "vertices": self.output == 'VERTEX', "foot_lock": self.foot_lock,
                            "upper_prompt": self.upper_prompt.strip()}

    def _write(self, context, path):
        return key_result(self, context, path, self._options(self._settings))


class MDM_OT_edit_range(_BackendJob, bpy.types.Operator):
    """Regenerate a frame range of the active SMPL rig's animation (in-between or upper body) into a
    new action; the keys outside the range and the original action stay as they are"""
    bl_idname = "mdm.edit_range"
    bl_label = "Edit Range"
    bl_options = {'REGISTER', 'UNDO'}

    frame_start: IntProperty(name="Start", default=1, description="first frame to regenerate")
    frame_end: IntProperty(name="End", default=2, description="last frame to regenerate (inclusive)")
    mode: EnumProperty(name="Mode", items=properties.EDIT_MODE_ITEMS, default='IN_BETWEEN')
    extend_seconds: FloatProperty(name="Extend", default=0.0, min=0.0, max=editor.E.MAX_EXTEND_SECONDS,
                                  unit='TIME_ABSOLUTE',
                                  description="above 0: continue the animation this long past its last key "
                                              "(the start and end are then taken from the keys)")
    blocking: BoolProperty(name="Blocking", default=False, options={'SKIP_SAVE'},
                           description="wait for the result (always the case in background mode)")

    def _prepare(self, context, settings):
        self._job = None
        recipe = {"prompt": self.prompt.strip(), "seed": self.seed, "guidance": self.guidance,
                  "steps": self.steps or None}
        self._job = editor.prepare_edit(context, context.active_object, self.frame_start, self.frame_end,
                                        self.mode, recipe, extend_seconds=self.extend_seconds)
        self.frame_start, self.frame_end = self._job.plan.frame_start, self._job.plan.frame_end
        return "edit", {**_model_params(settings), **self._job.params(), "foot_lock": self.foot_lock}

    def _write(self, context, path):
        try:
            result = load_result(path)
            action = editor.apply_edit(context, self._job, result)
        except _errors().BackendError as exc:
            self.report({'ERROR'}, exc.message)
            controller.CONTROLLER.state, controller.CONTROLLER.message = controller.ERROR, exc.message
            return {'CANCELLED'}
        done = (f"Extended by {self.extend_seconds:g} s (frames {self.frame_start}-{self.frame_end})"
                if self._job.extends else f"Edited frames {self.frame_start}-{self.frame_end}")
        report_done(self, f"{done} into '{action.name}'", result.recipe)
        return {'FINISHED'}

    def _end(self):
        if getattr(self, "_job", None) is not None:
            self._job.cleanup()


# The edit operator's own prompt (empty = unconditional in-filling) instead of generate's.
properties.annotate(MDM_OT_edit_range, {**{k: properties.GENERATION_PROPS[k]
                                           for k in ("seed", "guidance", "steps", "foot_lock")},
                                        "prompt": properties.EDIT_PROPS["edit_prompt"]})


def _print_progress(event: dict) -> None:
    step, total = event.get("step", 0), event.get("total", 0)
    if event.get("phase") != "diffusion" or step in (1, total) or step % 10 == 0:
        print(f"MDM: {event.get('phase', '')} {step}/{total}", flush=True)


class MDM_OT_cancel(bpy.types.Operator):
    """Stop the running generation (the backend stops between two diffusion steps)"""
    bl_idname = "mdm.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return controller.CONTROLLER.busy

    def execute(self, context):
        controller.CONTROLLER.cancel()
        return {'FINISHED'}


def _poll_until_idle():
    """``bpy.app.timers`` callback for backend_start in the GUI."""
    controller.CONTROLLER.tick()
    _redraw_panels(bpy.context)
    return TIMER_INTERVAL_S if controller.CONTROLLER.busy else None


class MDM_OT_backend_start(bpy.types.Operator):
    """Start the backend process and load the model now, so the first Generate is fast"""
    bl_idname = "mdm.backend_start"
    bl_label = "Start Backend"

    def execute(self, context):
        settings = preferences.current_settings(context)
        params = _model_params(settings)
        try:
            if bpy.app.background:
                controller.CONTROLLER.run_blocking("load_model", params, settings, progress=_print_progress)
            else:
                controller.CONTROLLER.start("load_model", params, settings)
                bpy.app.timers.register(_poll_until_idle, first_interval=TIMER_INTERVAL_S)
        except _errors().BackendError as exc:
            self.report({'ERROR'}, exc.message)
            return {'CANCELLED'}
        return {'FINISHED'}


class MDM_OT_backend_stop(bpy.types.Operator):
    """Stop the backend process (frees its memory; the next Generate starts it again)"""
    bl_idname = "mdm.backend_stop"
    bl_label = "Stop Backend"

    def execute(self, context):
        controller.CONTROLLER.stop_backend()
        return {'FINISHED'}


class MDM_OT_import_result(bpy.types.Operator, ImportHelper):
    """Key a result .npz written by 'python -m backend generate --fit'"""
    bl_idname = "mdm.import_result"
    bl_label = "Import MDM Result"
    bl_options = {'REGISTER', 'UNDO'}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={'HIDDEN'})
    output: EnumProperty(name="Output", items=properties.OUTPUT_ITEMS, default='ARMATURE')
    target: EnumProperty(name="Target", items=properties.TARGET_ITEMS, default='NEW')
    start_frame: IntProperty(name="Start Frame", default=1)
    root_motion: EnumProperty(name="Root Motion", items=properties.ROOT_MOTION_ITEMS, default='WORLD')
    loop: BoolProperty(name="Loop", default=False, description=properties.GENERATION_PROPS["loop"][1]["description"])

    def execute(self, context):
        settings = preferences.current_settings(context)
        options = importer.ImportOptions(output=self.output, target=self.target, start_frame=self.start_frame,
                                         smpl_dir=settings.smpl_dir, root_motion=self.root_motion, loop=self.loop)
        return key_result(self, context, self.filepath, options)


class MDM_OT_randomize_seed(bpy.types.Operator):
    """Pick a new random seed"""
    bl_idname = "mdm.randomize_seed"
    bl_label = "Randomize Seed"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        context.scene.mdm.seed = random.randrange(2 ** 31 - 1)
        return {'FINISHED'}


class MDM_OT_pick_sample(bpy.types.Operator):
    """Show this sample: the rig's active action, or the visible vertex-animated mesh"""
    bl_idname = "mdm.pick_sample"
    bl_label = "Pick Sample"
    bl_options = {'REGISTER', 'UNDO'}

    action: StringProperty(name="Action", description="sample action to assign to the active rig")
    object: StringProperty(name="Object", description="vertex-animated sample object to show")

    def execute(self, context):
        if self.object:
            chosen = bpy.data.objects.get(self.object)
            if chosen is None or "mdm_batch" not in chosen:
                self.report({'ERROR'}, f"no MDM sample object named '{self.object}'")
                return {'CANCELLED'}
            for obj in bpy.data.objects:
                if obj.get("mdm_batch") == chosen["mdm_batch"]:
                    obj.hide_viewport = obj.hide_render = obj != chosen
            context.view_layer.objects.active = chosen
            return {'FINISHED'}
        obj, action = context.active_object, bpy.data.actions.get(self.action)
        if obj is None or action is None:
            self.report({'ERROR'}, f"no active object or no action named '{self.action}'")
            return {'CANCELLED'}
        keying.assign_action(obj, action)
        return {'FINISHED'}


@bpy.app.handlers.persistent
def _on_load_pre(*_args):
    """Opening another .blend drops the modal operator: cancel its job so the panel is not stuck."""
    global ACTIVE_MODAL
    ctl = controller.CONTROLLER
    if ctl.busy and ctl.op in ("generate", "edit"):
        ctl.cancel()
        ctl.reset()
    if ACTIVE_MODAL is not None:
        try:
            ACTIVE_MODAL._end()  # e.g. the edit's input file
        except ReferenceError:  # the operator's data is already gone
            pass
    ACTIVE_MODAL = None


CLASSES = (MDM_OT_generate, MDM_OT_edit_range, MDM_OT_cancel, MDM_OT_backend_start, MDM_OT_backend_stop,
           MDM_OT_import_result,
           MDM_OT_randomize_seed, MDM_OT_pick_sample)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.app.handlers.load_pre.append(_on_load_pre)


def unregister():
    if _on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_on_load_pre)
    if bpy.app.timers.is_registered(_poll_until_idle):
        bpy.app.timers.unregister(_poll_until_idle)
    controller.CONTROLLER.stop_backend()
    controller.CONTROLLER.reset()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
