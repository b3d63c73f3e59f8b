"""Compile mindtf's C++ kernels once per machine and find them again.

::

    csrc/*.cc + csrc/*.h ──hash(sources, flags, compiler, MindSpore version, CPU)──► key
         │
         ▼  first use only: g++ -O3 -march=native -fopenmp-simd -pthread -shared -fPIC
    CACHE/<key>/libmindtf_kernels.so        CACHE = $MINDTF_KERNEL_CACHE
                                                 or ~/.cache/mindtf/kernels (XDG_CACHE_HOME)

The library is written under a unique temporary name and renamed into place (an atomic step),
under a file lock, so two processes starting at once neither corrupt nor duplicate the build; a
second process (or a second run) finds the library and loads it without compiling.

Nothing here raises: when no compiler is found or the build fails, :func:`library` returns
``None`` and issues **one** :class:`KernelWarning` that says why and how to fix it, and the
layers keep MindSpore's built-in ops.

Environment:

* ``MINDTF_KERNELS``: ``auto`` (default: on for the CPU when the build works), ``1`` (the same,
  and say so when the device is not the CPU), ``0`` (off: built-in ops everywhere).
* ``MINDTF_CXX``: the C++ compiler (default: ``$CXX``, else ``g++``, else ``c++``).
* ``MINDTF_KERNEL_CACHE``: the cache folder.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.metadata
import os
import platform
import shlex
import shutil
import subprocess
import uuid
import warnings
from pathlib import Path
from typing import Optional

__all__ = ["KernelWarning", "SWITCH_ENV", "CXX_ENV", "CACHE_ENV", "FLAGS", "SYMBOLS", "switch",
           "compiler", "cache_root", "build_key", "library", "sources"]

SWITCH_ENV = "MINDTF_KERNELS"
CXX_ENV = "MINDTF_CXX"
CACHE_ENV = "MINDTF_KERNEL_CACHE"
#: compiler flags (part of the cache key: changing them rebuilds)
FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-pthread", "-shared", "-fPIC", "-std=c++17")
#: the C functions the library must export (checked after loading it)
SYMBOLS = ("MindtfLayerNorm", "MindtfLayerNormGrad", "MindtfGeluTanh", "MindtfGeluTanhGrad",
           "MindtfMaskedSoftmax", "MindtfMaskedSoftmaxGrad", "MindtfFusedAttention",
           "MindtfFusedAttentionGrad", "MindtfSumSquares", "MindtfAdamW")
LIB_NAME = "libmindtf_kernels.so"
SRC_DIR = Path(__file__).resolve().parent / "csrc"
COMPILE_TIMEOUT_S = 300
_SWITCH_VALUES = ("0", "1", "auto")


class KernelWarning(RuntimeWarning):
    """mindtf's custom CPU kernels are unavailable; the built-in MindSpore ops are used."""


def switch() -> str:
    """``MINDTF_KERNELS`` normalised to ``"0"``, ``"1"`` or ``"auto"`` (unknown values: auto,
    with a warning)."""
    raw = os.environ.get(SWITCH_ENV, "auto").strip().lower()
    value = {"off": "0", "false": "0", "no": "0", "on": "1", "true": "1", "yes": "1"}.get(raw, raw)
    if value not in _SWITCH_VALUES:
        warnings.warn(f"{SWITCH_ENV}={raw!r} is not one of 0, 1, auto; using auto.",
                      KernelWarning, stacklevel=2)
        return "auto"
    return value


