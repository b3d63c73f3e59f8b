"""Two file operations every layer needs: hash a file, replace a file's text in one step.

::

    file_digest(path)               -> hex sha256 (or another hashlib algorithm), read in blocks
    write_text_atomically(path, t)  -> t written to a temporary file beside path, renamed over it:
                                       a reader sees the old text or the new one, never half of it
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Union

__all__ = ["file_digest", "write_text_atomically"]

PathLike = Union[str, "os.PathLike[str]"]


def file_digest(path: PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_text_atomically(path: PathLike, text: str) -> Path:
    """Replace the file ``path`` by ``text`` (UTF-8) in one step; the folder must exist."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
