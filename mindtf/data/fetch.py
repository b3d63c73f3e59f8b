"""Fetch a dataset: mirrors first, then the registry's sources; resume, retry, verify, cache.

:func:`fetch` makes sure every file of a dataset sits verified (size + sha256) at
``<data_dir>/<dataset>/<file>``. Each file is taken from the first candidate that works:

1. the mirrors (``mirror=`` / ``--mirror`` / ``$MINDTF_DATA_MIRROR``), local folders or base URLs,
   holding either the files as kept here (``<dataset>/<file>``) or a source's original download
   (``<dataset>/<basename of its URL>``, e.g. ``multi30k/train.de.gz``, ``sst2/SST-2.zip``);
2. an original download placed by hand next to the files (``<data_dir>/<dataset>/training.tar.gz``);
3. the registry's URLs, in order (never with ``offline=True``).

Downloads go to ``<data_dir>/<dataset>/.partial/`` and resume from there with an HTTP Range
request; the finished file is written to a temporary name beside its final one, verified and only
then renamed with :func:`os.replace`, so an interrupted fetch never leaves a half file under the
final name. A per-dataset :mod:`filelock` lock keeps concurrent fetches apart.

The transport is :mod:`urllib` (standard library), not the ``download`` package: that package
gives no way to pass an SSL context (a custom CA or the explicit ``insecure`` opt-in), separate
connect and read timeouts, or resume after a truncated body, and it reports failures as bare
``RuntimeError``.
It is kept as an optional path (``downloader="download"`` or ``MINDTF_DOWNLOADER=download``) that
falls back to urllib whenever it fails.

The pieces live beside this module: :mod:`._http` (the transport: TLS, timeouts, retries, Range
resume), :mod:`._cache` (hashes, checks, the ``.verified.json`` marker, the lock) and
:mod:`.candidates_for` (where to look for a file, in order); this module puts them together.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import ssl
import sys
import tarfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from mindtf.errors import DataError
from mindtf.data import archive, paths
from mindtf.data.registry import load_registry
# The names other code reaches through this module stay importable from it; the tests patch
# ``check_file``, ``file_digest``, ``locked`` and ``write_marker`` on this module, so the code below
# calls them through this module's globals.
from mindtf.data.cache import (MARKER, check_file, describe_bad, file_digest,  # noqa: F401
                               locked, read_marker, stamp, temp_name, write_marker)
from mindtf.data.candidates import Candidate, candidates_for
from mindtf.data.downloads import (USER_AGENT, MissingError, NetOptions,  # noqa: F401
                                   PermanentError, TransientError, download_url,
                                   make_ssl_context, say)
from mindtf.data.registry import DatasetSpec, FileSpec


class InsecureDownloadWarning(UserWarning):
    """Emitted when TLS certificate checks are switched off with ``insecure=True``."""


@dataclass
class Attempt:
    """One source that did not give a file: where, and why. ``missing`` marks a path that is
    simply absent from a local mirror."""

    file: str
    source: str
    error: str
    missing: bool = False


@dataclass
class FetchedFile:
    """A verified file: where it is and where its bytes came from (``source`` is ``"cache"``
    when it was already present)."""

    name: str
    path: Path
    size: int
    sha256: str
    source: str
    method: str


@dataclass
class FetchResult:
    """What :func:`fetch` did: the dataset folder, each file and its source, failed attempts."""

    name: str
    directory: Path
    files: Dict[str, FetchedFile] = field(default_factory=dict)
    attempts: List[Attempt] = field(default_factory=list)

    def path(self, file: str) -> Path:
        """The verified local path of one file of the dataset."""
        return self.files[file].path

    __getitem__ = path

    @property
    def sources(self) -> Dict[str, str]:
        """``{file: source}``: the mirror path or URL that served each file, or ``"cache"``."""
        return {k: v.source for k, v in self.files.items()}


# --------------------------------------------------------------------------- one file

def normalize_text(data: bytes) -> bytes:
    """UTF-8 without BOM, ``\\n`` line ends, no trailing blank lines, one final newline."""
    text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    return (text.rstrip("\n") + "\n").encode("utf-8")


class _Job:
    """State shared by the files of one fetch: options, verified downloads, the log."""

    def __init__(self, ddir: Path, opts: NetOptions) -> None:
        self.ddir = ddir
        self.opts = opts
        self.raw_ok: Dict[str, Path] = {}  # candidate label -> verified raw bytes

    def raw(self, cand: Candidate, spec: FileSpec) -> Path:
        """The candidate's raw bytes on disk (downloaded if needed), checked if hashes exist."""
        if cand.label in self.raw_ok:
            return self.raw_ok[cand.label]
        src = cand.source
        if cand.path is not None:
            if not cand.path.is_file():
                raise MissingError("not found")
            path = cand.path
        else:
            assert cand.url is not None
            key = hashlib.sha1(cand.url.encode()).hexdigest()[:10]
            partial = self.ddir / ".partial"
            partial.mkdir(exist_ok=True)
            path = partial / f"{src.basename or spec.name}.{key}"
            size = spec.size if src.format == "file" and spec.normalize is None else src.size
            download_url(cand.url, path, expected_size=size, opts=self.opts, desc=spec.name)
        if src.format != "file":  # a plain file is checked as the target below
            try:
                check_file(path, src.size, src.sha256, src.md5, what=f"the {src.format} download")
            except PermanentError:
                if cand.url is not None:
                    path.unlink()
                raise
        self.raw_ok[cand.label] = path
        return path

    def make(self, cand: Candidate, spec: FileSpec) -> str:
        """Produce ``spec`` from ``cand`` into the dataset folder; returns how it was made."""
        raw = self.raw(cand, spec)
        src = cand.source
        tmp = temp_name(self.ddir, spec.name)
        try:
            with open(tmp, "xb") as out:
                try:
                    if src.format == "file":
                        with open(raw, "rb") as fh:
                            shutil.copyfileobj(fh, out, 1 << 20)
                    elif src.format == "gzip":
                        with gzip.open(raw, "rb") as fh:
                            shutil.copyfileobj(fh, out, 1 << 20)
                    else:
                        archive.extract_member(raw, src.members, out)
                except (OSError, EOFError, zlib.error, tarfile.TarError,
                        zipfile.BadZipFile) as exc:
                    raise PermanentError(f"cannot read the {src.format} data: {exc}"
                                     + describe_bad(raw)) from None
            if spec.normalize == "text":
                try:
                    tmp.write_bytes(normalize_text(tmp.read_bytes()))
                except UnicodeDecodeError as exc:
                    raise PermanentError(f"not UTF-8 text: {exc}" + describe_bad(tmp)) from None
            check_file(tmp, spec.size, spec.sha256, what=spec.name)
            os.replace(tmp, self.ddir / spec.name)
        except (PermanentError, DataError):
            if cand.url is not None and raw.exists():
                raw.unlink()  # bad bytes: never resume from or reuse them
            self.raw_ok.pop(cand.label, None)
            raise
        finally:
            if tmp.exists():
                tmp.unlink()
        return {"file": "copied" if cand.path else "downloaded", "gzip": "decompressed"}.get(
            src.format, f"extracted from {src.format}")


