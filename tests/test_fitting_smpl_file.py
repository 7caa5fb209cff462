"""The SMPL file reader: official layouts load, anything unsafe or broken is a clear SMPLFileError."""
import os
import pickle
import subprocess

import numpy as np
import pytest

from backend.__main__ import main
from backend.errors import SMPLFileError
from backend.fitting.smpl_file import load_smpl, read_smpl_arrays, safe_unpickle, to_numpy
from tests.helpers.synthetic_smpl import (SMPL_NEUTRAL_LIKE_REST, make_smpl_arrays, write_smpl_npz,
                                          write_smpl_pkl)


@pytest.fixture(scope="module")
def arrays():
    return make_smpl_arrays()


@pytest.fixture(scope="module")
def py2_file(tmp_path_factory, arrays):
    folder = tmp_path_factory.mktemp("smpl")
    return write_smpl_pkl(folder / "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl", arrays)


@pytest.mark.parametrize("style,protocol", [("py2", 2), ("py3", 0), ("py3", 2), ("py3", 5), ("npz", None)])
def test_official_layouts_load_to_the_same_model(tmp_path, arrays, style, protocol):
    if style == "npz":
        path = write_smpl_npz(tmp_path / "SMPL_FEMALE.npz", arrays)
    else:
        path = write_smpl_pkl(tmp_path / "SMPL_FEMALE.pkl", arrays, style, protocol)
    model = load_smpl(path)
    assert model.gender == "female" and model.num_vertices == 6890 and model.num_betas == 10
    np.testing.assert_array_equal(model.v_template, arrays["v_template"])
    np.testing.assert_array_equal(model.J_regressor, arrays["J_regressor"])
    np.testing.assert_array_equal(model.shapedirs, arrays["shapedirs"])
    np.testing.assert_array_equal(model.posedirs, arrays["posedirs"])
    np.testing.assert_array_equal(model.faces, arrays["f"])
    assert model.parents[0] == -1 and model.parents[4] == 1
    np.testing.assert_allclose(model.rest_joints(), SMPL_NEUTRAL_LIKE_REST, atol=1e-12)


def test_py2_pickle_uses_the_official_class_references(py2_file):
    data = py2_file.read_bytes()
    for ref in (b"chumpy.ch\nCh", b"chumpy.reordering\nSelect", b"scipy.sparse.csc\ncsc_matrix"):
        assert ref in data
    raw = read_smpl_arrays(py2_file)  # the chumpy Select extra entry becomes an array too
    np.testing.assert_allclose(raw["J"], SMPL_NEUTRAL_LIKE_REST, atol=1e-12)
    assert load_smpl(py2_file).gender == "neutral"


def test_betas_move_the_rest_joints_through_shapedirs(py2_file, arrays):
    model = load_smpl(py2_file, num_betas=4)
    betas = np.array([1.0, -2.0, 0.5, 0.0])
    expected = arrays["J_regressor"] @ (arrays["v_template"] + arrays["shapedirs"][..., :4] @ betas)
    np.testing.assert_allclose(model.rest_joints(betas), expected, atol=1e-12)
    assert model.betas_in_file == 10 and model.shapedirs.shape == (6890, 3, 4)


def test_scipy_sparse_formats_convert_without_scipy_at_read_time():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    dense = np.zeros((5, 7))
    dense[[0, 2, 4, 4], [1, 3, 0, 6]] = [1.5, -2.0, 3.0, 4.0]
    for cls in (scipy_sparse.csc_matrix, scipy_sparse.csr_matrix, scipy_sparse.coo_matrix):
        got = to_numpy(safe_unpickle(pickle.dumps({"m": cls(dense)}, protocol=2))["m"])
        np.testing.assert_array_equal(got, dense)


