"""mindtf.data.fetch against local HTTP/HTTPS servers with injected faults (127.0.0.1 only)."""
from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from mindtf.data import InsecureDownloadWarning, fetch, list_datasets, load_registry
from mindtf.errors import DataError, MindtfError

try:
    from _servers import (HTML_PAGE, FaultServer, closed_port_url, corrupted, make_certs,
                          patched_zip, tar_bytes, zip_bytes)
except ImportError:  # tests/ imported as a package
    from tests._servers import (HTML_PAGE, FaultServer, closed_port_url, corrupted, make_certs,
                                patched_zip, tar_bytes, zip_bytes)

fetch_module = importlib.import_module("mindtf.data.fetch")
BODY = random.Random(0).randbytes(200_000)
FAST = dict(progress=False, retries=1, backoff=0.001, timeout=(5.0, 1.0))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def toy_registry(*sources, body: bytes = BODY, name: str = "blob.bin", **file_extra) -> dict:
    """A one-file dataset 'toy'; a source is a URL (plain file) or a dict."""
    srcs = [s if isinstance(s, dict) else {"url": s} for s in sources]
    entry = {"name": name, "size": len(body), "sha256": sha(body), "sources": srcs, **file_extra}
    return {"datasets": {"toy": {"description": "toy", "files": [entry]}}}


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.glob(".*.tmp"))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No mirror, data folder, downloader or proxy settings leak in from the environment."""
    for var in ("MINDTF_DATA_MIRROR", "MINDTF_DATA_DIR", "MINDTF_DOWNLOADER", "http_proxy",
                "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def server():
    with FaultServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    made = make_certs(tmp_path_factory.mktemp("certs"))
    if made is None:
        pytest.skip("neither the 'cryptography' package nor the openssl command is available")
    return made


# --------------------------------------------------------------------------- registry

def test_packaged_registry_is_complete():
    datasets = load_registry()
    assert set(list_datasets()) >= {"multi30k", "tinyshakespeare", "sst2"}
    m30k = datasets["multi30k"]
    assert [f.name for f in m30k.files] == ["train.de", "train.en", "val.de", "val.en",
                                            "test2016.de", "test2016.en"]
    for f in m30k.files:
        formats = [s.format for s in f.sources]
        assert "gzip" in formats and "tar" in formats and f.normalize == "text"
        assert any(s.md5 for s in f.sources if s.format == "tar")
        assert any("quest.dcs.shef.ac.uk" in (s.url or "") for s in f.sources)
        assert any("github" in (s.url or "") and s.sha256 for s in f.sources)
    sst2 = datasets["sst2"]
    assert [f.name for f in sst2.files] == ["train.tsv", "dev.tsv", "test.tsv"]
    assert sst2.files[0].sources[0].url == "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
    assert datasets["tinyshakespeare"].files[0].sources[0].url.endswith(
        "karpathy/char-rnn/master/data/tinyshakespeare/input.txt")


def test_unknown_dataset_lists_known_ones(tmp_path):
    with pytest.raises(DataError, match="known: .*multi30k"):
        fetch("nope", data_dir=tmp_path, offline=True)


# --------------------------------------------------------------------------- faults

FAULTS = {
    "404": (dict(mode="status", status=404), "HTTP 404", 1),
    "500": (dict(mode="status", status=500), "HTTP 500", 2),
    "502": (dict(mode="status", status=502), "HTTP 502", 2),
    "reset": (dict(mode="reset"), "connection broke|truncated", 2),
    "truncated": (dict(mode="truncate"), "truncated", 2),
    "html-page": (dict(mode="html"), "HTML page", 1),
    "slow-first-byte": (dict(mode="slow", delay=3.0), "timed out", 2),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_then_good_source(server, tmp_path, fault):
    kwargs, cause, requests = FAULTS[fault]
    bad = server.add("/bad/blob.bin", BODY, **kwargs)
    good = server.add("/good/blob.bin", BODY)
    result = fetch("toy", registry=toy_registry(bad, good), data_dir=tmp_path, **FAST)
    path = tmp_path / "toy" / "blob.bin"
    assert result.path("blob.bin") == path and path.read_bytes() == BODY
    assert result.sources == {"blob.bin": good}
    [attempt] = result.attempts
    assert attempt.source == bad and attempt.file == "blob.bin"
    assert re.search(cause, attempt.error), attempt.error
    assert len(server.hits("/bad/blob.bin")) == requests  # transient faults are retried once
    assert not leftovers(path.parent)


def test_connection_refused_then_good(server, tmp_path):
    refused = closed_port_url("/blob.bin")
    good = server.add("/good/blob.bin", BODY)
    result = fetch("toy", registry=toy_registry(refused, good), data_dir=tmp_path, **FAST)
    assert result.sources["blob.bin"] == good
    assert "cannot connect" in result.attempts[0].error


def test_every_source_failing_gives_one_error_listing_all(server, tmp_path):
    urls = [server.add("/a", mode="status", status=404), server.add("/b", mode="status",
                                                                    status=502),
            server.add("/c", mode="html"), closed_port_url("/d")]
    mirror = tmp_path / "empty-mirror"
    mirror.mkdir()
    with pytest.raises(DataError) as info:
        fetch("toy", registry=toy_registry(*urls), data_dir=tmp_path / "d", mirror=str(mirror),
              **FAST)
    msg = str(info.value)
    for url, cause in zip(urls, ["HTTP 404", "HTTP 502", "HTML page", "cannot connect"]):
        [line] = [ln for ln in msg.splitlines() if ln.strip().startswith(f"- {url}: ")]
        assert cause in line, line
    assert "not in the local mirror(s): " + str(mirror / "toy" / "blob.bin") in msg
    assert str(tmp_path / "d" / "toy" / "blob.bin") in msg and sha(BODY) in msg
    assert "MINDTF_DATA_MIRROR=" in msg and "--mirror" in msg
    assert not (tmp_path / "d" / "toy" / "blob.bin").exists()


# --------------------------------------------------------------------------- resume

def test_partial_download_resumes_with_range(server, tmp_path):
    url = server.add("/blob.bin", BODY, mode="truncate")
    reg = toy_registry(url)
    with pytest.raises(DataError, match="truncated"):
        fetch("toy", registry=reg, data_dir=tmp_path, **{**FAST, "retries": 0})
    assert not (tmp_path / "toy" / "blob.bin").exists()  # nothing under the final name
    [part] = (tmp_path / "toy" / ".partial").glob("*.part")
    assert part.stat().st_size == len(BODY) // 2
    server.routes["/blob.bin"].mode = "ok"
    result = fetch("toy", registry=reg, data_dir=tmp_path, **FAST)
    hit = server.hits("/blob.bin")[-1]
    assert hit.headers.get("Range") == f"bytes={len(BODY) // 2}-"
    assert hit.status == 206 and hit.sent == len(BODY) - len(BODY) // 2
    assert result.path("blob.bin").read_bytes() == BODY
    assert not (tmp_path / "toy" / ".partial").exists()  # cleaned after success


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    url = server.add("/blob.bin", BODY, mode="truncate")
    reg = toy_registry(url)
    with pytest.raises(DataError):
        fetch("toy", registry=reg, data_dir=tmp_path, **{**FAST, "retries": 0})
    server.routes["/blob.bin"].mode = "norange"
    result = fetch("toy", registry=reg, data_dir=tmp_path, **FAST)
    hit = server.hits("/blob.bin")[-1]
    assert hit.headers.get("Range") and hit.status == 200 and hit.sent == len(BODY)
    assert sha(result.path("blob.bin").read_bytes()) == sha(BODY)


def test_truncated_body_is_resumed_by_the_retry(server, tmp_path):
    url = server.add("/blob.bin", BODY, mode="truncate")
    with pytest.raises(DataError):  # every try sends half of what is left
        fetch("toy", registry=toy_registry(url), data_dir=tmp_path, **{**FAST, "retries": 2})
    ranges = [h.headers.get("Range") for h in server.hits("/blob.bin")]
    half, quarter = len(BODY) // 2, (len(BODY) - len(BODY) // 2) // 2
    assert ranges == [None, f"bytes={half}-", f"bytes={half + quarter}-"]


def test_interrupted_fetch_leaves_nothing_under_the_final_name(server, tmp_path, monkeypatch):
    url = server.add("/blob.bin", BODY)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(fetch_module, "check_file", interrupt)
        with pytest.raises(KeyboardInterrupt):
            fetch("toy", registry=toy_registry(url), data_dir=tmp_path, **FAST)
    folder = tmp_path / "toy"
    assert not (folder / "blob.bin").exists() and not leftovers(folder)
    assert fetch("toy", registry=toy_registry(url), data_dir=tmp_path, **FAST).path(
        "blob.bin").read_bytes() == BODY


# --------------------------------------------------------------------------- TLS

def test_https_with_trusted_ca(certs, tmp_path):
    with FaultServer(certs.server_context("good")) as srv:
        url = srv.add("/blob.bin", BODY)
        result = fetch("toy", registry=toy_registry(url), data_dir=tmp_path,
                       cafile=str(certs.ca), **FAST)
    assert result.sources["blob.bin"] == url and url.startswith("https://127.0.0.1:")


@pytest.mark.parametrize("which, cause", [("wrong_host", "(mismatch|not valid for)"),
                                          ("rogue", "(self.signed|unable to get local issuer)")])
def test_certificate_problem_moves_to_next_source(certs, tmp_path, which, cause, capsys):
    with FaultServer(certs.server_context(which)) as bad_srv, \
            FaultServer(certs.server_context("good")) as good_srv:
        bad = bad_srv.add("/blob.bin", BODY)
        good = good_srv.add("/blob.bin", BODY)
        result = fetch("toy", registry=toy_registry(bad, good), data_dir=tmp_path,
                       cafile=str(certs.ca), **{**FAST, "progress": True})
        assert not bad_srv.log  # the handshake failed: no request was ever sent
    assert result.sources["blob.bin"] == good
    error = result.attempts[0].error
    assert error.startswith("SSL certificate problem") and "next source" in error
    assert re.search(cause, error, flags=2), error
    assert "SSL certificate problem" in capsys.readouterr().err  # and it says so


def test_insecure_is_an_explicit_loud_opt_in(certs, tmp_path, capsys):
    with FaultServer(certs.server_context("wrong_host")) as srv:
        url = srv.add("/blob.bin", BODY)
        with pytest.raises(DataError, match="SSL certificate problem"):
            fetch("toy", registry=toy_registry(url), data_dir=tmp_path, cafile=str(certs.ca),
                  **FAST)
        with pytest.warns(InsecureDownloadWarning):
            result = fetch("toy", registry=toy_registry(url), data_dir=tmp_path, insecure=True,
                           **FAST)
    assert result.sources["blob.bin"] == url
    assert "WARNING: TLS certificate checks are OFF" in capsys.readouterr().err


# --------------------------------------------------------------------------- mirrors, offline

def test_url_mirror_is_tried_before_the_registry(server, tmp_path):
    official = server.add("/official/blob.bin", BODY)
    server.add("/mirror/toy/blob.bin", BODY)
    result = fetch("toy", registry=toy_registry(official), data_dir=tmp_path,
                   mirror=server.url("/mirror"), **FAST)
    assert result.sources["blob.bin"] == server.url("/mirror/toy/blob.bin")
    assert not server.hits("/official/blob.bin")


def test_mirror_serving_a_login_page_is_rejected(server, tmp_path, monkeypatch):
    official = server.add("/official/blob.bin", BODY)
    server.add("/mirror/toy/blob.bin", mode="html")
    monkeypatch.setenv("MINDTF_DATA_MIRROR", server.url("/mirror/"))
    result = fetch("toy", registry=toy_registry(official), data_dir=tmp_path, **FAST)
    assert result.sources["blob.bin"] == official
    bad = [a for a in result.attempts if not a.missing]
    assert bad[0].source == server.url("/mirror/toy/blob.bin") and "HTML page" in bad[0].error


def test_env_mirrors_in_order_and_offline_never_touches_the_network(server, tmp_path,
                                                                    monkeypatch):
    empty, full = tmp_path / "m1", tmp_path / "m2"
    empty.mkdir()
    (full / "toy").mkdir(parents=True)
    (full / "toy" / "blob.bin").write_bytes(BODY)
    url = server.add("/blob.bin", BODY)
    monkeypatch.setenv("MINDTF_DATA_MIRROR", f"{server.url('/m/')},{empty},{full}")
    result = fetch("toy", registry=toy_registry(url), data_dir=tmp_path / "d", offline=True,
                   **FAST)
    assert result.sources["blob.bin"] == str(full / "toy" / "blob.bin")
    monkeypatch.delenv("MINDTF_DATA_MIRROR")
    with pytest.raises(DataError, match="offline"):
        fetch("toy", registry=toy_registry(url), data_dir=tmp_path / "e", offline=True, **FAST)
    assert not server.log


def test_original_download_placed_by_hand_is_used(tmp_path):
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "blob.bin.gz").write_bytes(gzip.compress(BODY))
    reg = toy_registry({"url": "https://example.invalid/blob.bin.gz", "format": "gzip"})
    result = fetch("toy", registry=reg, data_dir=tmp_path, offline=True, progress=False)
    assert result.files["blob.bin"].method == "decompressed"
    assert result.path("blob.bin").read_bytes() == BODY


# --------------------------------------------------------------------------- formats

def test_archives_and_gzip_sources(server, tmp_path):
    de, en = b"Ein Hund.\r\nZwei Katzen.\r\n\r\n", b"A dog.\nTwo cats.\n"
    tar = tar_bytes({"data/train.de": de, "data/train.en": en})
    url = server.add("/training.tar.gz", tar)
    src = {"url": url, "format": "tar", "md5": hashlib.md5(tar).hexdigest()}
    norm_de = b"Ein Hund.\nZwei Katzen.\n"
    reg = {"datasets": {"pairs": {"files": [
        {"name": "train.de", "size": len(norm_de), "sha256": sha(norm_de), "normalize": "text",
         "sources": [{**src, "members": ["train.de"]}]},
        {"name": "train.en", "size": len(en), "sha256": sha(en), "normalize": "text",
         "sources": [{**src, "members": ["train.en"]}]}]}}}
    result = fetch("pairs", registry=reg, data_dir=tmp_path, **FAST)
    assert result.path("train.de").read_bytes() == norm_de  # CRLF and blank tail normalised
    assert result.files["train.en"].method == "extracted from tar"
    assert len(server.hits("/training.tar.gz")) == 1  # one download serves both files

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("SST-2/dev.tsv", BODY)
    zip_url = server.add("/SST-2.zip", buf.getvalue())
    gz_url = server.add("/blob.bin.gz", gzip.compress(BODY))
    sources = {"zip": {"url": zip_url, "format": "zip", "members": ["SST-2/dev.tsv"]},
               "gzip": {"url": gz_url, "format": "gzip", "sha256": sha(gzip.compress(BODY))}}
    for kind, source in sources.items():
        out = fetch("toy", registry=toy_registry(source), data_dir=tmp_path / kind, **FAST)
        assert out.path("blob.bin").read_bytes() == BODY
        assert out.files["blob.bin"].method == ("decompressed" if kind == "gzip"
                                                else "extracted from zip")


def test_archive_with_wrong_md5_is_rejected(server, tmp_path):
    tar = tar_bytes({"blob.bin": BODY})
    bad = server.add("/bad.tar.gz", tar)
    good = server.add("/blob.bin", BODY)
    reg = toy_registry({"url": bad, "format": "tar", "members": ["blob.bin"], "md5": "0" * 32},
                       good)
    result = fetch("toy", registry=reg, data_dir=tmp_path, **FAST)
    assert "md5 mismatch" in result.attempts[0].error and result.sources["blob.bin"] == good


# --------------------------------------------------------------------------- cache

def test_verified_files_are_not_fetched_again(server, tmp_path, monkeypatch):
    url = server.add("/blob.bin", BODY)
    reg = toy_registry(url)
    fetch("toy", registry=reg, data_dir=tmp_path, **FAST)
    calls = []
    real = fetch_module.file_digest
    monkeypatch.setattr(fetch_module, "file_digest", lambda *a: calls.append(a) or real(*a))
    with monkeypatch.context() as patch:  # vouched-for files: no hashing, no lock, no writes
        for name in ("locked", "write_marker"):
            patch.setattr(fetch_module, name, pytest.fail)
        again = fetch("toy", registry=reg, data_dir=tmp_path, **FAST)
    assert again.sources == {"blob.bin": "cache"} and not calls
    assert len(server.hits("/blob.bin")) == 1
    fetch("toy", registry=reg, data_dir=tmp_path, recheck=True, **FAST)
    assert calls  # recheck hashes

    path = tmp_path / "toy" / "blob.bin"
    path.write_bytes(BODY[:1000])  # truncated
    result = fetch("toy", registry=reg, data_dir=tmp_path, **FAST)
    assert result.sources["blob.bin"] == url and "incomplete" in result.attempts[0].error
    data = bytearray(BODY)
    data[5] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, corrupt
    os.utime(path, ns=(1, 1))
    result = fetch("toy", registry=reg, data_dir=tmp_path, **FAST)
    assert "sha256" in result.attempts[0].error and path.read_bytes() == BODY
    assert len(server.hits("/blob.bin")) == 3


# --------------------------------------------------------------------------- concurrency

def test_two_threads_fetching_the_same_file(server, tmp_path):
    url = server.add("/blob.bin", BODY, chunk_delay=0.02)
    reg = toy_registry(url)
    results, errors = [], []

    def work():
        try:
            results.append(fetch("toy", registry=reg, data_dir=tmp_path, **FAST))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 2
    assert sorted(r.sources["blob.bin"] for r in results) == ["cache", url]
    assert len(server.hits("/blob.bin")) == 1
    assert (tmp_path / "toy" / "blob.bin").read_bytes() == BODY
    assert not leftovers(tmp_path / "toy")


def test_two_processes_fetching_the_same_file(server, tmp_path):
    url = server.add("/blob.bin", BODY, chunk_delay=0.03)
    reg_file = tmp_path / "registry.json"
    reg_file.write_text(json.dumps(toy_registry(url)))
    code = ("import sys; from mindtf.data import fetch; "
            "r = fetch('toy', registry=sys.argv[1], data_dir=sys.argv[2], progress=False); "
            "print(r.sources['blob.bin'])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(reg_file), str(tmp_path / "d")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(o.strip() for o, _ in outs) == ["cache", url]
    assert len(server.hits("/blob.bin")) == 1
    assert (tmp_path / "d" / "toy" / "blob.bin").read_bytes() == BODY


# --------------------------------------------------------------------------- download package

def test_optional_download_package_path_and_its_fallback(server, tmp_path, monkeypatch):
    pytest.importorskip("download")
    url = server.add("/blob.bin", BODY)
    result = fetch("toy", registry=toy_registry(url), data_dir=tmp_path / "a",
                   downloader="download", **FAST)
    assert result.path("blob.bin").read_bytes() == BODY
    monkeypatch.setitem(sys.modules, "download", None)  # a broken 'download' never blocks
    monkeypatch.setenv("MINDTF_DOWNLOADER", "download")
    result = fetch("toy", registry=toy_registry(url), data_dir=tmp_path / "b", **FAST)
    assert result.path("blob.bin").read_bytes() == BODY


# --------------------------------------------------------------------------- CLI

def test_cli_list_and_one_line_error(tmp_path, capsys):
    from mindtf.cli.main import main

    assert main(["fetch", "--list"]) == 0
    out = capsys.readouterr().out
    assert "multi30k" in out and "sst2" in out and "tinyshakespeare" in out
    empty = tmp_path / "mirror"
    empty.mkdir()
    rc = main(["fetch", "tinyshakespeare", "--offline", "--no-progress", "--data-dir",
               str(tmp_path / "d"), "--mirror", str(empty)])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error: could not fetch dataset 'tinyshakespeare'")
    assert str(tmp_path / "d" / "tinyshakespeare" / "input.txt") in err
    assert "not in the local mirror(s): " + str(empty / "tinyshakespeare" / "input.txt") in err
    assert "raw.githubusercontent.com/karpathy/char-rnn" in err


# --------------------------------------------------------------------------- hostile servers
# Each of the seven faults of issue 8: (a) a good source after the hostile one gives the right
# bytes; (b) the hostile source alone: exit code 1 from `python -m mindtf fetch`, a clear error
# (one line per source, no traceback) and nothing under the final name.

PORTAL = (HTML_PAGE * (len(BODY) // len(HTML_PAGE) + 1))[:len(BODY)]
BAD_BODY = BODY[:5] + bytes([BODY[5] ^ 0xFF]) + BODY[6:]
LOCATIONS = {"bad IPv6": "http://[::1/evil", "port > 65535": "http://127.0.0.1:70000/x",
             "300-char host": "http://" + "a" * 300 + ".example/x"}
LOCATION_CAUSES = {"bad IPv6": "Invalid IPv6 URL", "port > 65535": "Port out of range",
                   "300-char host": "host name too long"}


def run_cli(tmp_path, capsys, registry: dict, *flags: str):
    """``python -m mindtf fetch toy`` (in-process) with ``registry``: (exit code, stderr)."""
    from mindtf.cli.main import main

    reg_file = tmp_path / "registry.json"
    reg_file.write_text(json.dumps(registry))
    capsys.readouterr()
    rc = main(["fetch", "toy", "--registry", str(reg_file), "--data-dir", str(tmp_path / "d"),
               "--no-progress", "--retries", "0", "--timeout", "5", *flags])
    return rc, capsys.readouterr().err


def assert_failed_cleanly(rc, err, folder: Path, source: str, cause: str,
                          file: str = "blob.bin") -> None:
    assert rc == 1 and err.startswith("error: could not fetch dataset 'toy'"), err
    assert "Traceback" not in err
    [line] = [ln for ln in err.splitlines() if ln.strip().startswith(f"- {source}: ")]
    assert re.search(cause, line), line
    assert not (folder / file).exists() and not leftovers(folder)


def corrupt_tar_xz() -> bytes:
    return corrupted(tar_bytes({"blob.bin": BODY}, "w:xz"))


# 1. a trickling or stalled server -----------------------------------------------------------

def test_trickling_source_is_given_up_at_the_deadline_then_the_next(server, tmp_path):
    bad = server.add("/trickle/blob.bin", BODY, mode="trickle", delay=0.2)
    good = server.add("/good/blob.bin", BODY)
    started = time.monotonic()
    result = fetch("toy", registry=toy_registry(bad, good), data_dir=tmp_path,
                   **{**FAST, "deadline": 2.0})
    assert time.monotonic() - started < 2.0 + 5.0
    assert result.path("blob.bin").read_bytes() == BODY and result.sources["blob.bin"] == good
    assert "deadline of 2.0 s" in result.attempts[0].error


def test_trickling_source_alone_fails_within_the_deadline(server, tmp_path, capsys):
    bad = server.add("/blob.bin", BODY, mode="trickle", delay=0.2)
    started = time.monotonic()
    rc, err = run_cli(tmp_path, capsys, toy_registry(bad), "--deadline", "2")
    elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 5.0, elapsed  # a generous slack: the test machine may be loaded
    assert_failed_cleanly(rc, err, tmp_path / "d" / "toy", bad, r"deadline of 2\.0 s")


@pytest.mark.parametrize("mode", ["trickle", "silent"])
def test_too_little_progress_abandons_the_source(server, tmp_path, mode):
    kwargs = dict(mode="trickle", delay=0.1) if mode == "trickle" else dict(mode="slow", delay=9)
    bad = server.add("/bad/blob.bin", BODY, **kwargs)
    good = server.add("/good/blob.bin", BODY)
    started = time.monotonic()
    result = fetch("toy", registry=toy_registry(bad, good), data_dir=tmp_path,
                   **{**FAST, "timeout": (5.0, 5.0), "stall_bytes": 1000, "stall_seconds": 1.0})
    assert time.monotonic() - started < 1.0 + 5.0
    assert result.path("blob.bin").read_bytes() == BODY
    error = result.attempts[0].error
    assert re.search(r"too slow: \d+ bytes in 1\.\d s, fewer than the 1000", error), error
    assert len(server.hits("/bad/blob.bin")) == 1  # abandoned, not retried


def test_download_package_is_watched_too(server, tmp_path):
    pytest.importorskip("download")
    bad = server.add("/trickle/blob.bin", BODY, mode="trickle", delay=0.2)
    good = server.add("/good/blob.bin", BODY)
    started = time.monotonic()
    result = fetch("toy", registry=toy_registry(bad, good), data_dir=tmp_path,
                   downloader="download", **{**FAST, "deadline": 1.5})
    assert time.monotonic() - started < 1.5 + 6.0
    assert result.path("blob.bin").read_bytes() == BODY
    assert "deadline of 1.5 s" in result.attempts[0].error
    assert not list((tmp_path / "toy").rglob("*.pkg*"))


# 2. a body that never ends -----------------------------------------------------------------

def test_endless_body_is_cut_at_the_size_limit_then_the_next(server, tmp_path):
    bad = server.add("/endless/blob.bin", mode="endless")
    good = server.add("/good/blob.bin", BODY)
    result = fetch("toy", registry=toy_registry(bad, good), data_dir=tmp_path, **FAST)
    assert result.path("blob.bin").read_bytes() == BODY
    limit = len(BODY) + len(BODY) // 10 + (1 << 20)  # the registry's size + 10% + 1 MiB
    written = re.search(rf"too big: more than {limit} bytes \((\d+) so far\)",
                        result.attempts[0].error)
    assert written and int(written[1]) <= limit + (1 << 16)  # at most one read past the limit


ENDLESS = {  # name -> (route, registry source, fetch flags, cause)
    "no length": (dict(mode="endless"), {}, [], "too big: more than"),
    "false length": (dict(mode="endless", length=10 ** 12), {}, [], "announces 1000000000000"),
    "unknown size": (dict(mode="endless"), {"format": "tar", "members": ["blob.bin"]},
                     ["--max-download-mb", "0.25"], "too big: more than 262144 bytes"),
}


@pytest.mark.parametrize("case", sorted(ENDLESS))
def test_endless_body_alone_fails_and_leaves_no_partial_file(server, tmp_path, capsys, case):
    route, source, flags, cause = ENDLESS[case]
    bad = server.add("/blob.bin", **route)
    rc, err = run_cli(tmp_path, capsys, toy_registry({"url": bad, **source}), *flags)
    folder = tmp_path / "d" / "toy"
    assert_failed_cleanly(rc, err, folder, bad, cause)
    assert not [p for p in folder.rglob("*") if p.is_file() and p.name != ".verified.json"
                and p.name != ".lock"]  # the partial download was deleted


# 3. a malformed redirect, and any exception at all -------------------------------------------

@pytest.mark.parametrize("case", sorted(LOCATIONS))
def test_malformed_redirect_then_the_next(server, tmp_path, case):
    bad = server.add("/bad/blob.bin", mode="redirect", location=LOCATIONS[case])
    good = server.add("/good/blob.bin", BODY)
    result = fetch("toy", registry=toy_registry(bad, good), data_dir=tmp_path, **FAST)
    assert result.path("blob.bin").read_bytes() == BODY
    error = result.attempts[0].error
    assert error.startswith("malformed redirect to ") and LOCATION_CAUSES[case] in error


@pytest.mark.parametrize("case", sorted(LOCATIONS))
def test_malformed_redirect_alone(server, tmp_path, capsys, case):
    bad = server.add("/blob.bin", mode="redirect", location=LOCATIONS[case])
    rc, err = run_cli(tmp_path, capsys, toy_registry(bad))
    assert_failed_cleanly(rc, err, tmp_path / "d" / "toy", bad,
                          "malformed redirect to .*" + re.escape(LOCATION_CAUSES[case]))


def test_any_exception_of_a_source_moves_to_the_next(server, tmp_path, capsys, monkeypatch):
    first = server.add("/a/blob.bin", BODY)
    second = server.add("/b/blob.bin", BODY)
    real, calls = fetch_module.check_file, []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise ZeroDivisionError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(fetch_module, "check_file", flaky)
    result = fetch("toy", registry=toy_registry(first, second), data_dir=tmp_path, **FAST)
    assert result.sources["blob.bin"] == second and result.path("blob.bin").read_bytes() == BODY
    assert result.attempts[0].error == "ZeroDivisionError: boom"
    monkeypatch.setattr(fetch_module, "check_file", lambda *a, **k: {}["no such key"])
    rc, err = run_cli(tmp_path, capsys, toy_registry(first))
    assert_failed_cleanly(rc, err, tmp_path / "d" / "toy", first, "KeyError: 'no such key'")


# 4. encrypted or unsupported zip members ---------------------------------------------------

ZIP_FAULTS = {"encrypted": (dict(flags=0x1), "is encrypted"),
              "unsupported method": (dict(method=98), "compression method 98 .*cannot unpack")}


@pytest.mark.parametrize("case", sorted(ZIP_FAULTS))
def test_unreadable_zip_member_in_a_local_mirror_then_the_next(server, tmp_path, case):
    patch, cause = ZIP_FAULTS[case]
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "data.zip").write_bytes(patched_zip(BODY, **patch))
    good = server.add("/data.zip", zip_bytes({"blob.bin": BODY}))
    reg = toy_registry({"url": good, "format": "zip", "members": ["blob.bin"]})
    result = fetch("toy", registry=reg, data_dir=tmp_path / "d", mirror=str(mirror), **FAST)
    assert result.path("blob.bin").read_bytes() == BODY and result.sources["blob.bin"] == good
    [bad] = [a for a in result.attempts if not a.missing]
    assert bad.source == str(mirror / "toy" / "data.zip") and re.search(cause, bad.error)


@pytest.mark.parametrize("case", sorted(ZIP_FAULTS))
def test_unreadable_zip_member_alone(server, tmp_path, capsys, case):
    patch, cause = ZIP_FAULTS[case]
    bad = server.add("/data.zip", patched_zip(BODY, **patch))
    rc, err = run_cli(tmp_path, capsys,
                      toy_registry({"url": bad, "format": "zip", "members": ["blob.bin"]}))
    assert_failed_cleanly(rc, err, tmp_path / "d" / "toy", bad, cause)


# 5. a corrupt compressed tar, after other files of the dataset ---------------------------------

def two_files(tar_url: str, *more) -> dict:
    reg = toy_registry(*more, body=BODY, name="blob.bin")
    other = {"name": "first.txt", "size": 6, "sha256": sha(b"first\n"),
             "sources": [{"url": tar_url.rsplit("/", 1)[0] + "/first.txt"}]}
    entry = reg["datasets"]["toy"]["files"][0]
    entry["sources"].insert(0, {"url": tar_url, "format": "tar", "members": ["blob.bin"]})
    reg["datasets"]["toy"]["files"].insert(0, other)
    return reg


def test_corrupt_compressed_tar_then_the_next(server, tmp_path):
    bad = server.add("/blob.tar.xz", corrupt_tar_xz())
    server.add("/first.txt", b"first\n")
    good = server.add("/good/blob.bin", BODY)
    result = fetch("toy", registry=two_files(bad, good), data_dir=tmp_path, **FAST)
    assert result.path("blob.bin").read_bytes() == BODY
    assert result.path("first.txt").read_bytes() == b"first\n"
    assert re.search("corrupt.*(LZMAError|Corrupt input)", result.attempts[0].error)


def test_corrupt_compressed_tar_alone_leaves_no_half_dataset(server, tmp_path, capsys):
    bad = server.add("/blob.tar.xz", corrupt_tar_xz())
    server.add("/first.txt", b"first\n")
    rc, err = run_cli(tmp_path, capsys, two_files(bad))
    folder = tmp_path / "d" / "toy"
    assert_failed_cleanly(rc, err, folder, bad, "corrupt.*(LZMAError|Corrupt input)")
    assert not (folder / "first.txt").exists()  # it verified, but its dataset did not
    assert server.hits("/first.txt")


# 6. a resumed download whose first bytes were a portal page ----------------------------------

def portal_then(server, tmp_path, body: bytes) -> str:
    """A first run cut short inside a portal page (its prefix stays in .partial), then the
    server serves ``body``."""
    url = server.add("/blob.bin", PORTAL, mode="truncate")
    with pytest.raises(DataError, match="truncated"):
        fetch("toy", registry=toy_registry(url), data_dir=tmp_path / "d",
              **{**FAST, "retries": 0})
    server.add("/blob.bin", body)
    return url


def test_resume_from_a_bad_prefix_restarts_from_zero_once(server, tmp_path):
    url = portal_then(server, tmp_path, BODY)
    result = fetch("toy", registry=toy_registry(url), data_dir=tmp_path / "d", **FAST)
    assert result.path("blob.bin").read_bytes() == BODY  # in this run, not the next one
    ranges = [h.headers.get("Range") for h in server.hits("/blob.bin")]
    assert ranges == [None, f"bytes={len(BODY) // 2}-", None]


def test_resume_from_a_bad_prefix_alone(server, tmp_path, capsys):
    url = portal_then(server, tmp_path, BAD_BODY)
    rc, err = run_cli(tmp_path, capsys, toy_registry(url))
    assert_failed_cleanly(rc, err, tmp_path / "d" / "toy", url, "sha256 mismatch")
    ranges = [h.headers.get("Range") for h in server.hits("/blob.bin")]
    assert ranges == [None, f"bytes={len(BODY) // 2}-", None]  # restarted once, not more


# 7. an archive member much larger than its archive ------------------------------------------

def bomb(kind: str) -> dict:
    zeros = bytes(20 << 20)  # 20 MiB of zeros, ~20 kB packed; the file should have 200 kB
    if kind == "zip":
        return {"body": zip_bytes({"blob.bin": zeros}), "format": "zip", "members": ["blob.bin"]}
    if kind == "gzip":
        return {"body": gzip.compress(zeros, 1), "format": "gzip"}
    return {"body": tar_bytes({"blob.bin": zeros}), "format": "tar", "members": ["blob.bin"]}


@pytest.mark.parametrize("kind", ["zip", "gzip", "tar"])
def test_bomb_then_the_next(server, tmp_path, kind):
    spec = bomb(kind)
    bad = server.add(f"/bomb.{kind}", spec.pop("body"))
    good = server.add("/good/blob.bin", BODY)
    result = fetch("toy", registry=toy_registry({"url": bad, **spec}, good), data_dir=tmp_path,
                   **FAST)
    assert result.path("blob.bin").read_bytes() == BODY
    assert "zip bomb" in result.attempts[0].error


def test_bomb_alone(server, tmp_path, capsys):
    spec = bomb("zip")
    bad = server.add("/bomb.zip", spec.pop("body"))
    rc, err = run_cli(tmp_path, capsys, toy_registry({"url": bad, **spec}))
    folder = tmp_path / "d" / "toy"
    assert_failed_cleanly(rc, err, folder, bad, "would unpack to 20971520 bytes.*zip bomb")
    assert not [p for p in folder.rglob("*") if p.is_file() and p.stat().st_size > (1 << 20)]


# --------------------------------------------------------------------------- options

def test_limit_options_are_in_help_and_checked(capsys, tmp_path):
    from mindtf.cli.main import main

    for command in ("fetch", "quickstart"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        for flag in ("--deadline", "--stall-bytes", "--stall-seconds", "--max-download-mb"):
            assert flag in out, (command, flag)
    with pytest.raises(MindtfError, match="deadline=-1"):
        fetch("toy", registry=toy_registry("http://127.0.0.1:9/x"), data_dir=tmp_path,
              deadline=-1)
