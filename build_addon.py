#!/usr/bin/env python3
"""Build the installable Blender extension: ``dist/blender_mdm-<version>.zip``.

    python build_addon.py            # build (deterministic: same inputs -> same bytes)
    python build_addon.py --check    # validate the manifest and the file list, build nothing

The zip holds the add-on (``blender_mdm_addon/`` at the zip root), the backend sources under
``backend/`` (the add-on launches them in their own Python environment), the HumanML3D Mean/Std
with their licence notice, the embedded demo model, and ``smpl_assets/README.md``. The version
comes from ``backend/version.py`` only: the manifest in the zip is rewritten with it.
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent
ADDON_DIR = REPO / "blender_mdm_addon"
BACKEND_DIR = REPO / "backend"
EXTENSION_ID = "blender_mdm"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)   # fixed timestamps make the zip reproducible
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo", ".blend1", ".orig", ".rej"}
# User-supplied SMPL data must never be shipped (licence); nor training outputs other than the model.
FORBIDDEN_PATTERNS = (re.compile(r"(?i)smpl.*\.(pkl|npz)$"), re.compile(r"(?i)basicmodel.*"),
                      re.compile(r"(?i)^backend/models/demo/.*opt\d+\.pt$"))
REQUIRED_FILES = (
    "blender_manifest.toml", "__init__.py",
    "backend/__init__.py", "backend/version.py", "backend/serve.py", "backend/requirements.txt",
    "backend/assets/humanml3d/Mean.npy", "backend/assets/humanml3d/Std.npy",
    "backend/assets/humanml3d/LICENSE.txt", "backend/assets/wordnet/wordnet30.json.gz",
    "backend/assets/wordnet/LICENSE.txt", "smpl_assets/README.md",
    "backend/models/demo/args.json",
)
REQUIRED_MANIFEST_KEYS = ("schema_version", "id", "version", "name", "tagline", "maintainer", "type",
                          "blender_version_min", "license")
MAX_ZIP_BYTES = 64 * 1024 * 1024


def backend_version() -> str:
    match = re.search(r'__version__\s*=\s*"([^"]+)"', (BACKEND_DIR / "version.py").read_text())
    if not match:
        raise SystemExit("backend/version.py has no __version__ string")
    return match.group(1)


def _walk(root: Path, prefix: str) -> list[tuple[str, Path]]:
    entries = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_dir() or any(part in SKIP_DIRS for part in rel.parts) or path.suffix in SKIP_SUFFIXES:
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        entries.append((f"{prefix}{rel.as_posix()}", path))
    return entries


def collect_files() -> list[tuple[str, Path]]:
    """(name in zip, source path) for every file, sorted by name."""
    files = _walk(ADDON_DIR, "")
    files += _walk(BACKEND_DIR, "backend/")
    files.append(("smpl_assets/README.md", REPO / "smpl_assets" / "README.md"))
    if (REPO / "LICENSE").is_file():
        files.append(("LICENSE", REPO / "LICENSE"))
    return sorted(files)


def manifest_text(version: str) -> str:
    """The source manifest with its version line set from backend/version.py."""
    text = (ADDON_DIR / "blender_manifest.toml").read_text(encoding="utf-8")
    text, count = re.subn(r'(?m)^version\s*=\s*"[^"]*"', f'version = "{version}"', text)
    if count != 1:
        raise SystemExit("blender_manifest.toml must contain exactly one top-level `version = \"...\"` line")
    return text


def check(files: list[tuple[str, Path]], version: str) -> list[str]:
    """Return a list of problems (empty = valid)."""
    problems = []
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        problems.append(f"version {version!r} is not semantic (MAJOR.MINOR.PATCH)")
    try:
        manifest = tomllib.loads(manifest_text(version))
    except (tomllib.TOMLDecodeError, OSError, SystemExit) as exc:
        return problems + [f"blender_manifest.toml cannot be read: {exc}"]
    for key in REQUIRED_MANIFEST_KEYS:
        if key not in manifest:
            problems.append(f"manifest lacks `{key}`")
    if manifest.get("id") != EXTENSION_ID:
        problems.append(f"manifest id must be {EXTENSION_ID!r}, got {manifest.get('id')!r}")
    if manifest.get("type") != "add-on":
        problems.append("manifest type must be 'add-on'")
    tagline = manifest.get("tagline", "")
    if len(tagline) > 64 or tagline.endswith((".", "!", "?")):
        problems.append("tagline must be at most 64 characters without trailing punctuation")
    if not re.fullmatch(r"\d+\.\d+\.\d+", str(manifest.get("blender_version_min", ""))):
        problems.append("blender_version_min must look like 4.2.0")
    elif tuple(int(x) for x in manifest["blender_version_min"].split(".")) > (4, 2, 0):
        problems.append("blender_version_min must allow Blender 4.2 LTS")
    permissions = manifest.get("permissions", {})
    for needed in ("files", "network"):
        if needed not in permissions:
            problems.append(f"manifest permissions lack `{needed}` (with a reason)")
    if not all(isinstance(v, str) and v for v in manifest.get("license", [None])):
        problems.append("manifest license must be a list of SPDX strings")
    names = [name for name, _ in files]
    for required in REQUIRED_FILES:
        if required not in names:
            problems.append(f"missing file in the package: {required}")
    for name in names:
        if any(p.search(name) for p in FORBIDDEN_PATTERNS):
            problems.append(f"must not ship {name} (user-supplied SMPL data or training state)")
    if len(names) != len(set(names)):
        problems.append("duplicate file names in the package")
    total = sum(path.stat().st_size for _, path in files)
    if total > MAX_ZIP_BYTES:
        problems.append(f"package content is {total / 1e6:.1f} MB, over the {MAX_ZIP_BYTES / 1e6:.0f} MB budget")
    return problems


def build(files: list[tuple[str, Path]], version: str, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{EXTENSION_ID}-{version}.zip"
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name, path in files:
            data = manifest_text(version).encode() if name == "blender_manifest.toml" else path.read_bytes()
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3  # unix, whatever the build host
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="validate manifest and file list only")
    parser.add_argument("--out-dir", type=Path, default=REPO / "dist")
    args = parser.parse_args(argv)
    version = backend_version()
    files = collect_files()
    problems = check(files, version)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    if args.check:
        print(f"ok: {EXTENSION_ID} {version}, {len(files)} files")
        return 0
    target = build(files, version, args.out_dir)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
