"""Safe extraction of tar and zip archives.

Every member of an archive is checked *before anything is written*: absolute paths, ``..``
components, drive letters, device files, FIFOs and links that point outside the target are
rejected with :class:`UnsafeArchiveError` (a :class:`~mindtf.errors.DataError`). Extraction never
calls ``tarfile.extractall``: regular files are written by this module under a temporary folder
inside the target (symbolic links last, so nothing is ever written through a link) and then moved
into place, so a failure leaves the target as it was.

Sizes are capped (a zip bomb is refused, not unpacked): a member may not unpack to more than
``max_member`` bytes, nor the archive to more than ``max_total`` (:func:`extract_member` reads a
tar up to its member, so ``max_total`` also bounds that scan). Declared sizes are checked before
anything is read and the bytes are counted while they are written. Encrypted zip members, methods
Python cannot unpack and corrupt data are DataErrors that say which.
"""
from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Iterator, List, Optional, Sequence, Union

from mindtf.data.failures import reason
from mindtf.data.limits import MAX_BYTES, copy_limited
from mindtf.errors import DataError

try:
    from lzma import LZMAError
except ImportError:  # pragma: no cover - a Python built without lzma
    LZMAError = OSError  # type: ignore[misc,assignment]

PathLike = Union[str, "os.PathLike[str]"]
Cap = Optional[int]  # a size limit in bytes; None: none
#: what a corrupt or unsupported archive raises while it is read
_BROKEN = (OSError, EOFError, RuntimeError, NotImplementedError, ValueError, zlib.error,
           LZMAError, tarfile.TarError, zipfile.BadZipFile)
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_MAX_LINK = 4096  # bytes of a zip symlink's target


class UnsafeArchiveError(DataError):
    """An archive member that would write outside the target, or is not a plain file/folder/link."""


@dataclass(frozen=True)
class Member:
    """One checked archive member. ``name`` is normalised (``a/b/c``); ``kind`` is ``file``,
    ``dir``, ``symlink`` or ``hardlink``; ``link`` is the normalised in-archive path a hardlink
    copies, or the raw target of a symlink."""

    name: str
    kind: str
    size: int = 0
    link: str = ""
    raw: object = None  # the TarInfo / ZipInfo


def _normalise(name: str, archive: str) -> str:
    """``name`` as a relative POSIX path with no ``..``; raises on anything that escapes."""
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..'")
    if not parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an empty path")
    return "/".join(parts)


def _symlink_target(member: str, target: str, archive: str) -> str:
    """Check a symlink ``member -> target`` stays inside the extraction root; return target."""
    text = target.replace("\\", "/")
    if not text or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: symlink {member!r} -> {target!r} points outside "
                                 "the target folder (absolute)")
    depth = len(PurePosixPath(member).parts) - 1
    for part in text.split("/"):
        if part == "..":
            depth -= 1
        elif part not in ("", "."):
            depth += 1
        if depth < 0:
            raise UnsafeArchiveError(f"{archive}: symlink {member!r} -> {target!r} points "
                                     "outside the target folder")
    return text


def _check_all(members: List[Member], archive: str) -> List[Member]:
    links = {m.name for m in members if m.kind == "symlink"}
    names = set()
    for m in members:
        parents = PurePosixPath(m.name).parents
        for parent in list(parents)[:-1]:
            if str(parent) in links:
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} is inside the symlink "
                                         f"{str(parent)!r}")
        if m.kind == "hardlink" and m.link not in names:
            raise UnsafeArchiveError(f"{archive}: hardlink {m.name!r} -> {m.link!r} does not "
                                     "point to an earlier file of the archive")
        if m.kind == "file":
            names.add(m.name)
    return members


def _too_big(archive: str, what: str, size: int, cap: int) -> DataError:
    return DataError(f"{archive}: {what} would unpack to {size} bytes, more than the {cap} "
                     "allowed (a zip bomb?); refusing it")


