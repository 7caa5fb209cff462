"""Stick-figure contact sheets of a joint sequence as PNG (numpy + zlib only; no PIL/matplotlib).

``contact_sheet(joints)`` draws a few evenly spaced frames, each as a front view (looking at the
figure's initial front, its left on the right of the image) beside a side view (its right side, facing
right), on a ground line with world ticks every 0.5 m so travel shows. Left limbs are blue, right
limbs red, the trunk grey. A strip under each cell marks the frame's time in the clip, and a top
view of the whole root path with the sampled headings closes the sheet.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from .skeleton import HML_JOINT_NAMES, HML_PARENTS, facing_direction, heading_yaw

LEFT_RGB = (40, 90, 220)
RIGHT_RGB = (215, 50, 45)
CENTER_RGB = (70, 70, 70)
GROUND_RGB = (150, 120, 80)
BACKGROUND_RGB = (250, 250, 246)


# ------------------------------------------------------------------------------------------
# PNG encoding
# ------------------------------------------------------------------------------------------
def encode_png(rgb: np.ndarray) -> bytes:
    """uint8 image [H, W, 3] -> PNG bytes (8-bit RGB, no filtering, zlib level 6)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got {rgb.shape}")
    height, width = rgb.shape[:2]
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    path = Path(path)
    path.write_bytes(encode_png(rgb))
    return path


# ------------------------------------------------------------------------------------------
# drawing
# ------------------------------------------------------------------------------------------
def _draw_segment(img: np.ndarray, p0, p1, color, radius: float) -> None:
    """Anti-aliased thick line from p0 to p1 (pixel coordinates x, y) blended into img."""
    h, w = img.shape[:2]
    x0, x1 = int(max(min(p0[0], p1[0]) - radius - 1, 0)), int(min(max(p0[0], p1[0]) + radius + 2, w))
    y0, y1 = int(max(min(p0[1], p1[1]) - radius - 1, 0)), int(min(max(p0[1], p1[1]) + radius + 2, h))
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    d = np.asarray(p1, np.float64) - np.asarray(p0, np.float64)
    length2 = max(float(d @ d), 1e-12)
    t = np.clip(((xs - p0[0]) * d[0] + (ys - p0[1]) * d[1]) / length2, 0.0, 1.0)
    dist = np.hypot(xs - (p0[0] + t * d[0]), ys - (p0[1] + t * d[1]))
    alpha = np.clip(radius + 0.5 - dist, 0.0, 1.0)[..., None]
    patch = img[y0:y1, x0:x1].astype(np.float64)
    img[y0:y1, x0:x1] = (patch * (1.0 - alpha) + np.asarray(color, np.float64) * alpha).astype(np.uint8)


def _joint_colors() -> list[tuple[int, int, int]]:
    return [LEFT_RGB if n.startswith("left") else RIGHT_RGB if n.startswith("right") else CENTER_RGB
            for n in HML_JOINT_NAMES]


def _draw_figure(img, pts: np.ndarray, radius: float) -> None:
    """pts: [22, 2] pixel coordinates. Bones take their child joint's colour; far side first."""
    colors = _joint_colors()
    order = sorted(range(1, len(HML_PARENTS)), key=lambda j: (colors[j] != LEFT_RGB, colors[j] == RIGHT_RGB))
    for j in order:  # left limbs first, right limbs on top (the side view looks at the right side)
        _draw_segment(img, pts[HML_PARENTS[j]], pts[j], colors[j], radius)
    for j in (15,):  # a bigger dot for the head
        _draw_segment(img, pts[j], pts[j], CENTER_RGB, radius * 2.2)


def _panel(joints_t: np.ndarray, axis: int, flip: float, center: float, size: int,
           span: float, floor_margin: float) -> np.ndarray:
    """One orthographic view: horizontal world axis ``axis`` (x=0 or z=2) times ``flip``."""
    img = np.full((size, size, 3), BACKGROUND_RGB, np.uint8)
    scale = size / span
    ground_px = size - floor_margin * scale

    def to_px(h, y):
        return np.stack([(flip * (h - center)) * scale + size / 2, ground_px - y * scale], axis=-1)

    _draw_segment(img, (0, ground_px), (size - 1, ground_px), GROUND_RGB, 1.0)
    lo, hi = center - span / 2, center + span / 2
    for tick in np.arange(np.floor(lo * 2) / 2, hi + 0.5, 0.5):
        px = to_px(np.array(tick), np.array(0.0))
        _draw_segment(img, px, px + (0, 5), GROUND_RGB, 1.0)
    pts = to_px(joints_t[:, axis], joints_t[:, 1])
    _draw_figure(img, pts, radius=max(1.2, size / 110))
    return img


