"""Where datasets live: the data folder and the mirrors (the datasets themselves are described
in :mod:`mindtf.data.registry`).

* :func:`data_dir` -- the folder verified files are kept in (``MINDTF_DATA_DIR``, else the
  checkout's ``data/`` folder, else a per-user cache folder).
* :func:`mirrors` -- the mirrors to try first (``--mirror`` or ``MINDTF_DATA_MIRROR``), each a
  local folder or a base URL.

Nothing here touches the network.
"""
from __future__ import annotations

import os
import sys
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

from mindtf.errors import DataError

ENV_DATA_DIR = "MINDTF_DATA_DIR"
ENV_MIRROR = "MINDTF_DATA_MIRROR"

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
