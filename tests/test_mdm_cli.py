"""``python -m backend generate`` end to end, and its error messages."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.__main__ import main
from tests.helpers.mdm_fixtures import tiny_encoders  # noqa: F401
from tests.helpers.tiny_models import write_tiny_model_dir

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return write_tiny_model_dir(tmp_path_factory.mktemp("cli") / "humanml_tiny", mask_frames=False)


def test_generate_writes_the_shared_result_format(tiny_model, tiny_encoders, tmp_path):
    out = tmp_path / "result.npz"
    proc = subprocess.run([sys.executable, "-m", "backend", "generate", "--model-dir", str(tiny_model),
                           "--prompt", "a person walks forward", "--seconds", "2.5", "--seed", "4",
                           "--num-samples", "2", "--steps", "5", "--text-encoder-dir", str(tiny_encoders["clip"]),
                           "--device", "cpu", "--out", str(out)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "diffusion step 5/5" in proc.stderr
    z = np.load(out)
    assert z["joints"].shape == (2, 50, 22, 3) and z["joints"].dtype == np.float32
    assert z["features"].shape == (2, 50, 263) and z["lengths"].tolist() == [50, 50] and float(z["fps"]) == 20.0
    recipe = json.loads(str(z["recipe"]))
    assert recipe["prompt"] == "a person walks forward" and recipe["seed"] == 4 and recipe["steps"] == 5
    assert recipe["guidance"] == 2.5 and recipe["model_id"].startswith("humanml_tiny@")
    assert recipe["sampled_frames"] == 196 and "backend_version" in recipe


def test_generate_names_the_words_the_model_was_not_trained_on(tiny_encoders, tmp_path, capsys):
    from backend.mdm.text_encoders import load_text_encoder
    from backend.mdm.text_tokens import CAPTION_VOCABULARY
    model = write_tiny_model_dir(tmp_path / "words", arch="trans_dec", text_encoder="minilm_tokens")
    tokens = load_text_encoder("minilm_tokens", tiny_encoders["minilm_tokens"]).tokens
    (model / CAPTION_VOCABULARY).write_text(json.dumps({"text_encoder_type": "minilm_tokens",
                                                        "token_ids": tokens.ids("a person walks forward and")}))
    out = tmp_path / "r.npz"
    common = ["generate", "--model-dir", str(model), "--seconds", "1", "--steps", "2", "--device", "cpu",
              "--text-encoder-dir", str(tiny_encoders["minilm_tokens"]), "--out", str(out)]
    assert main(common + ["--prompt", "a person pirouettes forward"]) == 0
    assert "was not trained on these words and followed the sentence's overall meaning instead: pirouettes" in \
        capsys.readouterr().err
    assert json.loads(str(np.load(out)["recipe"]))["unseen_words"] == ["pirouettes"]
    # a verb WordNet relates to a trained one is read as that one, and the note says so
    assert main(common + ["--prompt", "a person strolls forward"]) == 0
    err = capsys.readouterr().err
    assert "not trained on some words and read them as: strolls -> walks" in err and "overall meaning" not in err
    recipe = json.loads(str(np.load(out)["recipe"]))
    assert (recipe["prompt"], recipe["reworded"], recipe["unseen_words"]) == \
        ("a person strolls forward", {"strolls": "walks"}, [])
    assert main(common + ["--prompt", "a person strolls forward", "--no-reword"]) == 0     # hidden only
    recipe = json.loads(str(np.load(out)["recipe"]))
    assert "reworded" not in recipe and recipe["unseen_words"] == ["strolls"]
    assert "overall meaning instead: strolls" in capsys.readouterr().err
    assert main(common + ["--prompt", "a person walks forward"]) == 0
    assert "not trained on" not in capsys.readouterr().err
    # an upper-body prompt: a second pass, its unseen words named with the first prompt's
    assert main(common + ["--prompt", "a person pirouettes", "--upper-prompt", "a person juggles and strolls"]) == 0
    recipe = json.loads(str(np.load(out)["recipe"]))
    assert (recipe["upper_prompt"], recipe["unseen_words"], recipe["reworded"]) == \
        ("a person juggles and strolls", ["pirouettes", "juggles"], {"strolls": "walks"})


def test_generate_with_fit_adds_the_smpl_parameters(tiny_model, tiny_encoders, tmp_path):
    from backend.fitting.results import fit_result_arrays
    out = tmp_path / "fitted.npz"
    assert main(["generate", "--model-dir", str(tiny_model), "--prompt", "a person jumps", "--seconds", "2",
                 "--steps", "4", "--text-encoder-dir", str(tiny_encoders["clip"]), "--device", "cpu", "--fit",
                 "--quiet", "--out", str(out)]) == 0
    z = np.load(out)
    assert z["poses"].shape == (1, 40, 24, 3) and z["trans"].shape == (1, 40, 3)
    assert z["joints_fitted"].shape == (1, 40, 24, 3) and z["rest_joints"].shape == (24, 3)
    again = fit_result_arrays(z["joints"], z["lengths"])       # the same fit as the library call
    assert np.allclose(again["poses"], z["poses"]) and np.allclose(again["fit_error"], z["fit_error"])


@pytest.mark.parametrize("extra,needle", [
    (["--smpl", "x.pkl"], "only apply together with --fit"),
    (["--foot-lock"], "only apply together with --fit"),
    (["--fit", "--vertices"], "need the SMPL model file"),
    (["--seconds", "12"], "seconds must be in"),
    (["--seconds", "0"], "seconds must be in"),
    (["--guidance", "nan"], "guidance must be a finite number"),
    (["--device", "tpu"], "unknown device"),
    (["--num-samples", "0"], "num_samples"),
    (["--out", "/nonexistent/dir/x.npz"], "does not exist"),
    (["--out", "result.txt"], "must name a .npz"),
])
def test_bad_arguments_fail_before_loading(tmp_path, capsys, extra, needle):
    args = ["generate", "--model-dir", str(tmp_path / "missing"), "--prompt", "x", "--out", str(tmp_path / "r.npz")]
    assert main(args + extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and "Traceback" not in err


def test_bad_model_folders_give_one_line_errors(tmp_path, tiny_encoders, capsys):
    out = str(tmp_path / "r.npz")
    assert main(["generate", "--model-dir", str(tmp_path / "missing"), "--prompt", "x", "--out", out]) == 2
    assert "does not exist" in capsys.readouterr().err
    folder = write_tiny_model_dir(tmp_path / "broken")
    ckpt = folder / "model000000000.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    assert main(["generate", "--model-dir", str(folder), "--prompt", "x", "--out", out]) == 2
    assert "truncated, corrupted" in capsys.readouterr().err
    kit = write_tiny_model_dir(tmp_path / "kit", extra_args={"dataset": "kit"})
    assert main(["generate", "--model-dir", str(kit), "--prompt", "x", "--out", out]) == 2
    assert "'kit' is not supported" in capsys.readouterr().err
    ok = write_tiny_model_dir(tmp_path / "ok")
    assert main(["generate", "--model-dir", str(ok), "--prompt", "x", "--text-encoder-dir",
                 str(tmp_path / "no_clip"), "--out", out]) == 2
    assert "clip text encoder" in capsys.readouterr().err and not Path(out).exists()


def test_full_size_model_generates_120_frames_on_cpu(tmp_path, tiny_encoders, capsys):
    """Official humanml_enc_512_50steps shapes (512-d, 8 layers, 50 steps, mask_frames, EMA file)."""
    folder = write_tiny_model_dir(tmp_path / "humanml_enc_512_50steps", latent_dim=512, layers=8,
                                  diffusion_steps=50, mask_frames=True, use_ema=True, pos_embed_max_len=5000)
    out = tmp_path / "full.npz"
    code = main(["generate", "--model-dir", str(folder), "--prompt", "a person walks forward", "--seconds", "6",
                 "--device", "cpu", "--text-encoder-dir", str(tiny_encoders["clip"]), "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    z = np.load(out)
    assert z["joints"].shape == (1, 120, 22, 3) and np.isfinite(z["joints"]).all()
    assert json.loads(str(z["recipe"]))["steps"] == 50