# --------------------------------------------------------------------------- cache

def _cached(path: Path, spec: FileSpec, marker: Dict[str, Any], recheck: bool) -> Optional[str]:
    """``None`` if ``path`` holds the verified file (hashing it only when the marker does not
    vouch for it); otherwise why not."""
    try:
        if path.stat().st_size != spec.size:
            return f"{path} has {path.stat().st_size} bytes, expected {spec.size} (incomplete?)"
    except FileNotFoundError:
        return "absent"
    if not recheck and marker.get(spec.name) == stamp(path, spec.sha256):
        return None
    if file_digest(path) != spec.sha256:
        return f"{path} does not match its sha256 (corrupt?)"
    marker[spec.name] = stamp(path, spec.sha256)
    return None


def _vouched(ds: DatasetSpec, ddir: Path) -> Optional[FetchResult]:
    """A result without hashing or writing anything, if the marker vouches for every file."""
    marker = read_marker(ddir)
    result = FetchResult(name=ds.name, directory=ddir)
    for spec in ds.files:
        path = ddir / spec.name
        try:
            if marker.get(spec.name) != stamp(path, spec.sha256):
                return None
        except OSError:
            return None
        result.files[spec.name] = FetchedFile(spec.name, path, spec.size, spec.sha256, "cache",
                                              "cached")
    return result


# --------------------------------------------------------------------------- fetch

def _failure_message(ds: DatasetSpec, ddir: Path, failed: Sequence[FileSpec],
                     attempts: Sequence[Attempt], offline: bool) -> str:
    lines = [f"could not fetch dataset '{ds.name}': {len(failed)} of {len(ds.files)} file(s) "
             f"failed ({', '.join(f.name for f in failed)}).", "Sources tried:"]
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
        "  - behind a proxy, set HTTPS_PROXY/HTTP_PROXY; for certificate errors only, --insecure "
        "(files are still checked against sha256)",
    ]
    return "\n".join(lines)


