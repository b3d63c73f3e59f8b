"""Test helpers: local HTTP/HTTPS servers with injectable faults, and throw-away certificates.

Everything listens on 127.0.0.1 only. A :class:`FaultServer` serves :class:`Route` objects by
path; each route has a ``mode`` that decides how it misbehaves:

* ``ok`` -- the body, honouring ``Range`` (206) like a good server;
* ``norange`` -- the whole body with 200 whatever the ``Range`` header says;
* ``status`` -- an error status (``status=404/500/502``) with a short body;
* ``html`` -- 200 with an HTML login page instead of the data;
* ``truncate`` -- announces the full ``Content-Length`` but sends only half, then closes;
* ``reset`` -- sends half the body, then resets the connection (RST);
* ``slow`` -- waits ``delay`` seconds before the first byte;
* ``trickle`` -- announces the body, then sends it one byte every ``delay`` seconds;
* ``endless`` -- sends ``body`` (or zeros) again and again until the client hangs up, with no
  ``Content-Length`` (or a false one: ``length``);
* ``redirect`` -- answers ``302`` with ``Location: <location>``, however malformed.

``chunk_delay`` slows a good body down (for concurrency tests). Every request is logged in
``server.log`` as a :class:`Hit` (path, headers, status, bytes sent).

Hostile payloads to serve: :func:`zip_bytes`, :func:`patched_zip` (an encrypted member, an
unsupported compression method), :func:`tar_bytes` and :func:`corrupted` (bytes zeroed in the
middle of a compressed stream).
"""
from __future__ import annotations

import datetime
import io
import ipaddress
import shutil
import socket
import ssl
import struct
import subprocess
import tarfile
import threading
import time
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional

HTML_PAGE = (b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
             b"<body><form>Please sign in to continue</form></body></html>")


@dataclass
class Route:
    body: bytes = b""
    mode: str = "ok"
    status: int = 200
    delay: float = 0.0
    chunk_delay: float = 0.0
    location: str = ""
    length: int = -1  # the Content-Length an endless body announces (-1: none)


