"""The download layer of :mod:`mindtf.data.fetch`: one URL to one file, over HTTP(S), in limits.

:func:`download_url` writes through ``<dest>.part``, resumes it with an HTTP Range request,
retries transient failures (timeouts, resets, truncated bodies, 5xx) with exponential backoff and
raises ``PermanentError`` when a source is hopeless (404, certificate problem, a malformed
redirect, retries spent). Every source is watched (:class:`mindtf.data.limits.Watch`)::

    download_url(url, dest)   one Watch: deadline, minimum progress, byte limit (all tries)
      |-- [the 'download' package, in a child process the Watch may kill]   (optional)
      `-- urllib, try 1 .. retries+1:
            connect (<= time left) -> redirects (well-formed http(s) only) -> Range resume
            -> read1() chunks, each wait <= min(read timeout, stall window, time left)
            -> <dest>.part -> os.replace -> dest
    a broken limit -> LimitError (a PermanentError); too many bytes also deletes <dest>.part

The transport is :mod:`urllib` (standard library) with an explicit SSL context
(:func:`make_ssl_context`) and separate connect and read timeouts; the ``download`` package is an
optional path (``NetOptions.downloader == "download"``, :mod:`mindtf.data.package_download`)
that falls back to urllib when it fails.
"""
from __future__ import annotations

import functools
import http.client
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Tuple, Union

from mindtf.data.failures import (LimitError, MissingError, PermanentError,  # noqa: F401
                                  TooBigError, TransientError, reason)
from mindtf.data.limits import DEADLINE, MAX_BYTES, STALL_BYTES, STALL_SECONDS, Watch, size_limit
from mindtf.data.package_download import download_with_package
from mindtf.errors import check_range
from mindtf.progress import progress as show_progress
from mindtf.progress import progress_mode, write

USER_AGENT = "mindtf-fetch/0.1 (+https://www.mindspore.cn)"
_CHUNK = 1 << 16
_RETRY_CODES = {408, 425, 429}


@dataclass
class NetOptions:
    """Network settings of one :func:`fetch` call (the limits: :mod:`mindtf.data.limits`)."""

    timeout: Tuple[float, float] = (10.0, 60.0)  # (connect, read) seconds
    retries: int = 3
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    ssl_context: Optional[ssl.SSLContext] = None
    progress: bool = True
    downloader: str = "urllib"
    custom_tls: bool = False  # a CA file or insecure=True: only urllib can honour those
    deadline: float = DEADLINE  # seconds one source may take, every try together (0: none)
    stall_bytes: int = STALL_BYTES  # abandon a source that delivers fewer bytes than this...
    stall_seconds: float = STALL_SECONDS  # ...in this many seconds
    max_bytes: int = MAX_BYTES  # the most a download of unknown size may write

    def watch(self, limit: int) -> Watch:
        """A fresh :class:`Watch` for one source whose file may have ``limit`` bytes."""
        return Watch(deadline=self.deadline, stall_bytes=self.stall_bytes,
                     stall_seconds=self.stall_seconds, limit=limit)


def net_options(timeout: Union[float, Tuple[float, float]], deadline: float, stall_bytes: int,
                stall_seconds: float, max_bytes: int, **kwargs: Any) -> NetOptions:
    """Checked :class:`NetOptions` (a :class:`~mindtf.errors.ConfigError` names a bad value)."""
    fix = "(see python -m mindtf fetch --help)"
    check_range("deadline", deadline, 0, fix=f"Seconds per source; 0: no deadline {fix}.")
    check_range("stall_bytes", stall_bytes, 0, integer=True, fix=f"0: no minimum {fix}.")
    check_range("stall_seconds", stall_seconds, 0, lo_open=True, fix=fix)
    check_range("max_bytes", max_bytes, 0, lo_open=True, integer=True, fix=fix)
    timeouts = (timeout, timeout) if isinstance(timeout, (int, float)) else tuple(timeout)
    for t in timeouts:
        check_range("timeout", t, 0, lo_open=True, fix=fix)
    return NetOptions(timeout=(float(timeouts[0]), float(timeouts[1])), deadline=float(deadline),
                      stall_bytes=int(stall_bytes), stall_seconds=float(stall_seconds),
                      max_bytes=int(max_bytes), **kwargs)


def say(msg: str, progress: bool = True) -> None:
    """Tell the learner what is happening (stderr, without breaking progress bars)."""
    if progress:
        write(f"mindtf: {msg}", file=sys.stderr)


