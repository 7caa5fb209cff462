"""MDM text-to-motion inference: official checkpoints, diffusion sampling, inpainting."""
from pathlib import Path

# The embedded demo model (trans_enc + MiniLM), trained by us; shipped later by the lead.
DEMO_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "demo"
