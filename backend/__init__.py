"""blender-mdm inference backend: MDM text-to-motion, SMPL fitting, the warm service.

Importing this package is cheap (no torch); heavy modules are imported where used.
"""
from .version import __version__

__all__ = ["__version__"]
