"""Every relative link and image in the documentation resolves to a file of the repository.

Checked: the Markdown files (``*.md`` at the top, in ``lessons/``, ``slides/``, ``benchmarks/``
and ``data/README.md``) and the markdown cells of the lesson sources ``lessons/NN_*.py``.
Inline links and images, reference definitions and HTML ``src``/``href`` attributes count;
code blocks and inline code do not. External links (``https:``, ``mailto:``) are not fetched.
An anchor (``file.md#section``, ``#section``) into a Markdown file must name one of its headings
(GitHub's rule: lower case, punctuation dropped, spaces to ``-``).
"""
from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_GLOBS = ("*.md", "lessons/*.md", "slides/*.md", "benchmarks/*.md", "data/README.md")
LESSON_GLOB = "lessons/[0-9][0-9]_*.py"

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+\1")
# [text](target "title") and ![alt](target); the text may hold one level of [brackets]
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'][^)]*)?\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HTML_ATTR = re.compile(r"<(?:img|a|source)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']",
                       re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def doc_files() -> list:
    found = {p for pattern in DOC_GLOBS for p in ROOT.glob(pattern)}
    return sorted(found) + sorted(ROOT.glob(LESSON_GLOB))


def markdown_of(path: Path) -> str:
    """The Markdown text of a file: itself, or a lesson's markdown cells (comment marks off)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return text
    cells, inside = [], False
    for line in text.splitlines():
        if line.startswith("# %%"):
            inside = line.startswith("# %% [markdown]")
            cells.append("")  # a cell boundary ends any code fence of the cell before
            continue
        if inside:
            cells.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    return "\n".join(cells)


def links(markdown: str) -> list:
    """``[(line number, target), ...]``: every link and image target outside code."""
    found, fenced = [], False
    for number, line in enumerate(markdown.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        line = INLINE_CODE.sub("", line)
        for pattern in (INLINE_LINK, REFERENCE, HTML_ATTR):
            found += [(number, target) for target in pattern.findall(line)]
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces -> hyphens."""
    text = INLINE_CODE.sub(lambda m: m.group(0).strip("`"), heading.strip()).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set:
    """The anchors the headings of a Markdown file (or a lesson's markdown cells) define."""
    found, fenced, seen = set(), False, {}
    for line in markdown_of(path).splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match and not fenced:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def problems_in(path: Path) -> list:
    bad = []
    for number, target in links(markdown_of(path)):
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue  # external (https:, mailto:, data:) or empty
        file_part, _, anchor = urllib.parse.unquote(target).partition("#")
        file_part = file_part.split("?")[0]
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)} line {number}: {target}"
        if not dest.exists():
            bad.append(f"{where} -> {dest.relative_to(ROOT) if ROOT in dest.parents else dest} "
                       "does not exist")
        elif ROOT != dest and ROOT not in dest.parents:
            bad.append(f"{where} points outside the repository")
        elif anchor and dest.suffix in (".md", ".py") and anchor.lower() not in anchors(dest):
            bad.append(f"{where}: no heading with the anchor #{anchor} in {dest.name}")
    return bad


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_images_resolve(path):
    bad = problems_in(path)
    assert not bad, ("broken links (fix the path, or create the file it names):\n  "
                     + "\n  ".join(bad))


def test_the_checker_sees_links_images_and_anchors(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "fig.png").write_bytes(b"png")
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\n## Der Abschnitt · 中文\n\n"
                   "[ok](fig.png) ![ok](fig.png) [ok](#title) [ok](#der-abschnitt--中文)\n"
                   "[gone](missing.md) ![gone](figures/none.png \"t\") [bad anchor](#nope)\n"
                   '<img src="also-missing.png"> [ext](https://example.com/x.md) `[c](c.md)`\n'
                   "[ref]: ref-missing.txt\n```\n[code](code.md)\n```\n", encoding="utf-8")
    bad = problems_in(doc)
    expected = ["missing.md", "figures/none.png", "#nope", "also-missing.png", "ref-missing.txt"]
    assert len(bad) == len(expected) and all(t in b for t, b in zip(expected, bad)), bad


def test_lesson_markdown_cells_are_read_without_the_code(tmp_path):
    lesson = tmp_path / "01_x.py"
    lesson.write_text('# %% [markdown]\n# # Title\n# See [a](a.md).\n\n# %%\nx = "[b](b.md)"\n'
                      "# %% [markdown]\n# ![c](c.png)\n", encoding="utf-8")
    assert [t for _, t in links(markdown_of(lesson))] == ["a.md", "c.png"]
    assert anchors(lesson) == {"title"}
