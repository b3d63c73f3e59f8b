"""Execute every lesson notebook (slow: `pytest -m slow`)."""
import os
from pathlib import Path

import pytest

LESSONS = sorted((Path(__file__).resolve().parent.parent / "lessons").glob("*.ipynb"))
NOISE = ("[WARNING] ME(", "[ERROR] ME(", "[WARNING] CORE(", "[ERROR] KERNEL(")


def test_lessons_exist():
    assert LESSONS, "no lesson notebooks found"


@pytest.mark.slow
@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_runs_cleanly(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{path.name}: {out.get('ename')}: {out.get('evalue')}"
            text = out.get("text", "")
            assert not any(n in text for n in NOISE), f"{path.name}: MindSpore log noise: {text[:200]}"
