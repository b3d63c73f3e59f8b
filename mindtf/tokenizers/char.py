"""The simplest tokenizer: one token per character (what nanoGPT uses for Tiny Shakespeare).

The vocabulary is the sorted set of characters seen in the training text, so ids are stable for a
given text and small (65 for Tiny Shakespeare). The price: sequences are long (one token per
character) and a character never seen in training cannot be encoded, unless you reserve an
``unk`` character for it.

    >>> tok = CharTokenizer.from_text("hello world")
    >>> tok.vocab_size
    8
    >>> tok.encode("hello")
    [3, 2, 4, 4, 5]
    >>> tok.decode([3, 2, 4, 4, 5])
    'hello'
    >>> tok.encode("hi!")
    Traceback (most recent call last):
    ...
    mindtf.errors.InputError: characters not in the vocabulary: 'i', '!'. Build the tokenizer ...
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

from mindtf.errors import InputError

__all__ = ["CharTokenizer"]

PathLike = Union[str, "os.PathLike[str]"]


class CharTokenizer:
    """Maps each character to an id and back.

    Args:
        chars: the vocabulary, in id order (``chars[i]`` has id ``i``); no duplicates.
        unk: a character from ``chars`` to use for characters not in the vocabulary. ``None``
            (default) makes :meth:`encode` raise :class:`~mindtf.errors.InputError` instead.
    """

    def __init__(self, chars: Sequence[str], unk: Optional[str] = None) -> None:
        chars = list(chars)
        bad = [c for c in chars if len(c) != 1]
        if bad:
            raise InputError(f"every vocabulary entry must be one character, got {bad[:5]!r}")
        if len(set(chars)) != len(chars):
            raise InputError("the vocabulary has duplicate characters")
        if unk is not None and unk not in chars:
            raise InputError(f"unk={unk!r} is not in the vocabulary; use from_text(..., unk=...)")
        self.chars: List[str] = chars
        self.unk = unk
        self.stoi: Dict[str, int] = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str, unk: Optional[str] = None) -> "CharTokenizer":
        """Build the vocabulary from the characters of ``text`` (sorted by code point).

        If ``unk`` is given and does not occur in ``text`` it is added to the vocabulary.
        """
        chars = set(text)
        if unk is not None:
            chars.add(unk)
        return cls(sorted(chars), unk=unk)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> List[int]:
        """Text -> ids, one per character."""
        stoi = self.stoi
        if self.unk is not None:
            unk_id = stoi[self.unk]
            return [stoi.get(c, unk_id) for c in text]
        try:
            return [stoi[c] for c in text]
        except KeyError:
            unknown = list(dict.fromkeys(c for c in text if c not in stoi))  # in order, no repeats
            shown = ", ".join(repr(c) for c in unknown[:10])
            more = f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else ""
            raise InputError(f"characters not in the vocabulary: {shown}{more}. Build the "
                             "tokenizer from a text that contains them, or pass unk=... to "
                             "map unknown characters to one token.") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text."""
        chars = self.chars
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(chars):
                raise InputError(f"token id {i} is out of range [0, {len(chars)})")
            out.append(chars[i])
        return "".join(out)

    # ------------------------------------------------------------------------------- save/load
    def to_dict(self) -> dict:
        return {"type": "char", "chars": self.chars, "unk": self.unk}

    def save(self, path: PathLike) -> None:
        """Write the vocabulary to a JSON file."""
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: PathLike) -> "CharTokenizer":
        """Read a tokenizer written by :meth:`save`."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("type") != "char":
            raise InputError(f"{path} is not a CharTokenizer file (type={data.get('type')!r})")
        return cls(data["chars"], unk=data.get("unk"))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, CharTokenizer)
                and self.chars == other.chars and self.unk == other.unk)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, unk={self.unk!r})"
