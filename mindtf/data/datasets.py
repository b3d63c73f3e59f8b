"""Loaders for the course datasets, on top of :func:`mindtf.data.fetch`.

Each loader fetches its dataset first (so mirrors, ``MINDTF_DATA_DIR`` and ``offline`` work the
same way; pass any :func:`~mindtf.data.fetch` keyword through), then reads the verified files:

>>> pairs = load_multi30k("train")              # [(german, english), ...], 29000 pairs
>>> train_text, val_text = load_tinyshakespeare()
>>> rows = load_sst2("dev")                     # [(sentence, 0 or 1), ...], 872 rows
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Tuple

from mindtf.errors import DataError
from mindtf.data.fetch import fetch

MULTI30K_SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val",
                   "dev": "val", "test": "test2016", "test2016": "test2016"}
SST2_SPLITS = {"train": "train", "dev": "dev", "val": "dev", "valid": "dev", "validation": "dev"}


def _split(split: str, table: dict, dataset: str) -> str:
    key = str(split).lower()
    if key not in table:
        raise ValueError(f"{dataset}: unknown split {split!r}; use one of "
                         f"{', '.join(sorted(set(table.values())))}")
    return table[key]


def _lines(path: Path) -> List[str]:
    """The lines of a UTF-8 text file, split on ``\\n`` only (not on U+2028 and friends)."""
    with open(path, encoding="utf-8", newline="") as fh:
        text = fh.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def load_multi30k(split: str = "train", **fetch_kwargs: Any) -> List[Tuple[str, str]]:
    """Multi30k German-English sentence pairs ``(de, en)`` of one split.

    Args:
        split: ``"train"`` (29000 pairs), ``"val"`` (1014; also ``"valid"``) or ``"test2016"``
            (1000; also ``"test"``).
        **fetch_kwargs: passed to :func:`mindtf.data.fetch` (``mirror``, ``data_dir``,
            ``offline``, ``progress``...).
    """
    name = _split(split, MULTI30K_SPLITS, "multi30k")
    result = fetch("multi30k", **fetch_kwargs)
    de = _lines(result.path(f"{name}.de"))
    en = _lines(result.path(f"{name}.en"))
    if len(de) != len(en):
        raise DataError(f"multi30k {name}: {len(de)} German but {len(en)} English lines")
    return [(d.strip(), e.strip()) for d, e in zip(de, en)]


def load_tinyshakespeare(val_fraction: float = 0.1, **fetch_kwargs: Any) -> Tuple[str, str]:
    """Tiny Shakespeare as ``(train_text, val_text)``: the first ``1 - val_fraction`` of the
    characters for training and the rest for validation (as nanoGPT does)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    result = fetch("tinyshakespeare", **fetch_kwargs)
    with open(result.path("input.txt"), encoding="utf-8", newline="") as fh:
        text = fh.read()
    cut = int(len(text) * (1.0 - val_fraction))
    return text[:cut], text[cut:]


def load_sst2(split: str = "train", **fetch_kwargs: Any) -> List[Tuple[str, int]]:
    """GLUE SST-2 ``(sentence, label)`` rows (label 1 = positive) of ``"train"`` (67349 rows)
    or ``"dev"`` (872; also ``"validation"``). The test split has no labels, so it is not
    offered here; its file is still fetched to ``<data_dir>/sst2/test.tsv``."""
    if str(split).lower() == "test":
        raise ValueError("sst2: the test split has no labels; use 'train' or 'dev'")
    name = _split(split, SST2_SPLITS, "sst2")
    result = fetch("sst2", **fetch_kwargs)
    lines = _lines(result.path(f"{name}.tsv"))
    if not lines or lines[0].split("\t") != ["sentence", "label"]:
        raise DataError(f"sst2 {name}.tsv: expected the header 'sentence<TAB>label'")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        sentence, tab, label = line.rpartition("\t")
        if not tab or label not in ("0", "1"):
            raise DataError(f"sst2 {name}.tsv line {number}: expected 'sentence<TAB>0|1'")
        rows.append((sentence, int(label)))
    return rows
