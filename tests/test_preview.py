"""The numpy PNG writer and the stick-figure contact sheet."""
import numpy as np
import pytest

from backend.motion import preview as P
from backend.motion import skeleton as S
from tests.helpers.png import decode_png


def test_png_round_trip():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(P.encode_png(img)), img)
    with pytest.raises(ValueError):
        P.encode_png(np.zeros((4, 4)))


def walking_figure(n=40):
    rest = S.hml_rest_pose()
    t = np.arange(n) / 20.0
    joints = np.repeat(rest[None], n, 0) + (1.2 * t)[:, None, None] * np.array([0.0, 0.0, 1.0])
    joints[:, 20, 2] += 0.2 * np.sin(4 * t)[:, None][:, 0]  # left wrist swings
    return joints


def test_contact_sheet_draws_both_sides_of_the_body(tmp_path):
    path = P.write_contact_sheet(tmp_path / "sheet.png", walking_figure(), frames=6, per_row=3, panel=120)
    img = decode_png(path.read_bytes())
    assert img.shape[1] == 3 * (2 * 120 + 2 * 4) + 4  # 3 cells of two panels, 4 px gaps
    colors = img.reshape(-1, 3)
    background = np.all(colors == P.BACKGROUND_RGB, axis=1).mean()
    assert 0.5 < background < 0.99  # mostly empty, but something is drawn
    for rgb in (P.LEFT_RGB, P.RIGHT_RGB, P.CENTER_RGB, P.GROUND_RGB):
        assert np.all(colors == rgb, axis=1).sum() > 20, f"colour {rgb} missing"


def test_front_view_puts_the_figures_left_on_the_image_right():
    sheet = P.contact_sheet(walking_figure(4), frames=1, per_row=1, panel=200, top_view=False)
    front = sheet[4:204, 4:204]
    cols_left = np.nonzero(np.all(front == P.LEFT_RGB, axis=-1))[1]
    cols_right = np.nonzero(np.all(front == P.RIGHT_RGB, axis=-1))[1]
    assert cols_left.mean() > 100 > cols_right.mean()


def test_contact_sheet_rejects_bad_joints():
    with pytest.raises(ValueError, match=r"\[T, 22, 3\]"):
        P.contact_sheet(np.zeros((5, 24, 3)))
    bad = walking_figure()
    bad[2, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        P.contact_sheet(bad)
