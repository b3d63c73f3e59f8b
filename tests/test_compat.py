"""Versions: the supported ranges and the tested cells agree with the packaging files, the
verdicts read right, and every MindSpore name mindtf uses exists in the installed MindSpore."""
import ast
import importlib
import re
import sys
from pathlib import Path

import pytest

from mindtf import compat
from mindtf.compat import check_versions, version_tuple

REPO = Path(__file__).resolve().parent.parent


def test_ranges_match_pyproject_and_requirements():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    lo, hi = re.search(r'"mindspore>=([\d.]+),<([\d.]+)"', text).groups()
    assert version_tuple(lo) == version_tuple(compat.SUPPORTED_MINDSPORE[0])
    assert version_tuple(hi) == version_tuple(compat.SUPPORTED_MINDSPORE[1])
    lo, hi = re.search(r'requires-python = ">=([\d.]+),<([\d.]+)"', text).groups()
    assert (lo, hi) == compat.SUPPORTED_PYTHON
    pin = re.search(r"^mindspore==(\S+)", (REPO / "requirements.txt").read_text(encoding="utf-8"),
                    re.M).group(1)
    assert pin == compat.DEFAULT_MINDSPORE
    assert any(ms == pin for ms, _ in compat.TESTED_CELLS)  # the default is a tested release


@pytest.mark.parametrize("cell", compat.TESTED_CELLS, ids=lambda c: f"ms{c[0]}-py{c[1]}")
def test_every_tested_cell_is_supported(cell):
    ms, py = cell
    assert check_versions(ms, py + ".1") == check_versions(ms, py)
    assert check_versions(ms, py).status == "tested"


def test_verdicts():
    assert version_tuple("2.10.0rc1") == (2, 10, 0) and version_tuple("2.7.1.post1") == (2, 7, 1)
    assert version_tuple("2") == (2, 0, 0) and version_tuple("1.26.4") < version_tuple("2.0")
    assert check_versions("2.9.0", "3.11.7").ok
    untested = check_versions("2.7.1.post1", "3.11")
    assert untested.status == "untested" and untested.ok
    assert 'CELLS="3.11:2.7.1.post1" bash .ci/version_matrix.sh' in untested.message
    old = check_versions("2.6.0", "3.10")
    assert old.status == "unsupported" and not old.ok
    assert "outside the supported range >=2.7.0,<2.11.0" in old.message
    assert f"pip install 'mindspore=={compat.DEFAULT_MINDSPORE}'" in old.message
    assert check_versions("2.11.0", "3.11").status == "unsupported"
    assert "Python 3.13" in check_versions(compat.DEFAULT_MINDSPORE, "3.13.0").message
    here = "%d.%d" % sys.version_info[:2]
    assert check_versions("2.8.0") == check_versions("2.8.0", here)  # this interpreter


def test_the_cell_under_test_is_not_untested(monkeypatch):
    """While .ci/version_matrix.sh runs a cell's tests (MINDTF_MATRIX_CELL), that cell does not
    warn as untested; any other cell still does."""
    monkeypatch.setenv(compat.MATRIX_CELL_ENV, "3.11:2.7.0")
    assert check_versions("2.7.0", "3.11.7").status == "tested"
    assert "being tested now" in check_versions("2.7.0", "3.11.7").message
    assert check_versions("2.7.0", "3.10.13").status == "untested"
    assert check_versions("2.8.0", "3.11.7").status == "untested"
    monkeypatch.delenv(compat.MATRIX_CELL_ENV)
    assert check_versions("2.7.0", "3.11.7").status == "untested"


def _mindspore_names():
    """Every dotted MindSpore name the package uses: imports and attribute chains on them."""
    names = set()
    for path in (REPO / "mindtf").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        alias = {"ms": "mindspore"}  # also `ms = _quiet_mindspore()` (mindtf.runtime)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "mindspore":  # `import mindspore[.x] [as y]`
                        alias[a.asname or "mindspore"] = a.name if a.asname else "mindspore"
            elif (isinstance(node, ast.ImportFrom)
                  and (node.module or "").split(".")[0] == "mindspore"):
                for a in node.names:
                    alias[a.asname or a.name] = f"{node.module}.{a.name}"
                    names.add(f"{node.module}.{a.name}")
        for node in ast.walk(tree):
            parts = []
            while isinstance(node, ast.Attribute):
                parts.append(node.attr)
                node = node.value
            if isinstance(node, ast.Name) and node.id in alias and parts:
                names.add(".".join([alias[node.id]] + parts[::-1]))
    return names


def _resolves(name: str) -> bool:
    parts = name.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], 1):
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        try:  # a submodule not imported yet
            obj = importlib.import_module(".".join(parts[: i + 1]))
        except ImportError:
            return False
    return True


def test_every_mindspore_name_mindtf_uses_exists():
    """The cheap half of the version matrix: an API a release renamed or dropped shows up here by
    name (also the ones only GPU / Ascend code paths reach), before any test trips over it. A
    shim in mindtf.compat reaches a name that only some releases have with getattr()."""
    import mindspore

    names = _mindspore_names()
    assert len(names) > 50  # the scan found the package's uses
    missing = sorted(n for n in names if not _resolves(n))
    assert not missing, (f"MindSpore {mindspore.__version__} lacks names mindtf uses: {missing}. "
                         "Bridge them in mindtf/compat.py (one shim per difference).")
