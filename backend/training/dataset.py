"""HumanML3D-layout motion/text data for training (numpy; batches become torch tensors in train.py).

Folder layout (the real HumanML3D and our procedural corpus share it):
    new_joint_vecs/<id>.npy   [F, 263] float32 features (20 fps)
    texts/<id>.txt            lines "caption#word/POS ...#start#end" (start/end in seconds, 0.0#0.0 = whole clip)
    train.txt / val.txt / test.txt   one id per line
    Mean.npy / Std.npy        optional; otherwise the shipped HumanML3D statistics are used
Clip selection and cropping follow the official training loader: clips with 40 <= frames < 200,
sub-segment captions become their own samples, a random caption per draw, the length cropped to a
multiple of 4 (one unit shorter with probability 1/3) at a random offset.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..motion.hml_codec import FPS, MAX_FRAMES, MotionNormalizer

MIN_FRAMES = 40
UNIT_LENGTH = 4


@dataclass
class MotionSample:
    motion: np.ndarray        # [F, 263] de-normalised features
    captions: list[str]


def parse_text_line(line: str) -> tuple[str, float, float] | None:
    """'caption#tokens#start#end' -> (caption, start_s, end_s); None for blank/malformed lines."""
    parts = line.strip().split("#")
    if len(parts) < 4 or not parts[0].strip():
        return None
    try:
        start, end = float(parts[2]), float(parts[3])
    except ValueError:
        start, end = 0.0, 0.0
    if not (np.isfinite(start) and np.isfinite(end)):
        start, end = 0.0, 0.0
    return parts[0].strip(), start, end


def load_split(data_dir: str | Path, split: str, max_clips: int | None = None) -> list[MotionSample]:
    """Read one split of a HumanML3D-layout folder into memory."""
    data_dir = Path(data_dir)
    split_file = data_dir / f"{split}.txt"
    if not split_file.is_file():
        raise InputError(f"{split_file} not found: a HumanML3D-layout folder needs new_joint_vecs/, "
                         f"texts/ and {split}.txt")
    samples: list[MotionSample] = []
    for clip_id in split_file.read_text().split():
        motion_path = data_dir / "new_joint_vecs" / f"{clip_id}.npy"
        text_path = data_dir / "texts" / f"{clip_id}.txt"
        if not motion_path.is_file() or not text_path.is_file():
            continue
        motion = np.load(motion_path).astype(np.float32)
        if motion.ndim != 2 or motion.shape[1] != 263 or not np.isfinite(motion).all():
            continue
        whole: list[str] = []
        for line in text_path.read_text(encoding="utf-8", errors="replace").splitlines():
            parsed = parse_text_line(line)
            if parsed is None:
                continue
            caption, start, end = parsed
            if start == 0.0 and end == 0.0:
                whole.append(caption)
                continue
            segment = motion[int(start * FPS):int(end * FPS)]
            if MIN_FRAMES <= len(segment) < 200:
                samples.append(MotionSample(segment, [caption]))
        if whole and MIN_FRAMES <= len(motion) < 200:
            samples.append(MotionSample(motion, whole))
        if max_clips is not None and len(samples) >= max_clips:
            break
    if not samples:
        raise InputError(f"no usable clips in {data_dir} split {split!r} "
                         f"(need {MIN_FRAMES}..199 frames of 263-d features with captions)")
    return samples


def load_normalizer(data_dir: str | Path) -> MotionNormalizer:
    data_dir = Path(data_dir)
    if (data_dir / "Mean.npy").is_file() and (data_dir / "Std.npy").is_file():
        return MotionNormalizer.from_dir(data_dir)
    return MotionNormalizer.from_dir()


def crop_length(length: int, rng: np.random.Generator) -> int:
    """Official crop: a multiple of 4, one unit shorter with probability 1/3."""
    units = length // UNIT_LENGTH
    if rng.integers(3) == 2 and units > MIN_FRAMES // UNIT_LENGTH:
        units -= 1
    return min(units * UNIT_LENGTH, MAX_FRAMES)


@dataclass
class Batch:
    motion: np.ndarray    # [B, T, 263] normalised, zero after each length
    lengths: np.ndarray   # [B] int64
    caption_ids: np.ndarray  # [B] int64 index into TrainingData.captions


class TrainingData:
    """Samples + a caption vocabulary (so text embeddings can be computed once and cached)."""

    def __init__(self, samples: list[MotionSample], normalizer: MotionNormalizer):
        self.samples = samples
        self.normalizer = normalizer
        self.captions: list[str] = sorted({c for s in samples for c in s.captions})
        index = {c: i for i, c in enumerate(self.captions)}
        self.sample_caption_ids = [np.array([index[c] for c in s.captions]) for s in samples]
        self.normalized = [normalizer.normalize(s.motion).astype(np.float32) for s in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def batch(self, indices: np.ndarray, rng: np.random.Generator, pad_to: int | None = None) -> Batch:
        """Crop each chosen clip, draw one of its captions, pad to the longest (or ``pad_to``)."""
        crops, caption_ids = [], []
        for i in indices:
            motion = self.normalized[i]
            length = crop_length(len(motion), rng)
            start = int(rng.integers(0, len(motion) - length + 1))
            crops.append(motion[start:start + length])
            ids = self.sample_caption_ids[i]
            caption_ids.append(ids[rng.integers(len(ids))])
        lengths = np.array([len(c) for c in crops], dtype=np.int64)
        frames = pad_to if pad_to is not None else int(lengths.max())
        out = np.zeros((len(crops), frames, 263), dtype=np.float32)
        for b, crop in enumerate(crops):
            out[b, :len(crop)] = crop
        return Batch(out, lengths, np.array(caption_ids, dtype=np.int64))


class LengthBucketSampler:
    """Draws batches of clips with similar lengths, so dynamic padding wastes little compute.

    Only valid for models trained with frame masking (args ``mask_frames``): padded frames are
    then invisible to attention, and the batch's padded length does not change the result.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, bucket_width: int = 16):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.bucket_width = bucket_width

    def __iter__(self):
        while True:
            # shuffle, sort within windows of 50 batches by length, then shuffle the batches
            order = self.rng.permutation(len(self.lengths))
            window = self.batch_size * 50
            batches = []
            for w in range(0, len(order), window):
                chunk = order[w:w + window]
                chunk = chunk[np.argsort(self.lengths[chunk] // self.bucket_width, kind="stable")]
                batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
                            if len(chunk[i:i + self.batch_size]) == self.batch_size]
            for k in self.rng.permutation(len(batches)):
                yield batches[k]