@dataclass
class Hit:
    path: str
    headers: Dict[str, str]
    status: int = 0
    sent: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _headers(self, status: int, length: int, hit: Hit, extra: Optional[dict] = None,
                 ctype: str = "application/octet-stream") -> None:
        hit.status = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def _send(self, data: bytes, hit: Hit, chunk_delay: float = 0.0) -> None:
        step = 16384
        for i in range(0, len(data), step):
            self.wfile.write(data[i:i + step])
            hit.sent += len(data[i:i + step])
            if chunk_delay:
                self.wfile.flush()
                time.sleep(chunk_delay)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        owner: FaultServer = self.server.owner  # type: ignore[attr-defined]
        path = urllib.parse.urlsplit(self.path).path
        hit = Hit(path, dict(self.headers))
        owner.log.append(hit)
        route = owner.routes.get(path)
        self.close_connection = True
        if route is None:
            self._headers(404, 9, hit)
            self._send(b"not found", hit)
            return
        if route.mode == "slow" and owner.stopping.wait(route.delay):
            return
        if route.mode == "status":
            self._headers(route.status, 5, hit)
            self._send(b"error", hit)
            return
        if route.mode in ("trickle", "endless", "redirect"):
            self._misbehave(route, hit, owner)
            return
        if route.mode == "html":
            self._headers(200, len(HTML_PAGE), hit, ctype="text/html")
            self._send(HTML_PAGE, hit)
            return
        body, start = route.body, 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and route.mode != "norange":
            start = int(rng[6:].split("-")[0])
            if start >= len(body):
                self._headers(416, 0, hit, {"Content-Range": f"bytes */{len(body)}"})
                return
        payload = body[start:]
        extra = {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"} if start else {}
        self._headers(206 if start else 200, len(payload), hit, extra)
        if route.mode == "truncate":
            self._send(payload[:len(payload) // 2], hit)
        elif route.mode == "reset":
            self._send(payload[:len(payload) // 2], hit)
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            self._send(payload, hit, route.chunk_delay)


    def _misbehave(self, route: Route, hit: Hit, owner: FaultServer) -> None:
        if route.mode == "redirect":
            self._headers(302, 0, hit, {"Location": route.location})
            return
        if route.mode == "trickle":
            self._headers(200, len(route.body), hit)
            for i in range(len(route.body)):
                self.wfile.write(route.body[i:i + 1])
                hit.sent += 1
                if owner.stopping.wait(route.delay):
                    return
            return
        hit.status = 200  # endless
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if route.length >= 0:
            self.send_header("Content-Length", str(route.length))
        self.send_header("Connection", "close")
        self.end_headers()
        block = route.body or bytes(16384)
        while not owner.stopping.is_set():  # until the client hangs up (OSError)
            self.wfile.write(block)
            hit.sent += len(block)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: FaultServer, tls: Optional[ssl.SSLContext]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner
        self.tls = tls

    def finish_request(self, request, client_address) -> None:  # type: ignore[override]
        if self.tls is not None:
            request.settimeout(5)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client refused our certificate: nothing to serve
        try:
            self.RequestHandlerClass(request, client_address, self)
        except OSError:  # the client went away (e.g. after its read timeout)
            pass
        finally:
            if self.tls is not None:
                request.close()

    def handle_error(self, request, client_address) -> None:  # keep test output clean
        pass


class FaultServer:
    """A threaded HTTP(S) server on 127.0.0.1 with per-path fault injection."""

    def __init__(self, tls: Optional[ssl.SSLContext] = None) -> None:
        self.routes: Dict[str, Route] = {}
        self.log: List[Hit] = []
        self.stopping = threading.Event()
        self._server = _Server(self, tls)
        self.scheme = "https" if tls is not None else "http"
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes = b"", mode: str = "ok", **kwargs: object) -> str:
        """Serve ``body`` at ``path`` in ``mode``; returns the full URL."""
        self.routes[path] = Route(body, mode, **kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def hits(self, path: str) -> List[Hit]:
        return [h for h in self.log if h.path == path]

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def closed_port_url(path: str = "/x") -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# --------------------------------------------------------------------------- payloads

def zip_bytes(members: Dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def patched_zip(data: bytes, name: str = "blob.bin", *, flags: int = 0,
                method: int = -1) -> bytes:
    """A one-member stored zip whose headers' flag bits are OR-ed with ``flags`` (1: encrypted)
    and whose compression method is set to ``method`` (e.g. 98, PPMd: unsupported)."""
    raw = bytearray(zip_bytes({name: data}, zipfile.ZIP_STORED))
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.find(signature)
        raw[at + flag_at] |= flags
        if method >= 0:
            raw[at + flag_at + 2:at + flag_at + 4] = method.to_bytes(2, "little")
    return bytes(raw)


def tar_bytes(members: Dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def corrupted(data: bytes, length: int = 64) -> bytes:
    """``data`` with ``length`` bytes in the middle zeroed."""
    middle = len(data) // 2
    return data[:middle] + bytes(length) + data[middle + length:]


# --------------------------------------------------------------------------- certificates

@dataclass
class Certs:
    """PEM files: ``ca`` (trust this), ``good`` (127.0.0.1 and localhost, signed by ``ca``),
    ``wrong_host`` (signed by ``ca`` but for ``wrong.example.org``), ``rogue`` (self-signed,
    valid for 127.0.0.1, not trusted). Each server PEM holds the certificate and its key."""

    ca: Path
    good: Path
    wrong_host: Path
    rogue: Path
    tool: str = field(default="")

    def server_context(self, which: str) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(getattr(self, which)))
        return ctx


def _with_cryptography(folder: Path) -> Certs:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def build(subject: str, key, issuer: str, issuer_key, sans, ca: bool) -> x509.Certificate:
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                 issuer_key.public_key()), False))
        if ca:
            b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                              False, False), critical=True)
        else:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        return b.sign(issuer_key, hashes.SHA256())

    def pem(cert: x509.Certificate, key=None) -> bytes:
        out = cert.public_bytes(serialization.Encoding.PEM)
        if key is not None:
            out += key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        return out

    local = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    ca_key, good_key, wrong_key, rogue_key = (ec.generate_private_key(ec.SECP256R1())
                                              for _ in range(4))
    files = {
        "ca": pem(build("mindtf test CA", ca_key, "mindtf test CA", ca_key, None, True)),
        "good": pem(build("127.0.0.1", good_key, "mindtf test CA", ca_key, local, False),
                    good_key),
        "wrong_host": pem(build("wrong.example.org", wrong_key, "mindtf test CA", ca_key,
                                [x509.DNSName("wrong.example.org")], False), wrong_key),
        "rogue": pem(build("127.0.0.1", rogue_key, "127.0.0.1", rogue_key, local, False),
                     rogue_key),
    }
    for k, v in files.items():
        (folder / f"{k}.pem").write_bytes(v)
    return Certs(*(folder / f"{k}.pem" for k in files), tool="cryptography")


def _with_openssl(folder: Path) -> Certs:
    def sh(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sh("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
       "-subj", "/CN=mindtf test CA", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for leaf, cn, san in [("good", "127.0.0.1", "IP:127.0.0.1,DNS:localhost"),
                          ("wrong_host", "wrong.example.org", "DNS:wrong.example.org")]:
        (folder / f"{leaf}.ext").write_text(
            f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        sh("req", "-new", *ec, "-keyout", f"{leaf}.key", "-out", f"{leaf}.csr",
           "-subj", f"/CN={cn}")
        sh("x509", "-req", "-in", f"{leaf}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
           "-CAcreateserial", "-out", f"{leaf}.crt", "-days", "2", "-extfile", f"{leaf}.ext")
    sh("req", "-x509", *ec, "-keyout", "rogue.key", "-out", "rogue.crt", "-days", "2",
       "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
    for leaf in ("good", "wrong_host", "rogue"):
        (folder / f"{leaf}.pem").write_bytes((folder / f"{leaf}.crt").read_bytes()
                                             + (folder / f"{leaf}.key").read_bytes())
    return Certs(folder / "ca.pem", folder / "good.pem", folder / "wrong_host.pem",
                 folder / "rogue.pem", tool="openssl")


def make_certs(folder: Path, prefer: str = "cryptography") -> Optional[Certs]:
    """Generate the test certificates with ``cryptography`` (or the ``openssl`` command);
    ``None`` when neither is available."""
    folder.mkdir(parents=True, exist_ok=True)
    if prefer == "cryptography":
        try:
            return _with_cryptography(folder)
        except ImportError:
            pass
    if shutil.which("openssl"):
        return _with_openssl(folder)
    return None
