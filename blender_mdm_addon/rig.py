"""The SMPL armature: building ours, and recognising a user's SMPL-T-posed rig.

A ``RigBinding`` is everything keying needs to know about a rig: which bone is which SMPL joint,
each bone's rest orientation (armature space) and the similarity transform that takes SMPL's
canonical frame (y-up, metres) into the armature's space. That transform is *measured* from the
rig's rest heads (Umeyama fit), so z-up, y-up, centimetre or rotated rigs all key correctly.
"""
from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from . import backend_link

_sk = backend_link.load("motion.skeleton")
SMPL_JOINT_NAMES = _sk.SMPL_JOINT_NAMES
SMPL_PARENTS = _sk.SMPL_PARENTS
NUM_BODY = _sk.HML_NUM_JOINTS  # the 22 joints a rig must have; the hands (22, 23) are optional
# SMPL's y-up canonical frame -> Blender z-up: (x, y, z) -> (x, -z, y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# A rig's rest heads may differ from the result's rest joints (other betas) by this much (metres,
# after scale) before we call it "not in SMPL's T-pose".
REST_POSE_TOLERANCE = 0.12
_PREFERRED_CHILD = {0: 3, 9: 12}  # pelvis tail -> spine1, spine3 tail -> neck


@dataclass
class RigBinding:
    bone_names: list            # [24] bone name per SMPL joint, None where the rig has no such bone
    rest_rot: np.ndarray        # [24, 3, 3] bone rest orientation in armature space (identity if absent)
    rest_head: np.ndarray       # [24, 3] bone rest heads in armature space
    align_rot: np.ndarray       # [3, 3] SMPL canonical -> armature space rotation
    align_scale: float          # armature units per metre
    align_offset: np.ndarray    # [3] armature-space position of the canonical origin

    def to_armature(self, points: np.ndarray) -> np.ndarray:
        """Canonical points [..., 3] (metres, y-up) -> armature space."""
        return self.align_scale * points @ self.align_rot.T + self.align_offset

    def from_armature(self, points: np.ndarray) -> np.ndarray:
        """Armature-space points [..., 3] -> canonical (metres, y-up); inverse of ``to_armature``."""
        return (points - self.align_offset) @ self.align_rot / self.align_scale

    def snapped_to_axes(self, max_degrees: float = 5.0) -> "RigBinding":
        """The same binding with its rotation snapped to the nearest axis permutation (rigs are built
        z-up or y-up; a rest pose that differs a little from the reference T-pose tilts the
        measured frame by a fraction of a degree, which would tilt "up" for motion read back from
        the rig). Unchanged if no permutation lies within ``max_degrees``."""
        rows, cols = np.arange(3), np.abs(self.align_rot).argmax(1)
        rot = np.zeros((3, 3))
        rot[rows, cols] = np.sign(self.align_rot[rows, cols])
        cos = (np.trace(rot.T @ self.align_rot) - 1.0) / 2.0   # of the angle between the two rotations
        if abs(np.linalg.det(rot) - 1.0) > 1e-6 or cos < np.cos(np.radians(max_degrees)):
            return self
        return RigBinding(self.bone_names, self.rest_rot, self.rest_head, rot, self.align_scale,
                          self.align_offset)


