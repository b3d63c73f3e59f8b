"""Where :mod:`mindtf.data.fetch` looks for one file, in order: mirrors, a hand-placed original
download next to the files, then the registry's URLs."""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from mindtf.data.paths import Mirror
from mindtf.data.registry import DatasetSpec, FileSpec, Source


# --------------------------------------------------------------------------- candidates

@dataclass(frozen=True)
class Candidate:
    label: str  # what the learner sees: a path or a URL
    source: Source
    path: Optional[Path] = None  # a local file...
    url: Optional[str] = None  # ...or a URL


def candidates_for(ds: DatasetSpec, spec: FileSpec, mirror_list: Sequence[Mirror], ddir: Path,
                offline: bool) -> List[Candidate]:
    """Every place to look for one file, in order, without duplicates."""
    plain = Source(url=None, format="file")
    out: List[Candidate] = []

    def rel_paths(src: Source) -> List[str]:
        rels = [f"{ds.name}/{src.basename}"] if src.basename else []
        return rels + list(src.mirror_paths)

    for m in mirror_list:
        if not m.is_local and offline:
            continue
        for src, rels in [(plain, [f"{ds.name}/{spec.name}"])] + [(s, rel_paths(s))
                                                                   for s in spec.sources]:
            for rel in rels:
                if m.path is not None:
                    path = m.path.joinpath(*rel.split("/"))
                    out.append(Candidate(str(path), src, path=path))
                else:
                    url = urllib.parse.urljoin(m.url or "", urllib.parse.quote(rel))
                    out.append(Candidate(url, src, url=url))
    for src in spec.sources:  # an original download put next to the files by hand
        if src.basename and src.basename != spec.name and (ddir / src.basename).is_file():
            out.append(Candidate(str(ddir / src.basename), src, path=ddir / src.basename))
    if not offline:
        out += [Candidate(s.url, s, url=s.url) for s in spec.sources if s.url]
    seen, unique = set(), []
    for c in out:
        key = (c.label, c.source.format, c.source.members, c.source.sha256, c.source.md5)
        if key not in seen:
            seen.add(key)
            unique.append(c)
    return unique

