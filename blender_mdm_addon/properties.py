"""The generation settings shown in the MDM panel (``scene.mdm``). ``mdm.generate`` takes the same
names as operator arguments; the panel copies these into the operator it calls."""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import backend_link

editing = backend_link.load("editing")   # the Extend limit

OUTPUT_ITEMS = [('ARMATURE', "Armature", "keyed SMPL armature"),
                ('ARMATURE_MESH', "Armature + Mesh", "keyed armature with a skinned SMPL mesh (needs SMPL file)"),
                ('VERTEX', "Vertex Animation", "SMPL mesh with a point cache, no armature (needs SMPL file)")]
TARGET_ITEMS = [('NEW', "New SMPL Rig", "create a new SMPL armature"),
                ('SELECTED', "Selected SMPL Rig", "key the active armature (SMPL bone names, T-pose rest)")]
ROOT_MOTION_ITEMS = [('WORLD', "World", "the body travels through the scene as generated"),
                     ('IN_PLACE', "In Place", "hold the pelvis over its first position (no horizontal travel; "
                                              "height, turning and limbs unchanged), as game-engine cycles expect")]
MAX_SECONDS = 9.8  # MDM's 196 frames at 20 fps

# name -> (property constructor, kwargs); shared by the scene settings and the operator.
GENERATION_PROPS = {
    "prompt": (StringProperty, dict(name="Prompt", default="a person walks forward then turns around",
                                    description="what the body does, in plain English")),
    "upper_prompt": (StringProperty, dict(name="Upper Body Prompt", default="",
                                          description="optional second action for spine, arms and head over the "
                                                      "whole clip while the legs do the prompt, e.g. 'a person "
                                                      "waves with the right hand' (a second diffusion pass)")),
    "seconds": (FloatProperty, dict(name="Length", default=4.0, min=0.5, max=MAX_SECONDS, unit='TIME_ABSOLUTE',
                                    description="clip length in seconds (MDM: at most 9.8)")),
    "seed": (IntProperty, dict(name="Seed", default=0, min=0, description="same seed + prompt = same motion")),
    "guidance": (FloatProperty, dict(name="Guidance", default=2.5, min=0.0, max=20.0,
                                     description="classifier-free guidance scale: higher follows the text more")),
    "steps": (IntProperty, dict(name="Steps", default=0, min=0, max=1000,
                                description="diffusion steps (0 = the model's own count)")),
    "num_samples": (IntProperty, dict(name="Samples", default=1, min=1, max=10,
                                      description="motions generated at once; pick one in the panel")),
    "output": (EnumProperty, dict(name="Output", items=OUTPUT_ITEMS, default='ARMATURE')),
    "target": (EnumProperty, dict(name="Target", items=TARGET_ITEMS, default='NEW')),
    "start_frame": (IntProperty, dict(name="Start Frame", default=1, description="frame of the first key")),
    "root_motion": (EnumProperty, dict(name="Root Motion", items=ROOT_MOTION_ITEMS, default='WORLD')),
    "loop": (BoolProperty, dict(name="Loop", default=False,
                                description="key one seamless cycle of the motion that repeats forever (Cycles "
                                            "modifiers; the pelvis travels on each cycle, net turning removed)")),
    "foot_lock": (BoolProperty, dict(name="Foot Lock", default=True,
                                     description="pin the feet where the model says they touch the ground, so "
                                                 "planted feet do not slide (legs re-solved with IK)")),
}


EDIT_MODE_ITEMS = [('IN_BETWEEN', "In-between", "regenerate the whole body on the range; the motion around it "
                                                  "is kept and the new part joins it"),
                   ('UPPER_BODY', "Upper Body", "regenerate spine, arms and head on the range; pelvis and legs "
                                                "keep their keys")]
# The panel's edit settings (``scene.mdm.edit_*``); mdm.edit_range takes them as mode and prompt.
EDIT_PROPS = {
    "edit_mode": (EnumProperty, dict(name="Edit", items=EDIT_MODE_ITEMS, default='IN_BETWEEN')),
    "edit_prompt": (StringProperty, dict(name="Edit Prompt", default="",
                                         description="what the body does on the range; empty = fill it in "
                                                     "from the motion around it (no text)")),
    "extend_seconds": (FloatProperty, dict(name="Seconds", default=2.0, min=0.5, max=editing.MAX_EXTEND_SECONDS,
                                           description="how long Extend continues the animation past its "
                                                       "last key, with the edit prompt")),
}


def annotate(cls, props: dict = GENERATION_PROPS):
    """Add ``props`` (default: the generation properties) as annotations of ``cls``."""
    annotations = dict(getattr(cls, "__annotations__", {}))
    for name, (prop, kwargs) in props.items():
        annotations[name] = prop(**kwargs)
    cls.__annotations__ = annotations
    return cls


class MDM_Settings(bpy.types.PropertyGroup):
    pass


annotate(annotate(MDM_Settings), EDIT_PROPS)


def register():
    bpy.utils.register_class(MDM_Settings)
    bpy.types.Scene.mdm = PointerProperty(type=MDM_Settings)


def unregister():
    del bpy.types.Scene.mdm
    bpy.utils.unregister_class(MDM_Settings)
