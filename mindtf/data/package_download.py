"""The optional ``download``-package path of :func:`mindtf.data.downloads.download_url`.

The ``download`` package (the course's original downloader) sets no timeout on its main request
and no limit on the bytes it writes, so a stalled, trickling or endless server could hang it or
fill the disk. It therefore runs in a child Python process that this one watches and kills when
the source breaks a limit of its :class:`~mindtf.data.limits.Watch`::

    Popen(python -c "download.download(url, <dest>.pkg)")
        every 0.05 s: size of <dest>.pkg(.part) --Watch.add--> deadline, minimum progress, bytes
        | child done      -> <dest>.pkg -> dest                 -> None (success)
        | child failed    -> the reason                          (urllib takes over)
        | a limit broken  -> kill the child, delete its files    -> LimitError (next source)
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

from mindtf.data.failures import reason
from mindtf.data.limits import Watch

_CODE = ("import sys, download; download.download(sys.argv[1], sys.argv[2], kind='file', "
         "progressbar=sys.argv[3] == '1', replace=True, timeout=float(sys.argv[4]), "
         "verbose=False)")
_POLL = 0.05  # seconds between two looks at the growing file


def _size(paths: List[Path]) -> int:
    size = 0
    for p in paths:
        try:
            size = max(size, p.stat().st_size)
        except OSError:  # not there (yet, or any more)
            pass
    return size


def download_with_package(url: str, dest: Path, watch: Watch, *, timeout: float,
                          bar: bool) -> Optional[str]:
    """Download ``url`` to ``dest`` with the ``download`` package in a watched child process.

    Returns ``None`` on success, else why it failed (the caller falls back to urllib); raises
    :class:`~mindtf.data.failures.LimitError` when the source breaks a limit (the child is
    killed and its files deleted).
    """
    try:
        if importlib.util.find_spec("download") is None:
            return "the 'download' package is not installed"
    except (ImportError, ValueError) as exc:
        return f"the 'download' package cannot be imported ({reason(exc)})"
    tmp = dest.with_name(dest.name + ".pkg")
    growing = [tmp.with_name(tmp.name + ".part"), tmp]
    seen = 0
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", _CODE, url, str(tmp), "1" if bar else "0", str(timeout)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=None if bar else errors)
        except OSError as exc:
            return f"the 'download' package cannot be started ({reason(exc)})"
        try:
            watch.begin()
            while True:
                try:
                    code: Optional[int] = proc.wait(timeout=max(min(_POLL, watch.left()), 0.001))
                except subprocess.TimeoutExpired:
                    code = None
                size = _size(growing)
                if code is not None:
                    if size > watch.limit:
                        raise watch.too_big(size)
                    break
                watch.add(max(size - seen, 0), size)
                seen = max(seen, size)
        except BaseException:
            proc.kill()
            proc.wait()
            for p in growing:
                p.unlink(missing_ok=True)
            raise
        if code == 0 and tmp.is_file():
            os.replace(tmp, dest)
            return None
        for p in growing:
            p.unlink(missing_ok=True)
        errors.seek(0)
        lines = errors.read().decode("utf-8", "replace").strip().splitlines()
    return f"the 'download' package failed ({lines[-1] if lines else f'exit code {code}'})"