def part_path(dest: Path) -> Path:
    """Where the download of ``dest`` grows until it is complete: ``<dest>.part``."""
    return dest.with_name(dest.name + ".part")


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


def check_url(url: str, what: str = "URL") -> str:
    """``url`` if it is a well-formed http(s) URL; else a PermanentError saying what is wrong
    (a bad IPv6 literal, a port above 65535, a host name too long for DNS...)."""
    shown = url if len(url) <= 80 else url[:77] + "..."
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError("not an http:// or https:// URL")
        parts.port  # noqa: B018 - raises ValueError for a port out of range
        host = parts.hostname or ""
        if not host:
            raise ValueError("no host name")
        if len(host) > 253 or any(len(label) > 63 for label in host.split(".")):
            raise ValueError("host name too long")
        host.encode("idna")
    except (ValueError, UnicodeError) as exc:
        raise PermanentError(f"malformed {what} {shown!r}: {reason(exc)}") from None
    return url


def _conn_class(base: type) -> type:
    class Conn(base):  # type: ignore[misc,valid-type]
        """Connects within the connect timeout, then reads within the read timeout, both cut
        to what the source's Watch allows; the Watch gets the socket to re-arm each read."""

        def __init__(self, *args: Any, timeouts: Tuple[float, float], watch: Watch,
                     **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._timeouts = timeouts
            self._watch = watch

        def connect(self) -> None:
            self.timeout = self._watch.timeout(self._timeouts[0])
            super().connect()
            self._watch.sock = self.sock
            self._watch.arm(self._timeouts[1])

    return Conn


_HTTPConn = _conn_class(http.client.HTTPConnection)
_HTTPSConn = _conn_class(http.client.HTTPSConnection)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, timeouts: Tuple[float, float], watch: Watch) -> None:
        super().__init__()
        self._conn = functools.partial(_HTTPConn, timeouts=timeouts, watch=watch)

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._conn, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, timeouts: Tuple[float, float], watch: Watch,
                 context: Optional[ssl.SSLContext]) -> None:
        super().__init__(context=context)
        self._conn = functools.partial(_HTTPSConn, timeouts=timeouts, watch=watch)
        self._ctx = context

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._conn, req, context=self._ctx)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a well-formed http(s) URL (else: this source failed)."""

    def http_error_302(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                       headers: Any) -> Any:
        location = headers.get("location") or headers.get("uri")
        if location:
            try:
                check_url(urllib.parse.urljoin(req.full_url, location), "redirect to")
            except ValueError as exc:  # urljoin: e.g. "Invalid IPv6 URL"
                fp.close()
                raise PermanentError(f"malformed redirect to {location[:80]!r}: "
                                     f"{reason(exc)}") from None
            except PermanentError:
                fp.close()
                raise
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _classify(exc: BaseException, watch: Watch, opts: NetOptions) -> Exception:
    """Turn any error of opening a URL into TransientError / PermanentError (LimitError) with a
    readable message: HTTP errors, TLS, timeouts, DNS, refusals -- and, for anything else
    (a malformed answer), a PermanentError naming the exception."""
    if isinstance(exc, (TransientError, PermanentError)):
        return exc
    if isinstance(exc, urllib.error.HTTPError):
        msg = f"HTTP {exc.code} {exc.reason}"
        return (TransientError(msg) if exc.code >= 500 or exc.code in _RETRY_CODES
                else PermanentError(msg))
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(f"SSL certificate problem: {exc.verify_message or exc} (trying "
                              "the next source; --insecure skips certificate checks, sha256 is "
                              "still checked)")
    if isinstance(exc, ssl.SSLError):
        return PermanentError(f"SSL error: {exc} (trying the next source)")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return watch.timed_out(opts.timeout)
    if isinstance(exc, socket.gaierror):
        return PermanentError(f"cannot resolve the host name ({exc}); no network or DNS?")
    if isinstance(exc, urllib.error.URLError):
        return TransientError(f"cannot connect: {exc.reason}")
    if isinstance(exc, OSError):
        return TransientError(f"cannot connect: {exc.strerror or exc}")
    if isinstance(exc, http.client.HTTPException):
        return TransientError(f"no valid answer ({reason(exc)})")
    return PermanentError(f"unusable answer ({reason(exc)})")


def _open(url: str, offset: int, watch: Watch, opts: NetOptions) -> Any:
    """The response to a GET of ``url`` (from byte ``offset``), through checked redirects."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    opener = urllib.request.build_opener(_HTTPHandler(opts.timeout, watch),
                                         _HTTPSHandler(opts.timeout, watch, opts.ssl_context),
                                         _RedirectHandler())
    watch.sock = None
    return opener.open(urllib.request.Request(url, headers=headers), timeout=opts.timeout[0])