def fetch(name: str, *, mirror: Union[None, str, Sequence[str]] = None,
          data_dir: Union[None, str, os.PathLike[str]] = None, offline: bool = False,
          insecure: bool = False, progress: bool = True,
          timeout: Union[float, Tuple[float, float]] = (10.0, 60.0), retries: int = 3,
          backoff: float = 1.0, cafile: Optional[str] = None,
          ssl_context: Optional[ssl.SSLContext] = None,
          registry: Union[None, str, os.PathLike[str], Mapping[str, Any]] = None,
          recheck: bool = False, downloader: Optional[str] = None) -> FetchResult:
    """Make sure every file of dataset ``name`` is present and verified; return where they are.

    Args:
        name: a dataset of the registry (see :func:`mindtf.data.list_datasets`).
        mirror: mirrors tried before the registry's sources, local folders or base URLs (a
            comma-separated string or a list); default ``$MINDTF_DATA_MIRROR``.
        data_dir: where verified files are kept; default :func:`mindtf.data.data_dir`.
        offline: never use the network (local mirrors and files already present only).
        insecure: skip TLS certificate checks (loudly warned; sha256 is still checked).
        progress: show progress bars and retry messages on stderr.
        timeout: seconds, ``(connect, read)`` or one number for both.
        retries: retries of one URL after a transient failure; ``backoff`` is the first delay.
        cafile / ssl_context: trust a specific CA bundle, or use a ready SSL context.
        registry: another registry (a path or a mapping) instead of the packaged one.
        recheck: re-hash files already present even when their marker vouches for them.
        downloader: ``"download"`` to try the ``download`` package first (falls back to urllib);
            default ``$MINDTF_DOWNLOADER`` or ``"urllib"``.

    Raises:
        DataError: unknown dataset, or a file no source could give -- the message lists every
        source tried and why it failed, the expected files and how to provide them by hand.
    """
    datasets = load_registry(registry)
    if name not in datasets:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(datasets))}")
    ds = datasets[name]
    ddir = paths.data_dir(data_dir) / name
    if not recheck:  # the common case: everything present and vouched for -- no lock, no writes
        done = _vouched(ds, ddir)
        if done is not None:
            return done
    try:
        ddir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the data folder {ddir} ({exc}); set MINDTF_DATA_DIR or "
                        "--data-dir to a writable folder") from exc
    if insecure and not offline:
        msg = ("TLS certificate checks are OFF (insecure=True / --insecure): a network attacker "
               "could serve other bytes; mindtf still rejects any file whose sha256 differs")
        warnings.warn(msg, InsecureDownloadWarning, stacklevel=2)
        print(f"WARNING: {msg}", file=sys.stderr)
    custom_tls = bool(cafile or insecure or ssl_context)
    if ssl_context is None and not offline:
        ssl_context = make_ssl_context(cafile, insecure)
    timeouts = (float(timeout), float(timeout)) if isinstance(timeout, (int, float)) else timeout
    opts = NetOptions(timeout=(float(timeouts[0]), float(timeouts[1])), retries=retries,
                      backoff=backoff, ssl_context=ssl_context, progress=progress,
                      downloader=downloader or os.environ.get("MINDTF_DOWNLOADER", "urllib"),
                      custom_tls=custom_tls)
    mirror_list = paths.mirrors(mirror)
    result = FetchResult(name=name, directory=ddir)
    failed: List[FileSpec] = []
    with locked(ddir, progress):
        marker = read_marker(ddir)
        job = _Job(ddir, opts)
        for spec in ds.files:
            target = ddir / spec.name
            why = _cached(target, spec, marker, recheck)
            if why is None:
                result.files[spec.name] = FetchedFile(spec.name, target, spec.size, spec.sha256,
                                                      "cache", "cached")
                continue
            if why != "absent":
                result.attempts.append(Attempt(spec.name, "cache", why))
            for cand in candidates_for(ds, spec, mirror_list, ddir, offline):
                try:
                    method = job.make(cand, spec)
                except (PermanentError, DataError) as exc:
                    missing = isinstance(exc, MissingError)
                    result.attempts.append(Attempt(spec.name, cand.label, str(exc), missing))
                    if not missing:
                        say(f"{spec.name}: {cand.label}: {exc}", progress)
                    continue
                marker[spec.name] = stamp(target, spec.sha256)
                result.files[spec.name] = FetchedFile(spec.name, target, spec.size, spec.sha256,
                                                      cand.label, method)
                break
            else:
                failed.append(spec)
        write_marker(ddir, marker)
        if failed:
            raise DataError(_failure_message(ds, ddir, failed, result.attempts, offline))
        shutil.rmtree(ddir / ".partial", ignore_errors=True)
    return result
