"""Build the lesson notebooks from their sources: ``python lessons/build.py [--smoke] [NN ...]``.

Each lesson is a jupytext percent file ``lessons/NN_topic.py``, the text you read and review.
The notebook next to it is generated::

    NN_topic.py --jupytext--> notebook --nbclient (headless kernel)--> NN_topic.ipynb (+ outputs)

The kernel is this interpreter (``sys.executable``), so run the script from the venv. The full
run writes ``NN_topic.ipynb`` with its outputs: commit it with the source. ``--smoke`` sets
``MINDTF_LESSON_SMOKE=1`` (each lesson's ``parameters`` cell shrinks its sizes and steps),
executes the lessons and writes the notebooks under ``build/lessons-smoke/`` (git-ignored): a check
that the lessons run, not something to commit. ``--text-only`` copies edited markdown cells into
the committed notebooks without running anything (refused when a code cell changed).
``tests/test_lessons.py`` uses the functions below.
The script exits with status 1 when a lesson fails or prints MindSpore log noise.

A full run also exports the figures the slides show: the image output of each code cell tagged
``figure:NAME`` (``# %% tags=["figure:04_loss"]``) is written to ``slides/figures/NAME.png``,
so that a deck never shows a figure other than its lesson's (``tests/test_slides.py`` checks
that they are byte for byte the committed notebook's).
"""
from __future__ import annotations

import argparse
import base64
import os
import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat

LESSONS_DIR = Path(__file__).resolve().parent
SMOKE_DIR = LESSONS_DIR.parent / "build" / "lessons-smoke"
FIGURES_DIR = LESSONS_DIR.parent / "slides" / "figures"  # figures exported for the slides
FIGURE_TAG = "figure:"
SMOKE_ENV = "MINDTF_LESSON_SMOKE"
SMOKE_BUDGET_S = 90  # a smoke run must fit in this on a 2-core CPU
# What MindSpore's logs look like: "[WARNING] ME(1234,7f0c..,python):2026-11-22-..." from C++,
# "[WARNING] ME(1234:5678,MainProcess):2026-11-22-..." from Python; also CORE(, KERNEL(, DEVICE(...
MINDSPORE_LOG = re.compile(r"^\[(?:DEBUG|INFO|WARNING|ERROR|CRITICAL|EXCEPTION)\] [A-Z_]+\(\d+[,:]")
PYTHON_WARNING = re.compile(r"\b[A-Z]\w*Warning: ")  # "/x/y.py:12: UserWarning: ..."


def lesson_sources(numbers=()) -> list:
    """The lesson sources ``NN_*.py``, all of them or those whose number ``NN`` is given."""
    paths = sorted(p for p in LESSONS_DIR.glob("[0-9][0-9]_*.py"))
    if numbers:
        wanted = {f"{int(n):02d}" for n in numbers}
        paths = [p for p in paths if p.name[:2] in wanted]
        missing = wanted - {p.name[:2] for p in paths}
        if missing:
            raise SystemExit(f"no lesson source lessons/NN_*.py for {sorted(missing)}; "
                             f"have: {[p.name for p in lesson_sources()]}")
    return paths


def to_notebook(source: Path) -> nbformat.NotebookNode:
    """The percent source as an (unexecuted) notebook."""
    nb = jupytext.read(source, fmt="py:percent")
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                          "language": "python"})
    return nb


def cell_sources(nb) -> list:
    """What a notebook says, without outputs or metadata: ``[(cell_type, source), ...]``."""
    return [(cell.cell_type, cell.source.strip()) for cell in nb.cells]


def execute(nb, smoke: bool, cwd: Path = LESSONS_DIR, timeout: int = 1200):
    """Run every cell of ``nb`` in a fresh headless kernel of this interpreter; returns ``nb``.

    Raises ``nbclient.exceptions.CellExecutionError`` (with the cell and its traceback) when a
    cell fails. ``MINDTF_LESSON_SMOKE`` is set to ``1`` or removed to select the mode; ``GLOG_v``
    is removed, so that each lesson's own log setting is what runs (and what the tests check).
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    env = dict(os.environ)
    env.pop("GLOG_v", None)
    env.pop(SMOKE_ENV, None)
    if smoke:
        env[SMOKE_ENV] = "1"
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures saved inline
    # kernel_dirs=[]: ipykernel's built-in "python3" spec, which runs sys.executable, rather than
    # any kernel of that name installed for the user or the system
    km = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    client = NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute(env=env)
    nb.metadata.pop("widgets", None)
    return nb


def noise(nb) -> list:
    """Lines of MindSpore log noise or Python warnings in the outputs of ``nb``."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            text = out.get("text", "") or out.get("data", {}).get("text/plain", "")
            found += [f"cell {i}: {line[:200]}" for line in text.splitlines()
                      if MINDSPORE_LOG.search(line) or PYTHON_WARNING.search(line)]
    return found


