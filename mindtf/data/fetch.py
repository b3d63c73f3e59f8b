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
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import json
import os
import secrets
import shutil
import socket
import ssl
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import DataError
from . import archive, paths
from .paths import DatasetSpec, FileSpec, Mirror, Source

USER_AGENT = "mindtf-fetch/0.1 (+https://www.mindspore.cn)"
_CHUNK = 1 << 16
_RETRY_CODES = {408, 425, 429}
MARKER = ".verified.json"


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


@dataclass
class NetOptions:
    """Network settings of one :func:`fetch` call."""

    timeout: Tuple[float, float] = (10.0, 60.0)  # (connect, read) seconds
    retries: int = 3
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    ssl_context: Optional[ssl.SSLContext] = None
    progress: bool = True
    downloader: str = "urllib"
    custom_tls: bool = False  # a CA file or insecure=True: only urllib can honour those


class _Transient(Exception):
    """Worth retrying the same URL (timeout, reset, truncated body, 5xx)."""


class _Permanent(Exception):
    """Move on to the next source at once (404, certificate problem, wrong checksum...)."""


class _Missing(_Permanent):
    """The path is not in a local mirror."""


def say(msg: str, progress: bool = True) -> None:
    """Tell the learner what is happening (stderr, without breaking progress bars)."""
    if progress:
        from tqdm import tqdm

        tqdm.write(f"mindtf: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- hashing

def file_digest(path: Union[str, Path], algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _temp_name(folder: Path, name: str) -> Path:
    """A fresh hidden name beside ``folder/name`` (created with the user's umask, unlike
    :func:`tempfile.mkstemp`'s 0600)."""
    return folder / f".{name.lstrip('.')}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _describe_bad(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        return " -- it is an HTML page (a login, error or portal page?), not the data"
    return ""


def _check(path: Path, size: Optional[int], sha256: Optional[str], md5: Optional[str] = None,
           what: str = "file") -> None:
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise _Permanent(f"wrong size for {what}: {actual} bytes, expected {size}"
                         + _describe_bad(path))
    for algo, want in (("sha256", sha256), ("md5", md5)):
        if want and file_digest(path, algo) != want:
            raise _Permanent(f"{algo} mismatch for {what}: got {file_digest(path, algo)}, "
                             f"expected {want}" + _describe_bad(path))


# --------------------------------------------------------------------------- transport

def make_ssl_context(cafile: Optional[str] = None, insecure: bool = False) -> ssl.SSLContext:
    """The TLS settings for downloads: the system's CAs (plus ``certifi``'s when installed),
    or ``cafile``; with ``insecure=True`` no certificate checks at all."""
    ctx = ssl.create_default_context(cafile=cafile)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif cafile is None and not os.environ.get("SSL_CERT_FILE"):
        try:
            import certifi

            ctx.load_verify_locations(certifi.where())
        except Exception:  # certifi is optional
            pass
    return ctx


def _conn_class(base: type) -> type:
    class Conn(base):  # type: ignore[misc,valid-type]
        """Connects with the connect timeout, then reads with the read timeout."""

        def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._read_timeout = read_timeout

        def connect(self) -> None:
            super().connect()
            self.sock.settimeout(self._read_timeout)

    return Conn


_HTTPConn = _conn_class(http.client.HTTPConnection)
_HTTPSConn = _conn_class(http.client.HTTPSConnection)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self._read_timeout = read_timeout

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(functools.partial(_HTTPConn, read_timeout=self._read_timeout), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, read_timeout: float, context: Optional[ssl.SSLContext]) -> None:
        super().__init__(context=context)
        self._read_timeout = read_timeout
        self._ctx = context

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(functools.partial(_HTTPSConn, read_timeout=self._read_timeout), req,
                            context=self._ctx)


def _classify(exc: BaseException, opts: NetOptions) -> Exception:
    """Turn a low-level error into _Transient / _Permanent with a readable message."""
    if isinstance(exc, urllib.error.HTTPError):
        msg = f"HTTP {exc.code} {exc.reason}"
        return _Transient(msg) if exc.code >= 500 or exc.code in _RETRY_CODES else _Permanent(msg)
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _Permanent(f"SSL certificate problem: {exc.verify_message or exc} (trying the next "
                          "source; --insecure skips certificate checks, sha256 is still checked)")
    if isinstance(exc, ssl.SSLError):
        return _Permanent(f"SSL error: {exc} (trying the next source)")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return _Transient(f"timed out (connect {opts.timeout[0]:g}s / read {opts.timeout[1]:g}s)")
    if isinstance(exc, socket.gaierror):
        return _Permanent(f"cannot resolve the host name ({exc}); no network or DNS?")
    if isinstance(exc, urllib.error.URLError):
        return _Transient(f"cannot connect: {exc.reason}")
    if isinstance(exc, OSError):
        return _Transient(f"cannot connect: {exc.strerror or exc}")
    return _Transient(f"no valid answer ({type(exc).__name__}: {exc})")


def _download_once(url: str, part: Path, expected_size: Optional[int], opts: NetOptions,
                   desc: str) -> None:
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset > expected_size:
        part.unlink()
        offset = 0
    if offset and offset == expected_size:
        return
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    opener = urllib.request.build_opener(_HTTPHandler(opts.timeout[1]),
                                         _HTTPSHandler(opts.timeout[1], opts.ssl_context))
    try:
        resp = opener.open(urllib.request.Request(url, headers=headers), timeout=opts.timeout[0])
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:  # our range starts at the end: maybe already complete
            if expected_size is None:
                return
            part.unlink()
            raise _Transient("HTTP 416 for the resumed range; restarting from zero") from None
        raise _classify(exc, opts) from None
    except (OSError, http.client.HTTPException) as exc:
        raise _classify(exc, opts) from None
    with resp:
        start = 0
        if offset and resp.status == 206:
            content_range = resp.headers.get("Content-Range", "")
            try:
                start = int(content_range.split()[1].split("-")[0])
            except (IndexError, ValueError):
                start = -1
            if start != offset:
                part.unlink()
                raise _Transient(f"server resumed at the wrong place ({content_range!r})")
        elif offset:
            say(f"{url} ignored the Range request; downloading from the start", opts.progress)
        length_header = resp.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        total = start + length if length is not None else expected_size
        received = 0
        from tqdm import tqdm

        with open(part, "ab" if start else "wb") as fh, tqdm(
                total=total, initial=start, desc=desc, unit="B", unit_scale=True,
                unit_divisor=1024, disable=not opts.progress, leave=False, file=sys.stderr) as bar:
            try:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    fh.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise _Transient(f"connection broke after {start + received} bytes "
                                 f"({type(exc).__name__}: {exc})") from None
    if length is not None and received < length:
        raise _Transient(f"truncated: the server sent {received} of {length} bytes")


def _download_with_package(url: str, dest: Path, opts: NetOptions) -> bool:
    """The optional ``download``-package path; False (after saying why) when it fails.

    (That package sets no timeout on its main request, so a stalled server can hang it.)"""
    try:
        import download as download_pkg

        download_pkg.download(url, str(dest), progressbar=opts.progress, replace=True,
                              timeout=opts.timeout[0], verbose=False)
        return dest.exists()
    except Exception as exc:  # noqa: BLE001 - any failure falls back to urllib
        say(f"the 'download' package failed for {url} ({exc}); using urllib", opts.progress)
        return False


def download_url(url: str, dest: Path, *, expected_size: Optional[int] = None,
                 opts: Optional[NetOptions] = None, desc: str = "") -> Path:
    """Download ``url`` to ``dest`` (through ``dest.part``, resumed when present), retrying
    transient failures with exponential backoff. Raises ``_Permanent`` when it gives up."""
    opts = opts or NetOptions()
    part = dest.with_name(dest.name + ".part")
    if (opts.downloader == "download" and not opts.custom_tls
            and _download_with_package(url, dest, opts)):
        return dest
    last: Optional[Exception] = None
    for attempt in range(opts.retries + 1):
        if attempt:
            delay = opts.backoff * 2 ** (attempt - 1)
            say(f"{url}: {last}; retry {attempt}/{opts.retries} in {delay:g}s", opts.progress)
            time.sleep(delay)
        try:
            _download_once(url, part, expected_size, opts, desc or dest.name)
            os.replace(part, dest)
            return dest
        except _Transient as exc:
            last = exc
    tries = "1 try" if opts.retries == 0 else f"{opts.retries + 1} tries"
    raise _Permanent(f"{last} (gave up after {tries})")


# --------------------------------------------------------------------------- candidates

@dataclass(frozen=True)
class _Candidate:
    label: str  # what the learner sees: a path or a URL
    source: Source
    path: Optional[Path] = None  # a local file...
    url: Optional[str] = None  # ...or a URL


def _candidates(ds: DatasetSpec, spec: FileSpec, mirror_list: Sequence[Mirror], ddir: Path,
                offline: bool) -> List[_Candidate]:
    """Every place to look for one file, in order, without duplicates."""
    plain = Source(url=None, format="file")
    out: List[_Candidate] = []

    def rel_paths(src: Source) -> List[str]:
        rels = [f"{ds.name}/{src.basename}"] if src.basename else []
        return rels + list(src.mirror_paths)

    for m in mirror_list:
        if not m.is_local and offline:
            continue
        for src, rels in [(plain, [f"{ds.name}/{spec.name}"])] + [(s, rel_paths(s))
                                                                   for s in spec.sources]:
            for rel in rels:
                if m.path is not None:
                    path = m.path.joinpath(*rel.split("/"))
                    out.append(_Candidate(str(path), src, path=path))
                else:
                    url = urllib.parse.urljoin(m.url or "", urllib.parse.quote(rel))
                    out.append(_Candidate(url, src, url=url))
    for src in spec.sources:  # an original download put next to the files by hand
        if src.basename and src.basename != spec.name and (ddir / src.basename).is_file():
            out.append(_Candidate(str(ddir / src.basename), src, path=ddir / src.basename))
    if not offline:
        out += [_Candidate(s.url, s, url=s.url) for s in spec.sources if s.url]
    seen, unique = set(), []
    for c in out:
        key = (c.label, c.source.format, c.source.members, c.source.sha256, c.source.md5)
        if key not in seen:
            seen.add(key)
            unique.append(c)
    return unique


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

    def raw(self, cand: _Candidate, spec: FileSpec) -> Path:
        """The candidate's raw bytes on disk (downloaded if needed), checked if hashes exist."""
        if cand.label in self.raw_ok:
            return self.raw_ok[cand.label]
        src = cand.source
        if cand.path is not None:
            if not cand.path.is_file():
                raise _Missing("not found")
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
                _check(path, src.size, src.sha256, src.md5, what=f"the {src.format} download")
            except _Permanent:
                if cand.url is not None:
                    path.unlink()
                raise
        self.raw_ok[cand.label] = path
        return path

    def make(self, cand: _Candidate, spec: FileSpec) -> str:
        """Produce ``spec`` from ``cand`` into the dataset folder; returns how it was made."""
        raw = self.raw(cand, spec)
        src = cand.source
        tmp = _temp_name(self.ddir, spec.name)
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
                    raise _Permanent(f"cannot read the {src.format} data: {exc}"
                                     + _describe_bad(raw)) from None
            if spec.normalize == "text":
                try:
                    tmp.write_bytes(normalize_text(tmp.read_bytes()))
                except UnicodeDecodeError as exc:
                    raise _Permanent(f"not UTF-8 text: {exc}" + _describe_bad(tmp)) from None
            _check(tmp, spec.size, spec.sha256, what=spec.name)
            os.replace(tmp, self.ddir / spec.name)
        except (_Permanent, DataError):
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

def _read_marker(ddir: Path) -> Dict[str, Any]:
    try:
        data = json.loads((ddir / MARKER).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_marker(ddir: Path, marker: Mapping[str, Any]) -> None:
    tmp = _temp_name(ddir, MARKER)
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            json.dump(marker, fh, indent=1, sort_keys=True)
        os.replace(tmp, ddir / MARKER)
    except OSError:  # a read-only data folder: verification is just not remembered
        if tmp.exists():
            tmp.unlink()


def _stamp(path: Path, sha256: str) -> Dict[str, Any]:
    st = path.stat()
    return {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _cached(path: Path, spec: FileSpec, marker: Dict[str, Any], recheck: bool) -> Optional[str]:
    """``None`` if ``path`` holds the verified file (hashing it only when the marker does not
    vouch for it); otherwise why not."""
    try:
        if path.stat().st_size != spec.size:
            return f"{path} has {path.stat().st_size} bytes, expected {spec.size} (incomplete?)"
    except FileNotFoundError:
        return "absent"
    if not recheck and marker.get(spec.name) == _stamp(path, spec.sha256):
        return None
    if file_digest(path) != spec.sha256:
        return f"{path} does not match its sha256 (corrupt?)"
    marker[spec.name] = _stamp(path, spec.sha256)
    return None


def _vouched(ds: DatasetSpec, ddir: Path) -> Optional[FetchResult]:
    """A result without hashing or writing anything, if the marker vouches for every file."""
    marker = _read_marker(ddir)
    result = FetchResult(name=ds.name, directory=ddir)
    for spec in ds.files:
        path = ddir / spec.name
        try:
            if marker.get(spec.name) != _stamp(path, spec.sha256):
                return None
        except OSError:
            return None
        result.files[spec.name] = FetchedFile(spec.name, path, spec.size, spec.sha256, "cache",
                                              "cached")
    return result


@contextmanager
def _locked(ddir: Path, progress: bool) -> Iterator[None]:
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
    datasets = paths.load_registry(registry)
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
    with _locked(ddir, progress):
        marker = _read_marker(ddir)
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
            for cand in _candidates(ds, spec, mirror_list, ddir, offline):
                try:
                    method = job.make(cand, spec)
                except (_Permanent, DataError) as exc:
                    missing = isinstance(exc, _Missing)
                    result.attempts.append(Attempt(spec.name, cand.label, str(exc), missing))
                    if not missing:
                        say(f"{spec.name}: {cand.label}: {exc}", progress)
                    continue
                marker[spec.name] = _stamp(target, spec.sha256)
                result.files[spec.name] = FetchedFile(spec.name, target, spec.size, spec.sha256,
                                                      cand.label, method)
                break
            else:
                failed.append(spec)
        _write_marker(ddir, marker)
        if failed:
            raise DataError(_failure_message(ds, ddir, failed, result.attempts, offline))
        shutil.rmtree(ddir / ".partial", ignore_errors=True)
    return result
