"""MDM training: x0 objective, cosine schedule, classifier-free dropout, frame masking, EMA, AdamW.

Writes checkpoints in the official layout (``args.json`` + ``model<step:09d>.pt`` holding
``{'model', 'model_avg'}``) so the rest of the backend — and the official code — loads them like any
released model. Data come from a HumanML3D-layout folder (``dataset.py``): the real HumanML3D or
our procedural corpus. The text encoder is frozen: every caption is encoded once up front.

Loss per sample: sum over valid frames of |x0_pred - x0|^2 / (valid frames * 263) (the official
``masked_l2``), plus optionally ``lambda_vel`` x the same on frame-to-frame differences of the
joint-position block (ric) of the features — a cheap geometric term against jitter.

Resuming (``resume=True``): the newest ``model*.pt`` in ``out_dir`` is loaded (network and EMA) with
the optimizer state saved beside it in ``training_state.pt`` (fresh AdamW moments when that file is
missing or from another step — logged and recorded in ``training_log.json``). Data order and noise
are re-seeded from (seed, step), so a resumed run is reproducible but not bit-identical to an
uninterrupted one.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..mdm.args import ModelArgs, args_to_json_dict, parse_args_dict
from ..mdm.diffusion import build_schedule
from ..mdm.network import MDM
from ..mdm.text_encoders import load_text_encoder
from ..mdm.text_tokens import CAPTION_VOCABULARY, POOLED
from ..motion.skeleton import RIC
from ..version import __version__
from .dataset import LengthBucketSampler, TrainingData, load_normalizer, load_split

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data_dir: str
    out_dir: str
    # network / diffusion (written to args.json)
    arch: str = "trans_enc"
    text_encoder_type: str = "minilm"
    text_encoder_dir: str | None = None
    latent_dim: int = 256
    layers: int = 4
    ff_size: int = 1024
    num_heads: int = 4
    diffusion_steps: int = 50
    cond_mask_prob: float = 0.1
    # per-word conditioning only: each word row (never row 0, the sentence/[CLS] row) is hidden from
    # cross-attention with this probability, so the network also learns to follow the sentence row
    # alone (paraphrases whose words it never saw)
    word_drop_prob: float = 0.0
    # per-word conditioning only: this fraction of the samples has every word row hidden, so the
    # sentence row alone must carry the action; with the words a model never saw hidden at inference
    # (caption_vocabulary.json) a paraphrase then leans on its sentence embedding
    sentence_drop_prob: float = 0.0
    # trans_dec: start the frame sequence with a time + sentence token (ModelArgs.sentence_token)
    sentence_token: bool = False
    mask_frames: bool = True
    pos_embed_max_len: int = 256
    # optimisation
    batch_size: int = 64
    lr: float = 2e-4
    min_lr_ratio: float = 0.1       # cosine decay to lr * min_lr_ratio
    warmup_steps: int = 500
    weight_decay: float = 0.0
    num_steps: int = 20000
    ema_beta: float = 0.999
    lambda_vel: float = 1.0
    seed: int = 10
    device: str = "cpu"
    threads: int = 0                # 0 = torch default
    # bookkeeping
    log_interval: int = 100
    val_interval: int = 1000
    save_interval: int = 5000
    max_clips: int | None = None
    resume: bool = False            # continue from the newest checkpoint in out_dir
    # {regex: factor}: clips with a caption matching the regex (case-insensitive) are drawn
    # ``factor`` times as often (integer factors; the largest matching one applies)
    oversample: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def model_args(self) -> ModelArgs:
        return ModelArgs(arch=self.arch, text_encoder_type=self.text_encoder_type, layers=self.layers,
                         latent_dim=self.latent_dim, ff_size=self.ff_size, num_heads=self.num_heads,
                         cond_mask_prob=self.cond_mask_prob, mask_frames=self.mask_frames,
                         pos_embed_max_len=self.pos_embed_max_len, use_ema=True, noise_schedule="cosine",
                         sentence_token=self.sentence_token,
                         diffusion_steps=self.diffusion_steps, sigma_small=True)


_DEMO = dict(latent_dim=192, layers=4, ff_size=768, num_heads=4, batch_size=32, num_steps=8000, lr=4e-4,
             warmup_steps=300, ema_beta=0.998, log_interval=50, val_interval=500, save_interval=500)

PRESETS = {
    # The embedded demo model: a trans_dec (latent 192, 4 layers, 2.6 M parameters, 10.5 MB)
    # cross-attending to MiniLM's sentence row and per-word rows, so "right" and "left" stay visible.
    # Waves, kicks, turns and jumps are oversampled (they came out weakest without it); 30 % of the
    # word rows are hidden (word dropout) and a quarter of the samples have all of them hidden
    # (sentence dropout), so the network also follows the sentence row alone, which is what it gets
    # for words the corpus never uses (hidden at inference, see text_tokens.CaptionVocabulary).
    # 8,000 steps take ~1.8 h on 2 idle cores; backend/models/demo/README.md has the shipped recipe.
    "demo": dict(_DEMO, arch="trans_dec", text_encoder_type="minilm_tokens",
                 oversample={"wav": 4, "kick": 4, "turn": 4, "jump": 3}, word_drop_prob=0.3,
                 sentence_drop_prob=0.25),
    # The previous demo model: the same size as a trans_enc on the pooled sentence embedding (2.0 M
    # parameters). The pooled embeddings of "waves with the right/left hand" have cosine 0.98 and it
    # mostly confused the sides (right-hand wave and right-leg kick 1/4 each, 9,500 steps).
    "demo_pooled": _DEMO,
    # The official MDM recipe for the real HumanML3D dataset (the paper's trans_enc + CLIP model):
    # AdamW at a constant lr 1e-4, batch 64, 600k steps, 1000 cosine diffusion steps, EMA 0.9999, no
    # geometric losses. Needs the CLIP weights and, realistically, a GPU (--device cuda).
    "humanml": dict(arch="trans_enc", text_encoder_type="clip", latent_dim=512, layers=8, ff_size=1024,
                    num_heads=4, diffusion_steps=1000, batch_size=64, lr=1e-4, min_lr_ratio=1.0,
                    warmup_steps=0, num_steps=600_000, ema_beta=0.9999, lambda_vel=0.0, log_interval=1000,
                    val_interval=10_000, save_interval=50_000),
    # A seconds-long run for the test suite.
    "tiny": dict(latent_dim=32, layers=1, ff_size=64, num_heads=2, diffusion_steps=10, batch_size=8,
                 num_steps=60, warmup_steps=5, log_interval=10, val_interval=30, save_interval=60, lr=1e-3),
}


class CaptionEmbeddings:
    """Frozen text-encoder outputs for every caption, packed: all captions' rows one after another
    ([sum L_i, D], no padding; HumanML3D's longest caption is several times its average, so a padded
    [N, L_max, D] table of per-word rows would be several times larger) plus where each starts.
    ``gather`` pads a batch to the longest caption of all: a fixed shape keeps runs reproducible."""

    def __init__(self, captions: list[str], kind: str, folder: str | None, device: torch.device):
        encoder = load_text_encoder(kind, folder, device="cpu")
        # every token id and word of the captions: what the network ever saw (-> caption_vocabulary.json)
        self.token_ids = sorted({i for caption in captions for i in encoder.tokens.ids(caption)})
        self.words = sorted({w for caption in captions for w in re.findall(r"[a-z]+", caption.lower())})
        rows = encoder.encode_many(captions)             # [L_i, D] each
        self.width = rows[0].shape[-1]
        lengths = torch.tensor([len(r) for r in rows])
        self.max_len = int(lengths.max())
        self.rows = torch.cat(rows).to(device)           # [sum L_i, D]
        self.lengths = lengths.to(device)
        self.starts = (torch.cumsum(lengths, 0) - lengths).to(device)

    def gather(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Caption indices [B] -> rows [B, max_len, D] (zeros past each caption) and pad [B, max_len]."""
        positions = torch.arange(self.max_len, device=ids.device)
        pad = positions[None] >= self.lengths[ids][:, None]                          # [B, L]
        index = (self.starts[ids][:, None] + positions[None]).clamp(max=len(self.rows) - 1)
        text = self.rows[index].masked_fill(pad[..., None], 0.0)                     # [B, L, D]
        if self.max_len == 1:
            return text, None
        return text, pad