def tagged_figures(nb) -> dict:
    """``{NAME: png bytes}``: the first PNG output of each code cell tagged ``figure:NAME``."""
    figures = {}
    for i, cell in enumerate(nb.cells):
        names = [t[len(FIGURE_TAG):] for t in cell.metadata.get("tags", [])
                 if t.startswith(FIGURE_TAG)]
        if not names:
            continue
        pngs = [out["data"]["image/png"] for out in cell.get("outputs", [])
                if "image/png" in out.get("data", {})]
        if not pngs:
            raise RuntimeError(f"cell {i} is tagged {FIGURE_TAG}{names[0]} but drew no figure "
                               "(end it with plt.show(), or remove the tag)")
        for name in names:
            if name in figures or not re.fullmatch(r"[0-9]{2}_[A-Za-z0-9_-]+", name):
                raise RuntimeError(f"cell {i}: figure name {name!r} is used twice or is not "
                                   "NN_name (the lesson number, then letters, digits, _ or -)")
            figures[name] = base64.b64decode(pngs[0])
    return figures


def export_figures(nb, source: Path) -> list:
    """Write the tagged figures of a lesson to ``slides/figures/``; returns their paths."""
    figures = tagged_figures(nb)
    wrong = [n for n in figures if n[:2] != source.name[:2]]
    if wrong:
        raise RuntimeError(f"{source.name}: figure names {wrong} must start with the lesson "
                           f"number {source.name[:2]}_")
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, png in figures.items():
        path = FIGURES_DIR / f"{name}.png"
        path.write_bytes(png)
        paths.append(path)
    return paths


def build(source: Path, smoke: bool) -> Path:
    """Convert, execute and save one lesson; returns the notebook's path."""
    out = (SMOKE_DIR if smoke else LESSONS_DIR) / source.with_suffix(".ipynb").name
    start = time.perf_counter()
    nb = execute(to_notebook(source), smoke)
    took = time.perf_counter() - start
    problems = noise(nb)
    print(f"{source.name}: {'smoke' if smoke else 'full'} run in {took:.0f} s")
    if smoke and took > SMOKE_BUDGET_S:
        print(f"  warning: over the {SMOKE_BUDGET_S} s smoke budget: shrink the sizes that "
              f"SMOKE selects in the lesson's parameters cell")
    if problems and not smoke:  # keep the committed notebook as it was
        raise RuntimeError(f"{source.name}: log noise in the outputs, notebook not written (set "
                           "GLOG_v before importing mindspore, silence the warning):\n  "
                           + "\n  ".join(problems))
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    print(f"  wrote {out}")
    if not smoke:
        figures = export_figures(nb, source)
        if figures:
            print(f"  wrote {len(figures)} figure(s) for the slides to {FIGURES_DIR}")
    if problems:
        raise RuntimeError(f"{source.name}: log noise in the outputs (set GLOG_v before "
                           "importing mindspore, silence the warning):\n  " + "\n  ".join(problems))
    return out


def update_text(source: Path) -> Path:
    """Copy the markdown cells of ``source`` into its committed notebook, keeping the outputs.

    For a change of wording only: refused (``RuntimeError``) when a code cell, or the sequence
    of cells, differs from the notebook's -- then the outputs could be stale; run a full build.
    """
    out = source.with_suffix(".ipynb")
    if not out.is_file():
        raise RuntimeError(f"{out.name} does not exist yet: run a full build first")
    fresh, committed = to_notebook(source), nbformat.read(out, as_version=4)
    if [c.cell_type for c in fresh.cells] != [c.cell_type for c in committed.cells] or any(
            new.source.strip() != old.source.strip()
            for new, old in zip(fresh.cells, committed.cells) if new.cell_type == "code"):
        raise RuntimeError(f"{source.name}: code cells changed since the notebook was executed; "
                           f"run `python lessons/build.py {source.name[:2]}` (a full build)")
    for new, old in zip(fresh.cells, committed.cells):
        if new.cell_type == "markdown":
            old.source = new.source
    nbformat.write(committed, out)
    print(f"{source.name}: text updated in {out} (outputs kept)")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("numbers", nargs="*", help="lesson numbers (default: all), e.g. 1 or 01")
    parser.add_argument("--smoke", action="store_true",
                        help=f"quick run ({SMOKE_ENV}=1), notebooks written under {SMOKE_DIR}")
    parser.add_argument("--text-only", action="store_true",
                        help="only copy changed markdown cells into the committed notebooks, "
                             "keeping their outputs (refused when a code cell changed)")
    args = parser.parse_args(argv)
    failed = []
    for source in lesson_sources(args.numbers):
        try:
            if args.text_only:
                update_text(source)
            else:
                build(source, args.smoke)
        except Exception as err:  # report every lesson, then fail
            print(f"{source.name}: FAILED\n{err}", file=sys.stderr)
            failed.append(source.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