def _download_once(url: str, part: Path, expected_size: Optional[int], watch: Watch,
                   opts: NetOptions, desc: str) -> None:
    offset = part.stat().st_size if part.exists() else 0
    if offset > watch.limit or (expected_size is not None and offset > expected_size):
        part.unlink()
        offset = 0
    if offset and offset == expected_size:
        return
    watch.begin()
    try:
        resp = _open(url, offset, watch, opts)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:  # our range starts at the end: maybe already complete
            if expected_size is None:
                return
            part.unlink()
            raise TransientError("HTTP 416 for the resumed range; restarting from zero") from None
        raise _classify(exc, watch, opts) from None
    except Exception as exc:  # noqa: BLE001 - every failure is this source's failure
        raise _classify(exc, watch, opts) from None
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
                raise TransientError(f"server resumed at the wrong place ({content_range!r})")
        elif offset:
            say(f"{url} ignored the Range request; downloading from the start", opts.progress)
        length_header = resp.headers.get("Content-Length", "").strip()
        length = int(length_header) if length_header.isdigit() else None
        if length is not None:
            watch.expect(start + length)
        total = start + length if length is not None else expected_size
        received = 0
        with open(part, "ab" if start else "wb") as fh, show_progress(
                total=total, initial=start, desc=desc, unit="B", disable=not opts.progress,
                leave=False, file=sys.stderr) as bar:  # a bar on a terminal, else a few lines
            try:
                while True:
                    watch.arm(opts.timeout[1])
                    chunk = resp.read1(_CHUNK)  # what has arrived: a trickle cannot block it
                    if not chunk:
                        break
                    fh.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    watch.add(len(chunk), start + received)
            except (TransientError, PermanentError):
                raise
            except (socket.timeout, TimeoutError):
                raise watch.timed_out(opts.timeout) from None
            except (OSError, http.client.HTTPException) as exc:
                raise TransientError(f"connection broke after {start + received} bytes "
                                     f"({reason(exc)})") from None
            except Exception as exc:  # noqa: BLE001 - a malformed body
                raise PermanentError(f"unusable answer after {start + received} bytes "
                                     f"({reason(exc)})") from None
    if length is not None and received < length:
        raise TransientError(f"truncated: the server sent {received} of {length} bytes")


def download_url(url: str, dest: Path, *, expected_size: Optional[int] = None,
                 limit: Optional[int] = None, opts: Optional[NetOptions] = None,
                 desc: str = "") -> Path:
    """Download ``url`` to ``dest`` (through ``dest.part``, resumed when present), retrying
    transient failures with exponential backoff, within the limits of ``opts`` and at most
    ``limit`` bytes (default: ``expected_size`` plus a margin, else ``opts.max_bytes``).

    Raises ``PermanentError`` when it gives up: ``LimitError`` for a broken limit (after too many
    bytes ``dest.part`` is deleted; after a deadline or a stall it is kept for a resume).
    """
    opts = opts or NetOptions()
    part = part_path(dest)
    watch = opts.watch(limit if limit is not None else size_limit(expected_size, opts.max_bytes))
    check_url(url)
    try:
        if opts.downloader == "download" and not opts.custom_tls:
            bar = opts.progress and progress_mode(sys.stderr) == "bar"  # it draws with '\r'
            failed = download_with_package(url, dest, watch, timeout=opts.timeout[0], bar=bar)
            if failed is None:
                return dest
            say(f"{url}: {failed}; using urllib", opts.progress)
        last: Optional[Exception] = None
        for attempt in range(opts.retries + 1):
            if attempt:
                delay = opts.backoff * 2 ** (attempt - 1)
                if delay >= watch.left():
                    raise LimitError(f"{last}; no time left for retry {attempt} before the "
                                     f"deadline of {opts.deadline:g} s per source (--deadline)")
                say(f"{url}: {last}; retry {attempt}/{opts.retries} in {delay:g}s", opts.progress)
                time.sleep(delay)
            try:
                _download_once(url, part, expected_size, watch, opts, desc or dest.name)
                os.replace(part, dest)
                return dest
            except TransientError as exc:
                last = exc
    except TooBigError:
        part.unlink(missing_ok=True)
        raise
    tries = "1 try" if opts.retries == 0 else f"{opts.retries + 1} tries"
    raise PermanentError(f"{last} (gave up after {tries})")