def masked_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared error over valid frames: pred/target [B, T, C], valid [B, T] -> [B]."""
    weights = valid[..., None].to(pred.dtype)
    return ((pred - target) ** 2 * weights).sum((1, 2)) / (valid.sum(1) * pred.shape[-1] + 1e-8)


def training_loss(out: torch.Tensor, x0: torch.Tensor, valid: torch.Tensor, lambda_vel: float) -> torch.Tensor:
    loss = masked_mse(out, x0, valid)
    if lambda_vel > 0:
        both = valid[:, 1:] & valid[:, :-1]
        ric_out, ric_x0 = out[..., RIC], x0[..., RIC]
        loss = loss + lambda_vel * masked_mse(ric_out[:, 1:] - ric_out[:, :-1], ric_x0[:, 1:] - ric_x0[:, :-1], both)
    return loss.mean()


def learning_rate(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.num_steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        if (cfg.word_drop_prob > 0 or cfg.sentence_drop_prob > 0) and POOLED.get(cfg.text_encoder_type, False):
            # refused before the captions are encoded
            raise InputError(f"word dropout (word_drop_prob {cfg.word_drop_prob}, sentence_drop_prob "
                             f"{cfg.sentence_drop_prob}: the demo preset's defaults) needs per-word conditioning, and "
                             f"text_encoder_type {cfg.text_encoder_type!r} gives one pooled row per caption: pass "
                             f"--word-drop-prob 0 --sentence-drop-prob 0 or use a per-word encoder (minilm_tokens, bert)")
        if cfg.sentence_token and cfg.arch != "trans_dec":
            raise InputError(f"--sentence-token is a trans_dec option (arch {cfg.arch!r} already attends to the "
                             "condition token with every frame): pass --no-sentence-token")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.device = torch.device(cfg.device)
        self.args = cfg.model_args()
        normalizer = load_normalizer(cfg.data_dir)
        self.train_data = TrainingData(load_split(cfg.data_dir, "train", cfg.max_clips), normalizer)
        try:
            self.val_data = TrainingData(load_split(cfg.data_dir, "val", cfg.max_clips), normalizer)
        except InputError:
            self.val_data = None
        captions = sorted(set(self.train_data.captions) | set(self.val_data.captions if self.val_data else []))
        index = {c: i for i, c in enumerate(captions)}
        self.remap_train = torch.tensor([index[c] for c in self.train_data.captions])
        self.remap_val = torch.tensor([index[c] for c in self.val_data.captions]) if self.val_data else None
        t0 = time.perf_counter()
        self.text = CaptionEmbeddings(captions, cfg.text_encoder_type, cfg.text_encoder_dir, self.device)
        log.info("encoded %d captions in %.1f s", len(captions), time.perf_counter() - t0)
        if self.text.width != self.args.clip_dim:
            raise InputError(f"text encoder gives {self.text.width}-d features, the model expects {self.args.clip_dim}")

        self.model = MDM(self.args).to(self.device).train()
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, betas=(0.9, 0.999),
                                           weight_decay=cfg.weight_decay)
        schedule = build_schedule("cosine", cfg.diffusion_steps)
        self.sqrt_ac = torch.tensor(schedule.sqrt_alphas_cumprod, dtype=torch.float32, device=self.device)
        self.sqrt_1m_ac = torch.tensor(schedule.sqrt_one_minus_alphas_cumprod, dtype=torch.float32, device=self.device)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.history: list[dict] = []
        self.resumed: list[dict] = []   # one entry per resume: step, whether the optimizer state was restored
        self.step = 0
        if cfg.resume:
            self._resume()

    def _resume(self) -> None:
        out = Path(self.cfg.out_dir)
        checkpoints = sorted(out.glob("model[0-9]*.pt"))
        if not checkpoints:
            raise InputError(f"--resume: no model*.pt checkpoint in {out}")
        path = checkpoints[-1]
        self._check_same_network(out)
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["model_avg"])
        self.step = int(path.stem[len("model"):])
        log_path = out / "training_log.json"
        previous = json.loads(log_path.read_text()) if log_path.exists() else {}
        self.history = [e for e in previous.get("history", []) if e["step"] <= self.step]
        self.resumed = previous.get("resumed", [])
        extra = out / "training_state.pt"
        restored = False
        if extra.exists():
            saved = torch.load(extra, map_location=self.device, weights_only=True)
            if int(saved["step"]) == self.step:
                self.optimizer.load_state_dict(saved["optimizer"])
                restored = True
        if not restored:
            log.warning("resuming from %s with fresh optimizer moments (no matching training_state.pt)", path.name)
        # the configuration the steps so far were trained with (a resume may change it, e.g. --oversample)
        self.resumed.append({"step": self.step, "checkpoint": path.name, "optimizer_restored": restored,
                             "config_before": previous.get("config")})
        # data order and noise continue from a seed derived from the step (see the module docstring)
        self.rng = np.random.default_rng([self.cfg.seed, self.step])
        self.generator = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + self.step)

    def _check_same_network(self, out: Path) -> None:
        """Refuse a resume whose options define another network than the run's args.json: some (e.g.
        sentence_token, emb_trans_dec, mask_frames) keep every parameter shape and would load silently."""
        saved_path = out / "args.json"
        if not saved_path.is_file():
            return
        saved = parse_args_dict(json.loads(saved_path.read_text()), saved_path)
        changed = [f"{f.name} {getattr(saved, f.name)!r} -> {getattr(self.args, f.name)!r}"
                   for f in fields(ModelArgs)
                   if f.name != "legacy" and getattr(saved, f.name) != getattr(self.args, f.name)]
        if changed:
            raise InputError(f"--resume: the run in {out} was trained with another network ({'; '.join(changed)}); "
                             "resume with the options it was started with (its args.json), or train into a new --out")

    # -- one optimisation step --------------------------------------------------------------
    def _tensors(self, batch, remap):
        x0 = torch.from_numpy(batch.motion).to(self.device)                       # [B, T, 263]
        lengths = torch.from_numpy(batch.lengths).to(self.device)
        valid = torch.arange(x0.shape[1], device=self.device)[None] < lengths[:, None]  # [B, T]
        text, text_pad = self.text.gather(remap[torch.from_numpy(batch.caption_ids)].to(self.device))
        return x0, valid, text, text_pad

    def _noised(self, x0, t, noise):
        return self.sqrt_ac[t][:, None, None] * x0 + self.sqrt_1m_ac[t][:, None, None] * noise

    def _dropped_words(self, shape: torch.Size) -> torch.Tensor:
        """[B, L] bool: word rows to hide this step (single words, or all of a sample's); row 0 always stays."""
        hidden = torch.rand(shape, generator=self.generator) < self.cfg.word_drop_prob
        if self.cfg.sentence_drop_prob > 0:   # drawn only when used: older recipes keep their random stream
            hidden |= (torch.rand(shape[0], generator=self.generator) < self.cfg.sentence_drop_prob)[:, None]
        hidden[:, 0] = False
        return hidden.to(self.device)

    def train_step(self, indices: np.ndarray) -> float:
        cfg = self.cfg
        pad_to = None if cfg.mask_frames else 196  # without frame masking, padding must match sampling
        x0, valid, text, text_pad = self._tensors(self.train_data.batch(indices, self.rng, pad_to), self.remap_train)
        b = x0.shape[0]
        t = torch.randint(0, cfg.diffusion_steps, (b,), generator=self.generator).to(self.device)
        noise = torch.randn(x0.shape, generator=self.generator).to(self.device)
        drop = (torch.rand(b, generator=self.generator) < cfg.cond_mask_prob).to(self.device)
        if cfg.word_drop_prob > 0 or cfg.sentence_drop_prob > 0:
            text_pad = text_pad | self._dropped_words(text_pad.shape)
        out = self.model.denoise(self._noised(x0, t, noise), t, text, text_pad, drop, ~valid)
        loss = training_loss(out, x0, valid, cfg.lambda_vel)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(cfg, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            ema_params = list(self.ema.parameters())
            torch._foreach_mul_(ema_params, cfg.ema_beta)
            torch._foreach_add_(ema_params, list(self.model.parameters()), alpha=1 - cfg.ema_beta)
        self.step += 1
        return float(loss.detach())

    @torch.no_grad()
    def validation_loss(self, model: MDM, batches: int = 8) -> float:
        """Deterministic: fixed crops, timesteps and noise (its own seed), so runs are comparable."""
        data = self.val_data or self.train_data
        remap = self.remap_val if self.val_data is not None else self.remap_train
        rng = np.random.default_rng(1234)
        gen = torch.Generator().manual_seed(1234)
        was_training = model.training
        model.eval()
        total = []
        for _ in range(batches):
            idx = rng.choice(len(data), size=min(self.cfg.batch_size, len(data)), replace=False)
            x0, valid, text, text_pad = self._tensors(data.batch(idx, rng, None if self.cfg.mask_frames else 196), remap)
            t = torch.randint(0, self.cfg.diffusion_steps, (x0.shape[0],), generator=gen).to(self.device)
            noise = torch.randn(x0.shape, generator=gen).to(self.device)
            out = model.denoise(self._noised(x0, t, noise), t, text, text_pad, None, ~valid)
            total.append(float(training_loss(out, x0, valid, self.cfg.lambda_vel)))
        model.train(was_training)
        return float(np.mean(total))

    # -- output --------------------------------------------------------------------------------
    def save(self, final: bool = False) -> Path:
        out = Path(self.cfg.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        args_json = args_to_json_dict(self.args)
        args_json.update(  # the training recipe, for the record (the loaders ignore these keys)
            dataset="humanml", data_dir=str(self.cfg.data_dir), batch_size=self.cfg.batch_size, lr=self.cfg.lr,
            num_steps=self.cfg.num_steps, seed=self.cfg.seed, weight_decay=self.cfg.weight_decay,
            avg_model_beta=self.cfg.ema_beta, lambda_vel=self.cfg.lambda_vel, save_dir=str(out),
            train_platform_type="NoPlatform", backend_version=__version__)
        (out / "args.json").write_text(json.dumps(args_json, indent=4, sort_keys=True))
        # the statistics the model was trained with travel with it (the loaders read them from here)
        np.save(out / "Mean.npy", self.train_data.normalizer.mean)
        np.save(out / "Std.npy", self.train_data.normalizer.std)
        path = out / f"model{self.step:09d}.pt"
        torch.save({"model": self.model.state_dict(), "model_avg": self.ema.state_dict()}, path)
        torch.save({"step": self.step, "optimizer": self.optimizer.state_dict()}, out / "training_state.pt")
        if not POOLED.get(self.cfg.text_encoder_type, True):
            vocabulary = {"text_encoder_type": self.cfg.text_encoder_type, "token_ids": self.text.token_ids,
                          "words": self.text.words}
            (out / CAPTION_VOCABULARY).write_text(json.dumps(vocabulary))
        log_file = {"config": asdict(self.cfg), "history": self.history, "final": final, "resumed": self.resumed,
                    "num_parameters": sum(p.numel() for p in self.model.parameters())}
        (out / "training_log.json").write_text(json.dumps(log_file, indent=1))
        return path

    def sampling_pool(self) -> np.ndarray:
        """Clip indices to draw from: every clip once, oversampled ones ``factor`` times."""
        counts = np.ones(len(self.train_data), dtype=np.int64)
        for pattern, factor in self.cfg.oversample.items():
            regex = re.compile(pattern, re.IGNORECASE)
            hits = np.array([any(regex.search(c) for c in s.captions) for s in self.train_data.samples])
            counts[hits] = np.maximum(counts[hits], int(factor))
        return np.repeat(np.arange(len(self.train_data)), counts)

    def batch_iterator(self):
        """Clip indices of the training batches, endlessly: length buckets with frame masking, else uniform."""
        cfg = self.cfg
        pool = self.sampling_pool()
        if not cfg.mask_frames:
            while True:
                yield pool[self.rng.choice(len(pool), cfg.batch_size, replace=False)]
        sampler_seed = cfg.seed if self.step == 0 else [cfg.seed, self.step]
        lengths = [len(self.train_data.normalized[i]) for i in pool]
        for batch in LengthBucketSampler(lengths, cfg.batch_size, sampler_seed):
            yield pool[batch]

    def run(self, on_log=None) -> list[dict]:
        cfg = self.cfg
        batches = self.batch_iterator()
        # seconds keep counting across a resume
        window, t_start = [], time.perf_counter() - (self.history[-1]["seconds"] if self.history else 0.0)
        while self.step < cfg.num_steps:
            window.append(self.train_step(next(batches)))
            if self.step % cfg.log_interval == 0 or self.step == cfg.num_steps:
                entry = {"step": self.step, "loss": float(np.mean(window)), "lr": learning_rate(cfg, self.step - 1),
                         "seconds": round(time.perf_counter() - t_start, 1)}
                if self.step % cfg.val_interval == 0 or self.step == cfg.num_steps:
                    entry["val_loss_ema"] = self.validation_loss(self.ema)
                self.history.append(entry)
                window = []
                if on_log:
                    on_log(entry)
            if self.step % cfg.save_interval == 0 and self.step != cfg.num_steps:
                self.save()
        self.save(final=True)
        return self.history


def train(cfg: TrainConfig, on_log=None) -> Path:
    trainer = Trainer(cfg)
    trainer.run(on_log)
    return Path(cfg.out_dir)
