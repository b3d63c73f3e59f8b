"""MindSpore and Python versions: what mindtf supports, which combinations were tested, and the
one place where a difference between MindSpore releases would be bridged.

Layer 0: imports nothing from mindtf, and nothing heavy at import (callers pass the versions)::

    MindSpore x.y.z ──► in SUPPORTED_MINDSPORE?  ── no ──► "unsupported" (+ the pip fix)
    (= pyproject.toml's range)                 │
                                               yes
                                               ▼
    (MindSpore, Python X.Y) in TESTED_CELLS?  ── no ──► "untested" (which cells were tested)
    (cells .ci/version_matrix.sh ran)          │
                                               yes ──► "tested"

Differences between the supported releases (2.7.0, 2.7.2, 2.8.0, 2.9.0, 2.10.0 checked on CPU
with .ci/version_matrix.sh and tests/test_compat.py): none that mindtf's code sees. Every
MindSpore name mindtf uses resolves in each of them with the same behaviour
(``mindspore.set_device``, ``mindspore.runtime.launch_blocking``, ``mindspore.device_context.*``,
all there since 2.5; the ops and layers), and a GPT made with the same seed gives bit-identical
logits in all of them. What does differ is outside mindtf's code: the Python versions each
release has wheels for (2.7.0 and 2.7.1: no 3.12; 2.10.0: no 3.9) and MindSpore's own numpy
requirement (2.7-2.9 declare ``numpy<2``; 2.10 does not, yet crashes with numpy 2). When a
release changes an API mindtf uses, the shim that picks the right call goes here, next to the
table, not into the modules that use it (reaching the new name with getattr).
"""
from __future__ import annotations

import os
from typing import NamedTuple, Optional, Tuple

__all__ = ["SUPPORTED_MINDSPORE", "SUPPORTED_PYTHON", "DEFAULT_MINDSPORE", "TESTED_CELLS",
           "MATRIX_CELL_ENV",
           "VersionCheck", "check_versions", "version_tuple"]

#: MindSpore releases mindtf supports: inclusive lower, exclusive upper (as in pyproject.toml)
SUPPORTED_MINDSPORE = ("2.7.0", "2.11.0")
#: Python versions mindtf supports (pyproject's requires-python; MindSpore 2.7.0/2.7.1: no 3.12)
SUPPORTED_PYTHON = ("3.10", "3.13")
#: the release requirements.txt pins: the one to install when in doubt
DEFAULT_MINDSPORE = "2.10.0"
#: set by .ci/version_matrix.sh to the cell it is testing ("3.10:2.7.2")
MATRIX_CELL_ENV = "MINDTF_MATRIX_CELL"
#: (MindSpore, Python) cells whose default test run .ci/version_matrix.sh measured (README:
#: Versions). Running the script with no CELLS runs exactly these.
#: Only cells whose *whole* default run passed are listed; 2.8.0 (3.12) and 2.9.0 (3.11) passed a
#: subset of the tests on 2026-12-03 and are "untested" until a full run. 2.7.2 on 3.10: the
#: full run passed on 2026-12-04 (652 passed, 33 skipped).
TESTED_CELLS: Tuple[Tuple[str, str], ...] = (
    ("2.7.2", "3.10"),
    ("2.10.0", "3.10"),
    ("2.10.0", "3.11"),
    ("2.10.0", "3.12"),
)

_INSTALL_FIX = (f"pip install 'mindspore=={DEFAULT_MINDSPORE}' (or the matching GPU/Ascend "
                "wheel from https://www.mindspore.cn/install)")


class VersionCheck(NamedTuple):
    """The verdict on one (MindSpore, Python) combination."""

    status: str  # "tested", "untested" (supported, not measured) or "unsupported"
    message: str  # one sentence; for "unsupported" it names the fix

    @property
    def ok(self) -> bool:
        """True unless the combination is outside what mindtf supports."""
        return self.status != "unsupported"


def version_tuple(version: str) -> tuple:
    """``"2.10.0rc1"`` -> ``(2, 10, 0)``: the first three numeric parts, for comparisons."""
    out = []
    for part in str(version).split(".")[:3]:
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        out.append(int(digits) if digits else 0)
    return tuple(out + [0] * (3 - len(out)))


def _in(version: str, bounds: Tuple[str, str]) -> bool:
    return version_tuple(bounds[0]) <= version_tuple(version) < version_tuple(bounds[1])


def _minor(python: str) -> str:
    return ".".join(str(python).split(".")[:2])


def check_versions(mindspore: str, python: Optional[str] = None) -> VersionCheck:
    """Is MindSpore ``mindspore`` on Python ``python`` (default: this interpreter) tested?

    >>> check_versions("2.9.0", "3.11.7").status
    'tested'
    >>> check_versions("2.3.1", "3.10").status
    'unsupported'
    """
    if python is None:
        import sys

        python = "%d.%d.%d" % sys.version_info[:3]
    py = _minor(python)
    lo, hi = SUPPORTED_MINDSPORE
    if not _in(mindspore, SUPPORTED_MINDSPORE):
        return VersionCheck("unsupported", f"MindSpore {mindspore} is outside the supported range "
                            f">={lo},<{hi}. Fix: {_INSTALL_FIX}")
    if not _in(py, SUPPORTED_PYTHON):
        return VersionCheck("unsupported", f"Python {py} is outside the supported range "
                            f">={SUPPORTED_PYTHON[0]},<{SUPPORTED_PYTHON[1]} (MindSpore's wheels)."
                            " Fix: use Python 3.10, 3.11 or 3.12")
    release = ".".join(str(n) for n in version_tuple(mindspore))
    if (release, py) in TESTED_CELLS:
        return VersionCheck("tested", f"MindSpore {mindspore} on Python {py}: tested (mindtf's "
                            "default test run passes, README: Versions)")
    if os.environ.get(MATRIX_CELL_ENV) == f"{py}:{release}":
        # .ci/version_matrix.sh is testing this very cell: its test run decides whether the cell
        # joins TESTED_CELLS, so the "untested" warning would only fail the tests that check the
        # output of a tested setup
        return VersionCheck("tested", f"MindSpore {mindspore} on Python {py}: being tested now "
                            f"(.ci/version_matrix.sh sets {MATRIX_CELL_ENV})")
    cells = ", ".join(f"{m} on {p}" for m, p in TESTED_CELLS)
    return VersionCheck("untested", f"MindSpore {mindspore} on Python {py} is supported but was "
                        f"not tested (tested: {cells}). It very likely works; to check, run "
                        f"CELLS=\"{py}:{mindspore}\" bash .ci/version_matrix.sh in a mindtf clone")
