"""The download layer of :mod:`mindtf.data.fetch`: one URL to one file, over HTTP(S).

:func:`download_url` writes through ``<dest>.part``, resumes it with an HTTP Range request,
retries transient failures (timeouts, resets, truncated bodies, 5xx) with exponential backoff and
raises ``PermanentError`` when a source is hopeless (404, certificate problem, retries spent).

The transport is :mod:`urllib` (standard library) with an explicit SSL context
(:func:`make_ssl_context`) and separate connect and read timeouts; the ``download`` package is an
optional path (``NetOptions.downloader == "download"``) that falls back to urllib when it fails.
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
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Tuple

from mindtf.progress import progress as show_progress
from mindtf.progress import progress_mode, write

USER_AGENT = "mindtf-fetch/0.1 (+https://www.mindspore.cn)"
_CHUNK = 1 << 16
_RETRY_CODES = {408, 425, 429}


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


class TransientError(Exception):
    """Worth retrying the same URL (timeout, reset, truncated body, 5xx)."""


class PermanentError(Exception):
    """Move on to the next source at once (404, certificate problem, wrong checksum...)."""


class MissingError(PermanentError):
    """The path is not in a local mirror."""


def say(msg: str, progress: bool = True) -> None:
    """Tell the learner what is happening (stderr, without breaking progress bars)."""
    if progress:
        write(f"mindtf: {msg}", file=sys.stderr)


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
    """Turn a low-level error into TransientError / PermanentError with a readable message."""
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
        return TransientError(f"timed out (connect {opts.timeout[0]:g}s / "
                              f"read {opts.timeout[1]:g}s)")
    if isinstance(exc, socket.gaierror):
        return PermanentError(f"cannot resolve the host name ({exc}); no network or DNS?")
    if isinstance(exc, urllib.error.URLError):
        return TransientError(f"cannot connect: {exc.reason}")
    if isinstance(exc, OSError):
        return TransientError(f"cannot connect: {exc.strerror or exc}")
    return TransientError(f"no valid answer ({type(exc).__name__}: {exc})")


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
            raise TransientError("HTTP 416 for the resumed range; restarting from zero") from None
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
                raise TransientError(f"server resumed at the wrong place ({content_range!r})")
        elif offset:
            say(f"{url} ignored the Range request; downloading from the start", opts.progress)
        length_header = resp.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        total = start + length if length is not None else expected_size
        received = 0
        with open(part, "ab" if start else "wb") as fh, show_progress(
                total=total, initial=start, desc=desc, unit="B", disable=not opts.progress,
                leave=False, file=sys.stderr) as bar:  # a bar on a terminal, else a few lines
            try:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    fh.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise TransientError(f"connection broke after {start + received} bytes "
                                 f"({type(exc).__name__}: {exc})") from None
    if length is not None and received < length:
        raise TransientError(f"truncated: the server sent {received} of {length} bytes")


def _download_with_package(url: str, dest: Path, opts: NetOptions) -> bool:
    """The optional ``download``-package path; False (after saying why) when it fails.

    (That package sets no timeout on its main request, so a stalled server can hang it.)"""
    try:
        import download as download_pkg

        bar = opts.progress and progress_mode(sys.stderr) == "bar"  # it draws with '\r'
        download_pkg.download(url, str(dest), progressbar=bar, replace=True,
                              timeout=opts.timeout[0], verbose=False)
        return dest.exists()
    except Exception as exc:  # noqa: BLE001 - any failure falls back to urllib
        say(f"the 'download' package failed for {url} ({exc}); using urllib", opts.progress)
        return False


def download_url(url: str, dest: Path, *, expected_size: Optional[int] = None,
                 opts: Optional[NetOptions] = None, desc: str = "") -> Path:
    """Download ``url`` to ``dest`` (through ``dest.part``, resumed when present), retrying
    transient failures with exponential backoff. Raises ``PermanentError`` when it gives up."""
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
        except TransientError as exc:
            last = exc
    tries = "1 try" if opts.retries == 0 else f"{opts.retries + 1} tries"
    raise PermanentError(f"{last} (gave up after {tries})")
