"""Per-clip style, the state passed between segments, and the neutral standing pose."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import body as B
from .curves import smooth_noise


@dataclass
class Style:
    """Per-clip variation of one 'performer' (applies to every segment of the clip)."""
    tempo: float = 1.0            # >1 = quicker timings
    half_width: float = 0.10      # lateral ankle offset from the root when standing
    toe_out: float = 0.12         # outward foot yaw (rad)
    lean: float = 0.03            # trunk pitch when upright (rad)
    head_pitch: float = 0.05
    arm_abduct: float = 0.10      # arms hang slightly away from the body
    arm_reach: float = 0.95       # wrist-shoulder distance / arm length when hanging
    stand_reach: float = 0.985    # leg straightness when standing
    sway: float = 0.008           # idle sway amplitude (m)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Style":
        return cls(tempo=rng.uniform(0.88, 1.12), half_width=rng.uniform(0.085, 0.125),
                   toe_out=rng.uniform(0.04, 0.2), lean=rng.uniform(-0.02, 0.08),
                   head_pitch=rng.uniform(-0.05, 0.15), arm_abduct=rng.uniform(0.05, 0.18),
                   arm_reach=rng.uniform(0.93, 0.975), stand_reach=rng.uniform(0.978, 0.99),
                   sway=rng.uniform(0.003, 0.012))

    @property
    def stand_height(self) -> float:
        """Root height with both feet flat at the neutral stance and knees at ``stand_reach``."""
        heights = []
        for s in (0, 1):
            hip = B.REST_OFFSETS[B.HIP[s]]
            dxz = np.hypot(B.OUTWARD[s] * self.half_width - hip[0], hip[2])
            vertical = np.sqrt((self.stand_reach * B.LEG_LEN[s]) ** 2 - dxz ** 2)
            heights.append(B.ANKLE_HEIGHT[s] + vertical - hip[1])
        return float(min(heights))


@dataclass
class Phrase:
    """What a segment did, for the captions: an action key and its slot values."""
    action: str
    slots: dict = field(default_factory=dict)


@dataclass
class State:
    """Where the body is between two segments (standing, or seated with ``seated``)."""
    xz: np.ndarray                 # [2] root ground position
    yaw: float                     # heading
    feet_xz: np.ndarray            # [2, 2] planted ankle positions (left, right)
    feet_yaw: np.ndarray           # [2]
    seated: bool = False
    seat: dict | None = None       # seated posture (root back/drop, trunk, tilt) when seated

    @classmethod
    def standing(cls, xz, yaw: float, style: Style) -> "State":
        xz = np.asarray(xz, dtype=np.float64)
        feet_xz, feet_yaw = neutral_feet(xz, yaw, style)
        return cls(xz=xz, yaw=float(yaw), feet_xz=feet_xz, feet_yaw=feet_yaw)


def left_of(yaw) -> np.ndarray:
    """Horizontal (x, z) unit vector to the body's left for heading ``yaw``."""
    yaw = np.asarray(yaw, dtype=np.float64)
    return np.stack([np.cos(yaw), -np.sin(yaw)], axis=-1)


def forward_of(yaw) -> np.ndarray:
    yaw = np.asarray(yaw, dtype=np.float64)
    return np.stack([np.sin(yaw), np.cos(yaw)], axis=-1)


def neutral_feet(xz, yaw, style: Style, half_width: float | None = None):
    """Ankle (x, z) [..., 2, 2] and foot yaw [..., 2] of a neutral stance under the root."""
    w = style.half_width if half_width is None else half_width
    xz = np.asarray(xz, dtype=np.float64)
    side = left_of(yaw)
    feet = np.stack([xz + w * side, xz - w * side], axis=-2)
    feet_yaw = np.stack([np.asarray(yaw) + style.toe_out, np.asarray(yaw) - style.toe_out], axis=-1)
    return feet, feet_yaw


NEUTRAL_ARM_FLEX = 0.06  # arms hang slightly in front of the body


def hanging_arms(style: Style, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Wrist targets [n, 2, 3] and elbow poles [n, 2, 3] of relaxed hanging arms."""
    wrist = np.zeros((n, 2, 3))
    pole = np.zeros((n, 2, 3))
    for s in (0, 1):
        wrist[:, s] = B.arm_direction(NEUTRAL_ARM_FLEX, style.arm_abduct, s) * style.arm_reach * B.ARM_LEN[s]
        pole[:, s] = (0.35 * B.OUTWARD[s], 0.0, -1.0)
    return wrist, pole


def stand(style: Style, state: State, n: int) -> B.Pose:
    """A neutral standing pose held for n frames (feet planted)."""
    pose = B.Pose.empty(n)
    pose.root[:, [0, 2]] = state.xz
    pose.root[:, 1] = style.stand_height
    pose.yaw[:] = state.yaw
    pose.spine[:, 0] = style.lean
    pose.neck[:, 0] = style.head_pitch
    plant(pose, state.feet_xz, state.feet_yaw)
    pose.wrist[:], pose.elbow_pole[:] = hanging_arms(style, n)
    pose.reach[:] = style.stand_reach
    return pose


def posture_noise(rng: np.random.Generator, style: Style, pose: B.Pose) -> None:
    """Add a slow, small wobble of the whole clip (sway, trunk, head, arms), in place."""
    t = np.arange(pose.frames) / B.FPS
    amp = style.sway
    pose.root[:, 0] += smooth_noise(rng, t, amp)
    pose.root[:, 2] += smooth_noise(rng, t, amp)
    pose.yaw += smooth_noise(rng, t, 2.0 * amp)
    pose.spine[:, 0] += smooth_noise(rng, t, 2.5 * amp)
    pose.spine[:, 1] += smooth_noise(rng, t, 2.0 * amp)
    pose.spine[:, 2] += smooth_noise(rng, t, 2.0 * amp)
    pose.neck[:, 0] += smooth_noise(rng, t, 4.0 * amp)
    pose.neck[:, 1] += smooth_noise(rng, t, 6.0 * amp)
    for s in (0, 1):
        for axis in range(3):
            pose.wrist[:, s, axis] += smooth_noise(rng, t, 1.5 * amp)


def plant(pose: B.Pose, feet_xz: np.ndarray, feet_yaw: np.ndarray, frames=slice(None)) -> None:
    """Both feet flat and planted at the given positions over ``frames``."""
    for s in (0, 1):
        pose.ankle[frames, s] = (feet_xz[s, 0], B.ANKLE_HEIGHT[s], feet_xz[s, 1])
        pose.foot_yaw[frames, s] = feet_yaw[s]
        pose.foot_pitch[frames, s] = B.FLAT_PITCH
        pose.toe_contact[frames, s] = True
        pose.ankle_contact[frames, s] = True


def end_state(pose: B.Pose, seated: bool = False) -> State:
    """The State at the last frame of a pose whose feet end planted."""
    return State(xz=pose.root[-1, [0, 2]].copy(), yaw=float(pose.yaw[-1]),
                 feet_xz=pose.ankle[-1][:, [0, 2]].copy(), feet_yaw=pose.foot_yaw[-1].copy(),
                 seated=seated)
