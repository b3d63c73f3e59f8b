"""Lessons: sources and notebooks agree, and every lesson runs headless without log noise.

The default run executes each lesson in smoke mode (``MINDTF_LESSON_SMOKE=1``: small sizes, a
few seconds of work after MindSpore's start-up); ``pytest -m slow`` runs them in full mode. Both
use ``lessons/build.py``, the script that generates the committed notebooks. Lessons that read a
dataset get the test mirror (``$MINDTF_DATA_MIRROR``, else ``../shared/data``, as in
``conftest.py``); in smoke mode they never use the network.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import time
from pathlib import Path

import pytest

LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"
SOURCES = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.py"))
IDS = [p.stem for p in SOURCES]


def _load_build():
    for module in ("jupytext", "nbformat", "nbclient", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"{module} is missing: pip install -r requirements-dev.txt")
    spec = importlib.util.spec_from_file_location("lessons_build", LESSONS_DIR / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build():
    return _load_build()


@pytest.fixture
def dataset_mirror(monkeypatch):
    """The kernel inherits ``MINDTF_DATA_MIRROR``: the tests' mirror when none is set."""
    shared = LESSONS_DIR.parent.parent / "shared" / "data"
    if not os.environ.get("MINDTF_DATA_MIRROR", "").strip() and shared.is_dir():
        monkeypatch.setenv("MINDTF_DATA_MIRROR", str(shared))


def test_every_lesson_has_a_source_and_a_notebook():
    assert SOURCES, "no lesson sources lessons/NN_topic.py found"
    notebooks = {p.stem for p in LESSONS_DIR.glob("[0-9][0-9]_*.ipynb")}
    sources = {p.stem for p in SOURCES}
    assert not sources - notebooks, (
        f"lessons without a notebook: {sorted(sources - notebooks)}; "
        "run `python lessons/build.py NN` and commit the .ipynb")
    assert not notebooks - sources, (
        f"notebooks without a source: {sorted(notebooks - sources)}; lessons are written as "
        "jupytext percent files lessons/NN_topic.py and the notebook is generated from them")


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_notebook_matches_its_source(build, source):
    notebook = source.with_suffix(".ipynb")
    if not notebook.is_file():
        pytest.fail(f"{notebook.name} is missing: run `python lessons/build.py {source.name[:2]}`")
    expected = build.cell_sources(build.to_notebook(source))
    committed = build.nbformat.read(notebook, as_version=4)
    assert build.cell_sources(committed) == expected, (
        f"{notebook.name} does not match {source.name}: run "
        f"`python lessons/build.py {source.name[:2]}` and commit both files")
    unrun = [i for i, cell in enumerate(committed.cells)
             if cell.cell_type == "code" and cell.get("execution_count") is None]
    assert not unrun, (f"{notebook.name}: code cells {unrun} were never executed; the notebook is "
                       f"saved with its outputs by `python lessons/build.py {source.name[:2]}`")


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_lesson_has_a_smoke_switch(build, source):
    cells = build.to_notebook(source).cells
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, (f"{source.name}: needs exactly one code cell tagged `parameters` "
                              '(`# %% tags=["parameters"]`), found {len(tagged)}')
    assert 'os.environ.get("MINDTF_LESSON_SMOKE") == "1"' in tagged[0].source, (
        f"{source.name}: the parameters cell must define "
        '`SMOKE = os.environ.get("MINDTF_LESSON_SMOKE") == "1"` and shrink the run with it')


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_lesson_has_the_course_sections(build, source):
    """Goal, exercises with their solutions folded, expected results, as lessons/README.md says."""
    text = "\n".join(c.source for c in build.to_notebook(source).cells
                     if c.cell_type == "markdown")
    needed = {"a **Goal.** paragraph": "**Goal.**", "an ## Exercises section": "## Exercise",
              "folded solutions (<details>)": "<details>",
              "an ## Expected results section": "## Expected results"}
    missing = [what for what, mark in needed.items() if mark not in text]
    assert not missing, f"{source.name} lacks {', '.join(missing)} (see lessons/README.md)"


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_lesson_imports_public_names_only(source):
    """Lessons use mindtf's public API: no private module or name (leading underscore)."""
    bad = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mindtf"):
            parts = node.module.split(".") + [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            parts = [p for a in node.names if a.name.startswith("mindtf")
                     for p in a.name.split(".")]
        else:
            continue
        if any(p.startswith("_") for p in parts):
            bad.append(f"line {node.lineno}: {ast.unparse(node)}")
    assert not bad, f"{source.name} imports private names: {bad}"


def test_noise_detector_finds_mindspore_logs_and_warnings(build):
    nbf = build.nbformat.v4
    cell = nbf.new_code_cell("x", outputs=[
        nbf.new_output("stream", name="stdout", text="loss 1.0\nThe Warning: is a word here\n"),
        nbf.new_output("stream", name="stderr", text=(
            "[WARNING] ME(7539:140459712146304,MainProcess):2026-12-03-15:28:47.699.000 "
            "[mindspore/device_context/ascend/device.py:58] Device Ascend is not available.\n"
            "[ERROR] KERNEL(7539,7fbf533f6b80,python):2026-12-03-15:28:48.017.472 [x.cc:57] y\n"
            "/a/b.py:3: UserWarning: something\n"))])
    nb = nbf.new_notebook(cells=[nbf.new_markdown_cell("[WARNING] ME(1, in markdown"), cell])
    found = build.noise(nb)
    assert len(found) == 3, found
    assert all(f.startswith("cell 1: ") for f in found)


def _run(build, source, smoke):
    start = time.perf_counter()
    nb = build.execute(build.to_notebook(source), smoke=smoke)
    took = time.perf_counter() - start
    problems = build.noise(nb)
    assert not problems, (f"{source.name}: MindSpore log noise or warnings in the outputs (set "
                          "GLOG_v before importing mindspore):\n  " + "\n  ".join(problems))
    return took


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_lesson_runs_in_smoke_mode(build, source, dataset_mirror):
    took = _run(build, source, smoke=True)
    # the budget is 90 s on a 2-core CPU; twice that leaves room for a busy machine and still
    # catches a lesson whose smoke mode forgot to shrink a training run
    assert took < 2 * build.SMOKE_BUDGET_S, (
        f"{source.name}: smoke run took {took:.0f} s (budget {build.SMOKE_BUDGET_S} s): shrink "
        "what SMOKE selects in its parameters cell")


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_lesson_runs_in_full_mode(build, source, dataset_mirror):
    _run(build, source, smoke=False)


def test_text_only_update_keeps_outputs_and_refuses_changed_code(build, tmp_path):
    source = tmp_path / "09_demo.py"
    source.write_text("# %% [markdown]\n# # Old title\n\n# %%\nprint(1)\n", encoding="utf-8")
    nb = build.to_notebook(source)
    nb.cells[1].outputs = [build.nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    build.nbformat.write(nb, source.with_suffix(".ipynb"))

    source.write_text("# %% [markdown]\n# # New title\n\n# %%\nprint(1)\n", encoding="utf-8")
    build.update_text(source)
    updated = build.nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert updated.cells[0].source == "# New title"
    assert updated.cells[1].outputs[0]["text"] == "1\n"

    source.write_text("# %% [markdown]\n# # New title\n\n# %%\nprint(2)\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="code cells changed"):
        build.update_text(source)