def _tar_members(tf: tarfile.TarFile, archive: str, max_total: Cap) -> List[Member]:
    out = []
    for info in tf:  # header by header: a bomb is stopped at max_total, not unpacked to its end
        if max_total is not None and info.offset_data + info.size > max_total:
            raise _too_big(archive, "the archive", info.offset_data + info.size, max_total)
        if info.isdir() and info.name.replace("\\", "/").strip("/") in ("", "."):
            continue  # the archive's own root folder ("./")
        name = _normalise(info.name, archive)
        if info.isdir():
            out.append(Member(name, "dir", raw=info))
        elif info.isreg():
            out.append(Member(name, "file", info.size, raw=info))
        elif info.issym():
            out.append(Member(name, "symlink", link=_symlink_target(name, info.linkname, archive),
                              raw=info))
        elif info.islnk():
            if info.linkname.replace("\\", "/").startswith("/"):
                raise UnsafeArchiveError(f"{archive}: hardlink {info.name!r} -> "
                                         f"{info.linkname!r} points outside the target folder")
            try:
                target = _normalise(info.linkname, archive)
            except UnsafeArchiveError as exc:
                raise UnsafeArchiveError(f"{archive}: hardlink {info.name!r} -> "
                                         f"{info.linkname!r} points outside the target folder"
                                         ) from exc
            out.append(Member(name, "hardlink", info.size, link=target, raw=info))
        else:
            kind = ("device file" if info.ischr() or info.isblk()
                    else "FIFO" if info.isfifo() else f"type {info.type!r}")
            raise UnsafeArchiveError(f"{archive}: member {info.name!r} is a {kind}; refusing it")
    return _check_all(out, archive)


def _check_zip_member(info: zipfile.ZipInfo, archive: str) -> None:
    """Refuse a member zipfile cannot read, with the reason and the fix."""
    if info.flag_bits & 0x1:
        raise DataError(f"{archive}: member {info.filename!r} is encrypted; mindtf cannot unpack "
                        "encrypted archives (use a copy without a password)")
    if info.compress_type not in _ZIP_METHODS:
        method = zipfile.compressor_names.get(info.compress_type, "unknown")
        raise DataError(f"{archive}: member {info.filename!r} is packed with compression method "
                        f"{info.compress_type} ({method}), which Python cannot unpack (use a "
                        "copy packed with deflate, the usual zip method)")


def _zip_members(zf: zipfile.ZipFile, archive: str) -> List[Member]:
    out = []
    for info in zf.infolist():
        name = _normalise(info.filename, archive)
        kind = stat.S_IFMT((info.external_attr >> 16) & 0xFFFF)  # 0: no Unix type recorded
        if info.is_dir():
            out.append(Member(name, "dir", raw=info))
        elif kind == stat.S_IFLNK:
            _check_zip_member(info, archive)
            if info.file_size > _MAX_LINK:
                raise _too_big(archive, f"symlink {info.filename!r}", info.file_size, _MAX_LINK)
            target = zf.read(info).decode("utf-8", "replace")
            out.append(Member(name, "symlink", link=_symlink_target(name, target, archive),
                              raw=info))
        elif kind not in (0, stat.S_IFREG):
            raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is not a regular "
                                     f"file (type {oct(kind)}); refusing it")
        else:
            out.append(Member(name, "file", info.file_size, raw=info))
    return _check_all(out, archive)


@contextmanager
def _open(path: PathLike, max_total: Cap = MAX_BYTES) -> Iterator[tuple]:
    """Yield ``(kind, handle, members)`` for a tar (any compression) or zip archive."""
    label = os.fspath(path)
    try:
        kind = "zip" if zipfile.is_zipfile(label) else "tar"
        handle = zipfile.ZipFile(label) if kind == "zip" else tarfile.open(label, "r:*")
    except _BROKEN as exc:
        raise DataError(f"{label} is not a readable tar or zip archive: {reason(exc)}") from None
    with handle:
        try:
            members = (_zip_members(handle, label) if kind == "zip"
                       else _tar_members(handle, label, max_total))
        except _BROKEN as exc:
            raise DataError(f"{label} is corrupt or unreadable: {reason(exc)}") from None
        yield kind, handle, members


def list_members(path: PathLike, max_total: Cap = MAX_BYTES) -> List[Member]:
    """Check every member of the archive at ``path`` and return them (raises if any is unsafe)."""
    with _open(path, max_total) as (_, _, members):
        return members


def _copy(kind: str, handle, member: Member, members: Sequence[Member], out: IO[bytes],
          archive: str, max_member: Cap) -> int:
    """Write one file member into ``out`` (at most ``max_member`` bytes); returns its size."""
    source = member
    if kind == "tar" and member.kind == "hardlink":
        source = next(m for m in members if m.name == member.link and m.kind == "file")
    if max_member is not None and source.size > max_member:
        raise _too_big(archive, f"member {member.name!r}", source.size, max_member)
    try:
        if kind == "zip":
            _check_zip_member(source.raw, archive)  # type: ignore[arg-type]
            stream = handle.open(source.raw)
        else:
            stream = handle.extractfile(source.raw)
        if stream is None:  # pragma: no cover - regular members always have data
            raise DataError(f"cannot read {member.name} from {archive}")
        with stream:
            return copy_limited(stream, out, max_member, f"{archive}: member {member.name!r}")
    except _BROKEN as exc:
        raise DataError(f"cannot unpack {member.name!r} from {archive} (corrupt or "
                        f"unsupported): {reason(exc)}") from None


