"""How :mod:`mindtf.data.fetch` fails: the kinds of source failure, the one rule at the boundary,
and the one error that lists every source tried.

::

    talking to a source / unpacking what it gave
        |  TransientError   -> retry the same URL (timeout, reset, truncated body, 5xx)
        |  PermanentError   -> the next source (404, certificate, checksum, LimitError, ...)
        |  anything else    -> the next source too: reason(exc) = "ValueError: Invalid IPv6 URL"
        v
    Attempt(file, source, reason) ... every source failed -> failure_message(...) -> DataError

Nothing raised while fetching reaches the learner as a traceback: each failure becomes one line
``source: reason``, and the next source is tried.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Sequence

from mindtf.data.registry import DatasetSpec, FileSpec
from mindtf.errors import MindtfError

_MAX_REASON = 400  # characters of one reason line


class TransientError(Exception):
    """Worth retrying the same URL (timeout, reset, truncated body, 5xx)."""


class PermanentError(Exception):
    """Move on to the next source at once (404, certificate problem, wrong checksum...)."""


class MissingError(PermanentError):
    """The path is not in a local mirror."""


class LimitError(PermanentError):
    """A source broke a limit: the deadline or the minimum progress (its partial file is kept
    for a later resume)."""


class TooBigError(LimitError):
    """A source sent more bytes than the file can have (its partial file is deleted)."""


@dataclass
class Attempt:
    """One source that did not give a file: where, and why. ``missing`` marks a path that is
    simply absent from a local mirror."""

    file: str
    source: str
    error: str
    missing: bool = False


def reason(exc: BaseException) -> str:
    """Why a source failed, on one line: mindtf's own message, or the exception's type and
    message for anything else (``OverflowError: getsockaddrarg: port must be 0-65535.``)."""
    own = isinstance(exc, (TransientError, PermanentError, MindtfError))
    text = str(exc) if own else f"{type(exc).__name__}: {exc}".rstrip(": ")
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON - 3] + "..."


def failure_message(ds: DatasetSpec, ddir: Path, failed: Sequence[FileSpec],
                    attempts: Sequence[Attempt], offline: bool) -> str:
    """The one error of a fetch where some file had no working source: every source tried and
    why it failed, the expected files, and how to provide them by hand."""
    lines = [f"could not fetch dataset '{ds.name}': {len(failed)} of {len(ds.files)} file(s) "
             f"failed ({', '.join(f.name for f in failed)}).",
             "Sources tried:"]
    for spec in failed:
        lines.append(f"  {spec.name}:")
        tried = [a for a in attempts if a.file == spec.name]
        missing = [a.source for a in tried if a.missing]
        if missing:
            lines.append(f"    - not in the local mirror(s): {', '.join(missing)}")
        lines += [f"    - {a.source}: {a.error}" for a in tried if not a.missing]
        if not tried:
            lines.append("    (no source to try)")
    if offline:
        lines.append("  (offline: network mirrors and URLs were not tried)")
    lines.append("Expected files (checked by size and sha256):")
    lines += [f"  {ddir / s.name}  {s.size} bytes  sha256 {s.sha256}" for s in failed]
    by_hand: Dict[str, str] = {}
    for spec in failed:
        src = next((s for s in spec.sources if s.url), None)
        if src is not None:
            by_hand.setdefault(src.url or "", str(ddir / (src.basename or spec.name)))
    example = next((f"{ds.name}/{s.basename}" for f in failed for s in f.sources if s.basename),
                   f"{ds.name}/{failed[0].name}")
    lines += [
        "To fix it, do one of:",
        "  - download by hand and save the file at its path above, or save an original download "
        "under its own name next to it (more sources: mindtf/data/registry.json), e.g.:",
        *[f"      {url}  ->  {dest}" for url, dest in by_hand.items()],
        f"  - use a mirror that holds them (as {ds.name}/<file> or e.g. {example}):",
        f"      MINDTF_DATA_MIRROR=/path/to/mirror python -m mindtf fetch {ds.name}",
        f"      python -m mindtf fetch {ds.name} --mirror /path/or/https://mirror.example.edu/mindtf/",
        "  - on a slow link, allow more time: --deadline SECONDS (and --stall-seconds)",
        "  - behind a proxy, set HTTPS_PROXY/HTTP_PROXY; for certificate errors only, --insecure "
        "(files are still checked against sha256)",
    ]
    return "\n".join(lines)