def compiler() -> Optional[str]:
    """The C++ compiler to use: ``$MINDTF_CXX`` (and nothing else when it is set), ``$CXX``,
    ``g++`` or ``c++``; ``None`` when none is found."""
    chosen = os.environ.get(CXX_ENV)
    if chosen:
        return shutil.which(chosen)
    for name in (os.environ.get("CXX"), "g++", "c++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def cache_root() -> Path:
    """``$MINDTF_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/mindtf/kernels`` (``~/.cache/...``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mindtf" / "kernels"


def sources() -> list:
    """The kernel sources, sorted: ``csrc/*.cc`` and ``csrc/*.h`` shipped with the package."""
    return sorted(list(SRC_DIR.glob("*.cc")) + list(SRC_DIR.glob("*.h")))


def _cpu_identity() -> str:
    """What ``-march=native`` compiles for: the CPU model and flags (Linux), else the arch."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            keep = [ln for ln in fh if ln.startswith(("model name", "flags", "Features"))]
        return "".join(sorted(set(keep))) or platform.machine()
    except OSError:
        return platform.machine()


@functools.lru_cache(maxsize=8)
def _compiler_version(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else cxx
    except (OSError, subprocess.SubprocessError):
        return cxx


def _mindspore_version() -> str:
    try:
        return importlib.metadata.version("mindspore")
    except importlib.metadata.PackageNotFoundError:  # installed without metadata
        import mindspore

        return mindspore.__version__


def build_key(cxx: str) -> str:
    """sha256 (first 16 hex digits) of the sources, the flags, the compiler, the MindSpore
    version and the CPU: a change in any of them builds a new library in a new folder."""
    h = hashlib.sha256()
    for path in sources():
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for part in (" ".join(FLAGS), _compiler_version(cxx), _mindspore_version(),
                 _cpu_identity()):
        h.update(part.encode("utf-8", "replace") + b"\0")
    return h.hexdigest()[:16]


def _compile(cxx: str, out: Path) -> Optional[str]:
    """Build the library at ``out`` (atomically); return an error message or ``None``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    cmd = [cxx, *FLAGS, f"-I{SRC_DIR}", "-o", str(tmp)]
    cmd += [str(p) for p in sources() if p.suffix == ".cc"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
            return f"`{shlex.join(cmd)}` failed:\n" + "\n".join(tail)
        os.replace(tmp, out)  # atomic: readers see no library or a complete one
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`{shlex.join(cmd)}` could not run: {type(exc).__name__}: {exc}"
    finally:
        if tmp.exists():
            tmp.unlink()


def _check_loads(path: Path) -> Optional[str]:
    """Load the library and look up every kernel; an error message or ``None``."""
    try:
        lib = ctypes.CDLL(str(path))
        missing = [s for s in SYMBOLS if not hasattr(lib, s)]
    except OSError as exc:
        return f"{path} does not load: {exc}"
    return f"{path} lacks {', '.join(missing)}" if missing else None


def _build() -> tuple:
    """``(path or None, reason)``: find or build the library."""
    cxx = compiler()
    if cxx is None:
        which = os.environ.get(CXX_ENV) or "g++ / c++"
        return None, (f"no C++ compiler found ({which}). Install one (Debian/Ubuntu: apt install "
                      f"g++; macOS: xcode-select --install) or point {CXX_ENV} at it.")
    out = cache_root() / build_key(cxx) / LIB_NAME
    if not out.exists():
        try:
            from filelock import FileLock, Timeout

            out.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(out) + ".lock", timeout=COMPILE_TIMEOUT_S):
                error = None if out.exists() else _compile(cxx, out)  # built while we waited?
        except Timeout:  # a stuck lock: build under our own temporary name anyway
            error = _compile(cxx, out)
        except OSError as exc:  # an unwritable cache folder
            return None, (f"cannot write the kernel cache {out.parent} ({exc}); set "
                          f"{CACHE_ENV} to a writable folder.")
        if error:
            return None, error
    error = _check_loads(out)
    return (None, error) if error else (str(out), f"built with {cxx}")


@functools.lru_cache(maxsize=1)
def library() -> Optional[str]:
    """The path of the compiled kernel library, building it on first use; ``None`` (after one
    :class:`KernelWarning`) when it cannot be built. Cached for the life of the process
    (``library.cache_clear()`` forgets it)."""
    path, reason = _build()
    if path is None:
        warnings.warn(f"mindtf's CPU kernels are unavailable, using MindSpore's built-in ops "
                      f"(correct, slower). Reason: {reason} Silence this with "
                      f"{SWITCH_ENV}=0.", KernelWarning, stacklevel=3)
    return path
