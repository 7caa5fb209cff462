"""Preferences › "Set up backend": create (or repair) the backend's own Python environment.

The venv lives in the extension's user folder (``extension_path_user(..., "runtime")``; for a legacy
add-on Blender's user data folder) — never inside the add-on and never in Blender's Python. The
work runs on a thread in the GUI (pip downloads take minutes; Blender stays usable and the
preferences show the step), synchronously in background mode. On success the Backend Python
preference points at the new interpreter.
"""
from __future__ import annotations

import threading
from pathlib import Path

import bpy

from . import backend_link, backend_setup, setup_check

STATE = {"running": False, "step": "", "fraction": 0.0, "error": "", "done": ""}


def runtime_folder() -> Path:
    return setup_check.runtime_dir()


def online_access_allowed() -> bool:
    """Blender's "Allow Online Access" (extensions must not download anything without it)."""
    return bool(getattr(bpy.app, "online_access", True))


def make_plan(prefs, repair: bool) -> backend_setup.SetupPlan:
    root = backend_link.backend_root()
    if root is None:
        raise backend_setup.SetupError("the backend sources are missing from the add-on; reinstall the extension zip")
    existing = Path(bpy.path.abspath(prefs.setup_base_python)) if prefs.setup_use_existing and prefs.setup_base_python \
        else None
    return backend_setup.plan_setup(runtime_folder(), root / "requirements.txt", backend_setup.default_base_python(),
                                    backend_setup.detect_nvidia_gpu(), existing_python=existing, repair=repair)


def _progress(i: int, n: int, label: str) -> None:
    STATE.update(step=label, fraction=i / max(1, n))


def _work(plan: backend_setup.SetupPlan) -> None:
    try:
        python = backend_setup.run_setup(plan, progress=_progress)
        STATE.update(done=str(python), error="")
    except backend_setup.SetupError as exc:
        STATE.update(error=str(exc), done="")
    finally:
        STATE["running"] = False


class MDM_OT_setup_backend(bpy.types.Operator):
    """Create or repair the backend environment (downloads torch and the other packages once)"""
    bl_idname = "mdm.setup_backend"
    bl_label = "Set Up Backend"
    bl_options = {'REGISTER'}

    _timer = None

    @classmethod
    def poll(cls, context):
        return not STATE["running"]

    def _prefs(self, context):
        return context.preferences.addons[__package__].preferences

    def _start(self, context):
        prefs = self._prefs(context)
        existing = runtime_folder()
        repair = (existing / "pyvenv.cfg").is_file() and not backend_setup.environment_is_healthy(
            backend_setup.venv_python(existing))
        plan = make_plan(prefs, repair)
        if not online_access_allowed() and not prefs.setup_use_existing:
            raise backend_setup.SetupError("Blender is in offline mode (Preferences › System › Network): allow online "
                                           "access to download the backend packages, or choose an existing Python")
        STATE.update(running=True, step="Starting", fraction=0.0, error="", done="")
        return plan

    def _finish(self, context):
        prefs = self._prefs(context)
        if STATE["done"]:
            prefs.python_exe = STATE["done"]
            self.report({'INFO'}, f"Backend environment ready: {STATE['done']}")
            return {'FINISHED'}
        self.report({'ERROR'}, STATE["error"] or "backend set-up failed")
        return {'CANCELLED'}

    def execute(self, context):
        try:
            plan = self._start(context)
        except backend_setup.SetupError as exc:
            STATE.update(error=str(exc))
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        if bpy.app.background:
            _work(plan)
            return self._finish(context)
        threading.Thread(target=_work, args=(plan,), daemon=True, name="mdm-setup").start()
        self._timer = context.window_manager.event_timer_add(0.5, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        for area in context.screen.areas if context.screen else ():
            area.tag_redraw()
        if STATE["running"]:
            return {'RUNNING_MODAL'}
        context.window_manager.event_timer_remove(self._timer)
        return self._finish(context)


def draw_setup(layout, prefs) -> None:
    """The set-up box in the preferences."""
    box = layout.box()
    row = box.row()
    row.operator(MDM_OT_setup_backend.bl_idname, icon='CONSOLE')
    row.prop(prefs, "setup_use_existing")
    if prefs.setup_use_existing:
        box.prop(prefs, "setup_base_python")
    if STATE["running"]:
        box.progress(factor=STATE["fraction"], type='BAR', text=STATE["step"]) if hasattr(box, "progress") \
            else box.label(text=f"{STATE['step']} ({STATE['fraction']:.0%})", icon='TIME')
    elif STATE["error"]:
        for line in STATE["error"].splitlines()[:8]:
            box.label(text=line, icon='ERROR')
    elif STATE["done"]:
        box.label(text=f"Backend environment ready: {STATE['done']}", icon='CHECKMARK')
    else:
        box.label(text=f"Creates a Python environment in {runtime_folder()} (torch: CUDA build when an NVIDIA "
                       "GPU is present, else CPU)", icon='INFO')


def register():
    bpy.utils.register_class(MDM_OT_setup_backend)


def unregister():
    bpy.utils.unregister_class(MDM_OT_setup_backend)
