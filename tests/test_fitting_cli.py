"""``python -m backend fit`` and ``fit_result_arrays``: the shared result format."""
import numpy as np
import pytest

from backend.__main__ import main
from backend.errors import InputError
from backend.fitting.rest_skeleton import builtin_rest_joints
from backend.fitting.results import fit_result_arrays
from backend.motion.skeleton import SMPL_PARENTS
from backend.motion.smpl_skeleton import posed_joints
from tests.helpers.synthetic_motion import random_motion
from tests.helpers.synthetic_smpl import make_smpl_arrays, write_smpl_pkl


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(11)
    return np.stack([posed_joints(*random_motion(rng, frames=24), builtin_rest_joints())[:, :22]
                     for _ in range(2)]).astype(np.float32)


@pytest.fixture(scope="module")
def smpl_path(tmp_path_factory):
    return write_smpl_pkl(tmp_path_factory.mktemp("smpl") / "SMPL_NEUTRAL.pkl", make_smpl_arrays(), "py3")


def test_result_arrays_follow_the_design_format(clips):
    out = fit_result_arrays(clips, lengths=[24, 20])
    shapes = {k: v.shape for k, v in out.items()}
    assert shapes == {"poses": (2, 24, 24, 3), "trans": (2, 24, 3), "betas": (2, 0),
                      "joints_fitted": (2, 24, 24, 3), "fit_error": (2, 24), "rest_joints": (24, 3),
                      "parents": (24,)}
    assert all(v.dtype == np.float32 for k, v in out.items() if k != "parents")
    np.testing.assert_array_equal(out["parents"], SMPL_PARENTS)
    assert out["fit_error"][0].max() < 3e-3 and out["fit_error"][1, :20].max() < 3e-3


def test_fit_command_on_npy_and_npz(tmp_path, clips, smpl_path, capsys):
    single = tmp_path / "clip.npy"
    np.save(single, clips[0])
    assert main(["fit", "--joints", str(single), "--out", str(tmp_path / "one.npz")]) == 0
    one = np.load(tmp_path / "one.npz")
    assert one["poses"].shape == (24, 24, 3) and one["fit_error"].shape == (24,)
    np.testing.assert_allclose(one["joints_fitted"][:, :22], clips[0], atol=5e-3)

    batch = tmp_path / "result.npz"
    np.savez(batch, joints=clips, lengths=np.array([24, 20]), fps=np.float32(20.0),
             recipe=np.array('{"seed": 1}'))
    args = ["fit", "--joints", str(batch), "--smpl", str(smpl_path), "--fit-betas", "--vertices",
            "--out", str(tmp_path / "fitted.npz")]
    assert main(args) == 0
    out = np.load(tmp_path / "fitted.npz")
    assert out["vertices"].shape == (2, 24, 6890, 3) and out["betas"].shape == (2, 10)
    assert str(out["recipe"]) == '{"seed": 1}' and out["fps"] == 20.0  # passed through
    np.testing.assert_array_equal(out["lengths"], [24, 20])
    assert "mean joint error" in capsys.readouterr().out


def test_fit_command_errors(tmp_path, clips, capsys):
    path = tmp_path / "clip.npy"
    np.save(path, clips[0])
    assert main(["fit", "--joints", str(path), "--vertices", "--out", str(tmp_path / "x.npz")]) == 2
    assert "SMPL model file" in capsys.readouterr().err
    np.savez(tmp_path / "nojoints.npz", motion=clips)
    assert main(["fit", "--joints", str(tmp_path / "nojoints.npz"), "--out", str(tmp_path / "x.npz")]) == 2
    assert "no 'joints' array" in capsys.readouterr().err
    with pytest.raises(InputError, match=r"\[K, T, 22, 3\]"):
        fit_result_arrays(clips[0])