class _RunsCode:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("payload", ["os.system", "eval", "subprocess", "nested", "import"])
def test_crafted_pickles_are_refused_without_running_anything(tmp_path, payload):
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    evil = {
        "os.system": _RunsCode(os.system, command),
        "eval": _RunsCode(eval, f"open({str(marker)!r}, 'w').close()"),
        "subprocess": _RunsCode(subprocess.call, ["touch", str(marker)]),
        "nested": {"v_template": np.zeros((3, 3)), "shapedirs": [_RunsCode(os.system, command)]},
        "import": _RunsCode(__import__, "shutil"),
    }[payload]
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(SMPLFileError, match="refused to load global"):
        load_smpl(path)
    assert not marker.exists()


def _expect_error(path, pattern):
    with pytest.raises(SMPLFileError, match=pattern) as info:
        load_smpl(path)
    assert str(path) in info.value.message
    return info.value


def test_truncated_and_wrong_files_get_clear_errors(tmp_path, py2_file, arrays):
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(py2_file.read_bytes()[: 2_000_000])
    _expect_error(truncated, "truncated")
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    _expect_error(empty, "truncated")
    text = tmp_path / "notes.pkl"
    text.write_text("this is not a model\n")
    _expect_error(text, "pickle|truncated")
    _expect_error(tmp_path / "missing.pkl", "no such file")
    listed = tmp_path / "list.pkl"
    listed.write_bytes(pickle.dumps([1, 2, 3]))
    _expect_error(listed, "not the dict")
    zipped = tmp_path / "cut.npz"
    write_smpl_npz(zipped, arrays)
    zipped.write_bytes(zipped.read_bytes()[:100_000])
    _expect_error(zipped, "npz")


@pytest.mark.parametrize("change,pattern", [
    (lambda a: a.pop("posedirs"), "missing posedirs"),
    (lambda a: a.update(J_regressor=np.zeros((52, 6890))), "52 joints.*SMPL-H"),
    (lambda a: a.update(posedirs=np.zeros((6890, 3, 100))), "'posedirs' has shape"),
    (lambda a: a.update(weights=np.zeros((6890, 20))), "'weights' has shape"),
    (lambda a: a["v_template"].__setitem__((5, 1), np.nan), "NaN"),
    (lambda a: a["kintree_table"].__setitem__((0, 5), 3), "joint tree"),
])
def test_inconsistent_contents_are_named(tmp_path, arrays, change, pattern):
    broken = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in arrays.items()}
    change(broken)
    _expect_error(write_smpl_npz(tmp_path / "model.npz", broken), pattern)


def test_smpl_check_command(py2_file, tmp_path, capsys):
    assert main(["smpl-check", str(py2_file)]) == 0
    out = capsys.readouterr().out
    assert "gender: neutral" in out and "vertices: 6890" in out and "10 in the file" in out
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x02}q\x00")
    assert main(["smpl-check", str(bad)]) == 2
    assert "error:" in capsys.readouterr().err


def test_npz_members_holding_pickles_go_through_the_same_allow_list(tmp_path, arrays):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    mixed = dict(arrays, J_regressor=np.array(scipy_sparse.csc_matrix(arrays["J_regressor"]), dtype=object))
    path = tmp_path / "SMPL_MALE.npz"
    np.savez(path, **{k: v for k, v in mixed.items() if isinstance(v, np.ndarray)})
    model = load_smpl(path)
    assert model.gender == "male"
    np.testing.assert_array_equal(model.J_regressor, arrays["J_regressor"])
    marker = tmp_path / "pwned"
    evil = dict(arrays, J_regressor=np.array(_RunsCode(os.system, f"touch {marker}"), dtype=object))
    np.savez(path, **{k: v for k, v in evil.items() if isinstance(v, np.ndarray)})
    with pytest.raises(SMPLFileError, match="refused to load global"):
        load_smpl(path)
    assert not marker.exists()


def test_chumpy_objects_with_unusable_state_are_named(tmp_path, arrays):
    path = write_smpl_pkl(tmp_path / "SMPL_NEUTRAL.pkl", dict(arrays, shapedirs=None), "py3")
    _expect_error(path, "'shapedirs'")
