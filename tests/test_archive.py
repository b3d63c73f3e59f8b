"""mindtf.data.archive: safe tar/zip extraction refuses anything that could escape the target."""
from __future__ import annotations

import io
import os
import random
import tempfile
import tarfile
import zipfile
from pathlib import Path

import pytest

from mindtf.data import UnsafeArchiveError, extract_member, list_members, safe_extract
from mindtf.errors import DataError

try:
    from _servers import corrupted, patched_zip, tar_bytes
except ImportError:  # tests/ imported as a package
    from tests._servers import corrupted, patched_zip, tar_bytes


def make_tar(path: Path, entries: list) -> Path:
    """entries: (name, kind, payload) with kind file/dir/sym/hard/chr/fifo."""
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
             "hard": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}
    with tarfile.open(path, "w:gz") as tf:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.type = types[kind]
            if kind == "file":
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
            else:
                if kind in ("sym", "hard"):
                    info.linkname = payload
                tf.addfile(info)
    return path


def make_zip(path: Path, entries: list) -> Path:
    """entries: (name, data) or (name, data, unix_mode)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, *mode in entries:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (mode[0] if mode else 0o100644) << 16
            zf.writestr(info, data)
    return path


@pytest.fixture
def sandbox(tmp_path):
    """(archive folder, extraction target, a snapshot function of everything under tmp_path)."""
    target = tmp_path / "box" / "target"
    target.mkdir(parents=True)

    def snapshot():
        return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                      if "archives" not in p.parts)

    (tmp_path / "archives").mkdir()
    return tmp_path / "archives", target, snapshot


MALICIOUS_TAR = {
    "absolute path": ([("ok.txt", "file", b"ok"),
                       (os.path.join(tempfile.gettempdir(), "mindtf-evil.txt"), "file", b"x")],
                      "absolute"),
    "dot-dot": ([("ok.txt", "file", b"ok"), ("../evil.txt", "file", b"x")], r"'\.\.'"),
    "nested dot-dot": ([("a/../../evil.txt", "file", b"x")], r"'\.\.'"),
    "symlink escaping": ([("link", "sym", "../outside")], "points outside"),
    "absolute symlink": ([("link", "sym", "/etc/passwd")], "points outside"),
    "symlink chain escaping": ([("x", "dir", None), ("x/l", "sym", ".."),
                                ("y", "sym", "x/l/..")], "resolves outside"),
    "write through a symlink": ([("d", "sym", "."), ("d/evil.txt", "file", b"x")],
                                "inside the symlink"),
    "hardlink escaping": ([("h", "hard", "../outside.txt")], "points outside"),
    "absolute hardlink": ([("h", "hard", "/etc/passwd")], "points outside"),
    "hardlink to nothing": ([("h", "hard", "missing.txt")], "earlier file"),
    "device file": ([("ok.txt", "file", b"ok"), ("dev", "chr", None)], "device file"),
    "fifo": ([("pipe", "fifo", None)], "FIFO"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS_TAR))
def test_malicious_tar_is_refused_and_nothing_is_written(sandbox, case):
    folder, target, snapshot = sandbox
    entries, message = MALICIOUS_TAR[case]
    archive = make_tar(folder / "evil.tar.gz", entries)
    before = snapshot()
    with pytest.raises(UnsafeArchiveError, match=message):
        safe_extract(archive, target)
    assert snapshot() == before  # not even the good member, nothing outside, no temp folder
    assert isinstance(UnsafeArchiveError("x"), DataError)


MALICIOUS_ZIP = {
    "absolute path": ([("/abs.txt", b"x")], "absolute"),
    "drive letter": ([("C:/evil.txt", b"x")], "absolute"),
    "dot-dot": ([("ok.txt", b"ok"), ("../evil.txt", b"x")], r"'\.\.'"),
    "backslash dot-dot": ([("..\\evil.txt", b"x")], r"'\.\.'"),
    "symlink escaping": ([("link", b"../../outside", 0o120777)], "points outside"),
    "fifo": ([("pipe", b"", 0o010644)], "not a regular file"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS_ZIP))
def test_malicious_zip_is_refused_and_nothing_is_written(sandbox, case):
    folder, target, snapshot = sandbox
    entries, message = MALICIOUS_ZIP[case]
    archive = make_zip(folder / "evil.zip", entries)
    before = snapshot()
    with pytest.raises(UnsafeArchiveError, match=message):
        safe_extract(archive, target)
    with pytest.raises(UnsafeArchiveError):  # single-member extraction checks everything too
        extract_member(archive, ["ok.txt"], io.BytesIO())
    assert snapshot() == before


def test_target_folder_with_a_link_leading_outside(sandbox, tmp_path):
    folder, target, snapshot = sandbox
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, target / "data")
    archive = make_tar(folder / "a.tar.gz", [("data/x.txt", "file", b"x")])
    with pytest.raises(UnsafeArchiveError, match="leading outside"):
        safe_extract(archive, target)
    assert not list(outside.iterdir())


def test_good_tar_extracts_files_folders_and_inside_links(sandbox):
    folder, target, _ = sandbox
    archive = make_tar(folder / "good.tar.gz", [
        (".", "dir", None), ("./pkg", "dir", None), ("./pkg/a.txt", "file", b"alpha"),
        ("pkg/sub/b.txt", "file", b"beta"), ("pkg/copy.txt", "hard", "pkg/a.txt"),
        ("pkg/link.txt", "sym", "sub/b.txt"), ("empty", "dir", None)])
    written = safe_extract(archive, target)
    assert (target / "pkg" / "a.txt").read_bytes() == b"alpha"
    assert (target / "pkg" / "copy.txt").read_bytes() == b"alpha"
    assert os.readlink(target / "pkg" / "link.txt") == "sub/b.txt"
    assert (target / "pkg" / "link.txt").read_bytes() == b"beta"
    assert (target / "empty").is_dir()
    assert len(written) == 4 and not list(target.glob(".extract-*"))
    names = {m.name: m.kind for m in list_members(archive)}
    assert names["pkg/copy.txt"] == "hardlink" and names["pkg/link.txt"] == "symlink"


def test_selected_members_and_single_member_by_base_name(sandbox):
    folder, target, _ = sandbox
    archive = make_zip(folder / "SST-2.zip", [("SST-2/train.tsv", b"t"), ("SST-2/dev.tsv", b"d"),
                                              ("SST-2/original/", b"", 0o040755)])
    assert safe_extract(archive, target, members=["SST-2/dev.tsv"]) == [
        target / "SST-2" / "dev.tsv"]
    assert not (target / "SST-2" / "train.tsv").exists()
    out = io.BytesIO()
    assert extract_member(archive, ["nope.tsv", "train.tsv"], out) == "SST-2/train.tsv"
    assert out.getvalue() == b"t"
    with pytest.raises(DataError, match="holds none of"):
        extract_member(archive, ["test.tsv"], io.BytesIO())


def test_not_an_archive(tmp_path):
    junk = tmp_path / "page.html"
    junk.write_bytes(b"<html>login</html>")
    with pytest.raises(DataError, match="not a readable tar or zip"):
        list_members(junk)


def test_hardlink_member_reads_its_target(sandbox):
    folder, _, _ = sandbox
    archive = make_tar(folder / "h.tar.gz", [("data/train.de", "file", b"Hallo\n"),
                                             ("train.de.copy", "hard", "data/train.de")])
    out = io.BytesIO()
    assert extract_member(archive, ["train.de.copy"], out) == "train.de.copy"
    assert out.getvalue() == b"Hallo\n"


# --------------------------------------------------------------------------- sizes, unreadable

def test_size_caps_refuse_a_bomb_before_writing_it(sandbox):
    folder, target, snapshot = sandbox
    zeros = bytes(8 << 20)  # 8 MiB of zeros: a few kB packed
    zipped = make_zip(folder / "bomb.zip", [("big.bin", zeros), ("small.txt", b"ok")])
    tarred = make_tar(folder / "bomb.tar.gz", [("small.txt", "file", b"ok"),
                                                ("big.bin", "file", zeros)])
    before = snapshot()
    for archive in (zipped, tarred):
        with pytest.raises(DataError, match=r"'big.bin' would unpack to 8388608 bytes, more "
                                            r"than the 1000000 allowed \(a zip bomb\?\)"):
            safe_extract(archive, target, max_member=1_000_000)
        with pytest.raises(DataError, match="the archive would unpack to .* zip bomb"):
            safe_extract(archive, target, max_total=4_000_000)
        out = io.BytesIO()
        with pytest.raises(DataError, match="zip bomb"):
            extract_member(archive, ["big.bin"], out, max_member=1_000_000)
        assert out.getvalue() == b""  # refused on its declared size: nothing read
        assert snapshot() == before
        small = io.BytesIO()
        extract_member(archive, ["small.txt"], small, max_member=10)
        assert small.getvalue() == b"ok"
    assert safe_extract(zipped, target, members=["small.txt"], max_total=100) == [
        target / "small.txt"]


def test_tar_scan_stops_at_the_total_cap(sandbox):
    folder, _, _ = sandbox
    archive = make_tar(folder / "bomb.tar.gz", [("big.bin", "file", bytes(8 << 20)),
                                                ("wanted.txt", "file", b"x")])
    with pytest.raises(DataError, match="the archive would unpack to"):
        extract_member(archive, ["wanted.txt"], io.BytesIO(), max_total=1 << 20)
    with pytest.raises(DataError, match="the archive would unpack to"):
        list_members(archive, max_total=1 << 20)


@pytest.mark.parametrize("patch, message", [
    (dict(flags=0x1), "'blob.bin' is encrypted; mindtf cannot unpack encrypted archives"),
    (dict(method=98), r"compression method 98 \(ppmd\), which Python cannot unpack"),
    (dict(method=77), r"compression method 77 \(unknown\)")])
def test_encrypted_or_unsupported_zip_member_is_a_clear_data_error(sandbox, patch, message):
    folder, target, snapshot = sandbox
    archive = folder / "odd.zip"
    archive.write_bytes(patched_zip(b"secret data", **patch))
    before = snapshot()
    with pytest.raises(DataError, match=message):
        extract_member(archive, ["blob.bin"], io.BytesIO())
    with pytest.raises(DataError, match=message):
        safe_extract(archive, target)
    assert snapshot() == before


@pytest.mark.parametrize("mode", ["w:xz", "w:bz2"])  # (gzip checks its CRC only at the end)
def test_corrupt_compressed_tar_is_a_clear_data_error(sandbox, mode):
    folder, target, snapshot = sandbox
    archive = folder / "broken.tar"
    rng = random.Random(1)
    data = "".join(f"line {rng.random()}\n" for _ in range(20_000)).encode()  # compressible
    archive.write_bytes(corrupted(tar_bytes({"a.bin": data, "b.txt": b"b"}, mode), 256))
    before = snapshot()
    with pytest.raises(DataError, match="corrupt|not a readable"):
        extract_member(archive, ["b.txt"], io.BytesIO())
    with pytest.raises(DataError, match="corrupt|not a readable"):
        safe_extract(archive, target)
    assert snapshot() == before
