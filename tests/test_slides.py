"""Slides: one Marp deck per lesson that parses into slides, uses the lessons' own figures, and
builds to HTML where Marp CLI is installed.

CI has no Node.js, so the default run checks what a build needs without running Marp: every deck
has a ``marp: true`` front matter and a title, splits into slides that each start with a heading,
and shows only images under ``slides/figures/`` that exist (``tests/test_links.py`` checks every
other link of the decks). The figures themselves must be byte for byte the PNG outputs of the
committed notebooks' cells tagged ``figure:NAME`` (``python lessons/build.py NN`` exports them).
With ``marp`` on the PATH, ``test_deck_builds_to_html`` also renders each deck.
"""
from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SLIDES_DIR = ROOT / "slides"
LESSONS_DIR = ROOT / "lessons"
DECKS = sorted(SLIDES_DIR.glob("[0-9][0-9]_*.md"))
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.py"))
MIN_SLIDES = 4


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def slides_build():
    return _load(SLIDES_DIR / "build.py", "slides_build")


@pytest.fixture(scope="module")
def exported_figures():
    """``{NAME: png bytes}`` of every tagged figure in the committed notebooks."""
    if importlib.util.find_spec("nbformat") is None:
        pytest.fail("nbformat is missing: pip install -r requirements-dev.txt")
    lessons_build = _load(LESSONS_DIR / "build.py", "lessons_build_for_slides")
    figures = {}
    for notebook in sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb")):
        nb = lessons_build.nbformat.read(notebook, as_version=4)
        figures.update(lessons_build.tagged_figures(nb))
    return figures


def test_every_lesson_has_a_deck():
    decks = {p.name[:2] for p in DECKS}
    missing = [p.name for p in LESSONS if p.name[:2] not in decks]
    assert not missing, (f"lessons without slides: {missing}; add slides/NN_topic.md (Marp "
                         "Markdown, see slides/README.md)")


@pytest.mark.parametrize("deck", DECKS, ids=[p.stem for p in DECKS])
def test_deck_parses_into_slides(slides_build, deck):
    front, slides = slides_build.parse_deck(deck.read_text(encoding="utf-8"))
    assert front.get("title"), f"{deck.name}: give the deck a `title:` in its front matter"
    assert len(slides) >= MIN_SLIDES, f"{deck.name}: {len(slides)} slides, expected a real deck"
    for i, slide in enumerate(slides, start=1):
        # a slide's first line (after Marp directives in HTML comments) is its heading
        lines = [ln for ln in re.sub(r"<!--.*?-->", "", slide, flags=re.S).splitlines()
                 if ln.strip()]
        assert lines and lines[0].startswith("#"), (
            f"{deck.name}, slide {i}: starts with {lines[:1]} instead of a heading (an empty "
            "slide or a stray --- line?)")


@pytest.mark.parametrize("deck", DECKS, ids=[p.stem for p in DECKS])
def test_deck_images_are_lesson_figures_that_exist(slides_build, deck):
    targets = slides_build.images(deck.read_text(encoding="utf-8"))
    bad = [t for t in targets if not t.startswith("figures/") or not (SLIDES_DIR / t).is_file()]
    assert not bad, (f"{deck.name}: images {bad} are not files under slides/figures/; figures "
                     "come from the lessons (tag the cell `figure:NN_name`, run "
                     "`python lessons/build.py NN`)")


def test_figures_are_the_notebooks_figures(exported_figures):
    on_disk = {p.stem: p.read_bytes() for p in (SLIDES_DIR / "figures").glob("*.png")}
    orphans = sorted(set(on_disk) - set(exported_figures))
    missing = sorted(set(exported_figures) - set(on_disk))
    stale = sorted(n for n in set(on_disk) & set(exported_figures)
                   if on_disk[n] != exported_figures[n])
    assert not (orphans or missing or stale), (
        f"slides/figures/ is out of date: not drawn by any notebook {orphans} (delete them), "
        f"not exported {missing}, different from the notebook {stale}: run "
        "`python lessons/build.py NN` for the lessons concerned")


@pytest.mark.parametrize("deck", DECKS, ids=[p.stem for p in DECKS])
def test_deck_builds_to_html(slides_build, deck, tmp_path):
    if shutil.which("marp") is None:
        pytest.skip("Marp CLI is not installed (npm install -g @marp-team/marp-cli); the decks "
                    "were parsed and their images checked instead")
    out = slides_build.build(deck, tmp_path, ["marp"])
    html = out.read_text(encoding="utf-8")
    _, slides = slides_build.parse_deck(deck.read_text(encoding="utf-8"))
    assert html.count("<section") >= len(slides), f"{deck.name}: fewer slides in the HTML"
    for target in slides_build.images(deck.read_text(encoding="utf-8")):
        assert (tmp_path / target).is_file(), f"{target} was not copied next to the HTML"


def test_parse_deck_rejects_what_marp_would_not_render(slides_build):
    with pytest.raises(ValueError, match="front matter"):
        slides_build.parse_deck("# no front matter\n")
    with pytest.raises(ValueError, match="marp: true"):
        slides_build.parse_deck("---\ntitle: x\n---\n# A\n")
    front, slides = slides_build.parse_deck(
        "---\nmarp: true\ntitle: T\n---\n\n# One\n\n```\n---\n```\n\n---\n\n# Two\n")
    assert front == {"marp": "true", "title": "T"}
    assert [s.splitlines()[0] for s in slides] == ["# One", "# Two"]  # --- in code: no split