def _top_view(joints: np.ndarray, frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Root path (grey), feet traces (blue/red) and sampled headings seen from above (+z up)."""
    img = np.full((height, width, 3), BACKGROUND_RGB, np.uint8)
    xz = joints[:, [0, 10, 11], :][..., [0, 2]]
    lo, hi = xz.reshape(-1, 2).min(0) - 0.3, xz.reshape(-1, 2).max(0) + 0.3
    grow = np.maximum(2.0 - (hi - lo), 0.0) / 2  # at least 2 m across, so a still figure stays small
    lo, hi = lo - grow, hi + grow
    scale = min(width / max(hi[0] - lo[0], 1e-3), height / max(hi[1] - lo[1], 1e-3))
    mid = (lo + hi) / 2

    def to_px(p):  # seen from above: frame-0 facing (+z) points up the image, the figure's left is image-left
        return np.stack([width / 2 - (p[..., 0] - mid[0]) * scale, height / 2 - (p[..., 1] - mid[1]) * scale], -1)

    for idx, color in ((10, LEFT_RGB), (11, RIGHT_RGB), (0, CENTER_RGB)):
        path = to_px(joints[:, idx][:, [0, 2]])
        for a, b in zip(path[:-1], path[1:]):
            _draw_segment(img, a, b, color, 1.0)
    forward = facing_direction(joints[frames])[:, [0, 2]]
    for f, fw in zip(frames, forward):
        p = joints[f, 0, [0, 2]]
        _draw_segment(img, to_px(p), to_px(p + 0.25 * fw), (20, 20, 20), 1.5)
    return img


def contact_sheet(joints: np.ndarray, frames: int = 8, per_row: int = 4, panel: int = 180,
                  span: float = 2.3, top_view: bool = True) -> np.ndarray:
    """uint8 image of ``frames`` evenly spaced frames of joints [T, 22, 3] (y-up metres).

    Views are relative to the figure's facing at frame 0 (the clip is rotated about +y so it faces
    +z there); each panel is ``panel`` pixels square and ``span`` metres wide, centred on the root.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (22, 3) or len(joints) < 1:
        raise ValueError(f"expected joints [T, 22, 3], got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ValueError("joints contain NaN or infinite values")
    angle = heading_yaw(facing_direction(joints[0]))  # rotate by -angle about y so frame 0 faces +z
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])
    joints = joints @ rot.T

    picks = np.unique(np.linspace(0, len(joints) - 1, frames).round().astype(int))
    rows = int(np.ceil(len(picks) / per_row))
    strip, gap = 6, 4
    cell_w, cell_h = 2 * panel + gap, panel + strip
    sheet = np.full((rows * (cell_h + gap) + gap, per_row * (cell_w + gap) + gap, 3), 255, np.uint8)
    for k, f in enumerate(picks):
        r, col = divmod(k, per_row)
        y0, x0 = gap + r * (cell_h + gap), gap + col * (cell_w + gap)
        root = joints[f, 0]
        sheet[y0:y0 + panel, x0:x0 + panel] = _panel(joints[f], 0, 1.0, root[0], panel, span, 0.15)
        sheet[y0:y0 + panel, x0 + panel + gap:x0 + cell_w] = _panel(joints[f], 2, 1.0, root[2], panel, span, 0.15)
        done = int(round(cell_w * (f + 1) / len(joints)))
        sheet[y0 + panel + 1:y0 + cell_h, x0:x0 + done] = (120, 160, 120)
        sheet[y0 + panel + 1:y0 + cell_h, x0 + done:x0 + cell_w] = (225, 225, 225)
    if top_view:
        top = _top_view(joints, picks, sheet.shape[1] - 2 * gap, int(1.5 * panel))
        pad = np.full((top.shape[0] + gap, sheet.shape[1], 3), 255, np.uint8)
        pad[:top.shape[0], gap:gap + top.shape[1]] = top
        sheet = np.concatenate([sheet, pad], axis=0)
    return sheet


def write_contact_sheet(path: str | Path, joints: np.ndarray, **kwargs) -> Path:
    """Render ``contact_sheet(joints, **kwargs)`` and write it as a PNG file."""
    return write_png(path, contact_sheet(joints, **kwargs))