def find_member(members: Sequence[Member], candidates: Sequence[str]) -> Optional[Member]:
    """The first file member whose path equals a candidate, or ends with ``/<candidate>``."""
    files = [m for m in members if m.kind in ("file", "hardlink")]
    for cand in candidates:
        for m in files:
            if m.name == cand or m.name.endswith("/" + cand):
                return m
    return None


def extract_member(path: PathLike, candidates: Sequence[str], out: IO[bytes], *,
                   max_member: Cap = MAX_BYTES, max_total: Cap = MAX_BYTES) -> str:
    """Copy one member (the first of ``candidates`` present, by path or base name) of the
    archive at ``path`` into the open binary file ``out``; returns the member's name.

    The whole archive is checked first, so an archive with any unsafe member is refused; the
    member may not unpack to more than ``max_member`` bytes, the archive (as far as it is read)
    to more than ``max_total``.
    """
    label = os.fspath(path)
    with _open(path, max_total) as (kind, handle, members):
        member = find_member(members, candidates)
        if member is None:
            raise DataError(f"{label} holds none of {', '.join(candidates)}")
        _copy(kind, handle, member, members, out, label, max_member)
        return member.name


def _inside(root: str, path: str) -> bool:
    root_real = os.path.realpath(root)
    return os.path.commonpath([root_real, os.path.realpath(path)]) == root_real


def safe_extract(path: PathLike, target: PathLike, members: Optional[Sequence[str]] = None, *,
                 max_member: Cap = MAX_BYTES, max_total: Cap = MAX_BYTES) -> List[Path]:
    """Extract the archive at ``path`` into the folder ``target``; returns the paths written.

    With ``members``, only those (normalised paths) are extracted. Everything is checked first
    and written into a temporary folder inside ``target``, then moved into place. No member may
    unpack to more than ``max_member`` bytes, all of them together to more than ``max_total``.
    """
    label = os.fspath(path)
    target_dir = Path(target)
    target_dir.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    tmp = tempfile.mkdtemp(prefix=".extract-", dir=target_dir)
    try:
        with _open(path, max_total) as (kind, handle, all_members):
            wanted = all_members if members is None else [
                m for m in all_members if m.name in {_normalise(x, "members") for x in members}]
            total = sum(m.size for m in wanted if m.kind == "file")
            if max_total is not None and total > max_total:
                raise _too_big(label, "the archive", total, max_total)
            left = max_total
            for m in wanted:  # folders and files first; links last
                dest = os.path.join(tmp, *m.name.split("/"))
                if m.kind == "dir":
                    os.makedirs(dest, exist_ok=True)
                elif m.kind in ("file", "hardlink"):
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    if not _inside(tmp, os.path.dirname(dest)):  # pragma: no cover - defensive
                        raise UnsafeArchiveError(f"{m.name!r} would be written outside {target}")
                    cap = max_member if left is None else min(max_member or left, left)
                    with open(dest, "xb") as dst:
                        size = _copy(kind, handle, m, all_members, dst, label, cap)
                    left = None if left is None else left - size
            for m in wanted:
                if m.kind == "symlink":
                    dest = os.path.join(tmp, *m.name.split("/"))
                    os.makedirs(os.path.dirname(dest), exist_ok=True)
                    os.symlink(m.link, dest)
            for m in wanted:  # every link, as resolved on disk, must stay inside
                if m.kind == "symlink" and not _inside(tmp, os.path.join(tmp, m.name)):
                    raise UnsafeArchiveError(f"symlink {m.name!r} -> {m.link!r} resolves outside "
                                             f"the target folder")
        folders: List[Path] = []
        moves = []  # (from, into folder, name); every folder checked before anything moves
        for dirpath, dirnames, filenames in os.walk(tmp):
            rel = os.path.relpath(dirpath, tmp)
            out_dir = target_dir if rel == "." else target_dir / rel
            if not _inside(str(target_dir), str(out_dir)):
                raise UnsafeArchiveError(f"{out_dir} is a link leading outside {target_dir}")
            links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
            moves += [(os.path.join(dirpath, n), out_dir, n) for n in filenames + links]
            folders.append(out_dir)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        for src_path, out_dir, name in moves:
            out_dir.mkdir(parents=True, exist_ok=True)
            os.replace(src_path, out_dir / name)
            written.append(out_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return written