def canonical_joint_name(bone_name: str) -> str | None:
    """Map rig bone names to SMPL joint names: ours ('left_hip'), the official SMPL FBX
    ('L_Hip', 'm_avg_L_Hip') and namespaced ('SMPL:Pelvis') variants. None if not an SMPL joint."""
    name = bone_name.rsplit(":", 1)[-1].lower()
    for prefix in ("m_avg_", "f_avg_", "smpl_"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name.startswith("l_"):
        name = "left_" + name[2:]
    elif name.startswith("r_"):
        name = "right_" + name[2:]
    return name if name in SMPL_JOINT_NAMES else None


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Similarity (R, s, t) minimising |s R src + t - dst|^2 for points [N, 3]."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = float((sig * np.diag(d)).sum() / ((a ** 2).sum() / len(src)))
    return rot, scale, mu_d - scale * rot @ mu_s


def find_smpl_bones(obj) -> dict:
    """{SMPL joint index: bone} of an SMPL rig (names + hierarchy checked), or InputError saying why not."""
    errors = backend_link.load("errors")
    if obj is None or obj.type != 'ARMATURE':
        kind = "nothing" if obj is None else f"'{obj.name}' ({obj.type.lower()})"
        raise errors.InputError(f"target 'selected SMPL rig' needs an armature to be active, but {kind} is; "
                                f"select an SMPL armature or choose target 'new SMPL rig'")
    found: dict[int, object] = {}
    for bone in obj.data.bones:
        joint = canonical_joint_name(bone.name)
        if joint is not None:
            found.setdefault(SMPL_JOINT_NAMES.index(joint), bone)
    missing = [SMPL_JOINT_NAMES[j] for j in range(NUM_BODY) if j not in found]
    if missing:
        raise errors.InputError(
            f"armature '{obj.name}' is not an SMPL rig: no bone for {', '.join(missing[:6])}"
            f"{' ...' if len(missing) > 6 else ''} (expected SMPL joint names such as 'pelvis'/'Pelvis', "
            f"'left_hip'/'L_Hip'); choose target 'new SMPL rig' instead")
    for j, bone in found.items():
        parent = SMPL_PARENTS[j]
        if parent >= 0 and parent in found and bone.parent != found[parent]:
            raise errors.InputError(
                f"armature '{obj.name}': bone '{bone.name}' should be a child of '{found[parent].name}' "
                f"(SMPL hierarchy); choose target 'new SMPL rig' or fix the rig's parenting")
    return found


def bind_armature(obj, rest_joints: np.ndarray) -> RigBinding:
    """Recognise ``obj`` as an SMPL rig and measure its frame, or raise InputError saying why not."""
    errors = backend_link.load("errors")
    found = find_smpl_bones(obj)
    rest_rot = np.tile(np.eye(3), (24, 1, 1))
    rest_head = np.zeros((24, 3))
    for j, bone in found.items():
        m = np.array(bone.matrix_local)
        rest_rot[j], rest_head[j] = m[:3, :3], m[:3, 3]
    present = sorted(found)
    rot, scale, offset = umeyama(rest_joints[present], rest_head[present])
    binding = RigBinding([found[j].name if j in found else None for j in range(24)],
                         rest_rot, rest_head, rot, scale, offset)
    residual = np.linalg.norm(binding.to_armature(rest_joints[present]) - rest_head[present], axis=-1) / scale
    if residual.max() > REST_POSE_TOLERANCE:
        worst = present[int(residual.argmax())]
        raise errors.InputError(
            f"armature '{obj.name}' is not in SMPL's T-pose at rest: joint '{SMPL_JOINT_NAMES[worst]}' is "
            f"{residual.max() * 100:.0f} cm from where SMPL puts it; apply a T-pose rest pose or use a new SMPL rig")
    return binding


def _tail(j: int, heads: np.ndarray, parents: np.ndarray) -> np.ndarray:
    children = [c for c in range(len(parents)) if parents[c] == j]
    if children:
        return heads[_PREFERRED_CHILD.get(j, children[0])]
    along = heads[j] - heads[parents[j]]  # leaf: continue the parent bone
    length = np.linalg.norm(along)
    return heads[j] + along / max(length, 1e-6) * max(0.5 * length, 0.05)


def create_armature(context, name: str, rest_joints: np.ndarray, parents: np.ndarray = SMPL_PARENTS):
    """A new armature object with the 24 SMPL bones, heads at ``rest_joints`` (canonical, metres)
    converted to z-up, linked to the active collection; it becomes the active, only selected object.
    Call in object mode."""
    heads = rest_joints @ Y_UP_TO_Z_UP.T
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    context.collection.objects.link(obj)
    # Edit mode enters every selected armature: make ours the only selected object (as any
    # newly added object is) so no user rig is touched.
    view_layer = context.view_layer
    for other in context.selected_objects:
        other.select_set(False)
    obj.select_set(True)
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode='EDIT')
    try:
        bones = []
        for j, joint in enumerate(SMPL_JOINT_NAMES[:len(rest_joints)]):
            bone = data.edit_bones.new(joint)
            bone.head = heads[j]
            bone.tail = _tail(j, heads, parents)
            if parents[j] >= 0:
                bone.parent = bones[parents[j]]
                bone.use_connect = bool(np.allclose(bones[parents[j]].tail, bone.head))
            bones.append(bone)
    finally:
        bpy.ops.object.mode_set(mode='OBJECT')
    data.display_type = 'STICK'
    obj.show_in_front = True
    for pose_bone in obj.pose.bones:
        pose_bone.rotation_mode = 'QUATERNION'
    return obj
