"""MDM text-to-motion inference: official checkpoints, diffusion sampling, inpainting."""
from pathlib import Path

# The embedded demo model (MDM trained by this project on its procedural corpus; see its README.md).
DEMO_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "demo"
