"""Build the lesson notebooks from their sources: ``python lessons/build.py [--smoke] [NN ...]``.

Each lesson is a jupytext percent file ``lessons/NN_topic.py``, the text you read and review.
The notebook next to it is generated::

    NN_topic.py --jupytext--> notebook --nbclient (headless kernel)--> NN_topic.ipynb (+ outputs)

The kernel is this interpreter (``sys.executable``), so run the script from the venv. The full
run writes ``NN_topic.ipynb`` with its outputs: commit it with the source. ``--smoke`` sets
``MINDTF_LESSON_SMOKE=1`` (each lesson's ``parameters`` cell shrinks its sizes and steps),
executes the lessons and writes the notebooks under ``build/lessons-smoke/`` (git-ignored): a check
that the lessons run, not something to commit. ``tests/test_lessons.py`` uses the functions below.
The script exits with status 1 when a lesson fails or prints MindSpore log noise.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat

LESSONS_DIR = Path(__file__).resolve().parent
SMOKE_DIR = LESSONS_DIR.parent / "build" / "lessons-smoke"
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
    if problems:
        raise RuntimeError(f"{source.name}: log noise in the outputs (set GLOG_v before "
                           "importing mindspore, silence the warning):\n  " + "\n  ".join(problems))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("numbers", nargs="*", help="lesson numbers (default: all), e.g. 1 or 01")
    parser.add_argument("--smoke", action="store_true",
                        help=f"quick run ({SMOKE_ENV}=1), notebooks written under {SMOKE_DIR}")
    args = parser.parse_args(argv)
    failed = []
    for source in lesson_sources(args.numbers):
        try:
            build(source, args.smoke)
        except Exception as err:  # report every lesson, then fail
            print(f"{source.name}: FAILED\n{err}", file=sys.stderr)
            failed.append(source.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
