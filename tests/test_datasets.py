"""The real datasets through the local mirror (offline), the loaders, and where files live.

The mirror is ``$MINDTF_DATA_MIRROR`` or ``<repo>/../shared/data``; tests needing it are skipped
with a clear reason when it is absent. Nothing here uses the network.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mindtf.data import (data_dir, fetch, load_multi30k, load_sst2, load_tinyshakespeare,
                         mirrors)
from mindtf.data import paths as data_paths
from mindtf.errors import DataError

REPO = Path(__file__).resolve().parents[1]
EXPECTED = {"multi30k": ["multi30k/train.de.gz", "multi30k/val.en.gz",
                         "multi30k/test_2016_flickr.en.gz"],
            "tinyshakespeare": ["tinyshakespeare/input.txt"], "sst2": ["sst2/SST-2.zip"]}


def _mirror() -> Path:
    env = os.environ.get("MINDTF_DATA_MIRROR", "").split(",")[0].strip()
    return Path(env).resolve() if env else (REPO.parent / "shared" / "data").resolve()


MIRROR = _mirror()
needs_mirror = pytest.mark.skipif(
    not all((MIRROR / p).is_file() for ps in EXPECTED.values() for p in ps),
    reason=f"no local dataset mirror at {MIRROR} (set MINDTF_DATA_MIRROR to a folder laid out "
           "like shared/data: multi30k/*.gz, tinyshakespeare/input.txt, sst2/SST-2.zip)")


@pytest.fixture(scope="module")
def fetched(tmp_path_factory):
    """A data folder filled by ``python -m mindtf fetch NAME --offline`` from the mirror."""
    folder = tmp_path_factory.mktemp("data")
    env = {**os.environ, "MINDTF_DATA_MIRROR": str(MIRROR), "MINDTF_DATA_DIR": str(folder)}
    for name in EXPECTED:
        proc = subprocess.run([sys.executable, "-m", "mindtf", "fetch", name, "--offline",
                               "--no-progress"], env=env, cwd=REPO, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert f"{name}:" in proc.stdout and "verified" in proc.stdout
    return folder


@pytest.fixture
def env(fetched, monkeypatch):
    monkeypatch.setenv("MINDTF_DATA_MIRROR", str(MIRROR))
    monkeypatch.setenv("MINDTF_DATA_DIR", str(fetched))
    return fetched


@needs_mirror
def test_cli_fetch_offline_lays_out_the_files(fetched):
    names = {p.relative_to(fetched).as_posix() for p in fetched.rglob("*")
             if p.is_file() and not p.name.startswith(".")}
    assert names == {"multi30k/train.de", "multi30k/train.en", "multi30k/val.de",
                     "multi30k/val.en", "multi30k/test2016.de", "multi30k/test2016.en",
                     "tinyshakespeare/input.txt",
                     "sst2/train.tsv", "sst2/dev.tsv", "sst2/test.tsv"}
    assert not any(p.name == ".partial" for p in fetched.rglob("*"))


@needs_mirror
def test_relative_mirror_from_the_checkout(tmp_path, monkeypatch):
    rel = os.path.relpath(MIRROR, REPO)
    monkeypatch.chdir(REPO)
    result = fetch("tinyshakespeare", mirror=rel, data_dir=tmp_path, offline=True,
                   progress=False)
    assert result.sources["input.txt"] == str(MIRROR / "tinyshakespeare" / "input.txt")


@needs_mirror
@pytest.mark.parametrize("split, count", [("train", 29000), ("val", 1014), ("test2016", 1000),
                                          ("valid", 1014), ("test", 1000)])
def test_multi30k_counts(env, split, count):
    pairs = load_multi30k(split, offline=True, progress=False)
    assert len(pairs) == count
    assert all(isinstance(de, str) and isinstance(en, str) and de and en for de, en in pairs)


@needs_mirror
def test_multi30k_content(env):
    de, en = load_multi30k("train", offline=True, progress=False)[0]
    assert de.startswith("Zwei junge weiße Männer") and en.startswith("Two young, White males")
    with pytest.raises(ValueError, match="unknown split"):
        load_multi30k("dev2017")


@needs_mirror
def test_tinyshakespeare_split(env):
    train, val = load_tinyshakespeare(offline=True, progress=False)
    assert len(train) + len(val) == 1115394 and len(train) == int(1115394 * 0.9)
    assert train.startswith("First Citizen:")
    assert load_tinyshakespeare(0.0, offline=True, progress=False)[1] == ""
    with pytest.raises(ValueError):
        load_tinyshakespeare(1.0)


@needs_mirror
@pytest.mark.parametrize("split, count", [("train", 67349), ("dev", 872), ("validation", 872)])
def test_sst2_counts(env, split, count):
    rows = load_sst2(split, offline=True, progress=False)
    assert len(rows) == count and {label for _, label in rows} == {0, 1}


@needs_mirror
def test_sst2_test_split_has_no_labels(env):
    with pytest.raises(ValueError, match="no labels"):
        load_sst2("test")


@needs_mirror
def test_corrupt_cached_file_is_refetched_from_the_mirror(env, tmp_path):
    result = fetch("tinyshakespeare", data_dir=tmp_path, offline=True, progress=False)
    path = result.path("input.txt")
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    again = fetch("tinyshakespeare", data_dir=tmp_path, offline=True, progress=False)
    assert again.sources["input.txt"] != "cache" and path.stat().st_size == 1115394


@needs_mirror
def test_registry_sizes_not_the_ceiling_cap_the_real_files(env, tmp_path):
    """Every file of the real datasets has a registry size, so the ceiling for files of unknown
    size never applies to them: a 1-byte ceiling and short limits still fetch all of them."""
    for name in EXPECTED:
        result = fetch(name, data_dir=tmp_path, offline=True, progress=False, max_bytes=1,
                       deadline=60, stall_seconds=5)
        assert all(f.path.is_file() for f in result.files.values())


# --------------------------------------------------------------------------- paths

def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("MINDTF_DATA_DIR", raising=False)
    assert data_dir(tmp_path / "x") == (tmp_path / "x").resolve()
    if data_paths.repo_root() is not None:  # running from a checkout: its data/ folder
        assert data_dir() == REPO / "data"
    monkeypatch.setenv("MINDTF_DATA_DIR", str(tmp_path / "env"))
    assert data_dir() == (tmp_path / "env").resolve()
    monkeypatch.delenv("MINDTF_DATA_DIR")
    monkeypatch.setattr(data_paths, "repo_root", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_dir() == tmp_path / "cache" / "mindtf"


def test_checkout_is_detected():
    assert data_paths.repo_root() == REPO


def test_mirror_parsing(tmp_path, monkeypatch):
    monkeypatch.setenv("MINDTF_DATA_MIRROR", f"{tmp_path}, https://mirror.example.edu/mindtf")
    local, remote = mirrors()
    assert local.path == tmp_path and local.is_local
    assert remote.url == "https://mirror.example.edu/mindtf/" and not remote.is_local
    [from_file_url] = mirrors(tmp_path.as_uri())
    assert from_file_url.path == tmp_path
    assert mirrors([]) == [] and mirrors("") == []
    with pytest.raises(DataError, match="only local folders"):
        mirrors("ftp://example.org/data")


def test_importing_mindtf_data_is_light():
    code = ("import sys, mindtf.data; "
            "bad = [m for m in ('mindspore', 'download', 'filelock', 'tqdm') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
