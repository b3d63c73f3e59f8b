"""Build the slide decks to HTML: ``python slides/build.py [NN ...]``.

Each deck is a Marp Markdown file ``slides/NN_topic.md`` (``marp: true`` front matter, slides
separated by ``---`` lines). The build::

    slides/NN_topic.md --Marp CLI--> build/slides/NN_topic.html   (math rendered to SVG)
    slides/figures/*.png  (the images the decks use) --copied--> build/slides/figures/

Open ``build/slides/NN_topic.html`` in a browser to present (see ``slides/README.md``). Marp CLI
runs on Node.js: the script uses a ``marp`` on the PATH (``npm install -g
@marp-team/marp-cli``), else ``npx`` fetches the pinned version below from the npm registry once.
The figures are exported from the executed lesson notebooks by ``python lessons/build.py``.

``parse_deck`` and ``images`` are what ``tests/test_slides.py`` checks the decks with (CI has no
Node.js: there the decks are parsed and their references checked, and built only where ``marp``
is installed).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

SLIDES_DIR = Path(__file__).resolve().parent
OUT_DIR = SLIDES_DIR.parent / "build" / "slides"
MARP_PACKAGE = "@marp-team/marp-cli@4.5.1"  # the version the decks were built with
FENCE = re.compile(r"^(```|~~~)")
RULER = re.compile(r"^---\s*$")  # Marp's slide separator
# ![alt](target "title") -- Marp reads size keywords from the alt text: ![w:600](figures/x.png)
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def decks(numbers=()) -> list:
    """The decks ``slides/NN_*.md``, all of them or those whose number ``NN`` is given."""
    paths = sorted(SLIDES_DIR.glob("[0-9][0-9]_*.md"))
    if numbers:
        wanted = {f"{int(n):02d}" for n in numbers}
        paths = [p for p in paths if p.name[:2] in wanted]
        missing = wanted - {p.name[:2] for p in paths}
        if missing:
            raise SystemExit(f"no deck slides/NN_*.md for {sorted(missing)}")
    return paths


def parse_deck(text: str):
    """``(front matter {key: value}, [slide markdown, ...])`` of a Marp deck.

    Raises ``ValueError`` when the deck does not start with a front matter block saying
    ``marp: true``. Slides are split on ``---`` lines outside fenced code blocks, as Marp does.
    """
    lines = text.splitlines()
    if not lines or not RULER.match(lines[0]):
        raise ValueError("a deck starts with a front matter block: ---, marp: true, ..., ---")
    try:
        end = next(i for i in range(1, len(lines)) if RULER.match(lines[i]))
    except StopIteration:
        raise ValueError("the front matter block is not closed by a --- line") from None
    front = {}
    for line in lines[1:end]:
        key, sep, value = line.partition(":")
        if sep:
            front[key.strip()] = value.strip()
    if front.get("marp") != "true":
        raise ValueError("the front matter must say `marp: true` (Marp renders nothing else)")
    slides, current, fenced = [], [], False
    for line in lines[end + 1:]:
        if FENCE.match(line.strip()):
            fenced = not fenced
        if RULER.match(line) and not fenced:
            slides.append("\n".join(current).strip())
            current = []
        else:
            current.append(line)
    slides.append("\n".join(current).strip())
    return front, slides


def images(text: str) -> list:
    """The image targets of a deck, in order (``figures/04_loss.png``, ...), code excluded."""
    found, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            found += IMAGE.findall(re.sub(r"`[^`]*`", "", line))
    return found


def marp_command() -> list:
    """How to run Marp CLI here: ``marp`` on the PATH, else ``npx`` with the pinned version."""
    if shutil.which("marp"):
        return ["marp"]
    if shutil.which("npx"):
        return ["npx", "--yes", MARP_PACKAGE]
    raise SystemExit("Marp CLI needs Node.js: install Node.js 18 or newer (https://nodejs.org), "
                     f"then `npm install -g {MARP_PACKAGE}` or let this script use npx")


def build(deck: Path, out_dir: Path = OUT_DIR, marp=None) -> Path:
    """Render one deck to ``out_dir/NN_topic.html`` and copy the images it uses next to it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = deck.read_text(encoding="utf-8")
    parse_deck(text)  # fail early, with the reason, on a deck Marp would render wrongly
    for target in images(text):
        if "://" in target or target.startswith("data:"):
            continue
        src = (deck.parent / target).resolve()
        if not src.is_file():
            raise FileNotFoundError(f"{deck.name}: image {target} not found (run "
                                    "`python lessons/build.py NN` to export a lesson's figures)")
        dest = out_dir / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    out = out_dir / deck.with_suffix(".html").name
    cmd = [*(marp or marp_command()), "--no-config-file", str(deck), "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if res.returncode != 0 or not out.is_file():
        raise RuntimeError(f"{deck.name}: Marp failed ({' '.join(cmd)}):\n{res.stdout}{res.stderr}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("numbers", nargs="*", help="deck numbers (default: all), e.g. 4 or 04")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"output folder ({OUT_DIR})")
    args = parser.parse_args(argv)
    marp = marp_command()
    for deck in decks(args.numbers):
        print(f"{deck.name} -> {build(deck, args.out, marp)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
