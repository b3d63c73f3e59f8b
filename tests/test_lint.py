"""The linter (ruff, configured in pyproject.toml) finds nothing in mindtf/, lessons/, slides/
and tests/."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("mindtf", "lessons", "slides", "tests")


def test_ruff_finds_nothing():
    if importlib.util.find_spec("ruff") is None:
        pytest.fail("ruff is missing: pip install -r requirements-dev.txt")
    cmd = [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
           *CHECKED]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, (
        f"ruff found problems (fix them, or `ruff check --fix {' '.join(CHECKED)}` for the "
        f"mechanical ones; rules in pyproject.toml [tool.ruff]):\n{res.stdout}{res.stderr}")
