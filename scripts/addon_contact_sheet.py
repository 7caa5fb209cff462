"""Contact sheet of a keyed rig, drawn from Blender's *evaluated* bones (what the viewport shows).

    python scripts/addon_contact_sheet.py -- RESULT.npz OUT.png [--fps 24] [--frames 8]

Keys RESULT.npz with the add-on (mdm.import_result), then for evenly spaced scene frames draws every
bone (head -> tail) in a front view (x, z) and a side view (y, z) with a small numpy rasterizer:
the background bpy module has no GPU context for Workbench/EEVEE. Left side = blue, right = red.
"""
from __future__ import annotations

import argparse
import struct
import sys
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import bpy  # noqa: E402
import addon_utils  # noqa: E402
import numpy as np  # noqa: E402

CELL = 220


def write_png(path: Path, rgb: np.ndarray) -> None:
    rows = b"".join(b"\0" + row.tobytes() for row in rgb.astype(np.uint8))
    chunk = lambda tag, data: struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))  # noqa: E731
    header = struct.pack(">IIBBBBB", rgb.shape[1], rgb.shape[0], 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def draw_line(img, p0, p1, color, width=2):
    n = int(max(abs(p1 - p0).max(), 1)) * 2
    pts = np.linspace(p0, p1, n).round().astype(int)
    for dx in range(-(width // 2), width - width // 2):
        for dy in range(-(width // 2), width - width // 2):
            x, y = pts[:, 0] + dx, pts[:, 1] + dy
            ok = (x >= 0) & (x < img.shape[1]) & (y >= 0) & (y < img.shape[0])
            img[y[ok], x[ok]] = color


def main():
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    p = argparse.ArgumentParser()
    p.add_argument("result")
    p.add_argument("out")
    p.add_argument("--fps", type=int, default=24)
    p.add_argument("--frames", type=int, default=8)
    args = p.parse_args(argv)
    addon_utils.enable("blender_mdm_addon", default_set=True, handle_error=None)
    scene = bpy.context.scene
    scene.render.fps = args.fps
    bpy.ops.mdm.import_result(filepath=str(Path(args.result).resolve()))
    rig = bpy.context.active_object
    first, last = (int(x) for x in rig.animation_data.action["mdm_frame_range"])
    frames = np.linspace(first, last, args.frames).round().astype(int)
    segments = []  # per frame: [bones, 2, 3] world head/tail
    for f in frames:
        scene.frame_set(int(f))
        ev = rig.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mw = np.array(ev.matrix_world)
        seg = np.array([[pb.head[:], pb.tail[:]] for pb in ev.pose.bones]) @ mw[:3, :3].T + mw[:3, 3]
        segments.append(seg)
    names = [pb.name for pb in rig.pose.bones]
    allpts = np.concatenate(segments).reshape(-1, 3)
    img = np.full((2 * CELL, len(frames) * CELL, 3), 245, np.uint8)
    for row, axes in enumerate(((0, 2), (1, 2))):  # front: x right, z up; side: y right, z up
        for c, seg in enumerate(segments):
            center = seg.reshape(-1, 3)[:, axes].mean(0)
            scale = CELL * 0.42 / max(np.ptp(allpts[:, 2]), 1e-3)
            ox, oy = c * CELL + CELL / 2, row * CELL + CELL / 2
            img[row * CELL + CELL - 22, c * CELL:(c + 1) * CELL] = 200
            for name, (h, t) in zip(names, seg):
                color = (40, 90, 220) if name.startswith("left") else (220, 60, 50) if name.startswith("right") else (30, 30, 30)
                to_px = lambda q: np.array([ox + (q[axes[0]] - center[0]) * scale, oy - (q[axes[1]] - center[1]) * scale])  # noqa: E731
                draw_line(img, to_px(h), to_px(t), color)
    write_png(Path(args.out), img)
    print(f"wrote {args.out}: frames {frames.tolist()} at {args.fps} fps (top: front view, bottom: side view)")


if __name__ == "__main__":
    main()
