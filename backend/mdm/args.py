"""Read a model folder's args.json the way the official loader does.

Only the dataset / model / diffusion keys matter (``lr``, ``batch_size``, ``save_dir``... are ignored);
a key missing from an older args.json takes the official parser default, with a warning. The network
shape values that the official code hard-codes (ff_size 1024, 4 heads, clip_dim 512 / 768) are fixed
here too. Our own extension keys, honoured only by this code base: ``ff_size``, ``num_heads`` and
``text_encoder_type: "minilm"`` (a pooled 384-d sentence embedding) and ``"minilm_tokens"`` (that
sentence embedding followed by one 384-d row per word piece, for trans_dec; the demo model's).
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError
from .text_tokens import DIMS as TEXT_ENCODERS  # text_encoder_type -> clip_dim (width of embed_text's input)
from .text_tokens import POOLED

log = logging.getLogger(__name__)

ARCHS = ("trans_enc", "trans_dec", "gru")
NOISE_SCHEDULES = ("cosine", "linear")

# Official parser defaults of the keys the loader reads (utils/parser_util.py).
OFFICIAL_DEFAULTS = {
    "dataset": "humanml", "arch": "trans_enc", "text_encoder_type": "clip", "emb_trans_dec": False,
    "layers": 8, "latent_dim": 512, "cond_mask_prob": 0.1, "mask_frames": False,
    "pos_embed_max_len": 5000, "use_ema": False, "unconstrained": False, "context_len": 0,
    "pred_len": 0, "lambda_target_loc": 0.0, "multi_target_cond": False,
    "noise_schedule": "cosine", "diffusion_steps": 1000, "sigma_small": True,
}
# What the official code does without a key: it hardcodes ff_size and num_heads and has no sentence
# token. These keys are our extensions, written to args.json only when a model differs from that.
HARDCODED = {"ff_size": 1024, "num_heads": 4, "sentence_token": False}
EXTENSION_KEYS = tuple(HARDCODED)


@dataclass(frozen=True)
class ModelArgs:
    arch: str = "trans_enc"
    text_encoder_type: str = "clip"
    emb_trans_dec: bool = False
    # our extension (trans_dec only): the frames' sequence starts with one token of time + sentence
    # (row 0 of the text, e.g. MiniLM's sentence embedding) beside the cross-attention to every row,
    # a global path for the prompt's overall meaning (what the 2022 emb_trans_dec code prepended)
    sentence_token: bool = False
    layers: int = 8
    latent_dim: int = 512
    ff_size: int = 1024
    num_heads: int = 4
    cond_mask_prob: float = 0.1
    mask_frames: bool = False
    pos_embed_max_len: int = 5000
    use_ema: bool = False
    noise_schedule: str = "cosine"
    diffusion_steps: int = 1000
    sigma_small: bool = True
    legacy: bool = False          # args.json predates the 2025 keys (some defaults were filled in)

    @property
    def clip_dim(self) -> int:
        return TEXT_ENCODERS[self.text_encoder_type]

    @property
    def prepends_token_to_decoder(self) -> bool:
        return self.arch == "trans_dec" and (self.emb_trans_dec or self.sentence_token)

    @property
    def njoints(self) -> int:
        return 263

    @property
    def max_frames(self) -> int:
        """Longest motion the positional table can hold (one row goes to a prepended condition token)."""
        prepends = self.arch == "trans_enc" or self.prepends_token_to_decoder
        return self.pos_embed_max_len - int(prepends)


def _fail(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: {what}")


def _as_int(path, key, value, minimum=1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < minimum:
        raise _fail(path, f"'{key}' must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _as_bool(path, key, value) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"'{key}' must be true or false, got {value!r}")
    return value


def parse_args_dict(raw: dict, path: Path | str = "args.json") -> ModelArgs:
    """Validate the relevant keys of an args.json dict and return the model/diffusion settings."""
    path = Path(path)
    if not isinstance(raw, dict):
        raise _fail(path, "expected a JSON object")
    missing = [k for k in OFFICIAL_DEFAULTS if k not in raw]
    if missing:
        log.warning("%s lacks %s; using the official defaults (%s)", path, ", ".join(missing),
                    ", ".join(f"{k}={OFFICIAL_DEFAULTS[k]!r}" for k in missing))
    get = lambda k: raw.get(k, OFFICIAL_DEFAULTS[k])  # noqa: E731

    dataset = get("dataset")
    if dataset != "humanml":
        raise _fail(path, f"dataset {dataset!r} is not supported: only HumanML3D text-to-motion models "
                          "('dataset': 'humanml', e.g. humanml_trans_enc_512) can be used")
    if raw.get("unconstrained", False) or raw.get("cond_mode") == "no_cond":
        raise _fail(path, "this is an unconstrained (no text condition) model; only text-conditioned "
                          "models are supported")
    if _as_int(path, "context_len", get("context_len"), 0) or _as_int(path, "pred_len", get("pred_len"), 0):
        raise _fail(path, "DiP prefix-conditioned models (context_len / pred_len > 0) are not supported; "
                          "use a plain text-to-motion MDM checkpoint")
    target = raw.get("lambda_target_loc", 0.0)
    if get("multi_target_cond") or (isinstance(target, (int, float)) and target > 0):
        raise _fail(path, "target-location conditioned (DiP with target) models are not supported")

    arch = get("arch")
    if arch not in ARCHS:
        raise _fail(path, f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
    text_encoder = get("text_encoder_type")
    if text_encoder not in TEXT_ENCODERS:
        raise _fail(path, f"unknown text_encoder_type {text_encoder!r}; expected one of {', '.join(TEXT_ENCODERS)}")
    if not POOLED[text_encoder] and arch != "trans_dec":
        raise _fail(path, f"text_encoder_type {text_encoder!r} gives one feature per word and needs arch "
                          "'trans_dec' (cross-attention; as the official code does for 'bert')")
    schedule = get("noise_schedule")
    if schedule not in NOISE_SCHEDULES:
        raise _fail(path, f"unknown noise_schedule {schedule!r}; expected one of {', '.join(NOISE_SCHEDULES)}")
    cond_mask_prob = get("cond_mask_prob")
    if isinstance(cond_mask_prob, bool) or not isinstance(cond_mask_prob, (int, float)) \
            or not math.isfinite(cond_mask_prob) or not 0 <= cond_mask_prob < 1:
        raise _fail(path, f"'cond_mask_prob' must be a number in [0, 1), got {cond_mask_prob!r}")

    latent_dim = _as_int(path, "latent_dim", get("latent_dim"))
    num_heads = _as_int(path, "num_heads", raw.get("num_heads", HARDCODED["num_heads"]))
    if latent_dim % num_heads or latent_dim % 2:
        raise _fail(path, f"latent_dim {latent_dim} must be even and divisible by num_heads {num_heads}")
    args = ModelArgs(
        arch=arch, text_encoder_type=text_encoder,
        emb_trans_dec=_as_bool(path, "emb_trans_dec", get("emb_trans_dec")),
        sentence_token=_as_bool(path, "sentence_token", raw.get("sentence_token", HARDCODED["sentence_token"])),
        layers=_as_int(path, "layers", get("layers")),
        latent_dim=latent_dim,
        ff_size=_as_int(path, "ff_size", raw.get("ff_size", HARDCODED["ff_size"])),
        num_heads=num_heads,
        cond_mask_prob=float(cond_mask_prob),
        mask_frames=_as_bool(path, "mask_frames", get("mask_frames")),
        pos_embed_max_len=_as_int(path, "pos_embed_max_len", get("pos_embed_max_len")),
        use_ema=_as_bool(path, "use_ema", get("use_ema")),
        noise_schedule=schedule,
        diffusion_steps=_as_int(path, "diffusion_steps", get("diffusion_steps")),
        sigma_small=_as_bool(path, "sigma_small", get("sigma_small")),
        legacy=bool(missing),
    )
    if args.sentence_token and arch != "trans_dec":
        raise _fail(path, f"'sentence_token' is a trans_dec option (this model is {arch!r}); remove the key")
    if args.pos_embed_max_len < args.diffusion_steps:
        raise _fail(path, f"pos_embed_max_len {args.pos_embed_max_len} is smaller than diffusion_steps "
                          f"{args.diffusion_steps}: the timestep embedding could not index every step")
    return args


def load_args(model_dir: str | Path) -> ModelArgs:
    """Read ``<model_dir>/args.json`` (it must sit beside the checkpoint, as in the official layout)."""
    path = Path(model_dir) / "args.json"
    if not path.is_file():
        raise CheckpointError(f"{path} not found: an MDM model folder holds args.json next to its "
                              "model*.pt checkpoint (keep the released folder as it was unzipped)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); re-download the model folder") from exc
    return parse_args_dict(raw, path)


def args_to_json_dict(args: ModelArgs) -> dict:
    """An args.json dict in the official layout (what our trainer and the test helpers write)."""
    out = {k: getattr(args, k) for k in ("arch", "text_encoder_type", "emb_trans_dec", "layers", "latent_dim",
                                         "cond_mask_prob", "mask_frames", "pos_embed_max_len", "use_ema",
                                         "noise_schedule", "diffusion_steps", "sigma_small")}
    out.update(dataset="humanml", data_dir="", unconstrained=False, context_len=0, pred_len=0,
               lambda_target_loc=0.0, multi_target_cond=False, multi_encoder_type="single",
               target_enc_layers=1, lambda_rcxyz=0.0, lambda_vel=0.0, lambda_fc=0.0)
    for key in EXTENSION_KEYS:
        if getattr(args, key) != HARDCODED[key]:
            out[key] = getattr(args, key)
    return out
