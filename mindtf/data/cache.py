"""The verification side of :mod:`mindtf.data.fetch`: hashes, checks, markers and the lock.

A file is accepted only when its size and sha256 (and md5, where a source gives one) match.
``<data_dir>/<dataset>/.verified.json`` remembers each verified file's sha256, size and mtime so
that later fetches need not hash it again; a per-dataset :mod:`filelock` lock keeps concurrent
fetches apart.
"""
from __future__ import annotations

import json
import os
import secrets
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional

from mindtf.data.downloads import say
from mindtf.data.failures import PermanentError
from mindtf.fileio import file_digest

MARKER = ".verified.json"


# --------------------------------------------------------------------------- hashing

def temp_name(folder: Path, name: str) -> Path:
    """A fresh hidden name beside ``folder/name`` (created with the user's umask, unlike
    :func:`tempfile.mkstemp`'s 0600)."""
    return folder / f".{name.lstrip('.')}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def describe_bad(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        return " -- it is an HTML page (a login, error or portal page?), not the data"
    return ""


def check_file(path: Path, size: Optional[int], sha256: Optional[str], md5: Optional[str] = None,
           what: str = "file") -> None:
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise PermanentError(f"wrong size for {what}: {actual} bytes, expected {size}"
                         + describe_bad(path))
    for algo, want in (("sha256", sha256), ("md5", md5)):
        if want and file_digest(path, algo) != want:
            raise PermanentError(f"{algo} mismatch for {what}: got {file_digest(path, algo)}, "
                             f"expected {want}" + describe_bad(path))



# --------------------------------------------------------------------------- markers

def read_marker(ddir: Path) -> Dict[str, Any]:
    try:
        data = json.loads((ddir / MARKER).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_marker(ddir: Path, marker: Mapping[str, Any]) -> None:
    tmp = temp_name(ddir, MARKER)
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            json.dump(marker, fh, indent=1, sort_keys=True)
        os.replace(tmp, ddir / MARKER)
    except OSError:  # a read-only data folder: verification is just not remembered
        if tmp.exists():
            tmp.unlink()


def stamp(path: Path, sha256: str) -> Dict[str, Any]:
    st = path.stat()
    return {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


# --------------------------------------------------------------------------- lock

@contextmanager
def locked(ddir: Path, progress: bool) -> Iterator[None]:
    try:
        from filelock import FileLock, Timeout
    except ImportError:  # a dependency; without it, only concurrent fetches are at risk
        warnings.warn("filelock is not installed: concurrent fetches may collide", stacklevel=3)
        yield
        return
    lock = FileLock(str(ddir / ".lock"))
    try:
        lock.acquire(timeout=0.2)
    except Timeout:
        say(f"waiting for another process fetching into {ddir} ...", progress)
        lock.acquire()
    except OSError as exc:  # e.g. a read-only, pre-filled data folder
        say(f"cannot lock {ddir} ({exc}); going on without a lock", progress)
        yield
        return
    try:
        yield
    finally:
        lock.release()
