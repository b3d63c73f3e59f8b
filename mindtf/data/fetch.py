"""Fetch a dataset: mirrors first, then the registry's sources; resume, retry, verify, cache.

:func:`fetch` makes sure every file of a dataset sits verified (size + sha256) at
``<data_dir>/<dataset>/<file>``. Each file is taken from the first candidate that works:

1. the mirrors (``mirror=`` / ``--mirror`` / ``$MINDTF_DATA_MIRROR``), local folders or base URLs,
   holding either the files as kept here (``<dataset>/<file>``) or a source's original download
   (``<dataset>/<basename of its URL>``, e.g. ``multi30k/train.de.gz``, ``sst2/SST-2.zip``);
2. an original download placed by hand next to the files (``<data_dir>/<dataset>/training.tar.gz``);
3. the registry's URLs, in order (never with ``offline=True``).

::

    for each file: candidate 1, 2, ...   (any exception = "source X failed: reason" -> next one)
        raw bytes: a local file, or a download into .partial/ (resumed; within the limits:
                   deadline, minimum progress, byte limit -- mindtf.data.limits)
        -> copy / gunzip / extract one member (capped at the file's size + a margin)
        -> normalise -> check size + sha256 -> a hidden temporary file beside the final one
           (a resumed download that fails its check is downloaded again from zero, once)
    every file verified? -> os.replace them all into place, write .verified.json
    else                 -> delete the temporary files; one DataError listing every source

So a dataset's files appear only when all of them verified, and an interrupted or failed fetch
never leaves a half file (or half a dataset) under the final names. Downloads resume from
``<data_dir>/<dataset>/.partial/`` with an HTTP Range request. A per-dataset :mod:`filelock` lock
keeps concurrent fetches apart.

The transport is :mod:`urllib` (standard library), not the ``download`` package: that package
gives no way to pass an SSL context (a custom CA or the explicit ``insecure`` opt-in), separate
connect and read timeouts, a deadline or a byte limit, or resume after a truncated body. It is
kept as an optional path (``downloader="download"`` or ``MINDTF_DOWNLOADER=download``), run in a
watched child process (:mod:`mindtf.data.package_download`), that falls back to urllib.

The pieces live beside this module: :mod:`mindtf.data.downloads` (the transport: TLS, timeouts,
retries, Range resume), :mod:`mindtf.data.limits` (deadline, progress and size limits),
:mod:`mindtf.data.cache` (hashes, checks, the ``.verified.json`` marker, the lock),
:mod:`mindtf.data.candidates` (where to look for a file, in order) and
:mod:`mindtf.data.failures` (what failed and why); this module puts them together.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import ssl
import sys
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from mindtf.data import archive, paths
# The names other code reaches through this module stay importable from it; the tests patch
# ``check_file``, ``file_digest``, ``locked`` and ``write_marker`` on this module, so the code below
# calls them through this module's globals.
from mindtf.data.cache import (MARKER, check_file, describe_bad, file_digest,  # noqa: F401
                               locked, read_marker, stamp, temp_name, write_marker)
from mindtf.data.candidates import Candidate, candidates_for
from mindtf.data.downloads import (USER_AGENT, NetOptions, download_url,  # noqa: F401
                                   make_ssl_context, net_options, part_path, say)
from mindtf.data.failures import (Attempt, LimitError, MissingError,  # noqa: F401
                                  PermanentError, TransientError, failure_message, reason)
from mindtf.data.limits import (DEADLINE, MAX_BYTES, STALL_BYTES, STALL_SECONDS, copy_limited,
                                size_limit)
from mindtf.data.registry import DatasetSpec, FileSpec, load_registry
from mindtf.errors import DataError


class InsecureDownloadWarning(UserWarning):
    """Emitted when TLS certificate checks are switched off with ``insecure=True``."""


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
        self.resumed: Set[str] = set()  # candidates whose bytes began with an earlier run's

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
            plain = src.format == "file"
            size = spec.size if plain and spec.normalize is None else src.size
            limit = size_limit(size if size is not None or not plain else spec.size,
                               self.opts.max_bytes)
            part = part_path(path)
            resumed = path.exists() or (part.exists() and part.stat().st_size > 0)
            if not path.exists():  # else: complete in an earlier run, not yet verified
                download_url(cand.url, path, expected_size=size, limit=limit, opts=self.opts,
                             desc=spec.name)
            if resumed:  # began with an earlier run's bytes: see make()
                self.resumed.add(cand.label)
        if src.format != "file":  # a plain file is checked as the target below
            try:
                check_file(path, src.size, src.sha256, src.md5,
                           what=f"the {src.format} download")
            except Exception:
                if cand.url is not None:  # bad bytes: never resume from or reuse them
                    path.unlink(missing_ok=True)
                raise
        self.raw_ok[cand.label] = path
        return path

    def make(self, cand: Candidate, spec: FileSpec) -> Tuple[Path, str]:
        """Produce ``spec`` from ``cand`` as a verified hidden file in the dataset folder;
        returns it and how it was made. A download resumed from an earlier run's bytes that
        fails is downloaded again from zero, once."""
        try:
            return self._make(cand, spec)
        except Exception as exc:  # noqa: BLE001 - bad bytes of any kind
            if cand.label not in self.resumed:
                raise
            self.resumed.discard(cand.label)
            say(f"{spec.name}: {cand.label}: the resumed download failed ({reason(exc)}); "
                "downloading it again from the start", self.opts.progress)
        return self._make(cand, spec)

    def _make(self, cand: Candidate, spec: FileSpec) -> Tuple[Path, str]:
        tmp = temp_name(self.ddir, spec.name)
        raw: Optional[Path] = None
        cap = size_limit(spec.size, self.opts.max_bytes)  # what one file may unpack to
        try:
            raw = self.raw(cand, spec)
            src = cand.source
            with open(tmp, "xb") as out:
                what = f"the {src.format} data"
                if src.format == "file" and raw.stat().st_size > cap:
                    raise PermanentError(f"wrong size for {spec.name}: {raw.stat().st_size} "
                                         f"bytes, expected {spec.size}" + describe_bad(raw))
                if src.format in ("file", "gzip"):
                    try:
                        with (open(raw, "rb") if src.format == "file" else gzip.open(raw)) as fh:
                            copy_limited(fh, out, cap, what)
                    except (OSError, EOFError, ValueError, zlib.error) as exc:
                        raise PermanentError(f"cannot read {what}: {reason(exc)}"
                                             + describe_bad(raw)) from None
                else:
                    try:
                        archive.extract_member(raw, src.members, out, max_member=cap,
                                               max_total=self.opts.max_bytes)
                    except DataError as exc:  # say "the zip data", not a .partial/ path
                        raise PermanentError(str(exc).replace(str(raw), f"the {src.format} "
                                                              "data")) from None
            if spec.normalize == "text":
                try:
                    tmp.write_bytes(normalize_text(tmp.read_bytes()))
                except UnicodeDecodeError as exc:
                    raise PermanentError(f"not UTF-8 text: {exc}" + describe_bad(tmp)) from None
            check_file(tmp, spec.size, spec.sha256, what=spec.name)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, Exception) and cand.url is not None:
                self.raw_ok.pop(cand.label, None)
                if raw is not None:  # bad bytes: never resume from or reuse them
                    raw.unlink(missing_ok=True)
            raise
        how = {"file": "copied" if cand.path else "downloaded", "gzip": "decompressed"}
        return tmp, how.get(cand.source.format, f"extracted from {cand.source.format}")


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

def _fetch_files(ds: DatasetSpec, ddir: Path, job: _Job, candidates: Any, recheck: bool,
                 result: FetchResult) -> List[FileSpec]:
    """Fetch every file not already verified; put them into place only when all of them
    verified. Returns the files no source could give (then nothing new is put into place)."""
    marker = read_marker(ddir)
    failed: List[FileSpec] = []
    staged: Dict[str, Path] = {}  # file name -> its verified hidden temporary file
    try:
        for spec in ds.files:
            target = ddir / spec.name
            try:
                why = _cached(target, spec, marker, recheck)
            except OSError as exc:
                why = f"cannot read {target} ({exc})"
            if why is None:
                result.files[spec.name] = FetchedFile(spec.name, target, spec.size, spec.sha256,
                                                      "cache", "cached")
                continue
            if why != "absent":
                result.attempts.append(Attempt(spec.name, "cache", why))
            for cand in candidates(spec):
                try:
                    staged[spec.name], method = job.make(cand, spec)
                except Exception as exc:  # noqa: BLE001 - the one rule: this source failed
                    missing = isinstance(exc, MissingError)
                    result.attempts.append(Attempt(spec.name, cand.label, reason(exc), missing))
                    if not missing:
                        say(f"{spec.name}: {cand.label} failed: {reason(exc)}", job.opts.progress)
                    continue
                result.files[spec.name] = FetchedFile(spec.name, target, spec.size, spec.sha256,
                                                      cand.label, method)
                break
            else:
                failed.append(spec)
        if not failed:  # every file verified: now they all appear
            sha = {spec.name: spec.sha256 for spec in ds.files}
            for fname in list(staged):
                try:
                    os.replace(staged[fname], ddir / fname)
                except OSError as exc:
                    raise DataError(f"cannot put the verified file {fname} into {ddir} ({exc}); "
                                    "is the folder writable?") from exc
                del staged[fname]
                marker[fname] = stamp(ddir / fname, sha[fname])
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        write_marker(ddir, marker)
    return failed


def fetch(name: str, *, mirror: Union[None, str, Sequence[str]] = None,
          data_dir: Union[None, str, os.PathLike[str]] = None, offline: bool = False,
          insecure: bool = False, progress: bool = True,
          timeout: Union[float, Tuple[float, float]] = (10.0, 60.0), retries: int = 3,
          backoff: float = 1.0, cafile: Optional[str] = None,
          ssl_context: Optional[ssl.SSLContext] = None,
          registry: Union[None, str, os.PathLike[str], Mapping[str, Any]] = None,
          recheck: bool = False, downloader: Optional[str] = None,
          deadline: float = DEADLINE, stall_bytes: int = STALL_BYTES,
          stall_seconds: float = STALL_SECONDS, max_bytes: int = MAX_BYTES) -> FetchResult:
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
        deadline: seconds one source may take in all, retries included (0: no deadline).
        stall_bytes / stall_seconds: abandon a source that delivers fewer than ``stall_bytes``
            bytes in ``stall_seconds`` seconds (a stalled or trickling server).
        max_bytes: the most a download may write when the registry gives no size (with a size,
            the limit is that size plus 10% and 1 MiB); unpacking is capped the same way.

    A source that breaks a limit, or fails in any way, is abandoned and the next one is tried.

    Raises:
        DataError: unknown dataset, or a file no source could give -- the message lists every
        source tried and why it failed, the expected files and how to provide them by hand.
        Then no file of the dataset is put into place (files verified earlier stay).
    """
    datasets = load_registry(registry)
    if name not in datasets:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(datasets))}")
    ds = datasets[name]
    ddir = paths.data_dir(data_dir) / name
    opts = net_options(timeout, deadline, stall_bytes, stall_seconds, max_bytes, retries=retries,
                       backoff=backoff, progress=progress,
                       downloader=downloader or os.environ.get("MINDTF_DOWNLOADER", "urllib"),
                       custom_tls=bool(cafile or insecure or ssl_context))
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
    opts.ssl_context = ssl_context
    if ssl_context is None and not offline:
        opts.ssl_context = make_ssl_context(cafile, insecure)
    mirror_list = paths.mirrors(mirror)
    result = FetchResult(name=name, directory=ddir)
    with locked(ddir, progress):
        failed = _fetch_files(ds, ddir, _Job(ddir, opts), lambda spec: candidates_for(
            ds, spec, mirror_list, ddir, offline), recheck, result)
        if failed:
            raise DataError(failure_message(ds, ddir, failed, result.attempts, offline))
        shutil.rmtree(ddir / ".partial", ignore_errors=True)
    return result
