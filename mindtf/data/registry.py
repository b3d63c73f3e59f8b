"""The registry of known datasets: ``registry.json`` (shipped in the package) parsed and checked.

::

    registry.json: {name: {description, files: [{name, size, sha256,
                                                  sources: [{url, format, member?, ...}, ...]}]}}
        -> Dict[name, DatasetSpec(files=(FileSpec(sources=(Source, ...)), ...))]

Each file has its size and sha256, and an ordered list of sources (the official host first, then
other public copies); :mod:`mindtf.data.fetch` tries mirrors before them. Nothing here touches
the network.
"""
from __future__ import annotations

import json
import os
import posixpath
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from mindtf.errors import DataError

__all__ = ["Source", "FileSpec", "DatasetSpec", "FORMATS", "parse_registry", "load_registry",
           "list_datasets", "dataset_info"]

FORMATS = ("file", "gzip", "tar", "zip")
PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Source:
    """One place a file can come from.

    ``format`` says how the target file is obtained from the downloaded bytes: ``file`` (they
    are the file), ``gzip`` (decompress), ``tar``/``zip`` (an archive holding it as one of
    ``members``, matched by full path or by base name). ``sha256``/``md5``/``size`` describe
    the downloaded bytes themselves when they are published. ``url`` may be ``None`` for a
    layout that only mirrors use; ``mirror_paths`` are paths relative to a mirror's root.
    """

    url: Optional[str]
    format: str = "file"
    members: Tuple[str, ...] = ()
    sha256: Optional[str] = None
    md5: Optional[str] = None
    size: Optional[int] = None
    mirror_paths: Tuple[str, ...] = ()

    @property
    def basename(self) -> Optional[str]:
        """The downloaded file's name (from the URL path), e.g. ``training.tar.gz``."""
        if not self.url:
            return None
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.url).path)
        return posixpath.basename(path) or None


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset as kept on disk: ``<data_dir>/<dataset>/<name>``."""

    name: str
    size: int
    sha256: str
    sources: Tuple[Source, ...]
    normalize: Optional[str] = None  # "text": UTF-8, LF line ends, one final newline


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its files and a few words about it."""

    name: str
    description: str
    files: Tuple[FileSpec, ...]
    homepage: str = ""
    license: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def _check_hex(value: Any, length: int, what: str) -> Optional[str]:
    if value is None:
        return None
    text = str(value).lower()
    if len(text) != length or any(c not in "0123456789abcdef" for c in text):
        raise DataError(f"registry: {what} must be {length} hex digits, got {value!r}")
    return text


def _parse_source(raw: Mapping[str, Any], where: str) -> Source:
    fmt = raw.get("format", "file")
    if fmt not in FORMATS:
        raise DataError(f"registry: {where}: unknown format {fmt!r} (one of {FORMATS})")
    members = tuple(raw.get("members", ()))
    if fmt in ("tar", "zip") and not members:
        raise DataError(f"registry: {where}: a {fmt} source needs 'members'")
    if not raw.get("url") and not raw.get("mirror_paths"):
        raise DataError(f"registry: {where}: a source needs a 'url' or 'mirror_paths'")
    for p in raw.get("mirror_paths", ()):
        if p.startswith("/") or ".." in p.split("/"):
            raise DataError(f"registry: {where}: bad mirror path {p!r}")
    return Source(url=raw.get("url"), format=fmt, members=members,
                  sha256=_check_hex(raw.get("sha256"), 64, f"{where} sha256"),
                  md5=_check_hex(raw.get("md5"), 32, f"{where} md5"),
                  size=int(raw["size"]) if raw.get("size") is not None else None,
                  mirror_paths=tuple(raw.get("mirror_paths", ())))


def parse_registry(raw: Mapping[str, Any]) -> Dict[str, DatasetSpec]:
    """Check and parse a registry mapping (the content of ``registry.json``)."""
    out: Dict[str, DatasetSpec] = {}
    for name, ds in raw.get("datasets", {}).items():
        files = []
        for f in ds.get("files", ()):
            fname = f.get("name", "")
            if not fname or "/" in fname or "\\" in fname or fname.startswith("."):
                raise DataError(f"registry: {name}: bad file name {fname!r}")
            where = f"{name}/{fname}"
            sha = _check_hex(f.get("sha256"), 64, f"{where} sha256")
            if sha is None:
                raise DataError(f"registry: {where} needs a sha256")
            sources = tuple(_parse_source(s, f"{where} source {i}")
                            for i, s in enumerate(f.get("sources", ())))
            files.append(FileSpec(name=fname, size=int(f["size"]), sha256=sha, sources=sources,
                                  normalize=f.get("normalize")))
        known = {"description", "files", "homepage", "license"}
        out[name] = DatasetSpec(name=name, description=ds.get("description", ""),
                                files=tuple(files), homepage=ds.get("homepage", ""),
                                license=ds.get("license", ""),
                                extra={k: v for k, v in ds.items() if k not in known})
    return out


def load_registry(registry: Union[None, PathLike, Mapping[str, Any]] = None
                  ) -> Dict[str, DatasetSpec]:
    """The datasets mindtf knows: the packaged ``registry.json`` by default, or another
    registry given as a path or an already-loaded mapping."""
    if isinstance(registry, Mapping):
        return parse_registry(registry)
    path = Path(registry) if registry is not None else Path(__file__).with_name("registry.json")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the dataset registry {path}: {exc}") from exc
    return parse_registry(raw)


def list_datasets(registry: Union[None, PathLike, Mapping[str, Any]] = None) -> List[str]:
    """Names of the datasets :func:`mindtf.data.fetch` can fetch."""
    return sorted(load_registry(registry))


def dataset_info(name: str) -> DatasetSpec:
    """The registry entry of one dataset (its files, sizes, sha256 and sources)."""
    datasets = load_registry()
    if name not in datasets:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(datasets))}")
    return datasets[name]
