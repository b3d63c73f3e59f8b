"""Where datasets live: the data folder, the mirrors, and the registry of known datasets.

* :func:`data_dir` -- the folder verified files are kept in (``MINDTF_DATA_DIR``, else the
  checkout's ``data/`` folder, else a per-user cache folder).
* :func:`mirrors` -- the mirrors to try first (``--mirror`` or ``MINDTF_DATA_MIRROR``), each a
  local folder or a base URL.
* :func:`load_registry` -- the datasets mindtf knows (``registry.json``, shipped in the package),
  parsed into :class:`DatasetSpec` / :class:`FileSpec` / :class:`Source`.

Nothing here touches the network.
"""
from __future__ import annotations

import json
import os
import posixpath
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from mindtf.errors import DataError

ENV_DATA_DIR = "MINDTF_DATA_DIR"
ENV_MIRROR = "MINDTF_DATA_MIRROR"
FORMATS = ("file", "gzip", "tar", "zip")

PathLike = Union[str, "os.PathLike[str]"]


# --------------------------------------------------------------------------- data folder

def repo_root() -> Optional[Path]:
    """The checkout this package runs from, or ``None`` when mindtf is installed normally.

    A checkout is recognised by a ``pyproject.toml`` naming mindtf next to the package and a
    ``data/README.md`` that mentions mindtf.
    """
    root = Path(__file__).resolve().parents[2]
    try:
        pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
        readme = (root / "data" / "README.md").read_text(encoding="utf-8")
    except OSError:
        return None
    if 'name = "mindtf"' in pyproject and "mindtf" in readme:
        return root
    return None


def user_cache_dir() -> Path:
    """The per-user cache folder: ``$XDG_CACHE_HOME/mindtf``, ``~/.cache/mindtf`` (or
    ``%LOCALAPPDATA%\\mindtf`` on Windows)."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "mindtf"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "mindtf"


def data_dir(data_dir: Optional[PathLike] = None) -> Path:
    """The folder datasets are kept in (not created here).

    In order: the ``data_dir`` argument, ``$MINDTF_DATA_DIR``, the ``data/`` folder of the
    checkout when running from one, else :func:`user_cache_dir`.
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get(ENV_DATA_DIR, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    root = repo_root()
    if root is not None:
        return root / "data"
    return user_cache_dir()


# --------------------------------------------------------------------------- mirrors

@dataclass(frozen=True)
class Mirror:
    """One mirror: a local folder (``path``) or a base URL (``url``, ending in ``/``)."""

    location: str
    path: Optional[Path] = None
    url: Optional[str] = None

    @property
    def is_local(self) -> bool:
        return self.path is not None


def _parse_mirror(item: str) -> Mirror:
    scheme = urllib.parse.urlsplit(item).scheme.lower()
    if scheme == "file":
        return Mirror(item, path=Path(_file_url_to_path(item)).resolve())
    if scheme in ("http", "https"):
        return Mirror(item, url=item if item.endswith("/") else item + "/")
    if "://" in item:
        raise DataError(f"mirror {item!r}: only local folders, file://, http:// and https:// "
                        "mirrors are supported")
    path = Path(item).expanduser()
    if not path.is_absolute():
        # relative to the working directory; from elsewhere in a checkout (e.g. lessons/),
        # MINDTF_DATA_MIRROR=../shared/data should still mean "beside the checkout"
        root = repo_root()
        if not path.exists() and root is not None and (root / path).exists():
            path = root / path
    return Mirror(item, path=path.resolve())


def _file_url_to_path(url: str) -> str:
    import urllib.request

    return urllib.request.url2pathname(urllib.parse.urlsplit(url).path)


def mirrors(mirror: Union[None, str, Sequence[str]] = None) -> List[Mirror]:
    """The mirrors to try, in order: ``mirror`` (a comma-separated string or a list) if given,
    else ``$MINDTF_DATA_MIRROR``."""
    if mirror is None:
        mirror = os.environ.get(ENV_MIRROR, "")
    items = mirror.split(",") if isinstance(mirror, str) else list(mirror)
    return [_parse_mirror(str(m).strip()) for m in items if str(m).strip()]


# --------------------------------------------------------------------------- registry

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
